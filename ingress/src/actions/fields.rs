//! The fields of a client's JSON message, read as each action needs them: `channel` as a channel or
//! a pattern, `data`, `since`, `limit`, `joinLeave`; `action` and `ref` are read by the dispatcher.

use serde::Deserialize;
use serde_json::value::RawValue;
use shared::{Channel, ChannelPattern, InputError, Position};

/// The fields of a JSON message that actions read. Unknown fields are ignored; a duplicated one is
/// invalid JSON.
#[derive(Debug, Deserialize)]
pub struct Fields {
    pub(super) action: Option<serde_json::Value>,
    channel: Option<serde_json::Value>,
    data: Option<Box<RawValue>>,
    #[serde(rename = "ref")]
    pub(super) reference: Option<serde_json::Value>,
    since: Option<serde_json::Value>,
    limit: Option<serde_json::Value>,
    #[serde(rename = "joinLeave")]
    join_leave: Option<serde_json::Value>,
}

impl Fields {
    /// `data`, which must be present and not `null`: sending nothing is a mistake, not a message.
    pub fn data(&mut self) -> Result<Box<RawValue>, InputError> {
        self.data.take().ok_or(InputError::MissingData)
    }

    fn channel_text(&self) -> Result<&str, InputError> {
        match &self.channel {
            None | Some(serde_json::Value::Null) => Err(InputError::MissingChannel),
            Some(serde_json::Value::String(channel)) => Ok(channel),
            Some(other) => Err(InputError::ChannelNotAString { found: json_type(other) }),
        }
    }

    /// `channel` as one concrete channel, as a publish needs.
    pub fn channel(&self) -> Result<Channel, InputError> {
        Ok(Channel::parse(self.channel_text()?)?)
    }

    /// `channel` as a subscription pattern, wildcards allowed.
    pub fn pattern(&self) -> Result<ChannelPattern, InputError> {
        Ok(ChannelPattern::parse(self.channel_text()?)?)
    }

    /// `since`, the last position a client has of a channel, when it gave one (`null` is none).
    pub fn since(&self) -> Result<Option<Position>, InputError> {
        match &self.since {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(since) => Position::from_json(since).map(Some),
        }
    }

    /// `joinLeave`, a boolean; false when absent or `null`.
    pub fn join_leave(&self) -> Result<bool, InputError> {
        match &self.join_leave {
            None | Some(serde_json::Value::Null) => Ok(false),
            Some(serde_json::Value::Bool(on)) => Ok(*on),
            Some(other) => Err(InputError::InvalidJoinLeave {
                detail: format!("must be true or false, not {}", json_type(other)),
            }),
        }
    }

    /// `limit`, a whole number from 1 to `max`; `default` when absent or `null`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, InputError> {
        let found = match &self.limit {
            None | Some(serde_json::Value::Null) => return Ok(default),
            Some(serde_json::Value::Number(n)) => match n.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if (1..=max).contains(&n) => return Ok(n),
                _ => n.to_string(),
            },
            Some(other) => json_type(other).to_owned(),
        };
        Err(InputError::InvalidLimit { found, max })
    }
}

/// The JSON type of `value`, for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
