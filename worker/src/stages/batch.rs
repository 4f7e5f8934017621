//! Stage 1: the SQS batch, parsed. Each record becomes a [`Delivery`], its frame serialized once for
//! every post; a body that is not a job (nor a backend's publish) is poison, reported failed so that
//! SQS's redrive policy moves it to the dead-letter queue.

use aws_lambda_events::sqs::SqsEvent;
use bytes::Bytes;
use shared::clock::epoch_ms;
use shared::{Audience, Envelope, Job};

use crate::report::BatchReport;

/// One message of the batch, ready to post.
pub(crate) struct Delivery {
    pub message_id: String,
    pub envelope: Envelope,
    pub frame: Bytes,
    pub audience: Audience,
    pub attempt: u32,
}

/// The batch's jobs, ready to post. Poison goes into `report.failed`.
pub(crate) fn parse(event: SqsEvent, report: &mut BatchReport) -> Vec<Delivery> {
    let mut deliveries = Vec::with_capacity(event.records.len());
    for record in event.records {
        let Some(message_id) = record.message_id else {
            tracing::error!("an SQS record without a messageId cannot be acknowledged or retried");
            continue;
        };
        let sent_at_ms =
            record.attributes.get("SentTimestamp").and_then(|at| at.parse().ok()).unwrap_or_else(epoch_ms);
        match Job::from_queue(record.body.as_deref().unwrap_or_default(), &message_id, sent_at_ms) {
            Ok(job) => deliveries.push(Delivery {
                message_id,
                frame: Bytes::from(job.envelope.frame()),
                envelope: job.envelope,
                audience: job.audience,
                attempt: job.attempt,
            }),
            Err(err) => {
                tracing::error!(message = %message_id, error = %err, "unparsable job");
                report.failed.push(message_id);
            }
        }
    }
    deliveries
}
