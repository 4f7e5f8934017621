//! The ports themselves: what the worker asks of `@connections`, and what the ingress does.

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::ConnectionId;
use crate::error::PostError;

/// How the worker reaches a connection (`@connections` on AWS).
#[async_trait]
pub trait Poster: Send + Sync {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError>;
}

/// How the ingress ends a connection (`DELETE @connections/{id}` on AWS; API Gateway then runs its
/// `$disconnect`): a client flooding past its quota.
#[async_trait]
pub trait Closer: Send + Sync {
    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError>;
}
