//! The ingress Lambda's bootstrap: configuration and SDK clients once, then the runtime loop.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use ingress::Ingress;
use lambda_runtime::{LambdaEvent, service_fn};
use shared::IngressConfig;
use shared::aws::{DynamoStore, SqsQueue};

// Each event means SDK calls (DynamoDB, SQS) that allocate freely; mimalloc makes those allocations
// much cheaper than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread: Lambda hands the function one event at a time, and a multi-thread runtime would only
// start threads at cold start that never get work.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::init_tracing();
    let config = IngressConfig::from_env()?;
    let sdk = shared::lambda::sdk_config(&config.region);
    let ingress = Ingress::new(
        Arc::new(DynamoStore::from_sdk(&sdk, config.table)),
        Arc::new(SqsQueue::from_sdk(&sdk, config.queue_url)),
    );
    let ingress = &ingress;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        ingress.handle(event.payload).await.map_err(|err| lambda_runtime::Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        })
    }))
    .await
}
