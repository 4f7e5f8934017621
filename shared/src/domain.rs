//! The domain: connection ids, connection records, and what the worker delivers to whom.
//!
//! Everything that arrives from the network is turned into one of these types by a `parse` function
//! that either succeeds or says exactly what is wrong; past that point the code never re-checks.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::channel::Channel;
use crate::error::InputError;
use crate::limits::{MAX_CONNECTION_ID_LEN, MAX_MESSAGE_BYTES};

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

/// A unique id for one broadcast, so clients can drop the duplicates that at-least-once delivery allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The id of a message whose queue message has this id: SQS message ids are UUIDs, so each
    /// redelivery of one backend publish carries the same id and clients can drop the duplicates.
    pub fn for_queue_message(message_id: &str) -> Self {
        uuid::Uuid::parse_str(message_id).map_or_else(|_| Self::random(), Self)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The frame a connection receives: for a broadcast
/// `{"type":"broadcast","id":"…","from":"…","sentAt":1732630000000,"data":…}`, for a publish to a channel
/// `{"type":"message","channel":"chat/general","id":"…","from":"…","user":"alice","sentAt":…,"data":…}`
/// (`from` absent when a backend published, `user` when the sender was anonymous).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: EnvelopeKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    pub id: MessageId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ConnectionId>,
    /// The sender's `sub` when it was authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Epoch milliseconds at which API Gateway received the message.
    pub sent_at: i64,
    /// The client's `data`, byte for byte as it sent it.
    pub data: Box<RawValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeKind {
    Broadcast,
    Message,
}

/// Who sent a message: the connection and its user, or, for a backend's publish, neither.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sender {
    pub connection: Option<ConnectionId>,
    pub user: Option<String>,
}

impl Envelope {
    /// Builds the broadcast envelope, refusing one whose frame would pass API Gateway's 128 KB limit:
    /// better to tell the sender now than to have every `@connections` call fail later.
    pub fn broadcast(from: ConnectionId, sent_at: i64, data: Box<RawValue>) -> Result<Self, InputError> {
        Self {
            kind: EnvelopeKind::Broadcast,
            channel: None,
            id: MessageId::random(),
            from: Some(from),
            user: None,
            sent_at,
            data,
        }
        .within_limit()
    }

    /// Builds the envelope of a publish to `channel`, with the same limit as [`Envelope::broadcast`].
    pub fn message(
        channel: Channel,
        sender: Sender,
        sent_at: i64,
        data: Box<RawValue>,
    ) -> Result<Self, InputError> {
        Self {
            kind: EnvelopeKind::Message,
            channel: Some(channel),
            id: MessageId::random(),
            from: sender.connection,
            user: sender.user,
            sent_at,
            data,
        }
        .within_limit()
    }

    fn within_limit(self) -> Result<Self, InputError> {
        if self.frame().len() > MAX_MESSAGE_BYTES {
            return Err(InputError::TooLarge { limit: MAX_MESSAGE_BYTES });
        }
        Ok(self)
    }

    /// The bytes posted to each connection.
    pub fn frame(&self) -> Vec<u8> {
        // Serializing a struct of strings, an integer and already-valid raw JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// Who a job's envelope is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// Every connection: a broadcast, found by scanning the connection items.
    Everyone,
    /// Every connection subscribed to the channel or to a wildcard above it, found by querying the
    /// partitions of [`Channel::patterns`].
    Channel(Channel),
    /// These connections only: a retry job's, holding just the targets an earlier attempt missed.
    Connections(Vec<ConnectionRef>),
    /// One shard of everyone: a broadcast too large for one invocation is split into shards, each a
    /// job of its own, posted by as many invocations at once.
    Shard(Shard),
    /// One shard of a channel's subscribers: a publish to a channel too large for one invocation,
    /// split like a broadcast.
    #[serde(rename = "channel_shard")]
    ChannelShard { channel: Channel, shard: Shard },
}

/// One of `of` disjoint parts of the connections, as DynamoDB's parallel scan divides a table
/// (`Segment` of `TotalSegments`): every connection is in exactly one shard of a given `of`, so the
/// shards of a broadcast never reach a connection twice. Where a store splits by key itself (a
/// channel's subscribers, the in-memory store), a connection belongs to one of [`Shard::BUCKETS`]
/// buckets by a hash of its id, and a shard is a contiguous range of buckets: a key range a query
/// can read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "ShardWire")]
pub struct Shard {
    index: u32,
    of: u32,
}

#[derive(Deserialize)]
struct ShardWire {
    index: u32,
    of: u32,
}

impl TryFrom<ShardWire> for Shard {
    type Error = InvalidShard;

    fn try_from(wire: ShardWire) -> Result<Self, InvalidShard> {
        Self::new(wire.index, wire.of)
    }
}

/// A shard that cannot be scanned: its index is not below its count, or the count is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid shard {index} of {of}: the index must be below the count, and the count from 1 to {MAX_SHARDS}"
)]
pub struct InvalidShard {
    pub index: u32,
    pub of: u32,
}

/// The most shards a broadcast is split into: ten million connections in shards of 10,000. DynamoDB
/// allows a million segments; past this many, each job's own overhead would dominate.
pub const MAX_SHARDS: u32 = 1_000;

impl Shard {
    /// Everyone, unsplit.
    pub const WHOLE: Self = Self { index: 0, of: 1 };

    pub fn new(index: u32, of: u32) -> Result<Self, InvalidShard> {
        if of == 0 || of > MAX_SHARDS || index >= of {
            return Err(InvalidShard { index, of });
        }
        Ok(Self { index, of })
    }

    /// Every shard of a split into `of` (clamped to 1..=[`MAX_SHARDS`]).
    pub fn all(of: u32) -> impl Iterator<Item = Self> {
        let of = of.clamp(1, MAX_SHARDS);
        (0..of).map(move |index| Self { index, of })
    }

    pub fn index(self) -> u32 {
        self.index
    }

    pub fn of(self) -> u32 {
        self.of
    }

    pub fn is_whole(self) -> bool {
        self.of == 1
    }

    /// As many buckets as shards at most, so that every shard of every count holds at least one.
    pub const BUCKETS: u32 = MAX_SHARDS;

    /// The bucket of a key: which shards hold it.
    pub fn bucket(key: &str) -> u32 {
        Self::bucket_of_hash(Self::hash(key))
    }

    /// The bucket of a key of this [`Shard::hash`].
    pub fn bucket_of_hash(hash: u64) -> u32 {
        // The remainder is below `BUCKETS`, a `u32`.
        (hash % u64::from(Self::BUCKETS)) as u32
    }

    /// The buckets this shard holds: shard `i` of `n` holds `i·B/n` up to `(i+1)·B/n`, so the shards
    /// of one count are contiguous, disjoint and together hold every bucket.
    pub fn buckets(self) -> std::ops::Range<u32> {
        let edge = |i: u32| (u64::from(i) * u64::from(Self::BUCKETS) / u64::from(self.of)) as u32;
        edge(self.index)..edge(self.index + 1)
    }

    /// Whether a key falls in this shard, for stores that split by hashing their keys.
    pub fn holds(self, key: &str) -> bool {
        self.holds_hash(Self::hash(key))
    }

    /// Whether a key of this [`Shard::hash`] falls in this shard: a store that keeps each key's hash
    /// scans a shard without hashing a string per key.
    pub fn holds_hash(self, hash: u64) -> bool {
        self.buckets().contains(&Self::bucket_of_hash(hash))
    }

    /// FNV-1a: stable across processes and versions, unlike std's randomly seeded hasher.
    pub fn hash(key: &str) -> u64 {
        key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of {}", self.index, self.of)
    }
}

/// One unit of work on the queue: an envelope and who it is for.
#[derive(Debug, Serialize, Deserialize)]
#[serde(from = "JobWire")]
pub struct Job {
    pub envelope: Envelope,
    pub audience: Audience,
    /// How many worker invocations have already tried this envelope (0 for a fresh job).
    #[serde(skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

/// A job as it may be found on the queue: also as queued before audiences existed, when a broadcast
/// had no audience and a retry job listed its `targets`.
#[derive(Deserialize)]
struct JobWire {
    envelope: Envelope,
    #[serde(default)]
    audience: Option<Audience>,
    #[serde(default)]
    targets: Option<Vec<ConnectionRef>>,
    #[serde(default)]
    attempt: u32,
}

impl From<JobWire> for Job {
    fn from(wire: JobWire) -> Self {
        let audience = match (wire.audience, wire.targets) {
            (Some(audience), _) => audience,
            (None, Some(targets)) => Audience::Connections(targets),
            (None, None) => Audience::Everyone,
        };
        Self { envelope: wire.envelope, audience, attempt: wire.attempt }
    }
}

/// A queue message that is not a job and cannot become one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a job: {0}")]
pub struct PoisonJob(pub String);

/// What a backend sends to the queue to publish without a WebSocket: the same shape as a client's
/// publish, `{"action":"publish","channel":"user/alice","data":{…}}`, with an optional `"id"` (a
/// UUID) that clients see as the message's id — set it to make the backend's own retries
/// recognisable as duplicates. Any channel may be published to, `user/…` included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendPublish {
    pub action: BackendAction,
    pub channel: Channel,
    pub data: Box<RawValue>,
    #[serde(default)]
    pub id: Option<MessageId>,
}

/// The actions a backend may queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendAction {
    Publish,
}

impl BackendPublish {
    /// The job delivering it; `message_id` gives it a stable id when the backend set none.
    pub fn into_job(self, message_id: &str, sent_at_ms: i64) -> Result<Job, InputError> {
        let mut envelope = Envelope::message(self.channel, Sender::default(), sent_at_ms, self.data)?;
        envelope.id = self.id.unwrap_or_else(|| MessageId::for_queue_message(message_id));
        Ok(Job::publish(envelope))
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Job {
    /// A fresh broadcast, for every connection.
    pub fn broadcast(envelope: Envelope) -> Self {
        Self { envelope, audience: Audience::Everyone, attempt: 0 }
    }

    /// A shard of a broadcast: `envelope` to the connections of `shard`.
    pub fn shard(envelope: Envelope, shard: Shard) -> Self {
        Self { envelope, audience: Audience::Shard(shard), attempt: 0 }
    }

    /// A shard of a publish: `envelope` to the subscribers of `channel` in `shard`.
    pub fn channel_shard(envelope: Envelope, channel: Channel, shard: Shard) -> Self {
        Self { envelope, audience: Audience::ChannelShard { channel, shard }, attempt: 0 }
    }

    /// A fresh publish, for the subscribers of its envelope's channel.
    pub fn publish(envelope: Envelope) -> Self {
        let audience = envelope.channel.clone().map_or(Audience::Everyone, Audience::Channel);
        Self { envelope, audience, attempt: 0 }
    }

    /// Retry jobs carrying `envelope` to `targets`, as few as fit: each body stays within
    /// `max_body_bytes` (the queue's message size limit), however many targets there are.
    pub fn retries(
        envelope: &Envelope,
        targets: Vec<ConnectionRef>,
        attempt: u32,
        max_body_bytes: usize,
    ) -> Vec<Self> {
        let base = Self { envelope: envelope.clone(), audience: Audience::Connections(Vec::new()), attempt }
            .to_body()
            .len();
        let mut jobs = Vec::new();
        let (mut chunk, mut size) = (Vec::new(), base);
        for target in targets {
            // The target and a comma.
            let cost = serde_json::to_string(&target).map_or(0, |json| json.len()) + 1;
            if !chunk.is_empty() && size + cost > max_body_bytes {
                jobs.push(Self {
                    envelope: envelope.clone(),
                    audience: Audience::Connections(std::mem::take(&mut chunk)),
                    attempt,
                });
                size = base;
            }
            size += cost;
            chunk.push(target);
        }
        if !chunk.is_empty() {
            jobs.push(Self { envelope: envelope.clone(), audience: Audience::Connections(chunk), attempt });
        }
        jobs
    }

    /// Parses a queue message body. A body that fails here can never succeed: it is poison.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
    }

    /// Parses what a queue message may hold: a job the ingress or a worker queued, or a backend's
    /// publish ([`BackendPublish`]), which becomes a job here. `message_id` and `sent_at_ms` are the
    /// queue message's. An error can never succeed: the message is poison.
    pub fn from_queue(body: &str, message_id: &str, sent_at_ms: i64) -> Result<Self, PoisonJob> {
        // Jobs are nearly every message: they are parsed once, and only what is not one is read again.
        let job_error = match Self::parse(body) {
            Ok(job) => return Ok(job),
            Err(err) => err,
        };
        let publish: BackendPublish = serde_json::from_str(body).map_err(|publish_error| {
            PoisonJob(format!("neither a job ({job_error}) nor a backend's publish ({publish_error})"))
        })?;
        publish.into_job(message_id, sent_at_ms).map_err(|err| PoisonJob(err.to_string()))
    }

    pub fn to_body(&self) -> String {
        // As for `Envelope::frame`: nothing in a job can fail to serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broadcast_whose_envelope_would_pass_128_kb_is_refused() {
        let from = ConnectionId::parse("TWegAcC4EowCHnA=").expect("id");
        let fits =
            RawValue::from_string(format!("\"{}\"", "a".repeat(MAX_MESSAGE_BYTES - 200))).expect("raw");
        assert!(Envelope::broadcast(from.clone(), 0, fits).is_ok());
        let too_big =
            RawValue::from_string(format!("\"{}\"", "a".repeat(MAX_MESSAGE_BYTES - 50))).expect("raw");
        let err = Envelope::broadcast(from, 0, too_big).expect_err("too big");
        assert_eq!(err.code(), "message_too_large");
    }

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

    #[test]
    fn a_job_survives_the_queue_round_trip() {
        let from = ConnectionId::parse("TWegAcC4EowCHnA=").expect("id");
        let data = RawValue::from_string("{\"k\":[1,2]}".into()).expect("raw");
        let job = Job::broadcast(Envelope::broadcast(from, 42, data).expect("fits"));
        let back = Job::parse(&job.to_body()).expect("parse");
        assert_eq!(back.envelope.frame(), job.envelope.frame());
        let frame: serde_json::Value = serde_json::from_slice(&job.envelope.frame()).expect("json");
        assert_eq!(frame["type"], "broadcast");
        assert_eq!(frame["from"], "TWegAcC4EowCHnA=");
        assert_eq!(frame["sentAt"], 42);
        assert_eq!(frame["data"], serde_json::json!({"k": [1, 2]}));
    }

    #[test]
    fn retry_jobs_split_their_targets_to_fit_the_queues_message_limit() {
        let data = RawValue::from_string(format!("\"{}\"", "x".repeat(1000))).expect("json");
        let envelope =
            Envelope::broadcast(ConnectionId::parse("TWegAcC4EowCHnA=").expect("id"), 1, data).expect("fits");
        let targets: Vec<ConnectionRef> = (0..500)
            .map(|n| ConnectionRef {
                id: ConnectionId::parse(&format!("conn{n:012}")).expect("id"),
                connected_at_ms: n,
            })
            .collect();
        let jobs = Job::retries(&envelope, targets.clone(), 2, 4096);
        assert!(jobs.len() > 1, "500 targets cannot fit in 4 KB");
        let mut seen = Vec::new();
        for job in &jobs {
            let body = job.to_body();
            assert!(body.len() <= 4096, "{} bytes", body.len());
            let parsed = Job::parse(&body).expect("a retry job parses");
            assert_eq!(parsed.attempt, 2);
            assert_eq!(parsed.envelope.id, envelope.id);
            let Audience::Connections(targets) = parsed.audience else {
                panic!("a retry job names its targets")
            };
            seen.extend(targets);
        }
        assert_eq!(seen, targets, "every target exactly once, in order");
        assert!(Job::retries(&envelope, Vec::new(), 1, 4096).is_empty());
    }

    #[test]
    fn a_fresh_broadcast_is_for_everyone_with_no_attempts_on_the_wire() {
        let data = RawValue::from_string("1".into()).expect("json");
        let envelope =
            Envelope::broadcast(ConnectionId::parse("TWegAcC4EowCHnA=").expect("id"), 1, data).expect("fits");
        let body = Job::broadcast(envelope).to_body();
        assert!(body.contains(r#""audience":"everyone""#) && !body.contains("attempt"), "{body}");
    }

    #[test]
    fn a_publish_job_names_its_channel_and_its_frame_has_no_from_for_a_backend() {
        let channel = Channel::parse("chat/general").expect("channel");
        let data = RawValue::from_string(r#"{"text":"hi"}"#.into()).expect("json");
        let sender = Sender { connection: None, user: Some("alice".into()) };
        let job = Job::publish(Envelope::message(channel.clone(), sender, 7, data).expect("fits"));
        let back = Job::parse(&job.to_body()).expect("parse");
        assert_eq!(back.audience, Audience::Channel(channel));
        let frame: serde_json::Value = serde_json::from_slice(&back.envelope.frame()).expect("json");
        assert_eq!(
            frame,
            serde_json::json!({"type":"message","channel":"chat/general","id":frame["id"],"user":"alice","sentAt":7,"data":{"text":"hi"}})
        );
    }

    #[test]
    fn a_backends_publish_becomes_a_job_for_its_channel_with_the_queue_messages_id() {
        let message_id = "6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b";
        let body = r#"{"action":"publish","channel":"user/alice","data":{"text":"shipped"}}"#;
        let job = Job::from_queue(body, message_id, 99).expect("a publish");
        assert_eq!(job.audience, Audience::Channel(Channel::parse("user/alice").expect("channel")));
        assert_eq!(job.envelope.id.to_string(), message_id, "the same id on every redelivery");
        assert_eq!((job.envelope.from.as_ref(), job.envelope.sent_at), (None, 99));
        let own =
            r#"{"action":"publish","channel":"c","data":1,"id":"00000000-0000-4000-8000-000000000001"}"#;
        assert_eq!(
            Job::from_queue(own, message_id, 1).expect("publish").envelope.id.to_string(),
            "00000000-0000-4000-8000-000000000001"
        );

        let internal = Job::broadcast(
            Envelope::broadcast(
                ConnectionId::parse("abc=").expect("id"),
                1,
                RawValue::from_string("1".into()).expect("raw"),
            )
            .expect("fits"),
        );
        assert_eq!(
            Job::from_queue(&internal.to_body(), message_id, 1).expect("a job").audience,
            Audience::Everyone
        );

        for poison in [
            "",
            "not json",
            r#"{"action":"broadcast","channel":"c","data":1}"#,
            r#"{"action":"publish","channel":"c/*","data":1}"#,
            r#"{"action":"publish","channel":"c"}"#,
            r#"{"action":"publish","channel":"c","data":1,"extra":2}"#,
            r#"{"action":"publish","channel":"c","data":1,"id":"not-a-uuid"}"#,
        ] {
            assert!(Job::from_queue(poison, message_id, 1).is_err(), "{poison}");
        }
        let huge =
            format!(r#"{{"action":"publish","channel":"c","data":"{}"}}"#, "x".repeat(MAX_MESSAGE_BYTES));
        assert!(Job::from_queue(&huge, message_id, 1).is_err(), "past 128 KB once delivered");
    }

    #[test]
    fn jobs_queued_before_audiences_existed_still_parse() {
        let envelope = r#"{"type":"broadcast","id":"6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b","from":"abc=","sentAt":1,"data":1}"#;
        let fresh = Job::parse(&format!(r#"{{"envelope":{envelope}}}"#)).expect("fresh");
        assert_eq!(fresh.audience, Audience::Everyone);
        let retry = Job::parse(&format!(
            r#"{{"envelope":{envelope},"targets":[{{"id":"x1","connectedAt":5}}],"attempt":2}}"#
        ))
        .expect("retry");
        let Audience::Connections(targets) = retry.audience else { panic!("targets") };
        assert_eq!((targets.len(), retry.attempt), (1, 2));
    }

    #[test]
    fn a_shard_job_goes_through_the_queue_and_a_shard_out_of_range_does_not() {
        let data = RawValue::from_string("1".into()).expect("json");
        let envelope = Envelope::broadcast(ConnectionId::parse("abc=").expect("id"), 1, data).expect("fits");
        let body = Job::shard(envelope, Shard::new(3, 8).expect("shard")).to_body();
        assert!(body.contains(r#""audience":{"shard":{"index":3,"of":8}}"#), "{body}");
        let job = Job::parse(&body).expect("a job");
        assert_eq!(job.audience, Audience::Shard(Shard::new(3, 8).expect("shard")));
        for (index, of) in [(8, 8), (0, 0), (0, MAX_SHARDS + 1)] {
            assert!(Shard::new(index, of).is_err());
            let bad = body.replace(r#""index":3,"of":8"#, &format!(r#""index":{index},"of":{of}"#));
            assert!(Job::parse(&bad).is_err(), "{bad}");
        }
        assert!(Shard::WHOLE.holds("anything") && Shard::all(0).count() == 1);
    }

    #[test]
    fn a_channel_shard_job_names_its_channel_and_shard() {
        let data = RawValue::from_string("1".into()).expect("json");
        let channel = Channel::parse("chat/general").expect("channel");
        let envelope = Envelope::message(channel.clone(), Sender::default(), 1, data).expect("fits");
        let body = Job::channel_shard(envelope, channel.clone(), Shard::new(1, 3).expect("shard")).to_body();
        assert!(
            body.contains(
                r#""audience":{"channel_shard":{"channel":"chat/general","shard":{"index":1,"of":3}}}"#
            ),
            "{body}"
        );
        let job = Job::parse(&body).expect("a job");
        assert_eq!(job.audience, Audience::ChannelShard { channel, shard: Shard::new(1, 3).expect("shard") });
        assert!(Job::parse(&body.replace("chat/general", "chat/*")).is_err(), "a wildcard is not a channel");
        assert!(Job::parse(&body.replace(r#""index":1"#, r#""index":3"#)).is_err());
    }

    #[test]
    fn the_shards_of_any_count_divide_the_buckets_between_them_without_gaps_or_overlap() {
        for of in [1, 2, 3, 7, 50, 100, 333, 999, MAX_SHARDS] {
            let mut next = 0;
            for shard in Shard::all(of) {
                let buckets = shard.buckets();
                assert!(buckets.start == next && buckets.end > buckets.start, "{shard}: {buckets:?}");
                next = buckets.end;
            }
            assert_eq!(next, Shard::BUCKETS, "{of}");
        }
        let key = "L0SM9cOFvHcCIhw=";
        let holding: Vec<Shard> = Shard::all(7).filter(|shard| shard.holds(key)).collect();
        assert_eq!(holding.len(), 1);
        assert!(holding[0].buckets().contains(&Shard::bucket(key)));
    }
}
