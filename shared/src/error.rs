//! Errors, split by what the caller should do about them.
//!
//! [`InputError`] is the client's fault and goes back to the client with a stable code. The port errors
//! ([`StoreError`], [`QueueError`], [`PostError`]) say whether trying again can help, which is what
//! the handlers need to decide between reporting a batch item failure and giving up on it.

use crate::limits::MAX_MESSAGE_BYTES;

/// Any error from an adapter's underlying client, kept for logs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a client message was refused. Each variant has a stable `code` that clients may match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    #[error("the message is empty")]
    Empty,
    #[error("the message starts with '{{' but is not valid JSON: {detail}")]
    InvalidJson { detail: String },
    #[error("the message nests arrays and objects deeper than {limit} levels")]
    TooDeeplyNested { limit: usize },
    #[error("the message has no \"action\"; send {{\"action\":\"broadcast\",\"data\":...}} or plain text")]
    MissingAction,
    #[error("\"action\" must be a string, not {found}")]
    InvalidAction { found: &'static str },
    #[error("unknown action \"{action}\"; known actions are {known}")]
    UnknownAction { action: String, known: String },
    #[error("the message has no \"data\"")]
    MissingData,
    #[error("the message has no \"channel\"")]
    MissingChannel,
    #[error("invalid \"channel\": {0}")]
    InvalidChannel(#[from] crate::channel::InvalidChannel),
    #[error("\"channel\" must be a string, not {found}")]
    ChannelNotAString { found: &'static str },
    #[error("a connection may hold at most {limit} subscriptions; unsubscribe from one first")]
    TooManySubscriptions { limit: usize },
    #[error("not allowed to {verb} \"{channel}\": {reason}")]
    ForbiddenChannel { verb: &'static str, channel: String, reason: &'static str },
    #[error("the message would be larger than API Gateway's {limit} byte limit once delivered")]
    TooLarge { limit: usize },
    #[error("binary messages are not supported; send text")]
    Binary,
    #[error("\"ref\" must be a string of 1 to {max} characters, not {found}")]
    InvalidRef { found: String, max: usize },
}

impl InputError {
    /// The stable, machine-readable code sent to the client in `{"error":{"code":...}}`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Empty => "empty_message",
            Self::InvalidJson { .. } => "invalid_json",
            Self::TooDeeplyNested { .. } => "too_deeply_nested",
            Self::MissingAction => "missing_action",
            Self::InvalidAction { .. } => "invalid_action",
            Self::UnknownAction { .. } => "unknown_action",
            Self::MissingData => "missing_data",
            Self::MissingChannel => "missing_channel",
            Self::InvalidChannel(_) | Self::ChannelNotAString { .. } => "invalid_channel",
            Self::TooManySubscriptions { .. } => "too_many_subscriptions",
            Self::ForbiddenChannel { .. } => "forbidden_channel",
            Self::TooLarge { .. } => "message_too_large",
            Self::Binary => "binary_not_supported",
            Self::InvalidRef { .. } => "invalid_ref",
        }
    }

    /// Sorts a serde_json error on a client's message into its code.
    pub fn from_json(err: serde_json::Error) -> Self {
        // serde_json reports its recursion limit only through the message text.
        let detail = err.to_string();
        if detail.starts_with("recursion limit exceeded") {
            Self::TooDeeplyNested { limit: crate::limits::MAX_JSON_DEPTH }
        } else {
            Self::InvalidJson { detail }
        }
    }

    /// The body sent back to the client: `{"error":{"code":"…","message":"…"}}`.
    pub fn to_client_json(&self) -> String {
        serde_json::json!({ "error": { "code": self.code(), "message": self.to_string() } }).to_string()
    }
}

/// A connection store failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Throttling, a timeout, a 5xx: the same call may succeed later.
    #[error("the connection store is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Misconfiguration or a bad request: retrying will not help.
    #[error("the connection store refused the request: {0}")]
    Rejected(#[source] BoxError),
}

impl StoreError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Why a subscription was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// The connection already holds its limit of other patterns.
    #[error("the connection already holds {limit} subscriptions")]
    TooMany { limit: usize },
    /// The connection's own record is gone (pruned, or expired), so nothing would clean up after it.
    #[error("the connection is not stored")]
    NotConnected,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A queue failure.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("the queue is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    #[error("the queue refused the message: {0}")]
    Rejected(#[source] BoxError),
}

impl QueueError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
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
    fn client_errors_are_json_with_a_code_and_a_message() {
        let body: serde_json::Value =
            serde_json::from_str(&InputError::MissingAction.to_client_json()).expect("json");
        assert_eq!(body["error"]["code"], "missing_action");
        assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("action")));
    }

    #[test]
    fn only_throttling_and_transient_post_failures_are_retryable() {
        assert!(PostError::Throttled.is_retryable());
        assert!(PostError::Transient("timeout".into()).is_retryable());
        assert!(!PostError::Gone.is_retryable());
        assert!(!PostError::PayloadTooLarge.is_retryable());
        assert!(!PostError::Forbidden.is_retryable());
    }
}
