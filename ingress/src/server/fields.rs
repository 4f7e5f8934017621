//! The fields server API bodies share, each read into its domain type or a [`ServerError`] naming
//! the field: the body itself (a JSON object within the WebSocket protocol's nesting limit), a
//! message `id`, a `user`, a `reason`.

use serde::de::DeserializeOwned;
use shared::limits::MAX_JSON_DEPTH;
use shared::{Channel, InputError, MessageId};

use super::error::ServerError;

/// The longest `reason` a `disconnect` or `unsubscribe` gives, in bytes: what a WebSocket close
/// frame can carry (RFC 6455 §5.5: 125 bytes, less the code's two).
pub const MAX_REASON_BYTES: usize = 123;

/// The body as `T`: a JSON object, no deeper than a client's message may be.
pub fn body<T: DeserializeOwned>(text: &str) -> Result<T, ServerError> {
    if text.trim().is_empty() {
        return Err(InputError::Empty.into());
    }
    if !text.trim_start().starts_with('{') {
        return Err(ServerError::field("body", "must be a JSON object"));
    }
    let value: T = serde_json::from_str(text).map_err(InputError::from_json)?;
    if crate::actions::json_depth(text) > MAX_JSON_DEPTH {
        return Err(InputError::TooDeeplyNested { limit: MAX_JSON_DEPTH }.into());
    }
    Ok(value)
}

/// The JSON type of `value`, for error messages.
pub fn kind(value: &serde_json::Value) -> &'static str {
    crate::actions::json_type(value)
}

/// An optional message `id`: a UUID, as every message id is.
pub fn id(value: Option<&serde_json::Value>) -> Result<Option<MessageId>, ServerError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(text)) => {
            serde_json::from_value(serde_json::Value::String(text.clone()))
                .map(Some)
                .map_err(|_| ServerError::field("id", format!("must be a UUID, not {text:?}")))
        }
        Some(other) => Err(ServerError::field("id", format!("must be a UUID string, not {}", kind(other)))),
    }
}

/// `user`, a token's `sub`: their own channel, `user/<sub>`, which every connection of theirs holds.
pub fn user(value: Option<&serde_json::Value>) -> Result<(String, Channel), ServerError> {
    match value {
        None | Some(serde_json::Value::Null) => Err(ServerError::field("user", "is missing")),
        Some(serde_json::Value::String(sub)) => match Channel::of_user(sub) {
            Some(channel) => Ok((sub.clone(), channel)),
            None => Err(ServerError::field("user", format!("{sub:?} is no user a token could name"))),
        },
        Some(other) => Err(ServerError::field("user", format!("must be a string, not {}", kind(other)))),
    }
}

/// An optional `reason` of at most [`MAX_REASON_BYTES`] bytes; `default` when absent.
pub fn reason(value: Option<&serde_json::Value>, default: &str) -> Result<String, ServerError> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(default.to_owned()),
        Some(serde_json::Value::String(text)) if text.len() <= MAX_REASON_BYTES => Ok(text.clone()),
        Some(serde_json::Value::String(text)) => Err(ServerError::field(
            "reason",
            format!("is {} bytes, past the {MAX_REASON_BYTES} a close frame carries", text.len()),
        )),
        Some(other) => Err(ServerError::field("reason", format!("must be a string, not {}", kind(other)))),
    }
}
