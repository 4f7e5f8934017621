//! The domain: connection ids, what a client may send, and what the worker delivers.
//!
//! Everything that arrives from the network is turned into one of these types by a `parse` function
//! that either succeeds or says exactly what is wrong; past that point the code never re-checks.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::InputError;
use crate::limits::{MAX_CONNECTION_ID_LEN, MAX_JSON_DEPTH, MAX_MESSAGE_BYTES};

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

/// A client message after parsing: what the `$default` route must do with it.
#[derive(Debug)]
pub enum Inbound {
    /// Send the message back to its sender unchanged: plain text, or `{"action":"echo",...}`.
    Echo,
    /// Deliver `data` to every connection, the sender included.
    Broadcast { data: Box<RawValue> },
}

/// The actions a JSON message may name.
pub const ACTIONS: &[&str] = &["echo", "broadcast"];

impl Inbound {
    /// Parses a text message. Text that does not start with `{` (after white space) is plain text; text
    /// that does must be a JSON object with a known string `action` and a non-null `data`.
    pub fn parse(body: &str) -> Result<Self, InputError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(InputError::TooLarge { limit: MAX_MESSAGE_BYTES });
        }
        let trimmed = body.trim_start();
        if trimmed.is_empty() {
            return Err(InputError::Empty);
        }
        if !trimmed.starts_with('{') {
            return Ok(Self::Echo);
        }

        #[derive(Deserialize)]
        struct Wire {
            action: Option<serde_json::Value>,
            data: Option<Box<RawValue>>,
        }
        let wire: Wire = serde_json::from_str(body).map_err(InputError::from_json)?;
        if json_depth(body) > MAX_JSON_DEPTH {
            return Err(InputError::TooDeeplyNested { limit: MAX_JSON_DEPTH });
        }
        let action = match wire.action {
            None | Some(serde_json::Value::Null) => return Err(InputError::MissingAction),
            Some(serde_json::Value::String(action)) => action,
            Some(other) => return Err(InputError::InvalidAction { found: json_type(&other) }),
        };
        // An unknown action is the first thing to tell its sender, whatever else is missing.
        let inbound = match action.as_str() {
            "echo" => |_| Self::Echo,
            "broadcast" => |data| Self::Broadcast { data },
            _ => return Err(InputError::UnknownAction { action: truncate(&action, 64) }),
        };
        // `"data": null` deserializes as `None`: a broadcast of nothing is a mistake, not a message.
        wire.data.map(inbound).ok_or(InputError::MissingData)
    }
}

/// The deepest nesting of arrays and objects in a document already known to be valid JSON.
fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// Keeps error messages short when a client sends a huge action name.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A unique id for one broadcast, so clients can drop the duplicates that at-least-once delivery allows.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(uuid::Uuid);

impl MessageId {
    pub fn random() -> Self {
        Self(uuid::Uuid::new_v4())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The frame every connection receives for a broadcast:
/// `{"type":"broadcast","id":"…","from":"…","sentAt":1732630000000,"data":…}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    #[serde(rename = "type")]
    pub kind: EnvelopeKind,
    pub id: MessageId,
    pub from: ConnectionId,
    /// Epoch milliseconds at which API Gateway received the message.
    pub sent_at: i64,
    /// The client's `data`, byte for byte as it sent it.
    pub data: Box<RawValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeKind {
    Broadcast,
}

impl Envelope {
    /// Builds the broadcast envelope, refusing one whose frame would pass API Gateway's 128 KB limit:
    /// better to tell the sender now than to have every `@connections` call fail later.
    pub fn broadcast(from: ConnectionId, sent_at: i64, data: Box<RawValue>) -> Result<Self, InputError> {
        let envelope = Self { kind: EnvelopeKind::Broadcast, id: MessageId::random(), from, sent_at, data };
        if envelope.frame().len() > MAX_MESSAGE_BYTES {
            return Err(InputError::TooLarge { limit: MAX_MESSAGE_BYTES });
        }
        Ok(envelope)
    }

    /// The bytes posted to each connection.
    pub fn frame(&self) -> Vec<u8> {
        // Serializing a struct of strings, an integer and already-valid raw JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// One unit of work on the queue: an envelope to deliver to every connection, or, for a retry, to
/// the connections an earlier attempt could not reach.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub envelope: Envelope,
    /// Present on a retry job: only these connections still need the envelope. Everyone else
    /// already has it, so retrying the whole broadcast would deliver it to them twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub targets: Option<Vec<ConnectionRef>>,
    /// How many worker invocations have already tried this envelope (0 for a fresh broadcast).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl Job {
    /// A fresh broadcast, for every connection.
    pub fn broadcast(envelope: Envelope) -> Self {
        Self { envelope, targets: None, attempt: 0 }
    }

    /// Retry jobs carrying `envelope` to `targets`, as few as fit: each body stays within
    /// `max_body_bytes` (the queue's message size limit), however many targets there are.
    pub fn retries(
        envelope: &Envelope,
        targets: Vec<ConnectionRef>,
        attempt: u32,
        max_body_bytes: usize,
    ) -> Vec<Self> {
        let base = Self { envelope: envelope.clone(), targets: Some(Vec::new()), attempt }.to_body().len();
        let mut jobs = Vec::new();
        let (mut chunk, mut size) = (Vec::new(), base);
        for target in targets {
            // The target and a comma.
            let cost = serde_json::to_string(&target).map_or(0, |json| json.len()) + 1;
            if !chunk.is_empty() && size + cost > max_body_bytes {
                jobs.push(Self {
                    envelope: envelope.clone(),
                    targets: Some(std::mem::take(&mut chunk)),
                    attempt,
                });
                size = base;
            }
            size += cost;
            chunk.push(target);
        }
        if !chunk.is_empty() {
            jobs.push(Self { envelope: envelope.clone(), targets: Some(chunk), attempt });
        }
        jobs
    }

    /// Parses a queue message body. A body that fails here can never succeed: it is poison.
    pub fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body)
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
    fn plain_text_is_echoed() {
        assert!(matches!(Inbound::parse("Hello"), Ok(Inbound::Echo)));
        assert!(matches!(Inbound::parse("  [1,2]"), Ok(Inbound::Echo)));
    }

    #[test]
    fn an_echo_action_is_echoed() {
        assert!(matches!(Inbound::parse(r#"{"action":"echo","data":"x"}"#), Ok(Inbound::Echo)));
    }

    #[test]
    fn a_broadcast_keeps_its_data_byte_for_byte() {
        let Ok(Inbound::Broadcast { data }) =
            Inbound::parse(r#" {"action":"broadcast","data":{"b": 1.50, "a":[ ]}}"#)
        else {
            panic!("expected a broadcast");
        };
        assert_eq!(data.get(), r#"{"b": 1.50, "a":[ ]}"#);
    }

    #[test]
    fn every_malformed_json_message_has_its_own_code() {
        let cases = [
            ("", "empty_message"),
            ("   ", "empty_message"),
            ("{", "invalid_json"),
            (r#"{"action":"broadcast","data":"x"} trailing"#, "invalid_json"),
            (r#"{"data":"x"}"#, "missing_action"),
            (r#"{"action":null,"data":"x"}"#, "missing_action"),
            (r#"{"action":7,"data":"x"}"#, "invalid_action"),
            (r#"{"action":"shout","data":"x"}"#, "unknown_action"),
            (r#"{"action":"broadcast"}"#, "missing_data"),
            (r#"{"action":"broadcast","data":null}"#, "missing_data"),
            (r#"{"action":"echo","action":"echo","data":1}"#, "invalid_json"),
        ];
        for (body, code) in cases {
            let err = Inbound::parse(body).expect_err(body);
            assert_eq!(err.code(), code, "{body}");
        }
    }

    #[test]
    fn an_unknown_action_is_named_before_missing_data() {
        assert_eq!(Inbound::parse(r#"{"action":"shout"}"#).expect_err("unknown").code(), "unknown_action");
        assert_eq!(Inbound::parse(r#"{"action":"broadcast"}"#).expect_err("no data").code(), "missing_data");
        assert_eq!(Inbound::parse(r#"{"action":"echo"}"#).expect_err("no data").code(), "missing_data");
    }

    #[test]
    fn deeply_nested_json_is_refused_with_its_own_code() {
        let nested = |depth: usize| {
            format!(r#"{{"action":"broadcast","data":{}{}}}"#, "[".repeat(depth), "]".repeat(depth))
        };
        assert!(Inbound::parse(&nested(MAX_JSON_DEPTH - 1)).is_ok());
        assert_eq!(Inbound::parse(&nested(MAX_JSON_DEPTH)).expect_err("nested").code(), "too_deeply_nested");
        assert_eq!(Inbound::parse(&nested(10_000)).expect_err("nested").code(), "too_deeply_nested");
        // Brackets inside strings are text, not nesting.
        let quoted = format!(r#"{{"action":"broadcast","data":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
        assert!(Inbound::parse(&quoted).is_ok());
    }

    #[test]
    fn a_huge_action_name_is_truncated_in_the_error() {
        let body = format!(r#"{{"action":"{}","data":1}}"#, "x".repeat(10_000));
        let err = Inbound::parse(&body).expect_err("unknown");
        assert!(err.to_string().len() < 200, "{err}");
    }

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
            seen.extend(parsed.targets.expect("targets"));
        }
        assert_eq!(seen, targets, "every target exactly once, in order");
        assert!(Job::retries(&envelope, Vec::new(), 1, 4096).is_empty());
    }

    #[test]
    fn a_fresh_broadcast_has_no_targets_and_no_attempts_on_the_wire() {
        let data = RawValue::from_string("1".into()).expect("json");
        let envelope =
            Envelope::broadcast(ConnectionId::parse("TWegAcC4EowCHnA=").expect("id"), 1, data).expect("fits");
        let body = Job::broadcast(envelope).to_body();
        assert!(!body.contains("targets") && !body.contains("attempt"), "{body}");
    }
}
