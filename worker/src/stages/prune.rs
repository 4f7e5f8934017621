//! Stage 8: connections that answered 410 Gone, and are old enough not to be completing their
//! `$connect`, are deleted with their subscriptions in one batched call.

use std::collections::HashSet;

use shared::ConnectionId;

use super::invocation::Invocation;
use crate::report::BatchReport;

impl Invocation<'_> {
    pub async fn prune(&self, gone: HashSet<ConnectionId>, report: &mut BatchReport) {
        if gone.is_empty() {
            return;
        }
        let stale: Vec<ConnectionId> = gone.into_iter().collect();
        match self.ports.store.delete_many(&stale).await {
            Ok(()) => report.pruned = stale.len(),
            // Not a reason to redeliver: the records' TTL removes them later anyway.
            Err(err) => tracing::warn!(error = %err, stale = stale.len(), "pruning gone connections failed"),
        }
    }
}
