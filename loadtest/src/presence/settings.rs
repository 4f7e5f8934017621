//! What a presence run does: its room, its probes, its reads and its churn.

use std::net::SocketAddr;
use std::time::Duration;

/// What a presence run does.
#[derive(Clone, Debug)]
pub struct PresenceSwarmSettings {
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
