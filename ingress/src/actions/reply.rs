//! What goes back to the sender through the route response: an action's [`Reply`], or the
//! [`Refusal`] that says why it was not done — each ending with the message's `ref`.

use serde::Serialize;
use serde_json::value::RawValue;
use shared::error::ErrorCode;
use shared::limits::{HISTORY_ANSWER_OVERHEAD, MAX_MESSAGE_BYTES};
use shared::presence::Member;
use shared::{Epoch, InputError, MessageId, Position};

/// The route response: what goes back to the sender.
#[derive(Debug)]
pub enum Reply {
    /// The message itself, as `echo` answers.
    Text(String),
    /// `{"type":"subscribed","channel":"chat/general"}`, with the message's `id` for a publish, and
    /// the channel's position when it keeps history.
    Ack(Ack),
    /// A queued broadcast: answered only when the client gave a `ref` to match the answer to.
    Queued(MessageId),
    /// A channel's kept messages.
    History(HistoryAnswer),
    /// A channel's members.
    Presence(PresenceAnswer),
}

/// An acknowledgement: `subscribed`, `unsubscribed`, `published`.
#[derive(Debug)]
pub struct Ack {
    pub kind: &'static str,
    pub channel: String,
    pub id: Option<MessageId>,
    /// The channel's latest position (a subscribe's), or the message's own (a publish's).
    pub position: Option<Position>,
    /// Whether a subscribe's `since` was recovered; absent when it gave none.
    pub recovered: Option<bool>,
    /// A publish its channel's publish hook dropped: published to no one.
    pub dropped: bool,
}

impl Ack {
    pub fn new(kind: &'static str, channel: &str) -> Self {
        Self { kind, channel: channel.to_owned(), id: None, position: None, recovered: None, dropped: false }
    }
}

/// `{"type":"history","channel":…,"offset":…,"epoch":…,"messages":[…],"more":…}`.
#[derive(Debug)]
pub struct HistoryAnswer {
    pub channel: String,
    /// The channel's latest position; absent when history is off.
    pub position: Option<Position>,
    /// Each message's frame as delivered, oldest first.
    pub messages: Vec<Box<RawValue>>,
    /// Offsets between the first and last message that hold none: skip them, do not wait for them.
    pub missing: Vec<u64>,
    pub more: bool,
}

impl HistoryAnswer {
    /// Leaves out messages until the answer fits in one of API Gateway's messages, with room for its
    /// other fields and the `ref` ([`HISTORY_ANSWER_OVERHEAD`]): the newest go first when
    /// `keep_newest` is false (a read after a position continues there), the oldest otherwise (the
    /// newest messages are the ones asked for). `missing` keeps only the offsets between the
    /// messages left. One message always fits: a publish leaves the same room.
    pub fn fit(&mut self, keep_newest: bool) {
        let room = MAX_MESSAGE_BYTES - HISTORY_ANSWER_OVERHEAD;
        let offset_of = |message: &RawValue| {
            serde_json::from_str::<OffsetOnly>(message.get()).ok().and_then(|m| m.offset)
        };
        let missing_bytes = |missing: &[u64]| -> usize {
            // `"missing":[…],` and each offset with its comma.
            if missing.is_empty() {
                0
            } else {
                13 + missing.iter().map(|o| o.to_string().len() + 1).sum::<usize>()
            }
        };
        let mut size: usize = self.messages.iter().map(|m| m.get().len() + 1).sum();
        while size + missing_bytes(&self.missing) > room && !self.messages.is_empty() {
            let dropped = if keep_newest {
                self.messages.remove(0)
            } else {
                self.messages.remove(self.messages.len() - 1)
            };
            size -= dropped.get().len() + 1;
            self.more = true;
            let first = self.messages.first().and_then(|m| offset_of(m));
            let last = self.messages.last().and_then(|m| offset_of(m));
            match (first, last) {
                (Some(first), Some(last)) => self.missing.retain(|o| (first..=last).contains(o)),
                _ => self.missing.clear(),
            }
        }
    }
}

/// A kept frame's offset, read without the rest of it.
#[derive(serde::Deserialize)]
struct OffsetOnly {
    offset: Option<u64>,
}

/// `{"type":"presence","channel":…,"clients":N,"users":M,"members":[…],"truncated":true}`.
#[derive(Debug)]
pub struct PresenceAnswer {
    pub channel: String,
    /// Exact counts, whatever `members` lists.
    pub clients: usize,
    pub users: usize,
    /// Longest-standing first.
    pub members: Vec<Member>,
    /// Whether members were left out to keep within `max` or 128 KB.
    pub truncated: bool,
}

/// One member as an answer lists it.
#[derive(Serialize)]
struct MemberWire<'a> {
    connection: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    info: Option<Box<RawValue>>,
    since: i64,
}

impl<'a> MemberWire<'a> {
    fn of(member: &'a Member) -> Self {
        Self {
            connection: member.connection.id.as_str(),
            user: member.user.as_deref(),
            info: member.info.as_ref().map(shared::identity::Info::to_raw),
            since: member.since_ms,
        }
    }
}

impl PresenceAnswer {
    /// Keeps the first `max` members, and fewer when they would pass one of API Gateway's messages
    /// (with room for the other fields and the `ref`).
    pub fn fit(&mut self, max: usize) {
        let room = MAX_MESSAGE_BYTES - 1024;
        let mut size = 0;
        let mut keep = 0;
        for member in self.members.iter().take(max) {
            let bytes = serde_json::to_vec(&MemberWire::of(member)).map_or(usize::MAX, |json| json.len() + 1);
            if size + bytes > room {
                break;
            }
            size += bytes;
            keep += 1;
        }
        if keep < self.members.len() {
            self.members.truncate(keep);
            self.truncated = true;
        }
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<&'a Epoch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recovered: Option<bool>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    dropped: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    messages: Option<&'a [Box<RawValue>]>,
    #[serde(skip_serializing_if = "<[u64]>::is_empty")]
    missing: &'a [u64],
    #[serde(skip_serializing_if = "Option::is_none")]
    more: Option<bool>,
    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
    reference: Option<&'a str>,
}

impl<'a> Wire<'a> {
    fn new(kind: &'static str, reference: Option<&'a str>) -> Self {
        Self {
            kind,
            channel: None,
            id: None,
            offset: None,
            epoch: None,
            recovered: None,
            dropped: false,
            messages: None,
            missing: &[],
            more: None,
            reference,
        }
    }
}

impl Reply {
    /// The text sent back, `type` first as `docs/protocol.md` shows it, ending with the message's `ref`.
    pub fn render(self, reference: Option<&str>) -> Option<String> {
        // Strings, numbers, a UUID and already-valid raw JSON cannot fail to serialize.
        let json = |wire: &Wire<'_>| serde_json::to_string(wire).unwrap_or_default();
        match self {
            Self::Text(text) => Some(text),
            Self::Ack(ack) => Some(json(&Wire {
                channel: Some(&ack.channel),
                id: ack.id.as_ref(),
                offset: ack.position.as_ref().map(|p| p.offset),
                epoch: ack.position.as_ref().map(|p| &p.epoch),
                recovered: ack.recovered,
                dropped: ack.dropped,
                ..Wire::new(ack.kind, reference)
            })),
            Self::Queued(id) => {
                reference.map(|_| json(&Wire { id: Some(&id), ..Wire::new("queued", reference) }))
            }
            Self::Presence(answer) => {
                #[derive(Serialize)]
                struct PresenceWire<'a> {
                    #[serde(rename = "type")]
                    kind: &'static str,
                    channel: &'a str,
                    clients: usize,
                    users: usize,
                    members: Vec<MemberWire<'a>>,
                    #[serde(skip_serializing_if = "std::ops::Not::not")]
                    truncated: bool,
                    #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
                    reference: Option<&'a str>,
                }
                Some(
                    serde_json::to_string(&PresenceWire {
                        kind: "presence",
                        channel: &answer.channel,
                        clients: answer.clients,
                        users: answer.users,
                        members: answer.members.iter().map(MemberWire::of).collect(),
                        truncated: answer.truncated,
                        reference,
                    })
                    .unwrap_or_default(),
                )
            }
            Self::History(answer) => Some(json(&Wire {
                channel: Some(&answer.channel),
                offset: answer.position.as_ref().map(|p| p.offset),
                epoch: answer.position.as_ref().map(|p| &p.epoch),
                messages: Some(&answer.messages),
                missing: &answer.missing,
                more: Some(answer.more),
                ..Wire::new("history", reference)
            })),
        }
    }
}

/// Why an action was not done: the client's mistake, or a service that failed.
#[derive(Debug)]
pub enum Refusal {
    Input(InputError),
    /// The store or the queue failed; the message says whether sending again may help.
    Unavailable(String),
    /// The connection's or its user's quota is spent; one more message fits after this long.
    RateLimited {
        retry_after_ms: u64,
        per_user: bool,
    },
    /// The sender's messages have made the fan-out ceiling's deliveries this minute; the next
    /// minute begins in `retry_after_ms`.
    FanoutSpent {
        retry_after_ms: u64,
        per_minute: u64,
    },
}

impl From<InputError> for Refusal {
    fn from(err: InputError) -> Self {
        Self::Input(err)
    }
}

impl Refusal {
    /// The error sent back: `{"error":{"code":…,"message":…},"ref":…}`, and its code.
    pub fn render(&self, reference: Option<&str>) -> (&'static str, String) {
        let (code, message) = match self {
            Self::Input(err) => (err.code(), err.to_string()),
            Self::Unavailable(message) => (ErrorCode::Unavailable.as_str(), message.clone()),
            Self::FanoutSpent { retry_after_ms, per_minute } => (
                ErrorCode::RateLimited.as_str(),
                format!(
                    "this sender's messages reached {per_minute} deliveries this minute; send again in {retry_after_ms} ms"
                ),
            ),
            Self::RateLimited { retry_after_ms, per_user } => (
                ErrorCode::RateLimited.as_str(),
                format!(
                    "{} sending too fast; send again in {retry_after_ms} ms",
                    if *per_user { "this user's connections are" } else { "this connection is" }
                ),
            ),
        };
        let mut body = serde_json::json!({ "error": { "code": code, "message": message } });
        if let Self::RateLimited { retry_after_ms, .. } | Self::FanoutSpent { retry_after_ms, .. } = self {
            body["error"]["retryAfterMs"] = (*retry_after_ms).into();
        }
        if let Some(reference) = reference {
            body["ref"] = reference.into();
        }
        (code, body.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_answers_keep_room_for_their_largest_fields() {
        // The longest channel (5 segments of 50), offset and epoch, `more`, and a `ref` of 64
        // control characters, each escaped to six bytes.
        let channel = vec!["c".repeat(50); 5].join("/");
        let epoch = Epoch::parse(&"e".repeat(Epoch::MAX_CHARS)).expect("epoch");
        let answer = HistoryAnswer {
            channel,
            position: Some(Position { offset: u64::MAX, epoch }),
            messages: Vec::new(),
            missing: Vec::new(),
            more: true,
        };
        let reference = "\u{1}".repeat(64);
        let rendered = Reply::History(answer).render(Some(&reference)).expect("an answer");
        assert_eq!(rendered.len(), 777, "{rendered}");
        assert!(rendered.len() <= HISTORY_ANSWER_OVERHEAD);
    }

    #[test]
    fn a_fitted_answer_lists_only_the_missing_offsets_between_the_messages_it_keeps() {
        let message = |offset: u64, bytes: usize| {
            RawValue::from_string(format!(r#"{{"offset":{offset},"data":"{}"}}"#, "x".repeat(bytes)))
                .expect("raw")
        };
        let mut answer = HistoryAnswer {
            channel: "news".into(),
            position: None,
            messages: vec![message(1, 60_000), message(3, 60_000), message(5, 60_000)],
            missing: vec![2, 4],
            more: false,
        };
        answer.fit(false);
        assert_eq!(answer.messages.len(), 2);
        assert_eq!((answer.missing, answer.more), (vec![2], true), "4 lies past the messages kept");
    }
}
