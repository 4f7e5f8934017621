//! An `@connections` endpoint that records every call (method, path, headers, body) and answers
//! `POST` with 200, or with 410 `GoneException` for the connections it is told are gone.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::server::Server;

/// One call as it arrived.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[derive(Clone, Default)]
struct Shared {
    calls: Arc<Mutex<Vec<Call>>>,
    gone: Arc<Mutex<HashSet<String>>>,
}

/// The endpoint, on a loopback port; the worker's `CONNECTIONS_ENDPOINT` is [`Self::endpoint`].
pub struct RecordingConnections {
    pub addr: SocketAddr,
    shared: Shared,
    _server: Server,
}

impl std::fmt::Debug for RecordingConnections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingConnections").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl RecordingConnections {
    pub async fn start() -> Self {
        let shared = Shared::default();
        let app = Router::new().fallback(record).with_state(shared.clone());
        let server = Server::start(app, "the @connections endpoint").await;
        Self { addr: server.addr, shared, _server: server }
    }

    /// The stage URL, as the template gives the worker: `http://127.0.0.1:PORT/{stage}`.
    pub fn endpoint(&self, stage: &str) -> String {
        format!("http://{}/{stage}", self.addr)
    }

    /// Answers posts to `id` 410 from now on.
    pub fn gone(&self, id: &str) {
        self.shared.gone.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(id.to_owned());
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

async fn record(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let call = Call {
        method: method.to_string(),
        path: path.clone(),
        headers: headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: body.to_vec(),
    };
    shared.calls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(call);
    // The id is the path's last segment, encoded as the SDK sends it.
    let id = path.rsplit('/').next().unwrap_or_default().replace("%3D", "=");
    let gone = shared.gone.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&id);
    if gone {
        return (
            StatusCode::GONE,
            [("x-amzn-errortype", "GoneException"), ("content-type", "application/json")],
            "{\"message\":null}",
        )
            .into_response();
    }
    StatusCode::OK.into_response()
}
