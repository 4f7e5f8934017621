//! One WebSocket connection, from its `$connect` to its `$disconnect`.
//!
//! The handshake waits for the `$connect` route like API Gateway's does, and a non-2xx answer rejects
//! it with that status. Once open, each message is routed and handed to the function, whose route
//! response goes back to the client; `@connections` posts arrive through the registry. The limits
//! API Gateway enforces are enforced here: a frame over 32 KB or a message over 128 KB closes the
//! connection with 1009, idleness and old age close it with 1001, other protocol violations with
//! 1002 or 1007, messages past the stage throttle are answered `Too Many Requests` without reaching
//! the integration, and handshakes past the account's connection rate are refused with 429.
//!
//! Each connection has a reader (its task) and a writer (a task of its own) between which the
//! outbound buffer sits, bounded in bytes: a client that stops reading blocks only its writer, and
//! `DELETE @connections`, the timeouts and shutdown still close it, each within [`CLOSE_GRACE`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use aws_lambda_events::encodings::Body;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use shared::clock::epoch_ms;
use shared::limits::{MAX_FRAME_BYTES, MAX_MESSAGE_BYTES};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::oneshot;
use tokio::time::{Instant, sleep};

use crate::exchange::{closing, forbidden};
use crate::function::{self, ProxyResponse};
use crate::integration::{self, Connection, Payload};
use crate::outbox::{Outbox, Outgoing};
use crate::registry::Live;
use crate::routing::DEFAULT_ROUTE;
use crate::state::AppState;
use crate::{authorize, devtools, ids};

/// The ingress function's `Timeout` in template.yaml.
const INGRESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// tungstenite reads into a 128 KB buffer per connection by default: 1.3 GB for 10,000 idle clients.
/// Frames larger than this still arrive whole; the buffer only sets the size of each read.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Close codes and the `disconnectReason` texts API Gateway reports with them.
const GOING_AWAY: (u16, &str) = (1001, "Going away");
const TOO_BIG: (u16, &str) = (1009, "Message too big");
const PROTOCOL_ERROR: (u16, &str) = (1002, "Protocol error");
const INVALID_PAYLOAD: (u16, &str) = (1007, "Invalid frame payload data");
const ABNORMAL: (u16, &str) = (1006, "Connection closed abnormally");
const NO_STATUS: (u16, &str) = (1005, "Client-side close frame status not set");
const DELETED: (u16, &str) = (1000, "Connection deleted through @connections");

/// `GET /`: the handshake on the root path, as serverless-offline serves it; a plain `GET` (a
/// browser's, with no `Upgrade` header) gets the demo page.
pub async fn upgrade_root(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => handshake(state, peer, headers, uri, ws).await,
        Err(_) if !headers.contains_key(header::UPGRADE) => devtools::page(&state),
        Err(rejection) => rejection.into_response(),
    }
}

/// `GET /{stage}`: the handshake on the stage path, as on AWS.
pub async fn upgrade_staged(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(stage): Path<String>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    if stage != state.settings.api.stage {
        return forbidden();
    }
    handshake(state, peer, headers, uri, ws).await
}

/// A handshake, accepted or refused. A refused one closes its HTTP connection: nothing more can
/// come of it, and a client that keeps it open would hold its (up to 64 KB) request head's buffer.
async fn handshake(
    state: Arc<AppState>,
    peer: SocketAddr,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let response = accept(state, peer, headers, uri, ws).await;
    if response.status() == StatusCode::SWITCHING_PROTOCOLS { response } else { closing(response) }
}

async fn accept(
    state: Arc<AppState>,
    peer: SocketAddr,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    // API Gateway's account-wide limit on new connections: refused before `$connect` runs.
    if state.connect_rate.as_ref().is_some_and(|bucket| bucket.check().is_err()) {
        tracing::debug!(peer = %peer, "handshake past the connection rate refused");
        return (StatusCode::TOO_MANY_REQUESTS, json!({ "message": "Too Many Requests" }).to_string())
            .into_response();
    }
    let now = epoch_ms();
    let text =
        |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok()).map(str::to_owned);
    let mut info = Connection {
        id: ids::connection_id(),
        connected_at_ms: now,
        source_ip: peer.ip().to_string(),
        user_agent: text(header::USER_AGENT),
        domain_name: text(header::HOST).unwrap_or_else(|| state.local_addr.to_string()),
        authorizer: None,
    };
    if let Some(authorizer) = &state.authorizer {
        match authorize::run(&state, authorizer.as_ref(), &info, &headers, uri.query(), now).await {
            Ok(context) => info.authorizer = Some(context),
            Err(refusal) => return refusal,
        }
    }
    let event =
        integration::connect(&state.settings.api, &info, &headers, uri.query(), state.local_addr.port(), now);
    match function::call::<_, ProxyResponse>(state.ingress.as_ref(), &event, INGRESS_TIMEOUT).await {
        Ok(response) if (200..300).contains(&response.status_code) => {}
        Ok(response) => {
            let status = u16::try_from(response.status_code)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            tracing::info!(connection = %info.id, %status, "$connect rejected the handshake");
            let body = match response.body {
                Some(Body::Text(text)) => Bytes::from(text),
                Some(Body::Binary(bytes)) => Bytes::from(bytes),
                _ => Bytes::new(),
            };
            return (status, body).into_response();
        }
        Err(err) => {
            tracing::error!(connection = %info.id, error = %err, "$connect failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"message": "Internal server error"}).to_string(),
            )
                .into_response();
        }
    }

    // Registered as soon as `$connect` accepts, before the 101 goes out: from the client's point of
    // view the connection exists once the handshake completes, and posts made meanwhile wait in its
    // buffer. During `$connect` itself the id is unknown and posts answer 410, as on AWS.
    let (outbox, outbound) = Outbox::new(state.settings.outbound_buffer_bytes);
    let live = Arc::new(Live::new(info.clone(), outbox));
    state.registry.insert(live.clone());

    let tracker = state.connections.clone();
    let failed_state = state.clone();
    ws.max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_MESSAGE_BYTES)
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(0)
        .on_failed_upgrade(move |err| {
            tracing::warn!(connection = %info.id, error = %err, "the upgrade failed after $connect");
            failed_state.registry.remove(&info.id);
            tokio::spawn(async move { disconnect(&failed_state, &info, ABNORMAL.0, ABNORMAL.1).await });
        })
        .on_upgrade(move |socket| tracker.track_future(serve(state, live, outbound, socket)))
}

/// How long closing may take once decided: the close frame of a client that does not read can never
/// be written, and its socket is dropped after this instead.
pub const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Serves one open connection: its reader here, its writer in a task of its own, so that a client
/// that stops reading blocks only its writer and every reason to close is still heard.
async fn serve(
    state: Arc<AppState>,
    live: Arc<Live>,
    outbound: UnboundedReceiver<Outgoing>,
    socket: WebSocket,
) {
    let info = &live.info;
    let (sink, mut stream) = socket.split();
    let (stop, stopped) = oneshot::channel();
    let mut writer = tokio::spawn(write(sink, outbound, live.clone(), stopped));
    let idle_timeout = state.settings.idle_timeout;
    let idle = sleep(idle_timeout);
    let lifetime = sleep(state.settings.max_connection_duration);
    tokio::pin!(idle, lifetime);

    // No close frame of ours when the client began the close (tungstenite has queued its echo) or
    // the socket broke.
    let mut by_shutdown = false;
    let (close, code, reason): (Option<CloseFrame>, u16, String) = loop {
        let closing = tokio::select! {
            () = state.shutdown.cancelled() => {
                by_shutdown = true;
                state.shutdown_report.closed.fetch_add(1, Ordering::Relaxed);
                GOING_AWAY
            }
            () = &mut lifetime => GOING_AWAY,
            () = &mut idle => GOING_AWAY,
            () = live.deleted.cancelled() => DELETED,
            () = live.lost.cancelled() => {
                // Dropping the socket ends the TCP connection without a close frame; no `$disconnect`
                // runs, so the record stays until the worker prunes it on a 410.
                writer.abort();
                state.registry.remove(&info.id);
                return;
            }
            _ = &mut writer => break (None, ABNORMAL.0, ABNORMAL.1.to_owned()),
            // A full buffer stops reading: the client's own messages wait in its socket until its
            // writer has caught up, as TCP would make them wait anyway.
            () = live.outbox.room(), if !live.outbox.has_room() => continue,
            received = stream.next(), if live.outbox.has_room() => match received {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    let now = epoch_ms();
                    live.touch(now);
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    let payload = match &message {
                        Message::Text(text) => Payload::Text(text.as_str()),
                        Message::Binary(bytes) => Payload::Binary(bytes),
                        _ => unreachable!("matched above"),
                    };
                    if let Some(reply) = route(&state, info, payload, now).await {
                        let _ = live.outbox.push(reply);
                    }
                    continue;
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    live.touch(epoch_ms());
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    continue;
                }
                Some(Ok(Message::Close(frame))) => {
                    break frame.map_or((None, NO_STATUS.0, NO_STATUS.1.to_owned()), |f| (None, f.code, f.reason.to_string()));
                }
                Some(Err(err)) => match violation(&err) {
                    Some(closing) => closing,
                    None => break (None, ABNORMAL.0, ABNORMAL.1.to_owned()),
                },
                None => break (None, ABNORMAL.0, ABNORMAL.1.to_owned()),
            },
        };
        let (code, reason) = closing;
        break (Some(CloseFrame { code, reason: reason.into() }), code, reason.to_owned());
    };
    // Out of the registry first: from here on `@connections` answers 410, as API Gateway does.
    state.registry.remove(&info.id);
    let ours = close.is_some();
    if !writer.is_finished() {
        let _ = stop.send(close);
        // The writer gives up after `CLOSE_GRACE`; this bound only guards against a writer bug.
        if tokio::time::timeout(CLOSE_GRACE * 2, &mut writer).await.is_err() {
            writer.abort();
        }
    }
    let (_, disconnected) = tokio::join!(drain(stream, ours), disconnect(&state, info, code, &reason));
    if disconnected && by_shutdown {
        state.shutdown_report.disconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// After a close frame of ours, reads and drops what the client sent until its own close frame
/// arrives, as RFC 6455's closing handshake has a server do, for at most [`CLOSE_GRACE`]. Dropping
/// a socket with unread bytes in it makes the kernel answer with a reset, and a client that was
/// still sending — a flood being closed — then lost our close frame to that reset (`quotas.rs`,
/// 6 runs in 40 two at a time before this).
async fn drain(mut stream: SplitStream<WebSocket>, ours: bool) {
    if !ours {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(message)) = stream.next().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Writes the outbox to the socket until told to close, then sends the close frame — or, for a
/// client that has stopped reading, gives up on it after [`CLOSE_GRACE`] and drops the socket.
async fn write(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbound: UnboundedReceiver<Outgoing>,
    live: Arc<Live>,
    mut stop: oneshot::Receiver<Option<CloseFrame>>,
) {
    loop {
        let outgoing = tokio::select! {
            biased;
            close = &mut stop => return finish(sink, outbound, close.ok().flatten()).await,
            outgoing = outbound.recv() => match outgoing {
                Some(outgoing) => outgoing,
                None => return,
            },
        };
        tokio::select! {
            biased;
            close = &mut stop => return finish(sink, outbound, close.ok().flatten()).await,
            sent = sink.send(outgoing.message) => {
                if sent.is_err() {
                    return;
                }
            }
        }
        live.outbox.sent(outgoing.bytes);
    }
}

/// Sends what `@connections` already accepted, then the close frame, within [`CLOSE_GRACE`]: a post
/// answered 200 is on its way to the client, and a `DELETE` right after it — the server API's
/// `disconnect`, telling the client why before closing it — closes after it, not over it.
async fn finish(
    mut sink: SplitSink<WebSocket, Message>,
    mut outbound: UnboundedReceiver<Outgoing>,
    close: Option<CloseFrame>,
) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Ok(outgoing) = outbound.try_recv() {
            sink.send(outgoing.message).await?;
        }
        if let Some(frame) = close {
            sink.send(Message::Close(Some(frame))).await?;
        }
        sink.close().await
    })
    .await;
}

/// The close code and reason for a read that failed because the client broke a rule, as RFC 6455
/// asks (1009 for a frame or message past its limit, 1002 for a protocol error, 1007 for text that is
/// not UTF-8); `None` for a socket that broke or ended without a close frame — a killed process, a
/// lost network — which API Gateway reports as 1006, whether TCP ended with a FIN or a reset.
fn violation(err: &axum::Error) -> Option<(u16, &'static str)> {
    use tokio_tungstenite::tungstenite::Error;
    use tokio_tungstenite::tungstenite::error::ProtocolError;
    match std::error::Error::source(err)?.downcast_ref::<Error>()? {
        Error::Capacity(_) => Some(TOO_BIG),
        Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        Error::Protocol(_) => Some(PROTOCOL_ERROR),
        Error::Utf8(_) => Some(INVALID_PAYLOAD),
        _ => None,
    }
}

/// Routes one message and returns the route response to send back, if any. A message past the stage
/// throttle never reaches the integration: the client is told, and the connection stays open.
async fn route(state: &AppState, info: &Connection, payload: Payload<'_>, now: i64) -> Option<Message> {
    if state.throttle.as_ref().is_some_and(|bucket| bucket.check().is_err()) {
        let body = json!({ "message": "Too Many Requests", "connectionId": info.id, "requestId": ids::request_id() });
        return Some(Message::Text(body.to_string().into()));
    }
    let route_key = match payload {
        Payload::Text(text) => state.selector.select(text),
        Payload::Binary(_) => DEFAULT_ROUTE.to_owned(),
    };
    let event = integration::message(&state.settings.api, info, &route_key, payload, now);
    match function::call::<_, ProxyResponse>(state.ingress.as_ref(), &event, INGRESS_TIMEOUT).await {
        Ok(response) => match response.body {
            Some(Body::Text(text)) if !text.is_empty() => Some(Message::Text(text.into())),
            Some(Body::Binary(bytes)) if !bytes.is_empty() => Some(Message::Binary(bytes.into())),
            _ => None,
        },
        Err(err) => {
            tracing::error!(connection = %info.id, route = %route_key, error = %err, "the integration failed");
            let request_id = event["requestContext"]["requestId"].clone();
            let body = json!({ "message": "Internal server error", "connectionId": info.id, "requestId": request_id });
            Some(Message::Text(body.to_string().into()))
        }
    }
}

/// Runs `$disconnect` and says whether it succeeded.
async fn disconnect(state: &AppState, info: &Connection, code: u16, reason: &str) -> bool {
    let event = integration::disconnect(&state.settings.api, info, code, reason, epoch_ms());
    match function::call::<_, ProxyResponse>(state.ingress.as_ref(), &event, INGRESS_TIMEOUT).await {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(connection = %info.id, error = %err, "$disconnect failed; the record's TTL will expire it");
            false
        }
    }
}
