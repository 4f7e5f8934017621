//! The ports the worker uses, as one value: the stack's (where it lists audiences and prunes, queues
//! shard and retry jobs, and numbers a backend's publish in its channel's history — the very ports
//! the ingress is given) and its poster. A port added later touches [`StackPorts`] and the places
//! that build it, not every call of [`crate::Worker::new`].

use std::sync::Arc;

use shared::presence::Membership;
use shared::stack::StackPorts;
use shared::{Poster, Queue};

/// The stack's ports (`history` `None` when `HISTORY_SIZE=0`; `presence` `None` when
/// `PRESENCE=false`, so `join`/`leave` frames list no one; `events` `None` sends no lifecycle
/// event when a pruned connection leaves its channels), and how the worker posts.
#[derive(Clone)]
pub struct Ports {
    pub stack: StackPorts,
    pub poster: Arc<dyn Poster>,
    /// The bulk lane's queue (`BULK_QUEUE_URL`), where shard jobs go; `None` in a stack of one
    /// queue, whose shard jobs go on the main queue as they always did.
    pub bulk: Option<Arc<dyn Queue>>,
}

impl Ports {
    /// The ports of a worker of a one-queue stack.
    pub fn new(stack: StackPorts, poster: Arc<dyn Poster>) -> Self {
        Self { stack, poster, bulk: None }
    }

    /// These ports with the bulk lane's queue.
    pub fn with_bulk_queue(self, bulk: Arc<dyn Queue>) -> Self {
        Self { bulk: Some(bulk), ..self }
    }

    /// What a membership change uses, when presence is on.
    pub fn membership(&self) -> Option<Membership<'_>> {
        self.stack.membership()
    }
}

impl std::fmt::Debug for Ports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ports").field("stack", &self.stack).finish_non_exhaustive()
    }
}
