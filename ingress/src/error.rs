//! Why an event could not be handled at all: what Lambda reports as the invocation's error, which API
//! Gateway turns into a refused handshake or an "Internal server error" frame. A client's mistake
//! is not one of these: it is answered through the route response (see [`crate::actions`]).

use shared::{StoreError, SubscribeError};

/// Why an event could not be handled. API Gateway turns these into a rejected handshake (on
/// `$connect`) or an "Internal server error" message to the client.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("the event has no valid requestContext.connectionId")]
    MissingConnectionId,
    #[error("unexpected requestContext.eventType {0:?}")]
    UnknownEventType(Option<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not subscribe the connection to its user's channel: {0}")]
    OwnChannel(#[source] SubscribeError),
}

impl IngressError {
    /// The name Lambda reports as the invocation's `errorType`, in CloudWatch and X-Ray: what went
    /// wrong, rather than the Rust type that carried it.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::MissingConnectionId => "MissingConnectionId",
            Self::UnknownEventType(_) => "UnknownEventType",
            Self::Store(StoreError::Unavailable(_)) => "StoreUnavailable",
            Self::Store(StoreError::Rejected(_)) => "StoreRejected",
            Self::OwnChannel(_) => "OwnChannelSubscriptionFailed",
        }
    }
}
