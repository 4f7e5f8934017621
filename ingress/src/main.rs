//! The ingress Lambda's bootstrap: its deployment and SDK clients once, then the runtime loop.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use ingress::Ingress;
use ingress::{Deployment, Ports};
use lambda_runtime::{LambdaEvent, service_fn};
use shared::environment::FromEnv;
use shared::events::EventBridgeEvents;
use shared::history::DynamoHistory;
use shared::presence::DynamoPresence;
use shared::queue::SqsQueue;
use shared::store::DynamoStore;

// Each event means SDK calls (DynamoDB, SQS) that allocate freely; mimalloc makes those allocations
// much cheaper than glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// One thread: Lambda hands the function one event at a time, and a multi-thread runtime would only
// start threads at cold start that never get work.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::init_tracing();
    let deployment = shared::lambda::configured(Deployment::from_env()).await?;
    let sdk = shared::lambda::sdk_config(&deployment.region);
    let history = deployment.history.is_on().then(|| {
        Arc::new(DynamoHistory::from_sdk(&sdk, deployment.table.clone(), deployment.history))
            as Arc<dyn shared::History>
    });
    let presence = deployment.presence.on.then(|| {
        Arc::new(DynamoPresence::from_sdk(&sdk, deployment.table.clone())) as Arc<dyn shared::Presence>
    });
    let events = deployment
        .presence
        .event_bus
        .as_ref()
        .map(|bus| Arc::new(EventBridgeEvents::from_sdk(&sdk, bus.clone())) as Arc<dyn shared::Events>);
    let ingress = Ingress::new(Ports {
        store: Arc::new(DynamoStore::from_sdk(&sdk, deployment.table)),
        queue: Arc::new(SqsQueue::from_sdk(&sdk, deployment.queue_url)),
        history,
        presence,
        events,
    });
    let ingress = &ingress;
    // Lambda names the function; its metrics are dimensioned by that name.
    let function = &std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "ingress".to_owned());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<ApiGatewayWebsocketProxyRequest>| async move {
        let handled = ingress.process(event.payload).await;
        // One EMF line an event: CloudWatch reads the metrics out of the log, no API call needed.
        println!("{}", ingress::metrics::emf_line(&handled, function, shared::clock::epoch_ms()));
        handled.result.map_err(|err| lambda_runtime::Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        })
    }))
    .await
}
