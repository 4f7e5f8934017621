//! What a connection receives: the envelope around a client's `data`, its id and its sender.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::connection::ConnectionId;
use super::position::{Epoch, Position};
use crate::channel::Channel;
use crate::error::InputError;
use crate::limits::{HISTORY_ANSWER_OVERHEAD, MAX_MESSAGE_BYTES};

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
    /// Where the message stands in its channel's history: the channel's offset and epoch, when the
    /// channel keeps history. Taken once, so that every delivery of the message carries the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<Epoch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<ConnectionId>,
    /// In a `join` or `leave` frame, the member who joined or left.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionId>,
    /// The sender's `sub` when it was authenticated (the member's, in a `join` or `leave`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// In a `join` frame, the member's token's `info` claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<Box<RawValue>>,
    /// Epoch milliseconds at which API Gateway received the message (or the member joined or left).
    pub sent_at: i64,
    /// The client's `data`, byte for byte as it sent it; absent from `join` and `leave` frames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Box<RawValue>>,
}

/// What a position adds to a frame at most: `,"offset":<20 digits>,"epoch":"<32 characters>"`.
const POSITION_BYTES: usize = 80;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeKind {
    Broadcast,
    Message,
    /// A connection became a member of a channel: for its members who asked for `joinLeave`.
    Join,
    /// A member left a channel.
    Leave,
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
        Self::broadcast_from(Some(from), sent_at, data)
    }

    /// A broadcast the app's backend sends (the server API's): from no connection.
    pub fn backend_broadcast(sent_at: i64, data: Box<RawValue>) -> Result<Self, InputError> {
        Self::broadcast_from(None, sent_at, data)
    }

    fn broadcast_from(
        from: Option<ConnectionId>,
        sent_at: i64,
        data: Box<RawValue>,
    ) -> Result<Self, InputError> {
        Self {
            kind: EnvelopeKind::Broadcast,
            channel: None,
            id: MessageId::random(),
            offset: None,
            epoch: None,
            from,
            connection: None,
            user: None,
            info: None,
            sent_at,
            data: Some(data),
        }
        .within_limit()
    }

    /// The same message under the id its publisher chose (the server API's `id`), so that a retry
    /// of it is known for the same message.
    pub fn with_id(mut self, id: MessageId) -> Self {
        self.id = id;
        self
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
            offset: None,
            epoch: None,
            from: sender.connection,
            connection: None,
            user: sender.user,
            info: None,
            sent_at,
            data: Some(data),
        }
        .within_limit()
    }

    /// A `join` (or, with [`EnvelopeKind::Leave`], a `leave`) frame for the members of `channel`
    /// watching it: `connection` and its `user` joined (with its `info`) or left. Its id lets a
    /// client drop the duplicates at-least-once delivery allows, as for messages. Within any limit:
    /// a channel, an id, a `sub` of 128 characters and an `info` of 1 KB.
    pub fn presence(
        kind: EnvelopeKind,
        channel: Channel,
        connection: ConnectionId,
        user: Option<String>,
        info: Option<Box<RawValue>>,
        sent_at: i64,
    ) -> Self {
        Self {
            kind,
            channel: Some(channel),
            id: MessageId::random(),
            offset: None,
            epoch: None,
            from: None,
            connection: Some(connection),
            user,
            info: if kind == EnvelopeKind::Join { info } else { None },
            sent_at,
            data: None,
        }
    }

    fn within_limit(self) -> Result<Self, InputError> {
        // A channel's message gets its position later, and must still fit then, inside a `history`
        // answer: a message that could be published but never read back would stop a client paging
        // through history with `since` for good.
        let room =
            if self.kind == EnvelopeKind::Message { POSITION_BYTES + HISTORY_ANSWER_OVERHEAD } else { 0 };
        if self.frame().len() + room > MAX_MESSAGE_BYTES {
            return Err(InputError::TooLarge { limit: MAX_MESSAGE_BYTES });
        }
        Ok(self)
    }

    /// The same message with `data` in place of its own (a publish hook's change), held to the same
    /// limit.
    pub fn with_data(mut self, data: Box<RawValue>) -> Result<Self, InputError> {
        self.data = Some(data);
        self.within_limit()
    }

    /// The message's position in its channel, once it has one.
    pub fn position(&self) -> Option<Position> {
        Some(Position { offset: self.offset?, epoch: self.epoch.clone()? })
    }

    /// Gives the message its place in its channel's stream.
    pub fn place(&mut self, position: Position) {
        self.offset = Some(position.offset);
        self.epoch = Some(position.epoch);
    }

    /// The bytes posted to each connection.
    pub fn frame(&self) -> Vec<u8> {
        // Serializing a struct of strings, an integer and already-valid raw JSON cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
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
    fn a_join_frame_names_the_member_and_its_info_and_a_leave_frame_no_info() {
        let channel = Channel::parse("room/1").expect("channel");
        let connection = ConnectionId::parse("TWegAcC4EowCHnA=").expect("id");
        let info = RawValue::from_string(r#"{"name":"Alice"}"#.into()).expect("raw");
        let join = Envelope::presence(
            EnvelopeKind::Join,
            channel.clone(),
            connection.clone(),
            Some("alice".into()),
            Some(info.clone()),
            7,
        );
        let frame = String::from_utf8(join.frame()).expect("utf-8");
        assert_eq!(
            frame,
            format!(
                r#"{{"type":"join","channel":"room/1","id":"{}","connection":"TWegAcC4EowCHnA=","user":"alice","info":{{"name":"Alice"}},"sentAt":7}}"#,
                join.id
            )
        );
        let leave = Envelope::presence(EnvelopeKind::Leave, channel, connection, None, Some(info), 8);
        let frame: serde_json::Value = serde_json::from_slice(&leave.frame()).expect("json");
        assert_eq!(frame["type"], "leave");
        assert!(frame.get("info").is_none() && frame.get("user").is_none() && frame.get("data").is_none());
        let back: Envelope = serde_json::from_slice(&leave.frame()).expect("a leave survives the queue");
        assert_eq!(back.kind, EnvelopeKind::Leave);
    }
}
