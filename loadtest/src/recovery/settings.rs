//! What a recovery run does: its subscribers and channels, its publishers, its cuts.

use std::time::Duration;

/// What a recovery run does.
#[derive(Clone, Debug)]
pub struct RecoverySwarmSettings {
    pub url: String,
    /// Subscribers, each on one channel (subscriber `i` on channel `i % channels`).
    pub subscribers: u32,
    pub channels: u32,
    /// Publishing connections, each publishing in sequence (every publish answered before the next).
    pub publishers: u32,
    /// Messages per publisher, spread over the channels.
    pub messages: u64,
    /// Publishes per second, all publishers together.
    pub rate: f64,
    /// Bytes of `data` per message, at least.
    pub size: usize,
    /// How long a subscriber stays connected before its socket is cut, drawn from this range; `None`
    /// never cuts.
    pub cut_every: Option<(Duration, Duration)>,
    /// How long a cut subscriber stays away before it reconnects, drawn from this range.
    pub away: (Duration, Duration),
    /// The fraction of cuts made by the server (`DELETE @connections`); the rest drop the socket.
    pub server_cuts: f64,
    /// How long a message ahead of a missing offset waits before the history is read (the client's
    /// `orderWaitMs`).
    pub order_wait: Duration,
    /// `@connections` for the server's cuts, and the key pair it is signed with.
    pub endpoint: String,
    pub region: String,
    pub credentials: (String, String),
    /// How long to wait after the last publish for every subscriber to catch up.
    pub settle: Duration,
    pub deadline: Duration,
}
