//! Connections: the id API Gateway gives one, what the store keeps of it, and what a listing of the
//! store returns.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::limits::MAX_CONNECTION_ID_LEN;

/// An API Gateway connection id, such as `TWegAcC4EowCHnA=`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ConnectionId(String);

impl ConnectionId {
    /// Accepts the base64 alphabets (standard and URL-safe, with padding): what API Gateway issues.
    pub fn parse(raw: &str) -> Result<Self, InvalidConnectionId> {
        if raw.is_empty() || raw.len() > MAX_CONNECTION_ID_LEN {
            return Err(InvalidConnectionId);
        }
        let valid =
            raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'));
        if valid { Ok(Self(raw.to_owned())) } else { Err(InvalidConnectionId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ConnectionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A connection id that is empty, too long, or not base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a connection id is 1 to {MAX_CONNECTION_ID_LEN} base64 characters")]
pub struct InvalidConnectionId;

/// What API Gateway and DynamoDB know about one connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    /// Epoch milliseconds, as API Gateway reports `connectedAt`.
    pub connected_at_ms: i64,
    pub source_ip: Option<String>,
    /// Epoch seconds after which DynamoDB may expire the record (its `Ttl` attribute).
    pub expires_at_s: i64,
}

/// A connection as a scan of the store lists it: enough to post to it and to judge a 410.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnectionRef {
    pub id: ConnectionId,
    /// Epoch milliseconds; 0 when the store does not know.
    #[serde(rename = "connectedAt")]
    pub connected_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_ids_accept_aws_shapes_and_refuse_the_rest() {
        for ok in ["TWegAcC4EowCHnA=", "a+b/c=", "url-safe_id"] {
            assert!(ConnectionId::parse(ok).is_ok(), "{ok}");
        }
        let too_long = "a".repeat(MAX_CONNECTION_ID_LEN + 1);
        for bad in ["", "has space", "semi;colon", "../etc", too_long.as_str()] {
            assert!(ConnectionId::parse(bad).is_err(), "{bad}");
        }
    }
}
