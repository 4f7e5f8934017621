//! One WebSocket connection, from its `$connect` to its `$disconnect`.
//!
//! The handshake waits for the `$connect` route like API Gateway's does, and a non-2xx answer rejects
//! it with that status. Once open, each message is routed and handed to the function, whose route
//! response goes back to the client; `@connections` posts arrive through the registry. The limits
//! API Gateway enforces are enforced here: a frame over 32 KB or a message over 128 KB closes the
//! connection with 1009, idleness and old age close it with 1001, and messages past the stage throttle
//! are answered `Too Many Requests` without reaching the integration.

use std::net::SocketAddr;
use std::sync::Arc;

use aws_lambda_events::encodings::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use serde_json::json;
use shared::clock::epoch_ms;
use shared::limits::{MAX_FRAME_BYTES, MAX_MESSAGE_BYTES};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

use crate::events::{self, Connection, Payload};
use crate::function::{self, ProxyResponse};
use crate::management::forbidden;
use crate::registry::Live;
use crate::routing::DEFAULT_ROUTE;
use crate::{AppState, ids};

/// The ingress function's `Timeout` in template.yaml.
const INGRESS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// tungstenite reads into a 128 KB buffer per connection by default: 1.3 GB for 10,000 idle clients.
/// Frames larger than this still arrive whole; the buffer only sets the size of each read.
const READ_BUFFER_BYTES: usize = 4 * 1024;

/// Close codes and the `disconnectReason` texts API Gateway reports with them.
const GOING_AWAY: (u16, &str) = (1001, "Going away");
const TOO_BIG: (u16, &str) = (1009, "Message too big");
const ABNORMAL: (u16, &str) = (1006, "Connection closed abnormally");
const NO_STATUS: (u16, &str) = (1005, "Client-side close frame status not set");
const DELETED: (u16, &str) = (1000, "Connection deleted through @connections");

/// `GET /`: the handshake on the root path, as serverless-offline serves it.
pub async fn upgrade_root(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    handshake(state, peer, headers, uri, ws).await
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

async fn handshake(
    state: Arc<AppState>,
    peer: SocketAddr,
    headers: HeaderMap,
    uri: Uri,
    ws: WebSocketUpgrade,
) -> Response {
    let now = epoch_ms();
    let text =
        |name| headers.get(name).and_then(|v: &axum::http::HeaderValue| v.to_str().ok()).map(str::to_owned);
    let info = Connection {
        id: ids::connection_id(),
        connected_at_ms: now,
        source_ip: peer.ip().to_string(),
        user_agent: text(header::USER_AGENT),
        domain_name: text(header::HOST).unwrap_or_else(|| state.local_addr.to_string()),
    };
    let event =
        events::connect(&state.settings.api, &info, &headers, uri.query(), state.local_addr.port(), now);
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
    let (tx, outbound) = mpsc::channel::<Bytes>(state.settings.outbound_buffer);
    let live = Arc::new(Live::new(info.clone(), tx));
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

async fn serve(
    state: Arc<AppState>,
    live: Arc<Live>,
    mut outbound: mpsc::Receiver<Bytes>,
    socket: WebSocket,
) {
    let info = &live.info;
    let (mut sink, mut stream) = socket.split();
    let idle_timeout = state.settings.idle_timeout;
    let idle = sleep(idle_timeout);
    let lifetime = sleep(state.settings.max_connection_duration);
    tokio::pin!(idle, lifetime);

    let (code, reason): (u16, String) = loop {
        let closing = tokio::select! {
            () = state.shutdown.cancelled() => Some(GOING_AWAY),
            () = &mut lifetime => Some(GOING_AWAY),
            () = &mut idle => Some(GOING_AWAY),
            () = live.deleted.cancelled() => Some(DELETED),
            () = live.lost.cancelled() => {
                // Dropping the socket ends the TCP connection without a close frame; no `$disconnect`
                // runs, so the record stays until the worker prunes it on a 410.
                state.registry.remove(&info.id);
                return;
            }
            Some(data) = outbound.recv() => {
                if sink.send(frame(data)).await.is_err() {
                    break (ABNORMAL.0, ABNORMAL.1.to_owned());
                }
                None
            }
            received = stream.next() => match received {
                Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => {
                    let now = epoch_ms();
                    live.touch(now);
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    let payload = match &message {
                        Message::Text(text) => Payload::Text(text.as_str()),
                        Message::Binary(bytes) => Payload::Binary(bytes),
                        _ => unreachable!("matched above"),
                    };
                    if let Some(reply) = route(&state, info, payload, now).await
                        && sink.send(reply).await.is_err()
                    {
                        break (ABNORMAL.0, ABNORMAL.1.to_owned());
                    }
                    None
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    live.touch(epoch_ms());
                    idle.as_mut().reset(Instant::now() + idle_timeout);
                    None
                }
                Some(Ok(Message::Close(frame))) => {
                    // tungstenite has queued the echo of the client's close frame; flush it.
                    let _ = sink.close().await;
                    break frame.map_or((NO_STATUS.0, NO_STATUS.1.to_owned()), |f| (f.code, f.reason.to_string()));
                }
                Some(Err(err)) if is_capacity(&err) => Some(TOO_BIG),
                Some(Err(_)) | None => break (ABNORMAL.0, ABNORMAL.1.to_owned()),
            },
        };
        if let Some((code, reason)) = closing {
            let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
            let _ = sink.send(close).await;
            let _ = sink.close().await;
            break (code, reason.to_owned());
        }
    };
    // Out of the registry first: from here on `@connections` answers 410, as API Gateway does.
    state.registry.remove(&info.id);
    disconnect(&state, info, code, &reason).await;
}

fn frame(data: Bytes) -> Message {
    match axum::extract::ws::Utf8Bytes::try_from(data.clone()) {
        Ok(text) => Message::Text(text),
        Err(_) => Message::Binary(data),
    }
}

/// Whether a read failed because a frame or message passed its size limit.
fn is_capacity(err: &axum::Error) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    std::error::Error::source(err)
        .and_then(|source| source.downcast_ref::<Error>())
        .is_some_and(|err| matches!(err, Error::Capacity(_)))
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
    let event = events::message(&state.settings.api, info, &route_key, payload, now);
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

async fn disconnect(state: &AppState, info: &Connection, code: u16, reason: &str) {
    let event = events::disconnect(&state.settings.api, info, code, reason, epoch_ms());
    if let Err(err) =
        function::call::<_, ProxyResponse>(state.ingress.as_ref(), &event, INGRESS_TIMEOUT).await
    {
        tracing::warn!(connection = %info.id, error = %err, "$disconnect failed; the record's TTL will expire it");
    }
}
