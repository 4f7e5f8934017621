//! The port itself, and the events: `ChannelOccupied` (a channel's first member), `ChannelVacated`
//! (its last gone), `MemberJoined`, `MemberLeft`, each with the channel, the connection and its
//! user, the channel's member count after the change and the change's number (`seq`, increasing per
//! channel: EventBridge does not keep order, and with it a consumer can).

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::channel::Channel;
use crate::domain::ConnectionId;
use crate::presence::Change;

/// Every event's `source`: one name, so a rule matches this project's events wherever they come
/// from; a bus per stack tells stacks apart.
pub const SOURCE: &str = "serverless-websocket";

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LifecycleKind {
    ChannelOccupied,
    ChannelVacated,
    MemberJoined,
    MemberLeft,
}

impl LifecycleKind {
    /// The event's `detail-type`.
    pub fn detail_type(self) -> &'static str {
        match self {
            Self::ChannelOccupied => "ChannelOccupied",
            Self::ChannelVacated => "ChannelVacated",
            Self::MemberJoined => "MemberJoined",
            Self::MemberLeft => "MemberLeft",
        }
    }
}

/// One event for the backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LifecycleEvent {
    pub kind: LifecycleKind,
    pub channel: Channel,
    pub connection: ConnectionId,
    pub user: Option<String>,
    /// The channel's members after the change.
    pub clients: u64,
    pub seq: u64,
    /// Epoch milliseconds.
    pub at_ms: i64,
}

impl LifecycleEvent {
    /// The events of a join: `ChannelOccupied` first when it is the channel's first member, then
    /// `MemberJoined`.
    pub fn of_join(channel: &Channel, change: &Change, at_ms: i64) -> Vec<Self> {
        let occupied = (change.clients == 1).then_some(LifecycleKind::ChannelOccupied);
        Self::of(channel, change, at_ms, occupied.into_iter().chain([LifecycleKind::MemberJoined]))
    }

    /// The events of a leave: `MemberLeft`, then `ChannelVacated` when it was the last member.
    pub fn of_leave(channel: &Channel, change: &Change, at_ms: i64) -> Vec<Self> {
        let vacated = (change.clients == 0).then_some(LifecycleKind::ChannelVacated);
        Self::of(channel, change, at_ms, [LifecycleKind::MemberLeft].into_iter().chain(vacated))
    }

    fn of(
        channel: &Channel,
        change: &Change,
        at_ms: i64,
        kinds: impl Iterator<Item = LifecycleKind>,
    ) -> Vec<Self> {
        kinds
            .map(|kind| Self {
                kind,
                channel: channel.clone(),
                connection: change.member.connection.id.clone(),
                user: change.member.user.clone(),
                clients: change.clients,
                seq: change.seq,
                at_ms,
            })
            .collect()
    }

    /// The event's `detail`: `{"channel","connection","user","clients","seq"}` (`user` absent for an
    /// anonymous connection).
    pub fn detail(&self) -> Value {
        let mut detail = json!({
            "channel": self.channel.as_str(),
            "connection": self.connection.as_str(),
            "clients": self.clients,
            "seq": self.seq,
        });
        if let (Some(user), Some(object)) = (&self.user, detail.as_object_mut()) {
            object.insert("user".into(), Value::from(user.as_str()));
        }
        detail
    }

    /// The event as an EventBridge rule's target receives it.
    pub fn delivered(&self, id: &str, account: &str, region: &str) -> Value {
        let time = time::OffsetDateTime::from_unix_timestamp(self.at_ms.div_euclid(1000))
            .ok()
            .and_then(|at| at.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default();
        json!({
            "version": "0",
            "id": id,
            "detail-type": self.kind.detail_type(),
            "source": SOURCE,
            "account": account,
            "time": time,
            "region": region,
            "resources": [],
            "detail": self.detail(),
        })
    }
}

/// Why events were not delivered.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// Throttling, a timeout, a 5xx, entries the bus failed: the same events may go later.
    #[error("the events could not be delivered: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Misconfiguration (no such bus, no permission): retrying will not help.
    #[error("the events were refused: {0}")]
    Rejected(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl EventsError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Where lifecycle events go. Best effort: a handler logs a failure and goes on, for presence
/// itself is already right.
#[async_trait]
pub trait Events: Send + Sync {
    async fn publish(&self, events: &[LifecycleEvent]) -> Result<(), EventsError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ConnectionRef;
    use crate::presence::Member;

    fn change(clients: u64, user: Option<&str>) -> Change {
        Change {
            member: Member {
                connection: ConnectionRef {
                    id: ConnectionId::parse("abc=").expect("id"),
                    connected_at_ms: 1,
                },
                user: user.map(str::to_owned),
                info: None,
                since_ms: 1,
                join_leave: false,
                expires_at_s: 1,
            },
            clients,
            seq: 9,
            watchers: 0,
        }
    }

    #[test]
    fn a_first_join_occupies_the_channel_before_the_member_joins_and_a_last_leave_vacates_it_after() {
        let room = Channel::parse("room/1").expect("channel");
        let kinds = |events: Vec<LifecycleEvent>| events.into_iter().map(|e| e.kind).collect::<Vec<_>>();
        use LifecycleKind::*;
        assert_eq!(
            kinds(LifecycleEvent::of_join(&room, &change(1, None), 0)),
            [ChannelOccupied, MemberJoined]
        );
        assert_eq!(kinds(LifecycleEvent::of_join(&room, &change(2, None), 0)), [MemberJoined]);
        assert_eq!(kinds(LifecycleEvent::of_leave(&room, &change(1, None), 0)), [MemberLeft]);
        assert_eq!(kinds(LifecycleEvent::of_leave(&room, &change(0, None), 0)), [MemberLeft, ChannelVacated]);
    }

    #[test]
    fn an_event_is_delivered_as_an_eventbridge_rule_target_receives_it() {
        let room = Channel::parse("room/1").expect("channel");
        let event = &LifecycleEvent::of_join(&room, &change(1, Some("alice")), 1_795_708_288_148)[0];
        assert_eq!(
            event.delivered("e-1", "000000000000", "us-east-1"),
            json!({
                "version": "0", "id": "e-1", "detail-type": "ChannelOccupied", "source": "serverless-websocket",
                "account": "000000000000", "time": "2026-11-26T15:51:28Z", "region": "us-east-1",
                "resources": [],
                "detail": {"channel": "room/1", "connection": "abc=", "user": "alice", "clients": 1, "seq": 9}
            })
        );
        assert!(event.detail().get("user").is_some());
        let anonymous = &LifecycleEvent::of_join(&room, &change(2, None), 0)[0];
        assert!(anonymous.detail().get("user").is_none());
    }
}
