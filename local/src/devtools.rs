//! Not AWS APIs: what the gateway adds for developers, all under `/_local/` but the page at `/`.
//!
//! - `GET /` without a WebSocket upgrade: the demo page (`client/index.html`), which loads the
//!   browser client (`client/websocket-client.js`) from [`CLIENT_PATH`]. A handshake on `/` is a
//!   handshake as before.
//! - [`TOKEN_PATH`]: `GET /_local/token?sub=alice` mints a development token when the gateway
//!   verifies tokens with `--jwt-secret`.
//! - [`STATS_PATH`]: what the gateway holds and what its functions did, as JSON.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use shared::ConnectionStore;

use crate::state::AppState;

/// The browser client's path on the gateway.
pub const CLIENT_PATH: &str = "/_local/websocket-client.js";
/// The development token endpoint's path.
pub const TOKEN_PATH: &str = "/_local/token";

const PAGE: &str = include_str!("../../client/index.html");
const CLIENT: &str = include_str!("../../client/websocket-client.js");

/// How long a development token from [`TOKEN_PATH`] lasts: a working day.
const TOKEN_TTL_SECS: u64 = 8 * 3600;

/// The longest `sub` [`TOKEN_PATH`] mints a token for.
const MAX_SUB_CHARS: usize = 128;

/// The demo page, its WebSocket URL pointing at this gateway's stage.
pub fn page(state: &AppState) -> Response {
    let page = PAGE.replace("__WS_PATH__", &format!("/{}", state.settings.api.stage));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

pub async fn client() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], CLIENT).into_response()
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    sub: Option<String>,
}

pub async fn token(State(state): State<Arc<AppState>>, Query(query): Query<TokenQuery>) -> Response {
    let Some(dev) = &state.settings.dev_tokens else {
        return (
            StatusCode::NOT_FOUND,
            "this gateway verifies no development tokens: start it with --jwt-secret to use them",
        )
            .into_response();
    };
    let sub = query.sub.unwrap_or_default();
    let sub = sub.trim();
    if sub.is_empty() || sub.chars().count() > MAX_SUB_CHARS || sub.chars().any(char::is_control) {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "?sub= must name the user: 1 to {MAX_SUB_CHARS} characters, none of them control characters"
            ),
        )
            .into_response();
    }
    let now = shared::clock::epoch_ms() / 1000;
    let claims = authorizer::token::DevClaims {
        sub: sub.to_owned(),
        subscribe: None,
        publish: None,
        exp: u64::try_from(now).unwrap_or(0) + TOKEN_TTL_SECS,
        iss: dev.issuer.clone(),
        aud: dev.audience.clone(),
    };
    match authorizer::token::mint(dev.secret.as_bytes(), &claims) {
        Ok(token) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response(),
        Err(err) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("could not mint a token: {err}")).into_response()
        }
    }
}

/// What the gateway holds, for scripts that check a run from outside (say, that every lost
/// connection's record was pruned).
pub const STATS_PATH: &str = "/_local/stats";

pub async fn stats(State(state): State<Arc<AppState>>) -> Response {
    let records = match count_records(state.store.as_ref()).await {
        Ok(records) => records,
        Err(err) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("scanning the store failed: {err}"))
                .into_response();
        }
    };
    let queue = state.queue_stats.as_ref().map(|queue| {
        let stats = queue.stats();
        serde_json::json!({
            "visible": stats.visible,
            "in_flight": stats.in_flight,
            "delayed": stats.delayed,
            "dead": stats.dead,
        })
    });
    let body = serde_json::json!({
        "connections": state.registry.len(),
        "records": records,
        "queue": queue,
        "faults_injected": state.injected.to_json(),
        "posts_refused_buffer_full": state.buffer_full.load(Ordering::Relaxed),
        "calls_refused_account_throttle": state.account_throttled.load(Ordering::Relaxed),
        "worker": state.worker_totals.to_json(),
        "ingress": state.ingress_totals.to_json(),
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The connection records in the store, by a scan.
pub async fn count_records(store: &dyn ConnectionStore) -> Result<usize, shared::StoreError> {
    store.scan().map_ok(|page| page.len()).try_fold(0, |n, len| async move { Ok(n + len) }).await
}
