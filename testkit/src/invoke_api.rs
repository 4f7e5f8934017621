//! Lambda's Invoke API on a loopback port, as `cargo lambda watch` and `sam local start-lambda`
//! serve it: `POST /2015-03-31/functions/{name}/invocations` with the event as the body, answered
//! 200 with the function's JSON, or 200 with `X-Amz-Function-Error: Unhandled` and
//! `{"errorType","errorMessage"}` when it raised, or 404 `ResourceNotFoundException` for a
//! function it does not have, or 429 `TooManyRequestsException` for one the test throttles. Each function is a closure the test gives; every request is kept.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::server::Server;

/// What a function does with one event.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Returns this JSON (`Value::Null` included).
    Returns(Value),
    /// Returns this text as it is, JSON or not.
    ReturnsText(String),
    /// Raises an exception of this type with this message.
    Raises { error_type: String, message: String },
    /// Does the inner thing after a while.
    After(Duration, Box<Outcome>),
    /// Never runs: Lambda's 429 `TooManyRequestsException`, as when the function is throttled.
    Throttled,
}

type Function = Arc<dyn Fn(&Value) -> Outcome + Send + Sync>;

#[derive(Clone, Default)]
struct Shared {
    functions: Arc<Mutex<HashMap<String, Function>>>,
    received: Arc<Mutex<Vec<(String, Value)>>>,
}

/// The Invoke API; the local gateway's `--hooks-endpoint` is [`Self::endpoint`].
pub struct InvokeApi {
    pub addr: SocketAddr,
    shared: Shared,
    _server: Server,
}

impl std::fmt::Debug for InvokeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InvokeApi").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl InvokeApi {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/2015-03-31/functions/{name}/invocations", axum::routing::post(invoke))
            .with_state(shared.clone());
        let server = Server::start(app, "the Invoke API").await;
        Self { addr: server.addr, shared, _server: server }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serves `name` with `function` from now on.
    pub fn function(&self, name: &str, function: impl Fn(&Value) -> Outcome + Send + Sync + 'static) {
        lock(&self.shared.functions).insert(name.to_owned(), Arc::new(function));
    }

    /// Every event received, with the function it was for, oldest first.
    pub fn received(&self) -> Vec<(String, Value)> {
        lock(&self.shared.received).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn invoke(State(shared): State<Shared>, Path(name): Path<String>, body: Bytes) -> Response {
    let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    lock(&shared.received).push((name.clone(), event.clone()));
    let function = lock(&shared.functions).get(&name).cloned();
    let Some(function) = function else {
        return (
            StatusCode::NOT_FOUND,
            [("x-amzn-errortype", "ResourceNotFoundException"), ("content-type", "application/json")],
            format!(r#"{{"Type":"User","message":"Function not found: {name}"}}"#),
        )
            .into_response();
    };
    let mut outcome = function(&event);
    loop {
        return match outcome {
            Outcome::After(wait, then) => {
                tokio::time::sleep(wait).await;
                outcome = *then;
                continue;
            }
            Outcome::Returns(value) => (StatusCode::OK, value.to_string()).into_response(),
            Outcome::ReturnsText(text) => (StatusCode::OK, text).into_response(),
            Outcome::Throttled => (
                StatusCode::TOO_MANY_REQUESTS,
                [("x-amzn-errortype", "TooManyRequestsException"), ("content-type", "application/json")],
                r#"{"Type":"User","message":"Rate Exceeded."}"#,
            )
                .into_response(),
            Outcome::Raises { error_type, message } => (
                StatusCode::OK,
                [("x-amz-function-error", "Unhandled"), ("content-type", "application/json")],
                serde_json::json!({ "errorType": error_type, "errorMessage": message, "stackTrace": [] })
                    .to_string(),
            )
                .into_response(),
        };
    }
}
