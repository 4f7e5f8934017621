//! The port itself: what the handlers ask of presence.
//!
//! A connection is a member of a channel while it is subscribed to exactly that channel (a
//! wildcard subscription makes no one a member). Joining and leaving are idempotent, and each real
//! change moves the channel's count by one atomically and is numbered (`seq`), so that a first
//! member (`clients == 1` after a join) and a last (`clients == 0` after a leave) are each seen by
//! exactly one caller, however many join and leave at once.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::channel::Channel;
use crate::domain::{ConnectionId, ConnectionRef};
use crate::error::StoreError;
use crate::identity::{Identity, Info};

/// How long a channel's count (and with it its numbering, `seq`) outlives the expiry of the member
/// who last joined: past every other member's (each expires API Gateway's longest connection after
/// it was made, at most). Both adapters forget an empty channel then, and not before: a channel
/// emptied and filled again meanwhile goes on numbering its changes where it was.
pub const COUNT_MARGIN_S: i64 = 3 * 3600;

/// One member of a channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub connection: ConnectionRef,
    /// The token's `sub`; `None` for an anonymous connection.
    pub user: Option<String>,
    pub info: Option<Info>,
    /// Epoch milliseconds at which it joined.
    pub since_ms: i64,
    /// Whether it receives the channel's `join` and `leave` frames.
    pub join_leave: bool,
    /// Epoch seconds after which it is no member whatever happened: its connection's own expiry,
    /// for a `$disconnect` may never come.
    pub expires_at_s: i64,
}

impl Member {
    /// `connection` as a member from `since_ms`: its user and `info` from its token, expiring with
    /// the connection's own record.
    pub fn new(connection: ConnectionRef, identity: &Identity, since_ms: i64, join_leave: bool) -> Self {
        Self {
            expires_at_s: crate::limits::expires_at_s(connection.connected_at_ms),
            connection,
            user: identity.user().map(str::to_owned),
            info: identity.info().cloned(),
            since_ms,
            join_leave,
        }
    }
}

/// A membership that changed: the member, and the channel's count and change number after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub member: Member,
    /// Members after the change: 1 after a join is a channel just occupied, 0 after a leave one
    /// just vacated.
    pub clients: u64,
    /// The channel's changes so far, this one included: increasing, so that whoever receives the
    /// events out of order can put them back in order.
    pub seq: u64,
    /// Members after the change that receive `join` and `leave` frames: none, and there is no
    /// frame to send.
    pub watchers: u64,
}

/// A channel's members as read, and those whose connection expired without a leave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roster {
    /// Every member not expired, in no particular order.
    pub members: Vec<Member>,
    /// Members past their expiry: gone without a `$disconnect`, to be made to leave.
    pub expired: Vec<ConnectionId>,
}

/// Where each channel's members are kept.
#[async_trait]
pub trait Presence: Send + Sync {
    /// Makes `member` a member of `channel`: the change, or `None` when it already was one (its
    /// `join_leave` is updated all the same).
    async fn join(&self, channel: &Channel, member: &Member) -> Result<Option<Change>, StoreError>;

    /// Ends `connection`'s membership of `channel`: the change, or `None` when it was no member.
    async fn leave(&self, channel: &Channel, connection: &ConnectionId)
    -> Result<Option<Change>, StoreError>;

    /// Every member of `channel`, read whole, at `now_s` (epoch seconds).
    async fn members(&self, channel: &Channel, now_s: i64) -> Result<Roster, StoreError>;

    /// The members of `channel` that asked for its `join` and `leave` frames, a page at a time.
    fn watchers(&self, channel: &Channel) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>>;
}
