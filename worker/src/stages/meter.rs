//! Stage 8: the deliveries each client's messages made in this batch, added to its sender's count
//! for the minute (`shared::usage`) when the stack sets a fan-out ceiling, which the ingress reads
//! before the sender's next message. One write per sender per batch, however many shards and
//! deliveries; a store that fails costs the count, never a delivery (they are made already).

use std::collections::BTreeMap;

use shared::clock::epoch_ms;
use shared::usage::{minute_of, sender_key};

use super::batch::Batch;
use super::invocation::Invocation;

impl Invocation<'_> {
    /// Adds `delivered` (by item of `batch`) to each sender's count for this minute.
    pub async fn meter(&self, batch: &Batch, delivered: &[u64]) {
        let Some(ceiling) = &self.ports.stack.ceiling else { return };
        let mut by_sender: BTreeMap<String, u64> = BTreeMap::new();
        for (item, &count) in batch.items.iter().zip(delivered) {
            if count > 0
                && let Some(sender) = sender_key(&item.envelope)
            {
                *by_sender.entry(sender).or_default() += count;
            }
        }
        let (minute, _) = minute_of(epoch_ms());
        for (sender, deliveries) in by_sender {
            if let Err(err) = ceiling.usage.add(&sender, minute, deliveries).await {
                tracing::warn!(%sender, deliveries, error = %err, "could not count deliveries against the fan-out ceiling");
            }
        }
    }
}
