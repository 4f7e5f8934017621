//! Stage 1: the SQS batch, parsed into a [`Batch`], which owns the fate of every message — whether
//! SQS must deliver it again — for the whole invocation: each later stage marks a message it could
//! not finish ([`Item::redeliver`]), and the answer to SQS reads the marks ([`Batch::failures`]). A
//! body that is not a job (nor a backend's publish) is poison, failed at once so that SQS's redrive
//! policy moves it to the dead-letter queue.

use std::sync::atomic::{AtomicBool, Ordering};

use aws_lambda_events::sqs::SqsEvent;
use bytes::Bytes;
use shared::clock::epoch_ms;
use shared::{Audience, Envelope, Job};

use super::invocation::Invocation;

/// The messages of one SQS batch, and what became of them.
pub(crate) struct Batch {
    /// The records that were jobs, in the batch's order; stages name one by its index here.
    pub items: Vec<Item>,
    /// The SQS ids of the records that were not.
    poison: Vec<String>,
}

/// One message of the batch.
pub(crate) struct Item {
    /// The SQS message's id: what `batchItemFailures` names.
    pub sqs_id: String,
    pub envelope: Envelope,
    /// The bytes posted to each connection: rendered once the message has its place ([`super::number`]).
    pub frame: Bytes,
    pub audience: Audience,
    pub attempt: u32,
    /// Set by any stage that could not finish the message: SQS must deliver it again.
    redeliver: AtomicBool,
}

impl Item {
    /// Leaves the message to SQS's redelivery.
    pub fn redeliver(&self) {
        self.redeliver.store(true, Ordering::Relaxed);
    }

    /// Whether a stage left the message to SQS's redelivery: the stages after it let it be.
    pub fn failed(&self) -> bool {
        self.redeliver.load(Ordering::Relaxed)
    }
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The SQS ids to deliver again: the poison, then every message a stage left to redelivery.
    pub fn failures(&self) -> Vec<String> {
        let failed = self.items.iter().filter(|item| item.failed()).map(|item| item.sqs_id.clone());
        self.poison.iter().cloned().chain(failed).collect()
    }
}

impl Invocation<'_> {
    /// The batch's records, each a job or poison.
    pub fn parse(&self, event: SqsEvent) -> Batch {
        let mut batch = Batch { items: Vec::with_capacity(event.records.len()), poison: Vec::new() };
        for record in event.records {
            let Some(sqs_id) = record.message_id else {
                tracing::error!("an SQS record without a messageId cannot be acknowledged or retried");
                continue;
            };
            let sent_at_ms = record
                .attributes
                .get("SentTimestamp")
                .and_then(|at| at.parse().ok())
                .unwrap_or_else(epoch_ms);
            match Job::from_queue(record.body.as_deref().unwrap_or_default(), &sqs_id, sent_at_ms) {
                Ok(job) => batch.items.push(Item {
                    sqs_id,
                    envelope: job.envelope,
                    frame: Bytes::new(),
                    audience: job.audience,
                    attempt: job.attempt,
                    redeliver: AtomicBool::new(false),
                }),
                Err(err) => {
                    tracing::error!(sqs_id = %sqs_id, error = %err, "unparsable job");
                    batch.poison.push(sqs_id);
                }
            }
        }
        batch
    }
}
