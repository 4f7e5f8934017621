//! Stage 10: connections that answered 410 Gone, and are old enough not to be completing their
//! `$connect`, are deleted with their subscriptions in one batched call, and leave the channels
//! they were members of (as a `$disconnect` would have made them).

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
        match self.ports.stack.store.delete_many(&stale).await {
            Ok(held) => {
                report.pruned = stale.len();
                let Some(membership) = self.ports.membership() else { return };
                let now_ms = shared::clock::epoch_ms();
                for (id, patterns) in &held {
                    // Logged inside; a member left behind expires with its connection.
                    let _ = membership.leave_all(id, patterns, now_ms).await;
                }
            }
            // Not a reason to redeliver: the records' TTL removes them later anyway.
            Err(err) => tracing::warn!(error = %err, stale = stale.len(), "pruning gone connections failed"),
        }
    }
}
