//! The port itself: what the worker asks of `@connections`.

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::ConnectionId;
use crate::error::PostError;

/// How the worker reaches a connection (`@connections` on AWS).
#[async_trait]
pub trait Poster: Send + Sync {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError>;
}
