//! The ports the ingress uses, as one value: a port added later touches this struct and the places
//! that build it, not every call of [`crate::Ingress::new`].

use std::sync::Arc;

use shared::presence::{Membership, Presence};
use shared::{ConnectionStore, Events, History, Queue};

/// Where connections and subscriptions are kept, where each channel's messages are numbered and kept,
/// and where jobs are queued for the worker.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn ConnectionStore>,
    pub queue: Arc<dyn Queue>,
    /// `None` when history is off (`HISTORY_SIZE=0`): messages carry no offsets.
    pub history: Option<Arc<dyn History>>,
    /// `None` when presence is off (`PRESENCE=false`): no members, no `join`/`leave`.
    pub presence: Option<Arc<dyn Presence>>,
    /// Where lifecycle events go; `None` sends none.
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
