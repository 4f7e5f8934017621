//! The Lambda Runtime API (2018-06-01) as a bootstrap sees it on Lambda: `GET
//! /runtime/invocation/next` hands it the next event with its request id and deadline, and it
//! answers with `POST /runtime/invocation/{id}/response` or `/error`; a start that fails is reported
//! on `POST /runtime/init/error`. [`RuntimeApi::invoke`] hands one event and waits for its answer.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

use crate::server::Server;

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// The function's answer.
    Response(Value),
    /// A failed invocation: the `Lambda-Runtime-Function-Error-Type` header and the JSON body
    /// (`errorType`, `errorMessage`).
    Error { error_type: String, body: Value },
}

#[derive(Default)]
struct Inner {
    events: VecDeque<(String, Value)>,
    waiting: HashMap<String, oneshot::Sender<Invocation>>,
    init_errors: Vec<(String, Value)>,
    next_id: u64,
}

#[derive(Clone, Default)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    event_ready: Arc<Notify>,
    init_failed: Arc<Notify>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The X-Ray trace header every invocation carries (`Lambda-Runtime-Trace-Id`), as Lambda sends it
/// with `Tracing: Active`: the function's AWS calls must carry it on as `X-Amzn-Trace-Id`.
pub const TRACE_ID: &str = "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1";

/// A local Runtime API on a loopback port.
pub struct RuntimeApi {
    pub addr: SocketAddr,
    shared: Shared,
    _server: Server,
}

impl std::fmt::Debug for RuntimeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeApi").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RuntimeApi {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let server = Server::start(app, "the Runtime API").await;
        Self { addr: server.addr, shared, _server: server }
    }

    /// Hands `event` to the bootstrap and waits (at most 30 s) for how the invocation ended.
    pub async fn invoke(&self, event: Value) -> Invocation {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            inner.next_id += 1;
            let id = format!("8476a536-e9f4-11e8-9739-2dfe598c{:04}", inner.next_id);
            inner.waiting.insert(id.clone(), tx);
            inner.events.push_back((id, event));
        }
        self.shared.event_ready.notify_one();
        tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .expect("an answer within 30 s")
            .expect("the Runtime API is running")
    }

    /// The first start failure reported on `/runtime/init/error`, waiting at most `wait` for it:
    /// the `Lambda-Runtime-Function-Error-Type` header and the body.
    pub async fn init_error(&self, wait: Duration) -> Option<(String, Value)> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.shared.init_failed.notified();
            if let Some(first) = self.shared.lock().init_errors.first().cloned() {
                return Some(first);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

async fn next(State(shared): State<Shared>) -> Response {
    loop {
        let notified = shared.event_ready.notified();
        if let Some((id, event)) = shared.lock().events.pop_front() {
            let deadline_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |now| now.as_millis() + 30_000);
            return (
                [
                    ("lambda-runtime-aws-request-id", id),
                    ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
                    (
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:bootstrap-test".to_owned(),
                    ),
                    ("lambda-runtime-trace-id", TRACE_ID.to_owned()),
                    ("content-type", "application/json".to_owned()),
                ],
                event.to_string(),
            )
                .into_response();
        }
        // As on Lambda, the poll is held open until there is an event.
        notified.await;
    }
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn finish(shared: &Shared, id: &str, outcome: Invocation) -> StatusCode {
    match shared.lock().waiting.remove(id) {
        Some(tx) => {
            let _ = tx.send(outcome);
            StatusCode::ACCEPTED
        }
        None => StatusCode::BAD_REQUEST,
    }
}

async fn response(State(shared): State<Shared>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    finish(&shared, &id, Invocation::Response(json_of(&body)))
}

fn error_type(headers: &HeaderMap) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn error(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    finish(&shared, &id, Invocation::Error { error_type: error_type(&headers), body: json_of(&body) })
}

async fn init_error(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.lock().init_errors.push((error_type(&headers), json_of(&body)));
    shared.init_failed.notify_waiters();
    StatusCode::ACCEPTED
}
