//! The port: deliveries added to a sender's count for a minute, and read back; and the ceiling a
//! deployment sets on them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{ConnectionId, Envelope, EnvelopeKind};
use crate::error::StoreError;

/// Counts the deliveries each sender's messages made, by minute.
#[async_trait]
pub trait Usage: Send + Sync {
    /// Adds `deliveries` to `sender`'s count for `minute` (epoch minutes).
    async fn add(&self, sender: &str, minute: i64, deliveries: u64) -> Result<(), StoreError>;

    /// `sender`'s count for `minute`.
    async fn used(&self, sender: &str, minute: i64) -> Result<u64, StoreError>;
}

/// The epoch minute of `epoch_ms`, and how long until the next one begins.
pub fn minute_of(epoch_ms: i64) -> (i64, Duration) {
    let minute = epoch_ms.div_euclid(60_000);
    let left = (minute + 1) * 60_000 - epoch_ms;
    (minute, Duration::from_millis(u64::try_from(left).unwrap_or(60_000)))
}

/// Whose count a client's message spends: its user's (`user:<sub>`), or its connection's when it is
/// anonymous (`conn:<id>`). `None` for a backend's publish and for `join`/`leave` frames, which no
/// client sent.
pub fn sender_key(envelope: &Envelope) -> Option<String> {
    if !matches!(envelope.kind, EnvelopeKind::Broadcast | EnvelopeKind::Message) {
        return None;
    }
    key(envelope.user.as_deref(), envelope.from.as_ref())
}

/// The count of a client on `connection`, as [`sender_key`] names it: the ingress's.
pub fn sender_of(user: Option<&str>, connection: &ConnectionId) -> String {
    key(user, Some(connection)).unwrap_or_default()
}

fn key(user: Option<&str>, connection: Option<&ConnectionId>) -> Option<String> {
    match (user, connection) {
        (Some(user), _) => Some(format!("user:{user}")),
        (None, Some(connection)) => Some(format!("conn:{connection}")),
        (None, None) => None,
    }
}

/// At most `per_minute` deliveries a minute for one sender's messages (the template's
/// `FanoutPerUserPerMinute`), counted in `usage`.
#[derive(Clone)]
pub struct Ceiling {
    pub usage: Arc<dyn Usage>,
    pub per_minute: u64,
}

impl std::fmt::Debug for Ceiling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceiling").field("per_minute", &self.per_minute).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_is_counted_from_the_epoch_and_says_how_long_it_has_left() {
        assert_eq!(minute_of(120_000), (2, Duration::from_secs(60)));
        assert_eq!(minute_of(179_999), (2, Duration::from_millis(1)));
        assert_eq!(minute_of(180_000).0, 3);
    }
}
