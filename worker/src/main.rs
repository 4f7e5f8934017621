//! The worker Lambda's bootstrap: configuration and SDK clients once, then the runtime loop.

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::WorkerConfig;
use shared::aws::{ApiGatewayPoster, DynamoStore};
use worker::Worker;

// Every `@connections` post is an SDK call that allocates freely; mimalloc makes those allocations
// much cheaper than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread: a worker's time is spent waiting on `@connections` calls, a Lambda below 1,769 MB has
// less than one vCPU, and a multi-thread runtime spent a tenth of the CPU per delivery waking its
// other threads (perf, `worker_cpu --multi-thread`).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::init_tracing();
    let config = WorkerConfig::from_env()?;
    let sdk = shared::lambda::sdk_config(&config.region);
    let worker = Worker::new(
        Arc::new(DynamoStore::from_sdk(&sdk, config.table)),
        Arc::new(ApiGatewayPoster::for_endpoint(&sdk, &config.connections_endpoint)),
        config.post_concurrency,
    );
    let worker = &worker;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<SqsBatchResponse, lambda_runtime::Error>(worker.handle(event.payload).await)
    }))
    .await
}
