//! What every stage of one invocation shares: the worker's ports and settings, the connections it
//! knows to be stuck, this invocation's pace, and when it must stop posting.

use shared::clock::epoch_ms;
use shared::pacing::AdaptiveRate;
use tokio::time::Instant;

use super::stuck::StuckConnections;
use crate::ports::Ports;
use crate::settings::WorkerSettings;

pub(crate) struct Invocation<'a> {
    pub ports: &'a Ports,
    pub settings: &'a WorkerSettings,
    pub stuck: &'a StuckConnections,
    /// A fresh pace, adapting to the account's answers from its fair share. Per invocation rather
    /// than per worker, so that invocations sharing one process (the local gateway's) each find
    /// their share.
    pub budget: AdaptiveRate,
    /// The deadline less [`WorkerSettings::deadline_reserve`]: time kept to finish the listing,
    /// queue the retry jobs and prune.
    pub stop_at: Instant,
}

impl<'a> Invocation<'a> {
    pub fn new(
        ports: &'a Ports,
        settings: &'a WorkerSettings,
        stuck: &'a StuckConnections,
        started: Instant,
        deadline: Instant,
    ) -> Self {
        Self {
            ports,
            settings,
            stuck,
            budget: AdaptiveRate::new(settings.post_rate, settings.account_rate),
            stop_at: deadline.checked_sub(settings.deadline_reserve).unwrap_or(started),
        }
    }

    /// Epoch milliseconds before which a connection's record is old enough to prune on a 410; a
    /// younger one may be a connection whose handshake is still completing.
    pub fn prune_before(&self) -> i64 {
        epoch_ms() - i64::try_from(self.settings.prune_grace.as_millis()).unwrap_or(i64::MAX)
    }
}
