//! Stage 9: the connections a message has not reached yet go back on the queue, in retry jobs naming
//! only them, delayed so that they do not spin (1, 2, 4, 8 s by default), until the message has had
//! its attempts; only a queue that refuses leaves the whole message to SQS's redelivery.

use std::time::Duration;

use shared::queue::SQS_MAX_MESSAGE_BYTES;
use shared::{ConnectionRef, Job};

use super::batch::{Batch, Item};
use super::invocation::Invocation;
use crate::report::BatchReport;

impl Invocation<'_> {
    /// Requeues each message's `unfinished` connections, unless the message has failed already
    /// (SQS redelivers it whole); leaves to SQS's redelivery a message whose retry jobs the queue
    /// refused.
    pub async fn requeue(
        &self,
        batch: &Batch,
        unfinished: Vec<Vec<ConnectionRef>>,
        report: &mut BatchReport,
    ) {
        for (message, targets) in batch.items.iter().zip(unfinished) {
            if !targets.is_empty() && !message.failed() && !self.requeue_one(message, targets, report).await {
                message.redeliver();
            }
        }
    }

    /// How long a retry job for `attempt` (1 for the first retry) waits on the queue.
    fn retry_job_delay(&self, attempt: u32) -> Duration {
        self.settings.retry_job_delay.saturating_mul(1 << attempt.saturating_sub(1).min(10))
    }

    /// Puts `targets` back on the queue for `message`'s next attempt; false when the queue refused,
    /// and only SQS's redelivery of the whole message is left.
    async fn requeue_one(
        &self,
        message: &Item,
        targets: Vec<ConnectionRef>,
        report: &mut BatchReport,
    ) -> bool {
        let attempt = message.attempt + 1;
        if attempt >= self.settings.max_job_attempts {
            tracing::error!(sqs_id = %message.sqs_id, broadcast = %message.envelope.id, connections = targets.len(), attempts = attempt, "giving up on connections that kept failing");
            report.abandoned += targets.len();
            return true;
        }
        let count = targets.len();
        let jobs = Job::retries(&message.envelope, targets, attempt, SQS_MAX_MESSAGE_BYTES);
        let results = self.retry_queue().send_batch(&jobs, self.retry_job_delay(attempt)).await;
        match results.iter().find_map(|result| result.as_ref().err()) {
            None => {
                report.requeued += count;
                true
            }
            Some(err) => {
                // Some retry jobs may be queued already: redelivery then reaches their targets twice,
                // which is better than never.
                tracing::error!(sqs_id = %message.sqs_id, error = %err, "queueing a retry job failed; the message will be redelivered");
                false
            }
        }
    }
}
