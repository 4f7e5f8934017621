//! The connection store's items and their keys: a connection `Pk = Sk = "CONN#<id>"`, a subscription
//! `Pk = "CHAN#<pattern>"`, `Sk = "SUB#<bucket>#<id>"` (or `Sk = "CONN#<id>"` as written before the
//! bucket), and the sparse index of connection items.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::{ConnectionId, ConnectionRef, Shard};

pub(crate) const CONNECTION_PREFIX: &str = "CONN#";
/// The sparse index of connection items (partition key `Conn`, keys and `ConnectedAt` projected).
pub const INDEX: &str = "Connections";
pub(crate) const CHANNEL_PREFIX: &str = "CHAN#";
pub(crate) const SUBSCRIBER_PREFIX: &str = "SUB#";

pub(crate) type Key = HashMap<String, AttributeValue>;

pub(crate) fn key(id: &ConnectionId) -> Key {
    let pk = AttributeValue::S(format!("{CONNECTION_PREFIX}{id}"));
    HashMap::from([("Pk".to_owned(), pk.clone()), ("Sk".to_owned(), pk)])
}

pub(crate) fn subscription_key(pattern: &str, id: &ConnectionId) -> Key {
    let bucket = Shard::bucket(id.as_str());
    HashMap::from([
        ("Pk".to_owned(), AttributeValue::S(format!("{CHANNEL_PREFIX}{pattern}"))),
        ("Sk".to_owned(), AttributeValue::S(format!("{SUBSCRIBER_PREFIX}{bucket:03}#{id}"))),
    ])
}

/// A subscription's key as written before sort keys led with a bucket.
pub(crate) fn legacy_subscription_key(pattern: &str, id: &ConnectionId) -> Key {
    HashMap::from([
        ("Pk".to_owned(), AttributeValue::S(format!("{CHANNEL_PREFIX}{pattern}"))),
        ("Sk".to_owned(), AttributeValue::S(format!("{CONNECTION_PREFIX}{id}"))),
    ])
}

/// The connection an item names in `key`: `Pk` of a connection item (`CONN#<id>`), `Sk` of a
/// subscription item (`SUB#<bucket>#<id>`, or `CONN#<id>` in older ones); both carry the
/// connection's `ConnectedAt`.
pub(crate) fn connection_in(item: &Key, key: &str) -> Option<ConnectionRef> {
    let value = item.get(key)?.as_s().ok()?;
    let raw = match value.strip_prefix(SUBSCRIBER_PREFIX) {
        Some(bucketed) => bucketed.split_once('#')?.1,
        None => value.strip_prefix(CONNECTION_PREFIX)?,
    };
    let id = ConnectionId::parse(raw).ok()?;
    let connected_at_ms =
        item.get("ConnectedAt").and_then(|n| n.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0);
    Some(ConnectionRef { id, connected_at_ms })
}
