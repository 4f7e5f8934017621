//! Where a message stands in its channel: its offset (1 for the channel's first message, +1 for each
//! after it) in a stream whose epoch changes whenever the stream's state is lost. A client that comes
//! back with the last position it saw gets what it missed, or is told it cannot.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::InputError;

/// A channel stream's epoch: a short random string, new whenever the stream starts again from
/// nothing (its state expired), so that a position from before means nothing now.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Epoch(String);

impl Epoch {
    /// The longest epoch a client may send back.
    pub const MAX_CHARS: usize = 32;

    /// A new epoch: 12 hexadecimal characters, 48 random bits.
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4().simple().to_string()[..12].to_owned())
    }

    /// An epoch as a client or the store gives it back: 1 to [`Epoch::MAX_CHARS`] letters, digits,
    /// `-` or `_`.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = (1..=Self::MAX_CHARS).contains(&raw.len())
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        valid.then(|| Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Epoch {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&raw).ok_or_else(|| serde::de::Error::custom("not an epoch"))
    }
}

/// A position in a channel's stream: `{"offset":41,"epoch":"…"}`, the last message a client has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub offset: u64,
    pub epoch: Epoch,
}

impl Position {
    /// A client's `since`: an object with a whole `offset` from 0 and an `epoch` string; other fields
    /// are ignored.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, InputError> {
        let invalid = |detail: &'static str| InputError::InvalidSince { detail };
        let object = value.as_object().ok_or(invalid("it must be an object {\"offset\":…,\"epoch\":…}"))?;
        let offset = object
            .get("offset")
            .and_then(serde_json::Value::as_u64)
            .ok_or(invalid("its \"offset\" must be a whole number from 0"))?;
        let epoch = object
            .get("epoch")
            .and_then(serde_json::Value::as_str)
            .and_then(Epoch::parse)
            .ok_or(invalid("its \"epoch\" must be the string a subscribed or message frame gave"))?;
        Ok(Self { offset, epoch })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_since_is_an_offset_and_an_epoch_and_anything_else_is_invalid_since() {
        let epoch = Epoch::random();
        assert_eq!(epoch.as_str().len(), 12);
        let since =
            Position::from_json(&json!({"offset": 41, "epoch": epoch.as_str(), "extra": 1})).expect("valid");
        assert_eq!(since, Position { offset: 41, epoch: epoch.clone() });
        for bad in [
            json!(41),
            json!("41"),
            json!({"epoch": "abc"}),
            json!({"offset": -1, "epoch": "abc"}),
            json!({"offset": 1.5, "epoch": "abc"}),
            json!({"offset": "1", "epoch": "abc"}),
            json!({"offset": 1}),
            json!({"offset": 1, "epoch": ""}),
            json!({"offset": 1, "epoch": "a b"}),
            json!({"offset": 1, "epoch": "x".repeat(33)}),
            json!({"offset": 1, "epoch": 7}),
        ] {
            let err = Position::from_json(&bad).expect_err("invalid");
            assert_eq!(err.code(), "invalid_since", "{bad}");
        }
    }
}
