//! Presence in memory: the local gateway's, and the unit tests'. One lock over every channel, so
//! each join and leave sees and moves the count alone, as DynamoDB's atomic `ADD` does.
//!
//! An emptied channel keeps only its numbering, until the moment DynamoDB's count item would expire
//! ([`COUNT_MARGIN_S`] past its last member's expiry), and is then swept: subscribing to ever new
//! channel names (40,000 a round, `scripts/bench-churn`) holds about 100 bytes each for those hours,
//! not the 1.7 KB of an emptied member map each, for ever.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::port::{COUNT_MARGIN_S, Change, Member, Presence, Roster};
use crate::channel::Channel;
use crate::clock::epoch_ms;
use crate::domain::{ConnectionId, ConnectionRef};
use crate::error::StoreError;
use crate::sync::lock;

/// How often, at most, emptied channels past their time are swept: a sweep walks every channel.
const SWEEP_EVERY_S: i64 = 60;

/// Every channel's members.
#[derive(Debug, Default)]
pub struct MemoryPresence {
    rooms: Mutex<Rooms>,
}

#[derive(Debug, Default)]
struct Rooms {
    by_channel: HashMap<Channel, Room>,
    /// Epoch seconds of the last sweep.
    swept_at_s: i64,
}

#[derive(Debug, Default)]
struct Room {
    members: BTreeMap<ConnectionId, Member>,
    seq: u64,
    /// Epoch seconds after which the room, once empty, is forgotten, numbering and all.
    expires_at_s: i64,
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

impl Rooms {
    /// Forgets the empty rooms whose time has passed, once a [`SWEEP_EVERY_S`] at most.
    fn sweep(&mut self, now_s: i64) {
        if now_s < self.swept_at_s + SWEEP_EVERY_S {
            return;
        }
        self.swept_at_s = now_s;
        self.by_channel.retain(|_, room| !room.members.is_empty() || room.expires_at_s > now_s);
        if self.by_channel.capacity() > 4 * self.by_channel.len().max(64) {
            self.by_channel.shrink_to_fit();
        }
    }
}

impl MemoryPresence {
    pub fn new() -> Self {
        Self::default()
    }

    /// Channels held, emptied ones included: what the sweep keeps in bounds.
    pub fn channels(&self) -> usize {
        lock(&self.rooms).by_channel.len()
    }

    /// Sweeps as of `now_s` (epoch seconds), whenever the last sweep was: what joins and leaves do
    /// once a minute, for tests that move time.
    pub fn sweep_at(&self, now_s: i64) {
        let mut rooms = lock(&self.rooms);
        rooms.swept_at_s = i64::MIN / 2;
        rooms.sweep(now_s);
    }
}

#[async_trait]
impl Presence for MemoryPresence {
    async fn join(&self, channel: &Channel, member: &Member) -> Result<Option<Change>, StoreError> {
        let mut rooms = lock(&self.rooms);
        rooms.sweep(epoch_ms() / 1000);
        let room = rooms.by_channel.entry(channel.clone()).or_default();
        if let Some(already) = room.members.get_mut(&member.connection.id) {
            already.join_leave = member.join_leave;
            return Ok(None);
        }
        room.members.insert(member.connection.id.clone(), member.clone());
        room.seq += 1;
        room.expires_at_s = room.expires_at_s.max(member.expires_at_s.saturating_add(COUNT_MARGIN_S));
        Ok(Some(room.change(member.clone())))
    }

    async fn leave(
        &self,
        channel: &Channel,
        connection: &ConnectionId,
    ) -> Result<Option<Change>, StoreError> {
        let mut rooms = lock(&self.rooms);
        rooms.sweep(epoch_ms() / 1000);
        let Some(room) = rooms.by_channel.get_mut(channel) else { return Ok(None) };
        let Some(member) = room.members.remove(connection) else { return Ok(None) };
        room.seq += 1;
        if room.members.is_empty() {
            // An emptied map keeps its node (1.7 KB of members' room); a new one holds nothing.
            room.members = BTreeMap::new();
        }
        Ok(Some(room.change(member)))
    }

    async fn members(&self, channel: &Channel, now_s: i64) -> Result<Roster, StoreError> {
        let rooms = lock(&self.rooms);
        let mut roster = Roster::default();
        for member in rooms.by_channel.get(channel).map(|room| room.members.values()).into_iter().flatten() {
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
            .by_channel
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

    #[tokio::test]
    async fn an_emptied_channel_keeps_its_numbering_until_its_count_would_expire_and_is_then_swept() {
        let presence = MemoryPresence::new();
        let now_s = epoch_ms() / 1000;
        let mut joiner = member("a1", None, false);
        joiner.expires_at_s = now_s + 100;
        for n in 0..1000 {
            let room = Channel::parse(&format!("room/{n}")).expect("channel");
            presence.join(&room, &joiner).await.expect("join");
            presence.leave(&room, &joiner.connection.id).await.expect("leave");
        }
        let room = Channel::parse("room/7").expect("channel");
        let again = presence.join(&room, &joiner).await.expect("join").expect("a change");
        assert_eq!((again.clients, again.seq), (1, 3), "numbered on from where it was");
        presence.leave(&room, &joiner.connection.id).await.expect("leave");
        presence.sweep_at(now_s + 100 + COUNT_MARGIN_S - 1);
        assert_eq!(presence.channels(), 1000, "not before the count would expire");
        let mut staying = member("b1", None, false);
        staying.expires_at_s = i64::MAX / 2;
        presence.join(&Channel::parse("room/kept").expect("channel"), &staying).await.expect("join");
        presence.sweep_at(now_s + 100 + COUNT_MARGIN_S);
        assert_eq!(presence.channels(), 1, "only the room with a member is left");
    }
}
