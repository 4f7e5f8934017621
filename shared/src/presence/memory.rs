//! Presence in memory: the local gateway's, and the unit tests'. One lock over every channel, so
//! each join and leave sees and moves the count alone, as DynamoDB's atomic `ADD` does.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::port::{Change, Member, Presence, Roster};
use crate::channel::Channel;
use crate::domain::{ConnectionId, ConnectionRef};
use crate::error::StoreError;
use crate::sync::lock;

/// Every channel's members.
#[derive(Debug, Default)]
pub struct MemoryPresence {
    rooms: Mutex<HashMap<Channel, Room>>,
}

#[derive(Debug, Default)]
struct Room {
    members: BTreeMap<ConnectionId, Member>,
    seq: u64,
}

impl Room {
    /// The change that made the room what it is now: its counts, read off its members.
    fn change(&self, member: Member) -> Change {
        Change {
            member,
            clients: self.members.len() as u64,
            seq: self.seq,
            watchers: self.members.values().filter(|m| m.join_leave).count() as u64,
        }
    }
}

impl MemoryPresence {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn join(&self, channel: &Channel, member: &Member) -> Result<Option<Change>, StoreError> {
        let mut rooms = lock(&self.rooms);
        let room = rooms.entry(channel.clone()).or_default();
        if let Some(already) = room.members.get_mut(&member.connection.id) {
            already.join_leave = member.join_leave;
            return Ok(None);
        }
        room.members.insert(member.connection.id.clone(), member.clone());
        room.seq += 1;
        Ok(Some(room.change(member.clone())))
    }

    async fn leave(
        &self,
        channel: &Channel,
        connection: &ConnectionId,
    ) -> Result<Option<Change>, StoreError> {
        let mut rooms = lock(&self.rooms);
        let Some(room) = rooms.get_mut(channel) else { return Ok(None) };
        let Some(member) = room.members.remove(connection) else { return Ok(None) };
        room.seq += 1;
        // An empty room is kept, with its numbering: a channel's `seq` only grows.
        Ok(Some(room.change(member)))
    }

    async fn members(&self, channel: &Channel, now_s: i64) -> Result<Roster, StoreError> {
        let rooms = lock(&self.rooms);
        let mut roster = Roster::default();
        for member in rooms.get(channel).map(|room| room.members.values()).into_iter().flatten() {
            if member.expires_at_s <= now_s {
                roster.expired.push(member.connection.id.clone());
            } else {
                roster.members.push(member.clone());
            }
        }
        Ok(roster)
    }

    fn watchers(&self, channel: &Channel) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let watching: Vec<ConnectionRef> = lock(&self.rooms)
            .get(channel)
            .map(|room| {
                room.members.values().filter(|m| m.join_leave).map(|m| m.connection.clone()).collect()
            })
            .unwrap_or_default();
        stream::iter([Ok(watching)]).boxed()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    pub(crate) fn member(id: &str, user: Option<&str>, join_leave: bool) -> Member {
        Member {
            connection: ConnectionRef { id: ConnectionId::parse(id).expect("id"), connected_at_ms: 1 },
            user: user.map(str::to_owned),
            info: None,
            since_ms: 5,
            join_leave,
            expires_at_s: i64::MAX,
        }
    }

    #[tokio::test]
    async fn joining_twice_counts_once_and_leaving_a_channel_one_is_not_in_changes_nothing() {
        let presence = MemoryPresence::new();
        let room = Channel::parse("room/1").expect("channel");
        let first = presence.join(&room, &member("a1", Some("alice"), false)).await.expect("join");
        assert_eq!(first.map(|c| (c.clients, c.seq)), Some((1, 1)), "the first member occupies it");
        assert_eq!(presence.join(&room, &member("a1", Some("alice"), true)).await.expect("again"), None);
        let watchers: Vec<_> = presence.watchers(&room).collect::<Vec<_>>().await;
        assert_eq!(watchers.len(), 1);
        assert_eq!(watchers[0].as_ref().expect("page").len(), 1, "joining again updates joinLeave");
        let second = presence.join(&room, &member("b1", None, false)).await.expect("join");
        assert_eq!(second.map(|c| (c.clients, c.seq, c.watchers)), Some((2, 2, 1)), "a1 watches");
        assert_eq!(
            presence.leave(&room, &ConnectionId::parse("zz").expect("id")).await.expect("leave"),
            None
        );
        let left = presence.leave(&room, &ConnectionId::parse("a1").expect("id")).await.expect("leave");
        assert_eq!(
            left.map(|c| (c.member.user, c.clients, c.seq, c.watchers)),
            Some((Some("alice".into()), 1, 3, 0))
        );
        let last = presence.leave(&room, &ConnectionId::parse("b1").expect("id")).await.expect("leave");
        assert_eq!(last.map(|c| c.clients), Some(0), "the last member vacates it");
        assert_eq!(presence.members(&room, 0).await.expect("members"), Roster::default());
    }

    #[tokio::test]
    async fn an_expired_member_is_listed_as_expired_not_as_a_member() {
        let presence = MemoryPresence::new();
        let room = Channel::parse("room/1").expect("channel");
        let mut old = member("old", None, false);
        old.expires_at_s = 100;
        presence.join(&room, &old).await.expect("join");
        presence.join(&room, &member("new", None, false)).await.expect("join");
        let roster = presence.members(&room, 100).await.expect("members");
        assert_eq!(roster.expired, vec![ConnectionId::parse("old").expect("id")]);
        assert_eq!(roster.members.len(), 1);
    }

    #[tokio::test]
    async fn concurrent_joins_and_leaves_see_exactly_one_first_and_one_last_member() {
        let presence = Arc::new(MemoryPresence::new());
        let room = Channel::parse("room/1").expect("channel");
        for _round in 0..20 {
            let joins = (0..50).map(|n| {
                let (presence, room) = (Arc::clone(&presence), room.clone());
                tokio::spawn(
                    async move { presence.join(&room, &member(&format!("c{n}"), None, false)).await },
                )
            });
            let joined: Vec<_> = futures::future::join_all(joins).await;
            let firsts = joined.iter().filter(|j| matches!(j, Ok(Ok(Some(c))) if c.clients == 1)).count();
            assert_eq!(firsts, 1);
            let leaves = (0..50).map(|n| {
                let (presence, room) = (Arc::clone(&presence), room.clone());
                tokio::spawn(async move {
                    presence.leave(&room, &ConnectionId::parse(&format!("c{n}")).expect("id")).await
                })
            });
            let left: Vec<_> = futures::future::join_all(leaves).await;
            let lasts = left.iter().filter(|l| matches!(l, Ok(Ok(Some(c))) if c.clients == 0)).count();
            assert_eq!(lasts, 1);
        }
    }
}
