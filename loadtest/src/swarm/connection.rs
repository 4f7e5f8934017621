//! The connection task: one reading connection from its handshake to the end of the run, recording
//! every stamped message it receives; and the stuck connection, which completes its handshake and
//! never reads again.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::settings::Channels;
use super::socket::{
    CONNECT_TIMEOUT, STUCK_RECEIVE_BUFFER, Target, connect, error_kind, frames, source_address, url_for,
};
use crate::ledger::Trace;
use crate::stamp::Stamp;

/// What every connection task needs to know about the run.
pub(crate) struct Run {
    pub url: String,
    pub target: Target,
    /// Readers and stuck ones together: how many source addresses they need.
    pub connections: u32,
    pub shared: Shared,
    /// Cancelled when the run ends: every connection closes.
    pub stop: CancellationToken,
    /// The channels scenario's subscriptions.
    pub channels: Option<Channels>,
    pub jwt_secret: Option<String>,
    /// Connections subscribed and ready for the channels scenario's publishes.
    pub ready: Vec<AtomicBool>,
}

/// What the tasks share with the driver.
pub(crate) struct Shared {
    pub started: Instant,
    pub connected: AtomicU64,
    /// Connections whose handshake (and subscriptions) succeeded or failed.
    pub resolved: AtomicU64,
    /// Distinct deliveries so far (a duplicate is not counted twice).
    pub receipts: AtomicU64,
    pub changed: Notify,
}

impl Shared {
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// What one connection task hands back.
pub(crate) struct ConnectionResult {
    pub trace: Trace,
    pub connect_us: Option<u64>,
    /// (received at, latency), in microseconds.
    pub latencies: Vec<(u64, u64)>,
    pub errors: Vec<String>,
}

/// Subscribes to each pattern, waiting for each `subscribed` reply and trying again after the stage
/// throttle's `Too Many Requests`; the error kind if a subscription is refused or the run ends first.
async fn subscribe_all<S>(ws: &mut S, patterns: Vec<String>, stop: &CancellationToken) -> Result<(), String>
where
    S: futures::Sink<Message>
        + futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    for pattern in patterns {
        let request = serde_json::json!({ "action": "subscribe", "channel": pattern }).to_string();
        'attempts: loop {
            crate::frame_check::sent(&request);
            if ws.send(Message::text(request.clone())).await.is_err() {
                return Err("send_failed".into());
            }
            loop {
                let frame = tokio::select! {
                    frame = tokio::time::timeout(CONNECT_TIMEOUT, ws.next()) => frame,
                    () = stop.cancelled() => return Err("cancelled".into()),
                };
                let text = match frame {
                    Ok(Some(Ok(Message::Text(text)))) => {
                        crate::frame_check::received(&text);
                        text
                    }
                    Ok(Some(Ok(_))) => continue,
                    Ok(Some(Err(err))) => return Err(error_kind(&err)),
                    Ok(None) => return Err("closed".into()),
                    Err(_) => return Err("subscribe_timeout".into()),
                };
                let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if reply["type"] == "subscribed" {
                    break 'attempts;
                }
                if reply["message"] == "Too Many Requests" {
                    // Jittered, so that throttled subscribers do not all come back at once.
                    sleep(Duration::from_millis(rand::random_range(200..1000))).await;
                    continue 'attempts;
                }
                let code = reply["error"]["code"].as_str().unwrap_or("unknown");
                return Err(format!("subscribe_{code}"));
            }
        }
    }
    Ok(())
}

/// One reading connection, from its handshake (and subscriptions) until the run stops or it drops:
/// what it receives goes into its trace, what its publisher sends goes out.
pub(crate) async fn connection(
    run: Arc<Run>,
    index: u32,
    mut outgoing: mpsc::Receiver<String>,
) -> ConnectionResult {
    let (shared, stop) = (&run.shared, &run.stop);
    let source = source_address(&run.target, index, run.connections);
    let mut result = ConnectionResult {
        trace: Trace { index, ..Trace::default() },
        connect_us: None,
        latencies: Vec::new(),
        errors: Vec::new(),
    };
    let began = shared.now_us();
    let url = url_for(&run.url, run.jwt_secret.as_deref(), index);
    let attempt = tokio::select! {
        attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(&url, &run.target, source, None)) => attempt,
        () = stop.cancelled() => Ok(Err("cancelled".into())),
    };
    let mut ws = match attempt {
        Ok(Ok(ws)) => ws,
        Ok(Err(kind)) => {
            result.errors.push(kind);
            shared.resolved.fetch_add(1, Ordering::Relaxed);
            shared.changed.notify_waiters();
            return result;
        }
        Err(_) => {
            result.errors.push("connect_timeout".into());
            shared.resolved.fetch_add(1, Ordering::Relaxed);
            shared.changed.notify_waiters();
            return result;
        }
    };
    let connected = shared.now_us();
    result.trace.connected_at_us = Some(connected);
    result.connect_us = Some(connected - began);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    if let Some(channels) = run.channels {
        // Nothing published before the subscriptions took is expected of this connection.
        match subscribe_all(&mut ws, channels.patterns(index), stop).await {
            Ok(()) => {
                result.trace.connected_at_us = Some(shared.now_us());
                if let Some(ready) = run.ready.get(index as usize) {
                    ready.store(true, Ordering::Relaxed);
                }
            }
            Err(kind) => {
                result.errors.push(kind);
                result.trace.connected_at_us = None;
            }
        }
    }
    shared.resolved.fetch_add(1, Ordering::Relaxed);
    shared.changed.notify_waiters();

    let (mut sink, mut stream) = ws.split();
    // The run waits for distinct deliveries: a duplicate must not stand in for a message still missing.
    let mut seen = std::collections::HashSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let close = CloseFrame { code: CloseCode::Normal, reason: "swarm done".into() };
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(close)))).await;
                break;
            }
            Some(text) = outgoing.recv() => {
                crate::frame_check::sent(&text);
                let mut failed = false;
                for frame in frames(text) {
                    failed = failed || sink.feed(frame).await.is_err();
                }
                if failed || sink.flush().await.is_err() {
                    result.errors.push("send_failed".into());
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
            }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    crate::frame_check::received(&text);
                    let at = shared.now_us();
                    match Stamp::find(&text) {
                        Some(stamp) => {
                            result.trace.received.push((stamp.p, stamp.s));
                            result.latencies.push((at, at.saturating_sub(stamp.t)));
                            if seen.insert((stamp.p, stamp.s)) {
                                shared.receipts.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        None => {
                            let reply = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
                            // A publish's acknowledgement is not a delivery.
                            if reply["type"] != "published" {
                                let code = reply["error"]["code"].as_str().map(str::to_owned);
                                let code = code.or_else(|| (reply["message"] == "Too Many Requests").then(|| "throttled".to_owned()));
                                result.errors.push(format!("error_frame_{}", code.unwrap_or_else(|| "unknown".into())));
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    result.errors.push(format!("close_{code}"));
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    result.errors.push(error_kind(&err));
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
                None => {
                    result.errors.push("closed".into());
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
            },
        }
    }
    result
}

/// Holds a connection that never reads until the run stops; true if its handshake completed.
pub(crate) async fn stuck_connection(run: Arc<Run>, index: u32) -> bool {
    let source = source_address(&run.target, index, run.connections);
    let opened = connect(&run.url, &run.target, source, Some(STUCK_RECEIVE_BUFFER));
    let ws = tokio::select! {
        opened = tokio::time::timeout(CONNECT_TIMEOUT, opened) => match opened {
            Ok(Ok(ws)) => ws,
            _ => return false,
        },
        () = run.stop.cancelled() => return false,
    };
    run.stop.cancelled().await;
    drop(ws);
    true
}
