//! The ingress Lambda's bootstrap: its deployment and SDK clients once, then the runtime loop.

use std::sync::Arc;

use ingress::Deployment;
use ingress::{Event, Ingress};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::poster::ApiGatewayPoster;

// The namespace file the function is built with (`shared::namespaces::FILE`): a change to it takes
// effect on the next `sam build && sam deploy`.
const NAMESPACES: &str = include_str!("../../namespaces.toml");

// Each event means SDK calls (DynamoDB, SQS) that allocate freely; mimalloc makes those allocations
// much cheaper than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread: Lambda hands the function one event at a time, and a multi-thread runtime would only
// start threads at cold start that never get work.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment: Deployment = shared::lambda::start().await?;
    let stack = &deployment.stack;
    let sdk = shared::lambda::sdk_config(&stack.region);
    let namespaces = match stack.namespaces(NAMESPACES) {
        Ok(namespaces) => namespaces,
        Err(err) => return Err(shared::lambda::init_failed(shared::lambda::INVALID_NAMESPACES, err).await),
    };
    let closer = ApiGatewayPoster::for_endpoint(&sdk, &deployment.connections_endpoint);
    let ports = stack.ports(&sdk, namespaces).with_quotas(deployment.quotas).with_closer(Arc::new(closer));
    let ingress = Ingress::new(ports);
    let ingress = &ingress;
    // Lambda names the function; its metrics are dimensioned by that name.
    let function = &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "ingress".to_owned());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        let handled = ingress.run(event.payload).await;
        // One EMF line an event: CloudWatch reads the metrics out of the log, no API call needed.
        println!("{}", ingress::metrics::emf_line(&handled, function, shared::clock::epoch_ms()));
        handled.result.map_err(|err| lambda_runtime::Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        })
    }))
    .await
}
