//! The ports: the three narrow interfaces the handlers need from the outside world.
//!
//! Each has an in-memory adapter ([`crate::memory`]) for tests and the local gateway, and an AWS
//! adapter ([`crate::aws`]) for Lambda. The handlers only ever see these traits.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::channel::ChannelPattern;
use crate::domain::{ConnectionId, ConnectionRecord, ConnectionRef, Job, Shard};
use crate::error::{PostError, QueueError, StoreError, SubscribeError};

/// Where connections and their subscriptions are remembered between `$connect` and `$disconnect`
/// (one DynamoDB table on AWS).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError>;

    /// Deletes a connection and every subscription it holds. Deleting a record that does not exist
    /// succeeds: `$disconnect` and pruning may race.
    async fn delete(&self, id: &ConnectionId) -> Result<(), StoreError>;

    /// Deletes many connections and their subscriptions in as few round trips as the store allows.
    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<(), StoreError>;

    /// Every stored connection, one page at a time, so that delivery can start on the first page
    /// while the next one is being read. Subscriptions are not connections: a scan skips them.
    fn scan(&self) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.scan_shard(Shard::WHOLE)
    }

    /// The stored connections of one shard, one page at a time: the shards of one count are
    /// disjoint and together hold every connection.
    fn scan_shard(&self, shard: Shard) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>>;

    /// Subscribes a stored connection to a pattern. Subscribing again to the same pattern succeeds
    /// and counts once; a connection already holding `limit` other patterns is refused.
    async fn subscribe(&self, subscription: &Subscription) -> Result<(), SubscribeError>;

    /// Ends a subscription; ending one that does not exist succeeds.
    async fn unsubscribe(&self, id: &ConnectionId, pattern: &ChannelPattern) -> Result<(), StoreError>;

    /// The connections subscribed to exactly this pattern, one page at a time.
    fn subscribers(&self, pattern: &ChannelPattern) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.subscribers_shard(pattern, Shard::WHOLE)
    }

    /// The subscribers to this pattern in one shard, one page at a time: a connection is in the same
    /// shard of a count for every pattern, so a channel's shards never overlap either.
    fn subscribers_shard(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
    ) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>>;
}

/// One connection's subscription to one pattern, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub connection: ConnectionRef,
    pub pattern: ChannelPattern,
    /// Epoch seconds after which the store may expire it, as for the connection's own record.
    pub expires_at_s: i64,
    /// The most patterns one connection may hold.
    pub limit: usize,
}

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

/// How the worker reaches a connection (`@connections` on AWS).
#[async_trait]
pub trait Poster: Send + Sync {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError>;
}
