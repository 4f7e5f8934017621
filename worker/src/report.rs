//! The last stage: what a batch did, for the log line, the EMF metrics and the tests, and the
//! answer SQS gets — the messages it should deliver again.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use tokio::time::Instant;

use crate::latency::LatencySample;

/// What one batch did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub messages: usize,
    pub delivered: usize,
    pub pruned: usize,
    /// Connections that answered 410 but were kept: their records are younger than [`shared::limits::PRUNE_GRACE`].
    pub kept_connecting: usize,
    /// Posts made again after a 429, a 5xx or a timeout, within this invocation.
    pub retried: usize,
    /// Connections put back on the queue in retry jobs.
    pub requeued: usize,
    /// Connections given up on after [`crate::WorkerSettings::max_job_attempts`].
    pub abandoned: usize,
    /// Posts refused for good (payload too large, an unknown error): never retried.
    pub rejected: usize,
    /// Message ids reported back to SQS for redelivery.
    pub failed: Vec<String>,
    /// Shard jobs queued for other invocations to post.
    pub shards_queued: usize,
    /// How long `@connections` took to answer each post's last call.
    pub post_latency: LatencySample,
}

impl BatchReport {
    /// The answer SQS gets: the messages it should deliver again.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .failed
            .iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }
}

impl BatchReport {
    /// A report of a batch of `messages`, before any work.
    pub(crate) fn new(messages: usize) -> Self {
        Self { messages, ..Self::default() }
    }

    /// Logs the batch's figures, `started` being when the invocation began.
    pub(crate) fn log(&self, started: Instant) {
        tracing::info!(
            messages = self.messages,
            delivered = self.delivered,
            pruned = self.pruned,
            retried = self.retried,
            requeued = self.requeued,
            abandoned = self.abandoned,
            failed = self.failed.len(),
            shards_queued = self.shards_queued,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch done"
        );
    }
}
