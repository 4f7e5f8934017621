//! What a membership change sets off, the same wherever it happens (a subscribe, an unsubscribe,
//! `$disconnect`, the worker pruning a gone connection, a member found expired): the `join` or
//! `leave` frame queued for the channel's watchers (the worker posts it, like any message), and the
//! lifecycle events sent to the backend. Both are best effort; the membership itself is the truth.

use crate::channel::{Channel, ChannelPattern};
use crate::domain::{Audience, ConnectionId, Envelope, EnvelopeKind, Job};
use crate::error::StoreError;
use crate::events::{Events, LifecycleEvent};
use crate::queue::Queue;

use super::port::{Change, Member, Presence};

/// The ports a membership change uses.
#[derive(Clone, Copy)]
pub struct Membership<'a> {
    pub presence: &'a dyn Presence,
    pub queue: &'a dyn Queue,
    pub events: Option<&'a dyn Events>,
}

impl std::fmt::Debug for Membership<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership").field("events", &self.events.is_some()).finish_non_exhaustive()
    }
}

impl<'a> Membership<'a> {
    /// The membership a function's ports make, when presence is on.
    pub fn of(
        presence: Option<&'a std::sync::Arc<dyn Presence>>,
        queue: &'a std::sync::Arc<dyn Queue>,
        events: Option<&'a std::sync::Arc<dyn Events>>,
    ) -> Option<Self> {
        Some(Self { presence: presence?.as_ref(), queue: queue.as_ref(), events: events.map(|e| e.as_ref()) })
    }

    /// Makes `member` a member of `channel`, and announces it when it was not one.
    pub async fn join(&self, channel: &Channel, member: &Member, now_ms: i64) -> Result<(), StoreError> {
        if let Some(change) = self.presence.join(channel, member).await? {
            self.announce(channel, &change, EnvelopeKind::Join, now_ms).await;
        }
        Ok(())
    }

    /// Ends `connection`'s membership of `channel`, and announces it when there was one.
    pub async fn leave(
        &self,
        channel: &Channel,
        connection: &ConnectionId,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        if let Some(change) = self.presence.leave(channel, connection).await? {
            self.announce(channel, &change, EnvelopeKind::Leave, now_ms).await;
        }
        Ok(())
    }

    /// Ends `connection`'s membership of every channel among `patterns` (wildcards make no member),
    /// trying each: the first failure, if any.
    pub async fn leave_all(
        &self,
        connection: &ConnectionId,
        patterns: &[ChannelPattern],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut first_error = None;
        for channel in patterns.iter().filter_map(ChannelPattern::as_channel) {
            if let Err(err) = self.leave(&channel, connection, now_ms).await {
                tracing::warn!(connection = %connection, channel = %channel, error = %err, "could not end a membership");
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn announce(&self, channel: &Channel, change: &Change, kind: EnvelopeKind, now_ms: i64) {
        if change.watchers > 0 {
            let member = &change.member;
            let envelope = Envelope::presence(
                kind,
                channel.clone(),
                member.connection.id.clone(),
                member.user.clone(),
                member.info.as_ref().map(crate::identity::Info::to_raw),
                now_ms,
            );
            let job = Job { envelope, audience: Audience::Watchers(channel.clone()), attempt: 0 };
            if let Err(err) = self.queue.send(&job).await {
                tracing::warn!(channel = %channel, error = %err, "could not queue a join or leave frame");
            }
        }
        let Some(events) = self.events else { return };
        let events_of =
            if kind == EnvelopeKind::Join { LifecycleEvent::of_join } else { LifecycleEvent::of_leave };
        if let Err(err) = events.publish(&events_of(channel, change, now_ms)).await {
            tracing::warn!(channel = %channel, error = %err, "could not send lifecycle events");
        }
    }
}
