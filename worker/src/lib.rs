//! The worker function: drains SQS batches of broadcasts and fans each out to every connection.
//!
//! Per batch it scans the connection store once, page by page, and posts every message of the batch to
//! every connection of each page as soon as the page arrives, never more than `post_concurrency` posts
//! at a time. A connection that answers 410 Gone is pruned (the stale id, not the sender) unless its
//! record is young enough to belong to a connection still completing its `$connect`. Messages
//! that could not be delivered are reported as `batchItemFailures`, so SQS redelivers those and only
//! those.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use shared::clock::epoch_ms;
use shared::limits::PRUNE_GRACE;
use shared::{ConnectionId, ConnectionRef, ConnectionStore, Job, PostError, Poster, StoreError};

/// The handler and the two ports it needs.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn ConnectionStore>,
    poster: Arc<dyn Poster>,
    post_concurrency: usize,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("post_concurrency", &self.post_concurrency).finish_non_exhaustive()
    }
}

/// What one batch did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub messages: usize,
    pub delivered: usize,
    pub pruned: usize,
    /// Connections that answered 410 but were kept: their records are younger than [`PRUNE_GRACE`].
    pub kept_connecting: usize,
    /// Message ids reported back to SQS for redelivery.
    pub failed: Vec<String>,
}

/// One message of the batch, ready to post.
struct Delivery {
    message_id: String,
    frame: Bytes,
}

enum Step {
    Post { message: usize, to: ConnectionRef },
    ScanFailed(StoreError),
}

enum Outcome {
    Posted { message: usize, to: ConnectionRef, result: Result<(), PostError> },
    ScanFailed(StoreError),
}

impl Worker {
    pub fn new(store: Arc<dyn ConnectionStore>, poster: Arc<dyn Poster>, post_concurrency: usize) -> Self {
        Self { store, poster, post_concurrency: post_concurrency.max(1) }
    }

    /// Handles one SQS batch; the response lists the messages SQS should deliver again.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let report = self.process(event).await;
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = report
            .failed
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }

    /// Does the work of [`Worker::handle`] and says what happened.
    pub async fn process(&self, event: SqsEvent) -> BatchReport {
        let started = Instant::now();
        let mut report = BatchReport { messages: event.records.len(), ..BatchReport::default() };
        let mut deliveries = Vec::with_capacity(event.records.len());
        for record in event.records {
            let Some(message_id) = record.message_id else {
                tracing::error!("an SQS record without a messageId cannot be acknowledged or retried");
                continue;
            };
            match Job::parse(record.body.as_deref().unwrap_or_default()) {
                Ok(job) => deliveries.push(Delivery { message_id, frame: Bytes::from(job.envelope.frame()) }),
                Err(err) => {
                    // Poison: report it so that SQS's redrive policy moves it to the dead-letter queue.
                    tracing::error!(message = %message_id, error = %err, "unparsable job");
                    report.failed.push(message_id);
                }
            }
        }
        if deliveries.is_empty() {
            return report;
        }

        let mut failed = vec![false; deliveries.len()];
        let mut gone = HashSet::new();
        let mut connecting = HashSet::new();
        let prune_before = epoch_ms() - i64::try_from(PRUNE_GRACE.as_millis()).unwrap_or(i64::MAX);
        let mut outcomes = self.fan_out(&deliveries);
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Posted { result: Ok(()), .. } => report.delivered += 1,
                Outcome::Posted { result: Err(PostError::Gone), to, .. } => {
                    // A young record may be a connection whose handshake is still completing.
                    if to.connected_at_ms < prune_before {
                        gone.insert(to.id);
                    } else {
                        connecting.insert(to.id);
                    }
                }
                Outcome::Posted { result: Err(err), message, to } => {
                    // Redelivering cannot fix a payload that is too large or an unknown failure, and
                    // would resend the message to everyone who already has it.
                    let retry = err.is_retryable() || matches!(err, PostError::Forbidden);
                    tracing::warn!(connection = %to.id, message = %deliveries[message].message_id, error = %err, retry, "post failed");
                    failed[message] |= retry;
                }
                Outcome::ScanFailed(err) => {
                    tracing::error!(error = %err, "scanning the connections failed; the batch will be redelivered");
                    failed.iter_mut().for_each(|f| *f = true);
                }
            }
        }
        drop(outcomes);
        report.kept_connecting = connecting.len();

        if !gone.is_empty() {
            let stale: Vec<ConnectionId> = gone.into_iter().collect();
            match self.store.delete_many(&stale).await {
                Ok(()) => report.pruned = stale.len(),
                // Not a reason to redeliver: the records' TTL removes them later anyway.
                Err(err) => {
                    tracing::warn!(error = %err, stale = stale.len(), "pruning gone connections failed")
                }
            }
        }
        report.failed.extend(
            deliveries.iter().zip(&failed).filter(|(_, failed)| **failed).map(|(d, _)| d.message_id.clone()),
        );
        tracing::info!(
            messages = report.messages,
            delivered = report.delivered,
            pruned = report.pruned,
            failed = report.failed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch done"
        );
        report
    }

    /// Every (message, connection) post, page by page as the scan yields them, at most
    /// `post_concurrency` at a time. Within a page, each message goes to every connection before the
    /// next message starts, which keeps per-connection order as close to the batch's as SQS allows.
    fn fan_out<'a>(&'a self, deliveries: &'a [Delivery]) -> BoxStream<'a, Outcome> {
        let messages = deliveries.len();
        let steps = self.store.scan().flat_map(move |page| match page {
            Ok(ids) => {
                let ids = Arc::new(ids);
                stream::iter((0..messages).flat_map(move |message| {
                    let ids = Arc::clone(&ids);
                    (0..ids.len()).map(move |i| Step::Post { message, to: ids[i].clone() })
                }))
                .boxed()
            }
            Err(err) => stream::iter([Step::ScanFailed(err)]).boxed(),
        });
        steps
            .map(move |step| async move {
                match step {
                    Step::Post { message, to } => {
                        let result = self.poster.post(&to.id, deliveries[message].frame.clone()).await;
                        Outcome::Posted { message, to, result }
                    }
                    Step::ScanFailed(err) => Outcome::ScanFailed(err),
                }
            })
            .buffer_unordered(self.post_concurrency)
            .boxed()
    }
}
