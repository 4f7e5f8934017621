//! The `archive` event hook as a Lambda function: see [`hook_example::Archive`]. What it keeps lasts
//! as long as the function's instance; a real one would write to a table.

use std::sync::Mutex;

use hook_example::Archive;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let archive = &Mutex::new(Archive::default());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let mut archive = archive.lock().map_err(|_| "the archive's lock is poisoned")?;
        Ok::<Value, Error>(archive.handle(&event.payload))
    }))
    .await
}
