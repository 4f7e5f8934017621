//! The ports the ingress uses, as one value: a port added later touches this struct and the places
//! that build it, not every call of [`crate::Ingress::new`].

use std::sync::Arc;

use shared::{ConnectionStore, History, Queue};

/// Where connections and subscriptions are kept, where each channel's messages are numbered and kept,
/// and where jobs are queued for the worker.
#[derive(Clone)]
pub struct Ports {
    pub store: Arc<dyn ConnectionStore>,
    pub queue: Arc<dyn Queue>,
    /// `None` when history is off (`HISTORY_SIZE=0`): messages carry no offsets.
    pub history: Option<Arc<dyn History>>,
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").finish_non_exhaustive()
    }
}
