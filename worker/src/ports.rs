//! The ports the worker uses, as one value: a port added later (a channel's history, say) touches
//! this struct and the places that build it, not every call of [`crate::Worker::new`].

use std::sync::Arc;

use shared::presence::{Membership, Presence};
use shared::{ConnectionStore, Events, History, Poster, Queue};

/// Where the worker lists audiences and prunes, how it posts, where it queues shard and retry jobs,
/// and where a backend's publish is numbered in its channel's history.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn ConnectionStore>,
    pub poster: Arc<dyn Poster>,
    pub queue: Arc<dyn Queue>,
    /// `None` when history is off (`HISTORY_SIZE=0`).
    pub history: Option<Arc<dyn History>>,
    /// `None` when presence is off (`PRESENCE=false`): `join`/`leave` frames list no one.
    pub presence: Option<Arc<dyn Presence>>,
    /// Where lifecycle events go when a pruned connection leaves its channels; `None` sends none.
    pub events: Option<Arc<dyn Events>>,
}

impl Ports {
    /// What a membership change uses, when presence is on.
    pub fn membership(&self) -> Option<Membership<'_>> {
        Membership::of(self.presence.as_ref(), &self.queue, self.events.as_ref())
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}
