//! The ports: the three narrow interfaces the handlers need from the outside world.
//!
//! Each has an in-memory adapter ([`crate::memory`]) for tests and the local gateway, and an AWS
//! adapter ([`crate::aws`]) for Lambda. The handlers only ever see these traits.

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;

use crate::domain::{ConnectionId, ConnectionRecord, Job};
use crate::error::{PostError, QueueError, StoreError};

/// Where connections are remembered between `$connect` and `$disconnect` (DynamoDB on AWS).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError>;

    /// Deleting a record that does not exist succeeds: `$disconnect` and pruning may race.
    async fn delete(&self, id: &ConnectionId) -> Result<(), StoreError>;

    /// Deletes many records in as few round trips as the store allows.
    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<(), StoreError>;

    /// Every stored connection id, one page at a time, so that delivery can start on the first page
    /// while the next one is being read.
    fn scan(&self) -> BoxStream<'_, Result<Vec<ConnectionId>, StoreError>>;
}

/// Where the ingress hands broadcasts to the worker (SQS on AWS).
#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, job: &Job) -> Result<(), QueueError>;
}

/// How the worker reaches a connection (`@connections` on AWS).
#[async_trait]
pub trait Poster: Send + Sync {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError>;
}
