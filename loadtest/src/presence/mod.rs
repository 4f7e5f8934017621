//! The presence scenario: what presence's goals measure, from the clients' side.
//!
//! 1. **Members**: `members` connections subscribe to one channel and then ask for its `join` and
//!    `leave` frames (a second subscribe with `joinLeave`, which joins no one again: filling a room
//!    of watchers one by one would cost members² posts before the first measurement).
//! 2. **Probes**: a new connection joins the room and leaves it, by `unsubscribe` or by closing its
//!    socket, in turn; the time from its request (or its close) to each member's frame is a latency.
//! 3. **Presence reads**: `presence` of the room, one after another: round trips, and counts that
//!    must be exact.
//! 4. **Churn** (optional): `churn_connections` subscribe, unsubscribe, and close and reconnect at
//!    random on `churn_channels` channels; at the end `presence` must count exactly those still
//!    subscribed to each, and
//!    the lifecycle events the gateway POSTed to this swarm (`--events-url` pointed at
//!    `events_listen`) must alternate `ChannelOccupied`/`ChannelVacated` by `seq`, with none missing.
//!
//! [`members`] is phases 1–3, [`churn`] phase 4, [`report`] what they counted.

pub mod churn;
pub mod members;
pub mod report;

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

pub use self::report::PresenceReport;
use crate::swarm::socket;

/// What a presence run does.
#[derive(Clone, Debug)]
pub struct PresenceConfig {
    pub url: String,
    /// Connections in the room, each watching it.
    pub members: u32,
    /// Joins and leaves measured (half by `unsubscribe`, half by closing the socket).
    pub probes: u32,
    /// `presence` requests, one after another.
    pub presence_reads: u32,
    /// Connections that join and leave one channel at random; 0 skips the churn.
    pub churn_connections: u32,
    /// The channels the churn's connections are spread over (connection `i` on channel `i % n`).
    pub churn_channels: u32,
    pub churn: Duration,
    /// Where this swarm receives the gateway's lifecycle events (`--events-url http://<this>/`).
    pub events_listen: Option<SocketAddr>,
    pub deadline: Duration,
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Sends `request` and waits for the answer carrying its `ref`, skipping other frames; `None` when
/// none came within `wait`.
pub(crate) async fn ask(ws: &mut Socket, request: &Value, wait: Duration) -> Option<Value> {
    ws.send(Message::text(request.to_string())).await.ok()?;
    let reference = request.get("ref")?.clone();
    let answer = async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(text) = frame
                && let Ok(value) = serde_json::from_str::<Value>(text.as_str())
                && value.get("ref") == Some(&reference)
            {
                return Some(value);
            }
        }
        None
    };
    timeout(wait, answer).await.ok().flatten()
}

/// How long one request may wait for its answer.
pub(crate) const ANSWER: Duration = Duration::from_secs(10);

/// Runs the phases and accounts for what they saw.
pub async fn run(config: PresenceConfig) -> anyhow::Result<PresenceReport> {
    let target = socket::resolve(&config.url).await?;
    let mut report = PresenceReport {
        url: config.url.clone(),
        members: u64::from(config.members),
        ..PresenceReport::default()
    };
    members::run(&config, &target, &mut report).await?;
    if config.churn_connections > 0 {
        churn::run(&config, &target, &mut report).await?;
    }
    Ok(report)
}
