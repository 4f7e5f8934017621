//! Stage 7: the outcomes of the fan-out, gathered as they come. Deliveries, retries, latencies and
//! rejections go straight into the report; a message whose audience could not be listed to its end
//! is left to SQS's redelivery in the [`Batch`]; what the later stages act on is kept: the
//! connections each message has still to reach, and those that are gone.

use std::collections::HashSet;

use futures::stream::{BoxStream, StreamExt};
use shared::{ConnectionId, ConnectionRef};

use super::batch::Batch;
use super::fan_out::Outcome;
use super::invocation::Invocation;
use super::post::Posted;
use crate::report::BatchReport;

/// What the fan-out left for the requeue and the prune.
pub(crate) struct Tally {
    /// By item of the batch: the connections it has not reached yet, and may later.
    pub unfinished: Vec<Vec<ConnectionRef>>,
    /// Connections that answered 410 and are old enough to prune.
    pub gone: HashSet<ConnectionId>,
    /// By item of the batch: the connections it reached.
    pub delivered: Vec<u64>,
}

impl Invocation<'_> {
    /// Gathers every outcome of the fan-out of `batch`; a connection that answered 410 with a record
    /// made after [`Invocation::prune_before`] is kept.
    pub async fn tally(
        &self,
        mut outcomes: BoxStream<'_, Outcome>,
        batch: &Batch,
        report: &mut BatchReport,
    ) -> Tally {
        let prune_before = self.prune_before();
        let mut tally = Tally {
            unfinished: vec![Vec::new(); batch.items.len()],
            gone: HashSet::new(),
            delivered: vec![0; batch.items.len()],
        };
        let mut connecting = HashSet::new();
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Posted { item, to, posted, retries, latency_us } => {
                    report.retried += retries;
                    if let Some(latency_us) = latency_us {
                        report.post_latency.record(latency_us);
                    }
                    match posted {
                        Posted::Delivered => {
                            report.delivered += 1;
                            tally.delivered[item] += 1;
                        }
                        // A young record may be a connection whose handshake is still completing.
                        Posted::Gone if to.connected_at_ms < prune_before => {
                            tally.gone.insert(to.id);
                        }
                        Posted::Gone => {
                            connecting.insert(to.id);
                        }
                        Posted::Unfinished => tally.unfinished[item].push(to),
                        Posted::Rejected => report.rejected += 1,
                    }
                }
                Outcome::ListFailed { items, error } => {
                    // The messages already reached some connections, but which ones the rest of the
                    // listing would have found is unknown: only SQS's redelivery can finish them.
                    tracing::error!(error = %error, messages = items.len(), "listing the audience failed; the messages will be redelivered");
                    for &item in items.iter() {
                        batch.items[item].redeliver();
                    }
                }
            }
        }
        report.kept_connecting = connecting.len();
        tally
    }
}
