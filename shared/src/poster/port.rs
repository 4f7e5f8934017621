//! The port itself: what the worker asks of `@connections`.

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::ConnectionId;
use crate::error::BoxError;
use crate::limits::MAX_MESSAGE_BYTES;

/// How the worker reaches a connection (`@connections` on AWS).
#[async_trait]
pub trait Poster: Send + Sync {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError>;
}

/// Why an `@connections` POST did not deliver. Each variant is a different action for the worker.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// 410: the connection is gone; prune its record.
    #[error("the connection is gone")]
    Gone,
    /// 429: API Gateway's rate limit, or the client's buffer is full; retry later.
    #[error("throttled by API Gateway")]
    Throttled,
    /// 413: this payload can never be delivered.
    #[error("the payload is larger than {MAX_MESSAGE_BYTES} bytes")]
    PayloadTooLarge,
    /// 403: the worker's endpoint or IAM policy is wrong; nothing will succeed until it is fixed.
    #[error(
        "forbidden: check CONNECTIONS_ENDPOINT and the worker's execute-api:ManageConnections permission"
    )]
    Forbidden,
    /// 5xx, timeouts, connection errors: retry later.
    #[error("transient failure: {0}")]
    Transient(#[source] BoxError),
    /// Anything else the API answered; not worth retrying.
    #[error("unexpected failure: {0}")]
    Other(#[source] BoxError),
}

impl PostError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Throttled | Self::Transient(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_throttling_and_transient_post_failures_are_retryable() {
        assert!(PostError::Throttled.is_retryable());
        assert!(PostError::Transient("timeout".into()).is_retryable());
        assert!(!PostError::Gone.is_retryable());
        assert!(!PostError::PayloadTooLarge.is_retryable());
        assert!(!PostError::Forbidden.is_retryable());
    }
}
