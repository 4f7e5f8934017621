//! What every stage of one invocation shares: the worker's ports and settings, the connections it
//! knows to be stuck, this invocation's pace, and when it must stop posting.

use shared::Queue;
use shared::clock::epoch_ms;
use shared::pacing::AdaptiveRate;
use tokio::time::Instant;

use super::stuck::StuckConnections;
use crate::ports::Ports;
use crate::settings::{Lane, WorkerSettings};

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
            // A bulk invocation starts beside others using the account's rate: a burst would only
            // meet 429s, and slow it for seconds after.
            budget: match settings.lane {
                Lane::Interactive => AdaptiveRate::new(settings.post_rate, settings.account_rate),
                Lane::Bulk => AdaptiveRate::steady(settings.post_rate, settings.account_rate),
            },
            stop_at: deadline.checked_sub(settings.deadline_reserve).unwrap_or(started),
        }
    }

    /// Where shard jobs go: the bulk lane's queue, or the only queue there is.
    pub fn shard_queue(&self) -> &dyn Queue {
        self.ports.bulk.as_deref().unwrap_or(self.ports.stack.queue.as_ref())
    }

    /// Where this invocation's retry jobs go: back on the lane it drains.
    pub fn retry_queue(&self) -> &dyn Queue {
        match self.settings.lane {
            Lane::Bulk => self.shard_queue(),
            Lane::Interactive => self.ports.stack.queue.as_ref(),
        }
    }

    /// Whether a large audience is handed to the bulk lane whole, this invocation posting none of
    /// it: only the interactive lane of a stack of two, whose invocations must stay free for the
    /// small audiences behind it.
    pub fn hands_off_shards(&self) -> bool {
        self.settings.lane == Lane::Interactive && self.ports.bulk.is_some()
    }

    /// Epoch milliseconds before which a connection's record is old enough to prune on a 410; a
    /// younger one may be a connection whose handshake is still completing.
    pub fn prune_before(&self) -> i64 {
        epoch_ms() - i64::try_from(self.settings.prune_grace.as_millis()).unwrap_or(i64::MAX)
    }
}
