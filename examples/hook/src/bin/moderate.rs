//! The `moderate` hook as a Lambda function: see [`hook_example::moderate`].

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<Value, Error>(hook_example::moderate(&event.payload))
    }))
    .await
}
