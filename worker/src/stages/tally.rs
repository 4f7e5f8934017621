//! Stage 6: the outcomes of the fan-out, gathered as they come. Deliveries, retries, latencies and
//! rejections go straight into the report; what the later stages act on is kept: the connections
//! each message has still to reach, those that are gone, and the messages SQS must deliver again.

use std::collections::HashSet;

use futures::stream::{BoxStream, StreamExt};
use shared::{ConnectionId, ConnectionRef};

use super::fan_out::Outcome;
use super::plan::Plan;
use super::post::Posted;
use crate::report::BatchReport;

/// What the fan-out left for the requeue and the prune.
pub(crate) struct Tally {
    /// By message: whether SQS must deliver it again.
    pub failed: Vec<bool>,
    /// By message: the connections it has not reached yet, and may later.
    pub unfinished: Vec<Vec<ConnectionRef>>,
    /// Connections that answered 410 and are old enough to prune.
    pub gone: HashSet<ConnectionId>,
}

impl Tally {
    /// Gathers every outcome of a batch of `messages`, with `plan`'s failures; a connection that
    /// answered 410 with a record made after `prune_before` (epoch ms) is kept.
    pub async fn collect(
        mut outcomes: BoxStream<'_, Outcome>,
        messages: usize,
        plan: &Plan<'_>,
        prune_before: i64,
        report: &mut BatchReport,
    ) -> Self {
        let mut tally = Self {
            failed: vec![false; messages],
            unfinished: vec![Vec::new(); messages],
            gone: HashSet::new(),
        };
        for &message in &plan.failed {
            tally.failed[message] = true;
        }
        let mut connecting = HashSet::new();
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Posted { message, to, posted, retries, latency_us } => {
                    report.retried += retries;
                    if let Some(latency_us) = latency_us {
                        report.post_latency.record(latency_us);
                    }
                    match posted {
                        Posted::Delivered => report.delivered += 1,
                        // A young record may be a connection whose handshake is still completing.
                        Posted::Gone if to.connected_at_ms < prune_before => {
                            tally.gone.insert(to.id);
                        }
                        Posted::Gone => {
                            connecting.insert(to.id);
                        }
                        Posted::Unfinished => tally.unfinished[message].push(to),
                        Posted::Rejected => report.rejected += 1,
                    }
                }
                Outcome::ListFailed { messages, error } => {
                    // The messages already reached some connections, but which ones the rest of the
                    // listing would have found is unknown: only SQS's redelivery can finish them.
                    tracing::error!(error = %error, messages = messages.len(), "listing the audience failed; the messages will be redelivered");
                    for &message in messages.iter() {
                        tally.failed[message] = true;
                    }
                }
            }
        }
        report.kept_connecting = connecting.len();
        tally
    }
}
