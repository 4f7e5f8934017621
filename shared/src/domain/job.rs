//! Jobs: the unit of work on the queue, an envelope and its [`Audience`] — who receives it. The
//! ingress queues them, backends queue a [`BackendPublish`] that becomes one, and the worker splits a
//! large audience into shard jobs and puts unreached connections back in retry jobs.

use serde::{Deserialize, Serialize};

use super::connection::ConnectionRef;
use super::envelope::{Envelope, MessageId, Sender};
use super::publish::BackendPublish;
use super::shard::Shard;
use crate::channel::Channel;
use crate::error::InputError;

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
    /// The members of a channel that asked for its `join` and `leave` frames (`joinLeave`), found
    /// in its presence: one such frame's audience. Never split: presence channels are small.
    Watchers(Channel),
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

    /// A message for one connection alone: what a recovering subscriber missed, replayed.
    pub fn to(envelope: Envelope, connection: ConnectionRef) -> Self {
        Self { envelope, audience: Audience::Connections(vec![connection]), attempt: 0 }
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

    /// The job delivering a backend's publish; `message_id` (the queue message's) gives it a stable id
    /// when the backend set none.
    pub fn from_backend(
        publish: BackendPublish,
        message_id: &str,
        sent_at_ms: i64,
    ) -> Result<Self, InputError> {
        let mut envelope = Envelope::message(publish.channel, Sender::default(), sent_at_ms, publish.data)?;
        envelope.id = publish.id.unwrap_or_else(|| MessageId::for_queue_message(message_id));
        Ok(Self::publish(envelope))
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
        Self::from_backend(publish, message_id, sent_at_ms).map_err(|err| PoisonJob(err.to_string()))
    }

    pub fn to_body(&self) -> String {
        // As for `Envelope::frame`: nothing in a job can fail to serialize.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::domain::{ConnectionId, MAX_SHARDS};
    use crate::limits::MAX_MESSAGE_BYTES;

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
}
