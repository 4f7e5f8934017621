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

/// How the ingress reaches one connection itself, never a fan-out: it ends a connection
/// (`DELETE @connections/{id}` on AWS; API Gateway then runs its `$disconnect`) flooding past its
/// quota or disconnected by the server API, and tells a connection the server API disconnects or
/// unsubscribes why, first (`POST @connections/{id}`: the frame must be sent before the close, which
/// a job on the queue could not promise).
#[async_trait]
pub trait Closer: Send + Sync {
    /// Ends the connection; one already gone is what closing wanted.
    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError>;

    /// Sends the connection one frame; [`PostError::Gone`] when it is gone.
    async fn say(&self, connection: &ConnectionId, frame: Bytes) -> Result<(), PostError>;
}
