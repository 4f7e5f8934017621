//! Functions as Lambda sees them: JSON bytes in, JSON bytes out.
//!
//! The gateway never calls a handler with a Rust value it built itself: it serializes the event,
//! and the function deserializes it exactly as `lambda_runtime` would. A field the real event would
//! lack, or a type it would not have, fails here the way it would fail on AWS.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use async_trait::async_trait;
use authorizer::Authorizer;
use aws_lambda_events::apigw::ApiGatewayProxyResponse;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::FutureExt;
use ingress::Ingress;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use worker::Worker;

/// An invocation that failed: what Lambda reports as a function error.
#[derive(Debug, thiserror::Error)]
pub enum FunctionError {
    #[error("the event did not deserialize: {0}")]
    Deserialize(serde_json::Error),
    #[error("the handler failed: {0}")]
    Handler(String),
    #[error("the handler panicked")]
    Panicked,
    #[error("the invocation timed out")]
    TimedOut,
}

/// A Lambda function.
#[async_trait]
pub trait Function: Send + Sync {
    /// Runs one invocation that Lambda ends at `deadline` (the context's deadline).
    async fn invoke(&self, payload: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, FunctionError>;
}

/// Serializes `event`, invokes `function` with `timeout` to run, and deserializes its response. Like
/// Lambda, an invocation still running at its deadline is stopped where it is.
pub async fn call<E: Serialize, R: DeserializeOwned>(
    function: &dyn Function,
    event: &E,
    timeout: Duration,
) -> Result<R, FunctionError> {
    let payload = serde_json::to_vec(event).map_err(FunctionError::Deserialize)?;
    let deadline = Instant::now() + timeout;
    let response = tokio::time::timeout_at(deadline, function.invoke(payload, deadline))
        .await
        .map_err(|_| FunctionError::TimedOut)??;
    serde_json::from_slice(&response).map_err(FunctionError::Deserialize)
}

async fn run<E, R, F>(payload: &[u8], handler: impl FnOnce(E) -> F) -> Result<Vec<u8>, FunctionError>
where
    E: DeserializeOwned,
    R: Serialize,
    F: std::future::Future<Output = Result<R, String>>,
{
    let event: E = serde_json::from_slice(payload).map_err(FunctionError::Deserialize)?;
    // Like the Lambda runtime, a panicking handler fails the invocation, not the process.
    let response =
        AssertUnwindSafe(handler(event)).catch_unwind().await.map_err(|_| FunctionError::Panicked)?;
    let response = response.map_err(FunctionError::Handler)?;
    serde_json::to_vec(&response).map_err(FunctionError::Deserialize)
}

/// The ingress as the gateway runs it: each event's route and error code are added to `totals`,
/// which `/_local/stats` shows, where on AWS the bootstrap writes them as an EMF line.
#[derive(Debug)]
pub struct MeteredIngress {
    pub ingress: Ingress,
    pub totals: std::sync::Arc<ingress::metrics::Totals>,
}

#[async_trait]
impl Function for MeteredIngress {
    async fn invoke(&self, payload: Vec<u8>, _deadline: Instant) -> Result<Vec<u8>, FunctionError> {
        run(&payload, |event: ingress::Event| async move {
            let handled = self.ingress.run(event).await;
            self.totals.add(&handled);
            handled.result.map_err(|err| err.to_string())
        })
        .await
    }
}

#[async_trait]
impl Function for Worker {
    async fn invoke(&self, payload: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, FunctionError> {
        run(&payload, |event: SqsEvent| async move {
            Ok::<SqsBatchResponse, String>(self.handle(event, deadline).await)
        })
        .await
    }
}

/// The worker as the gateway runs it: each batch's figures are added to `totals`, which
/// `/_local/stats` shows, where on AWS the bootstrap writes them as an EMF line.
#[derive(Debug)]
pub struct MeteredWorker {
    pub worker: Worker,
    pub totals: std::sync::Arc<worker::metrics::Totals>,
}

#[async_trait]
impl Function for MeteredWorker {
    async fn invoke(&self, payload: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, FunctionError> {
        run(&payload, |event: SqsEvent| async move {
            let report = self.worker.process(event, deadline).await;
            self.totals.add(&report);
            Ok::<SqsBatchResponse, String>(report.response())
        })
        .await
    }
}

#[async_trait]
impl Function for Authorizer {
    async fn invoke(&self, payload: Vec<u8>, _deadline: Instant) -> Result<Vec<u8>, FunctionError> {
        run(&payload, |event: authorizer::server::Event| async move {
            self.answer(event).await.map_err(|err| err.to_string())
        })
        .await
    }
}

/// The route response of an API Gateway proxy integration.
pub type ProxyResponse = ApiGatewayProxyResponse;
