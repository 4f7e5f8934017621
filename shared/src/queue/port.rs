//! The port itself: what the handlers ask of the queue, and what an event source mapping does.

use std::time::Duration;

use async_trait::async_trait;

use crate::domain::Job;
use crate::error::QueueError;

/// Where the ingress hands broadcasts to the worker (SQS on AWS).
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, job: &Job) -> Result<(), QueueError>;

    /// Sends several jobs in as few calls as the queue allows, each visible to consumers only after
    /// `delay` (SQS's `DelaySeconds`: whole seconds, at most 15 minutes); one result per job, in
    /// order, so a caller can tell exactly which were not accepted.
    async fn send_batch(&self, jobs: &[Job], delay: Duration) -> Vec<Result<(), QueueError>>;
}

/// One message as SQS's `ReceiveMessage` returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMessage {
    pub message_id: String,
    pub receipt_handle: String,
    pub body: String,
    pub receive_count: u32,
    pub sent_at_ms: i64,
    pub first_received_at_ms: i64,
}

/// The queue as an event source mapping sees it: what the local gateway polls to invoke the worker.
#[async_trait]
pub trait QueueSource: Send + Sync {
    /// Up to `max` messages, waiting up to `wait` for the first (a long poll). Received messages stay
    /// hidden for the queue's visibility timeout unless deleted.
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError>;

    /// Deletes processed messages by receipt handle.
    async fn delete(&self, receipt_handles: &[String]) -> Result<(), QueueError>;
}
