//! Not AWS APIs: what the gateway adds for developers, all under `/_local/` but the page at `/`.
//!
//! - `GET /` without a WebSocket upgrade: the demo page (`client/index.html`), which loads its
//!   script and style ([`DEMO_SCRIPT_PATH`], [`DEMO_STYLE_PATH`]) and the browser client
//!   (`client/websocket-client.js`, [`CLIENT_PATH`], and the modules it imports, [`CLIENT_MODULES`]). All are served under [`CONTENT_SECURITY_POLICY`]:
//!   scripts and styles from the gateway only, no framing. A handshake on `/` is a handshake as before.
//! - [`TOKEN_PATH`]: `GET /_local/token?sub=alice` mints a development token when the gateway
//!   verifies tokens with `--jwt-secret` — for any user, so only to a request whose `Host` is the
//!   gateway's own address ([`token_host`]): a page elsewhere that reaches it through DNS rebinding
//!   is refused, and on a bind beyond loopback it is off unless `--expose-dev-tokens` says otherwise.
//! - [`STATS_PATH`]: what the gateway holds and what its functions did, as JSON.
//! - [`EVENTS_PATH`]: the last lifecycle events, as an EventBridge rule's target receives them, and
//!   what forwarding them to `--events-url` did ([`crate::lifecycle`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use serde::Deserialize;
use shared::ConnectionStore;

use crate::state::AppState;

/// The browser client's path on the gateway.
pub const CLIENT_PATH: &str = "/_local/websocket-client.js";
/// The demo page's script and style.
pub const DEMO_SCRIPT_PATH: &str = "/_local/demo.js";
pub const DEMO_STYLE_PATH: &str = "/_local/demo.css";
/// The development token endpoint's path.
pub const TOKEN_PATH: &str = "/_local/token";

const PAGE: &str = include_str!("../../client/index.html");
/// The browser client's modules, by the path each is served at: the entry and the two it imports
/// (`client/types.js` holds types only, which no browser fetches).
pub const CLIENT_MODULES: [(&str, &str); 3] = [
    (CLIENT_PATH, include_str!("../../client/websocket-client.js")),
    ("/_local/requests.js", include_str!("../../client/requests.js")),
    ("/_local/streams.js", include_str!("../../client/streams.js")),
];
const DEMO_SCRIPT: &str = include_str!("../../client/demo.js");
const DEMO_STYLE: &str = include_str!("../../client/demo.css");

/// What the page, its script and its style may do: load scripts and styles from the gateway only
/// (no inline code, so an injected `<script>` would not run), fetch from the gateway and open
/// WebSockets anywhere (any deployed stack's URL can be entered), and be framed by no one.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self' ws: wss:; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// A file of the demo, with the headers that keep a browser from sniffing it as something else or
/// framing it.
fn served(content_type: &'static str, body: impl IntoResponse) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        body,
    )
        .into_response()
}

/// How long a development token from [`TOKEN_PATH`] lasts: a working day.
const TOKEN_TTL_SECS: u64 = 8 * 3600;

/// The longest `sub` [`TOKEN_PATH`] mints a token for.
const MAX_SUB_CHARS: usize = 128;

/// The demo page, its WebSocket URL pointing at this gateway's stage.
pub fn page(state: &AppState) -> Response {
    let page = PAGE.replace("__WS_PATH__", &format!("/{}", state.settings.api.stage));
    served("text/html; charset=utf-8", page)
}

/// One of the client's modules.
pub fn client_module(source: &'static str) -> Response {
    served("text/javascript; charset=utf-8", source)
}

pub async fn demo_script() -> Response {
    served("text/javascript; charset=utf-8", DEMO_SCRIPT)
}

pub async fn demo_style() -> Response {
    served("text/css; charset=utf-8", DEMO_STYLE)
}

/// Why [`TOKEN_PATH`] refuses a request whose `Host` header is `host`, on a gateway listening on
/// `local`; `None` when it serves it. On a loopback bind, the host must be a loopback address or
/// `localhost`, with the gateway's port; on any other bind the endpoint is off unless `exposed`,
/// and then an IP address with the port is accepted too. A DNS name other than `localhost` never
/// is: it is what a page on another site uses to reach the gateway through DNS rebinding.
pub fn token_host(host: Option<&str>, local: SocketAddr, exposed: bool) -> Option<String> {
    let beyond_loopback = !local.ip().is_loopback();
    if beyond_loopback && !exposed {
        return Some(format!(
            "the development-token endpoint is off on a bind beyond loopback ({local}): it mints a token for \
             any user; --expose-dev-tokens turns it on"
        ));
    }
    let Some(host) = host else { return Some("the request has no Host header".to_owned()) };
    let (name, port) = match host.parse::<axum::http::uri::Authority>() {
        Ok(authority) => (authority.host().to_owned(), authority.port_u16().unwrap_or(80)),
        Err(_) => return Some(format!("the Host header {host:?} is not a host")),
    };
    let ip = name.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok();
    let own = name.eq_ignore_ascii_case("localhost")
        || ip.is_some_and(|ip| ip.is_loopback())
        || (beyond_loopback && ip.is_some());
    if own && port == local.port() {
        return None;
    }
    Some(format!(
        "Host {host} is not this gateway's own address ({}:{}): a page reaching it under another name \
         (DNS rebinding) gets no token",
        if beyond_loopback { "an IP address" } else { "127.0.0.1, localhost or [::1]" },
        local.port()
    ))
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    sub: Option<String>,
    /// The token's `info` claim, as JSON text: what the user shows the members of its channels.
    info: Option<String>,
}

pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> Response {
    let Some(dev) = &state.settings.dev_tokens else {
        return (
            StatusCode::NOT_FOUND,
            "this gateway verifies no development tokens: start it with --jwt-secret to use them",
        )
            .into_response();
    };
    let host = headers.get(header::HOST).and_then(|host| host.to_str().ok());
    if let Some(why) = token_host(host, state.local_addr, dev.exposed) {
        // API Gateway's words to the caller; why goes to the developer's log.
        tracing::warn!("{TOKEN_PATH} refused: {why}");
        return crate::exchange::forbidden();
    }
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
    let info = match query.info.as_deref().map(shared::identity::Info::parse).transpose() {
        Ok(info) => info,
        Err(err) => return (StatusCode::BAD_REQUEST, format!("?info= {err}")).into_response(),
    };
    let now = shared::clock::epoch_ms() / 1000;
    let claims = authorizer::token::DevClaims {
        sub: sub.to_owned(),
        subscribe: None,
        publish: None,
        info: info.and_then(|info| serde_json::from_str(info.as_str()).ok()),
        scope: None,
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
    let queue_json = |queue: &Arc<shared::queue::MemoryQueue>| {
        let stats = queue.stats();
        serde_json::json!({
            "visible": stats.visible,
            "in_flight": stats.in_flight,
            "delayed": stats.delayed,
            "dead": stats.dead,
        })
    };
    let queue = state.queue_stats.as_ref().map(queue_json);
    let bulk_queue = state.bulk_queue_stats.as_ref().map(queue_json);
    let body = serde_json::json!({
        "connections": state.registry.len(),
        "records": records,
        "queue": queue,
        "bulk_queue": bulk_queue,
        "faults_injected": state.injected.to_json(),
        "posts_refused_buffer_full": state.buffer_full.load(Ordering::Relaxed),
        "calls_refused_account_throttle": state.account_throttled.load(Ordering::Relaxed),
        "worker": state.worker_totals.to_json(),
        "ingress": state.ingress_totals.to_json(),
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// `GET`: the recent lifecycle events, oldest first, with what forwarding did.
pub const EVENTS_PATH: &str = "/_local/events";

/// `GET /_local/events`: `{"events":[…],"forwarding":{…}}`.
pub async fn events(State(state): State<Arc<AppState>>) -> Response {
    let lifecycle = &state.lifecycle;
    let forwarding = lifecycle.url.as_ref().map(|url| {
        serde_json::json!({
            "url": url,
            "delivered": lifecycle.forwarded.delivered.load(Ordering::Relaxed),
            "failed": lifecycle.forwarded.failed.load(Ordering::Relaxed),
            "retries": lifecycle.forwarded.retries.load(Ordering::Relaxed),
            "down": lifecycle.forwarded.down.load(Ordering::Relaxed),
            "dropped": lifecycle.events.dropped(),
        })
    });
    let body = serde_json::json!({ "events": lifecycle.events.recent(), "forwarding": forwarding });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The connection records in the store, by a scan.
pub async fn count_records(store: &dyn ConnectionStore) -> Result<usize, shared::StoreError> {
    store.scan().map_ok(|page| page.len()).try_fold(0, |n, len| async move { Ok(n + len) }).await
}
