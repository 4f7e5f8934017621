//! Errors, split by what the caller should do about them.
//!
//! [`InputError`] is the client's mistake and goes back to the client with a stable code, one of
//! the [`ErrorCode`]s, the one list of them. The ports' errors ([`StoreError`], [`SubscribeError`],
//! [`QueueError`], [`PostError`]) say whether trying again can help, which is what the handlers need
//! to decide between reporting a batch item failure and giving up on it.

use std::fmt;

use crate::limits::MAX_MESSAGE_BYTES;

/// Any error from an adapter's underlying client, kept for logs.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Every code a client may find in `{"error":{"code":…,"message":…}}`: stable, so that clients
/// match on them. `docs/protocol.md`'s table of errors and `docs/asyncapi.yaml` list the same codes
/// (tests hold them together).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    EmptyMessage,
    InvalidJson,
    TooDeeplyNested,
    MissingAction,
    InvalidAction,
    UnknownAction,
    MissingData,
    MissingChannel,
    InvalidChannel,
    TooManySubscriptions,
    ForbiddenChannel,
    MessageTooLarge,
    BinaryNotSupported,
    InvalidRef,
    InvalidSince,
    UnrecoverablePosition,
    InvalidLimit,
    InvalidJoinLeave,
    PresenceOff,
    /// The connection's or its user's quota of messages a second is spent: `retryAfterMs` says when
    /// one more fits.
    RateLimited,
    /// Not the client's mistake: the store or the queue failed, and sending again may help.
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [Self; 21] = [
        Self::EmptyMessage,
        Self::InvalidJson,
        Self::TooDeeplyNested,
        Self::MissingAction,
        Self::InvalidAction,
        Self::UnknownAction,
        Self::MissingData,
        Self::MissingChannel,
        Self::InvalidChannel,
        Self::TooManySubscriptions,
        Self::ForbiddenChannel,
        Self::MessageTooLarge,
        Self::BinaryNotSupported,
        Self::InvalidRef,
        Self::InvalidSince,
        Self::UnrecoverablePosition,
        Self::InvalidLimit,
        Self::InvalidJoinLeave,
        Self::PresenceOff,
        Self::RateLimited,
        Self::Unavailable,
    ];

    /// The code as clients see it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EmptyMessage => "empty_message",
            Self::InvalidJson => "invalid_json",
            Self::TooDeeplyNested => "too_deeply_nested",
            Self::MissingAction => "missing_action",
            Self::InvalidAction => "invalid_action",
            Self::UnknownAction => "unknown_action",
            Self::MissingData => "missing_data",
            Self::MissingChannel => "missing_channel",
            Self::InvalidChannel => "invalid_channel",
            Self::TooManySubscriptions => "too_many_subscriptions",
            Self::ForbiddenChannel => "forbidden_channel",
            Self::MessageTooLarge => "message_too_large",
            Self::BinaryNotSupported => "binary_not_supported",
            Self::InvalidRef => "invalid_ref",
            Self::InvalidSince => "invalid_since",
            Self::UnrecoverablePosition => "unrecoverable_position",
            Self::InvalidLimit => "invalid_limit",
            Self::InvalidJoinLeave => "invalid_join_leave",
            Self::PresenceOff => "presence_off",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
    /// The channel's hook refused, saying why (one line, bounded: `hooks::shapes::one_line`).
    #[error("not allowed to {verb} \"{channel}\": {message}")]
    RefusedByHook { verb: &'static str, channel: String, message: String },
    #[error("the message would be larger than API Gateway's {limit} byte limit once delivered")]
    TooLarge { limit: usize },
    #[error("binary messages are not supported; send text")]
    Binary,
    #[error("\"ref\" must be a string of 1 to {max} characters, not {found}")]
    InvalidRef { found: String, max: usize },
    #[error("invalid \"since\": {detail}")]
    InvalidSince { detail: &'static str },
    #[error(
        "\"since\" is not a position in this channel's stream, which is at offset {offset} of epoch \"{epoch}\" \
         (its history was lost, or the position never was one): read it without \"since\", or subscribe again"
    )]
    UnrecoverablePosition { offset: u64, epoch: String },
    #[error("\"limit\" must be a whole number from 1 to {max}, not {found}")]
    InvalidLimit { found: String, max: usize },
    #[error("invalid \"joinLeave\": {detail}")]
    InvalidJoinLeave { detail: String },
    #[error("\"{channel}\" keeps no presence (its namespace's presence, or the PRESENCE setting, is false)")]
    PresenceOff { channel: String },
}

impl InputError {
    /// Which of the [`ErrorCode`]s this is.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            Self::Empty => ErrorCode::EmptyMessage,
            Self::InvalidJson { .. } => ErrorCode::InvalidJson,
            Self::TooDeeplyNested { .. } => ErrorCode::TooDeeplyNested,
            Self::MissingAction => ErrorCode::MissingAction,
            Self::InvalidAction { .. } => ErrorCode::InvalidAction,
            Self::UnknownAction { .. } => ErrorCode::UnknownAction,
            Self::MissingData => ErrorCode::MissingData,
            Self::MissingChannel => ErrorCode::MissingChannel,
            Self::InvalidChannel(_) | Self::ChannelNotAString { .. } => ErrorCode::InvalidChannel,
            Self::TooManySubscriptions { .. } => ErrorCode::TooManySubscriptions,
            Self::ForbiddenChannel { .. } | Self::RefusedByHook { .. } => ErrorCode::ForbiddenChannel,
            Self::TooLarge { .. } => ErrorCode::MessageTooLarge,
            Self::Binary => ErrorCode::BinaryNotSupported,
            Self::InvalidRef { .. } => ErrorCode::InvalidRef,
            Self::InvalidSince { .. } => ErrorCode::InvalidSince,
            Self::UnrecoverablePosition { .. } => ErrorCode::UnrecoverablePosition,
            Self::InvalidLimit { .. } => ErrorCode::InvalidLimit,
            Self::InvalidJoinLeave { .. } => ErrorCode::InvalidJoinLeave,
            Self::PresenceOff { .. } => ErrorCode::PresenceOff,
        }
    }

    /// The stable, machine-readable code sent to the client in `{"error":{"code":...}}`.
    pub fn code(&self) -> &'static str {
        self.error_code().as_str()
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
    fn the_protocols_table_of_errors_lists_exactly_the_codes_a_client_can_be_sent() {
        let protocol = include_str!("../../docs/protocol.md");
        let section = protocol.split("## Errors").nth(1).expect("docs/protocol.md has an Errors section");
        let table: Vec<&str> = section
            .lines()
            .skip_while(|line| !line.starts_with("| code |"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .filter_map(|line| line.split('`').nth(1))
            .collect();
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(table, codes);
    }

    #[test]
    fn the_asyncapi_documents_error_codes_are_exactly_the_codes_a_client_can_be_sent() {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
        assert_eq!(testkit::contract::contract().error_codes(), codes);
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
