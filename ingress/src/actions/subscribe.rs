//! `subscribe`: the connection receives every message published to a channel, or, with a pattern
//! ending in `/*`, to every channel below it. Answered `{"type":"subscribed","channel":…}`, with the
//! channel's latest `offset` and its `epoch` when it keeps history.
//!
//! With `"since":{"offset":41,"epoch":…}` — the last message a reconnecting client has — the answer
//! says whether that position is `recovered`: when it is, every message after it still kept is
//! queued for this connection alone, each as an ordinary `message` frame carrying its offset, and the
//! client puts them in order. A position in another epoch, or older than what is kept, is not: the
//! client must reload its state. Nor is one after which more was published than one `history`
//! answer holds ([`limits::HISTORY_ANSWER_BYTES`]): the client reads that with `history`, page by
//! page, so that a subscribe never costs more than a `history` does. A wildcard subscription has no
//! one stream to recover from.
//!
//! A subscription to one channel makes the connection a member of it (its presence); with
//! `"joinLeave":true` it also receives the channel's `join` and `leave` frames. Subscribing again
//! changes `joinLeave` without a second join.

use async_trait::async_trait;
use shared::channel::MAX_SUBSCRIPTIONS;
use shared::history::{History, Range};
use shared::limits;
use shared::presence::Member;
use shared::{
    Channel, ChannelPattern, ConnectionRef, Envelope, InputError, Job, Position, SubscribeError, Subscription,
};

use super::contract::{Action, Context};
use super::fields::Fields;
use super::hooks;
use super::reply::{Ack, Refusal, Reply};

pub struct Subscribe {
    pattern: ChannelPattern,
    since: Option<Position>,
    join_leave: bool,
}

pub fn parse(fields: Fields) -> Result<Box<dyn Action>, InputError> {
    let pattern = fields.pattern()?;
    let join_leave = fields.join_leave()?;
    if join_leave && pattern.is_wildcard() {
        return Err(InputError::InvalidJoinLeave {
            detail: "a wildcard subscription is a member of no channel; ask for one channel's".into(),
        });
    }
    Ok(Box::new(Subscribe { pattern, since: fields.since()?, join_leave }))
}

#[async_trait]
impl Action for Subscribe {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        cx.identity.may_subscribe(&self.pattern)?;
        if self.join_leave && !cx.ports.namespaces.of_pattern(&self.pattern).join_leave {
            return Err(InputError::InvalidJoinLeave {
                detail: "this channel's namespace sends no join and leave frames".into(),
            }
            .into());
        }
        hooks::may_subscribe(cx, &self.pattern, "subscribe").await?;
        let me = ConnectionRef { id: cx.connection.clone(), connected_at_ms: cx.connected_at_ms };
        let subscription = Subscription {
            connection: me.clone(),
            pattern: self.pattern,
            expires_at_s: limits::expires_at_s(cx.connected_at_ms),
            limit: MAX_SUBSCRIPTIONS,
        };
        match cx.ports.store.subscribe(&subscription).await {
            Ok(()) => {}
            Err(SubscribeError::TooMany { limit }) => {
                return Err(InputError::TooManySubscriptions { limit }.into());
            }
            Err(SubscribeError::NotConnected) => {
                return Err(Refusal::Unavailable(
                    "this connection is no longer registered; reconnect".into(),
                ));
            }
            Err(SubscribeError::Store(err)) => {
                tracing::error!(connection = %cx.connection, error = %err, "could not store a subscription");
                return Err(Refusal::Unavailable(
                    "the subscription could not be stored; send it again".into(),
                ));
            }
        }
        // A channel by its name; a pattern has no members and no one stream.
        let channel = subscription.pattern.as_channel();
        if let Some(channel) = &channel
            && let Some(membership) = cx.ports.membership_of(channel)
        {
            let member = Member::new(me.clone(), cx.identity, cx.received_at_ms, self.join_leave);
            if let Err(err) = membership.join(channel, &member, cx.received_at_ms).await {
                tracing::error!(connection = %cx.connection, error = %err, "could not store a membership");
                return Err(Refusal::Unavailable("the membership could not be stored; send it again".into()));
            }
        }
        tracing::debug!(connection = %cx.connection, channel = %subscription.pattern, "subscribed");
        let mut ack = Ack::new("subscribed", subscription.pattern.as_str());
        ack.recovered = self.since.as_ref().map(|_| false);
        if let Some(channel) = channel
            && let Some(history) = cx.ports.history_of(&channel)
        {
            // The subscription stands whatever the history says: at worst the client reloads.
            match self.since {
                Some(since) => recover(cx, history.as_ref(), &channel, &since, me, &mut ack).await,
                None => match history.stream(&channel).await {
                    Ok(stream) => {
                        ack.position = Some(Position { offset: stream.offset, epoch: stream.epoch })
                    }
                    Err(err) => {
                        tracing::warn!(channel = %channel, error = %err, "could not read the channel's stream")
                    }
                },
            }
        }
        Ok(Reply::Ack(ack))
    }
}

/// Answers a `since`: the channel's position, and whether every message after `since` is still
/// kept — when it is, they are queued for `me`, in order, each a job of its own.
async fn recover(
    cx: &Context<'_>,
    history: &dyn History,
    channel: &Channel,
    since: &Position,
    me: ConnectionRef,
    ack: &mut Ack,
) {
    let range = Range::After { offset: since.offset, limit: usize::MAX };
    let page = match history.read(channel, range, limits::HISTORY_ANSWER_BYTES).await {
        Ok(page) => page,
        Err(err) => {
            tracing::warn!(channel = %channel, error = %err, "could not read the channel's history; not recovered");
            return;
        }
    };
    ack.position = Some(Position { offset: page.stream.offset, epoch: page.stream.epoch.clone() });
    if !page.recovers(since.offset, &since.epoch) {
        return;
    }
    if page.more {
        // More was missed than one `history` answer holds: the client reads it a page at a time,
        // at its own pace, rather than one small subscribe queuing megabytes for it.
        tracing::debug!(connection = %cx.connection, channel = %channel, "too much missed to replay; not recovered");
        return;
    }
    let jobs: Vec<Job> = page
        .messages
        .iter()
        .filter_map(|kept| serde_json::from_str::<Envelope>(&kept.frame).ok())
        .map(|envelope| Job::to(envelope, me.clone()))
        .collect();
    let queued = cx.ports.queue.send_batch(&jobs, std::time::Duration::ZERO).await;
    match queued.iter().find_map(|result| result.as_ref().err()) {
        // Some replayed, some not: the client would see holes; a reload is the honest answer.
        Some(err) => {
            tracing::warn!(channel = %channel, error = %err, "could not queue the replay; not recovered")
        }
        None => {
            tracing::debug!(connection = %cx.connection, channel = %channel, replayed = jobs.len(), "recovered");
            ack.recovered = Some(true);
        }
    }
}
