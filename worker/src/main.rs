//! The worker Lambda's bootstrap: its deployment and SDK clients once, then the runtime loop.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::poster::ApiGatewayPoster;
use shared::queue::SqsQueue;
use worker::{Deployment, Ports, Worker};

// The namespace file the function is built with (`shared::namespaces::FILE`): a change to it takes
// effect on the next `sam build && sam deploy`.
const NAMESPACES: &str = include_str!("../../namespaces.toml");

// Every `@connections` post is an SDK call that allocates freely; mimalloc makes those allocations
// much cheaper than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread: a worker's time is spent waiting on `@connections` calls, a Lambda below 1,769 MB has
// less than one vCPU, and a multi-thread runtime spent a quarter more CPU per delivery waking its
// other threads (perf, `worker_cpu --multi-thread`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment: Deployment = shared::lambda::start().await?;
    let stack = &deployment.stack;
    let sdk = shared::lambda::sdk_config(&stack.region);
    let namespaces = match stack.namespaces(NAMESPACES) {
        Ok(namespaces) => namespaces,
        Err(err) => return Err(shared::lambda::init_failed(shared::lambda::INVALID_NAMESPACES, err).await),
    };
    let mut ports = Ports::new(
        stack.ports(&sdk, namespaces),
        Arc::new(ApiGatewayPoster::for_endpoint(&sdk, &deployment.connections_endpoint)),
    );
    if let Some(url) = &deployment.bulk_queue_url {
        ports = ports.with_bulk_queue(Arc::new(SqsQueue::from_sdk(&sdk, url.clone())));
    }
    let worker = Worker::new(ports, deployment.settings());
    let worker = &worker;
    // Lambda names the function; its metrics are dimensioned by that name.
    let function = &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "worker".to_owned());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let deadline = shared::lambda::deadline(event.context.deadline);
        let report = worker.process(event.payload, deadline).await;
        // One EMF line a batch: CloudWatch reads the metrics out of the log, no API call needed.
        println!("{}", worker::metrics::emf_line(&report, function, shared::clock::epoch_ms()));
        Ok::<SqsBatchResponse, lambda_runtime::Error>(report.response())
    }))
    .await
}
