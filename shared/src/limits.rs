//! API Gateway's WebSocket limits, as named constants.
//!
//! Every component that enforces or respects a limit (the ingress validation, the worker, the local
//! gateway) reads it from here, so the local stand-in and the Lambdas can never disagree about them.

use std::time::Duration;

/// Largest message API Gateway accepts from a client, and largest `@connections` POST body: 128 KB.
pub const MAX_MESSAGE_BYTES: usize = 128 * 1024;

/// What a `history` answer adds around the messages it holds, at most, besides its `missing`
/// offsets: its type, channel, position and `more`, and a `ref` of 64 characters however escaped —
/// 777 bytes (`history_answers_keep_room_for_their_largest_fields`); the rest is margin. A channel's
/// message is accepted only when its frame leaves this much of [`MAX_MESSAGE_BYTES`], so that a
/// `history` answer can always hold any message that a publish accepted.
pub const HISTORY_ANSWER_OVERHEAD: usize = 1024;

/// The bytes of message frames one `history` answer holds at most: what a `history` reads, and
/// what a subscribe's recovery replays, at most. A recovery that would replay more is answered
/// `recovered:false`, and the client reads what it missed with `history`, a page at a time: one
/// subscribe costs no more than one `history`, however much the channel keeps.
pub const HISTORY_ANSWER_BYTES: usize = MAX_MESSAGE_BYTES - HISTORY_ANSWER_OVERHEAD;

/// Largest single WebSocket frame API Gateway accepts from a client: 32 KB.
pub const MAX_FRAME_BYTES: usize = 32 * 1024;

/// API Gateway closes a connection that has been idle this long.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// API Gateway closes every connection after this long, however busy it is.
pub const MAX_CONNECTION_DURATION: Duration = Duration::from_secs(2 * 60 * 60);

/// How long a connection record outlives API Gateway's maximum connection duration. `$disconnect` is
/// best effort, so every record carries a DynamoDB `Ttl` that expires it this long after it could
/// possibly still be connected.
pub const CONNECTION_TTL_MARGIN: Duration = Duration::from_secs(10 * 60);

/// How young a connection record must be for the worker to keep it despite a 410 from
/// `@connections`. API Gateway answers 410 for a connection whose `$connect` is still completing, and
/// its integrations may take up to 29 s: a record younger than this may belong to such a connection.
pub const PRUNE_GRACE: Duration = Duration::from_secs(30);

/// Longest connection id accepted from the outside. AWS ids are 16 characters; this leaves room for
/// other stand-ins without letting a caller push arbitrary blobs through as ids.
pub const MAX_CONNECTION_ID_LEN: usize = 128;

/// Deepest nesting of arrays and objects accepted in a client's JSON message. Deeper documents are
/// almost always attacks on the recursive parsers of the clients that would receive them.
pub const MAX_JSON_DEPTH: usize = 64;

/// `@connections` calls per second API Gateway allows an account in a region, all APIs together.
/// Past it, calls answer 429 `LimitExceededException`.
pub const ACCOUNT_POST_RATE: u32 = 10_000;

/// Epoch seconds after which the store may expire what belongs to a connection made at
/// `connected_at_ms` (its record and its subscriptions): API Gateway's longest connection, and
/// [`CONNECTION_TTL_MARGIN`].
pub fn expires_at_s(connected_at_ms: i64) -> i64 {
    let lifetime = (MAX_CONNECTION_DURATION + CONNECTION_TTL_MARGIN).as_secs();
    connected_at_ms / 1000 + i64::try_from(lifetime).unwrap_or(i64::MAX)
}
