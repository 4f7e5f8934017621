//! What a recovery run's tasks share, and which channel each subscriber is on.

use std::sync::atomic::AtomicBool;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::settings::RecoverySwarmSettings;
use crate::swarm::socket;

/// What the tasks share.
pub(crate) struct Ctx {
    pub settings: RecoverySwarmSettings,
    pub target: socket::Target,
    pub started: Instant,
    /// Cancelled when the run ends.
    pub stop: CancellationToken,
    /// Set when publishing is over: no more cuts, so that every subscriber can catch up.
    pub calm: AtomicBool,
    pub poster: shared::poster::ApiGatewayPoster,
}

impl Ctx {
    pub fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// The channel subscriber `index` is on.
pub fn channel_of(index: u32, channels: u32) -> String {
    format!("recovery/c{}", index % channels.max(1))
}
