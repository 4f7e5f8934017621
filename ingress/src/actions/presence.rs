//! `presence`: who is in a channel now — `{"action":"presence","channel":"room/1"}`, answered
//! `{"type":"presence","channel":…,"clients":N,"users":M,"members":[{"connection","user","info","since"},…]}`.
//! `clients` (connections) and `users` (distinct `sub`s; anonymous connections are clients of no
//! user) are always exact; `members` holds the longest-standing first, at most [`MAX_MEMBERS`] and
//! within API Gateway's 128 KB, with `"truncated":true` when some were left out. It needs the same
//! permission as a subscribe to the channel; a wildcard is no channel (`invalid_channel`).
//!
//! Members whose connection expired without a `$disconnect` are not counted, and are made to leave
//! here (their `leave` frames and events sent), so that a lost `$disconnect` ends at the latest when
//! someone looks.

use std::collections::HashSet;

use async_trait::async_trait;
use shared::{Channel, ChannelPattern, InputError};

use super::contract::{Action, Context};
use super::fields::Fields;
use super::hooks;
use super::reply::{PresenceAnswer, Refusal, Reply};
use crate::ports::Ports;

/// The most members one answer lists.
pub const MAX_MEMBERS: usize = 1000;

pub struct Presence {
    channel: Channel,
}

pub fn parse(fields: Fields) -> Result<Box<dyn Action>, InputError> {
    Ok(Box::new(Presence { channel: fields.channel()? }))
}

#[async_trait]
impl Action for Presence {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        let pattern = ChannelPattern::from(self.channel.clone());
        cx.identity.may_subscribe(&pattern)?;
        hooks::may_subscribe(cx, &pattern, "presence").await?;
        read(cx.ports, self.channel, cx.received_at_ms).await.map(Reply::Presence)
    }
}

/// `channel`'s members at `now_ms`: the answer a client's `presence` and the server API's are
/// given alike, once allowed.
pub(crate) async fn read(ports: &Ports, channel: Channel, now_ms: i64) -> Result<PresenceAnswer, Refusal> {
    let Some(membership) = ports.membership_of(&channel) else {
        return Err(InputError::PresenceOff { channel: channel.to_string() }.into());
    };
    let roster = membership.presence.members(&channel, now_ms / 1000).await.map_err(|err| {
        tracing::error!(channel = %channel, error = %err, "could not read a channel's members");
        Refusal::Unavailable("the channel's members could not be read; send it again".into())
    })?;
    for gone in &roster.expired {
        // Best effort: the answer already leaves them out.
        let _ = membership.leave(&channel, gone, now_ms).await;
    }
    let mut members = roster.members;
    let users = members.iter().filter_map(|m| m.user.as_deref()).collect::<HashSet<_>>().len();
    members.sort_by(|a, b| a.since_ms.cmp(&b.since_ms).then_with(|| a.connection.cmp(&b.connection)));
    let mut answer = PresenceAnswer {
        channel: channel.to_string(),
        clients: members.len(),
        users,
        members,
        truncated: false,
    };
    answer.fit(MAX_MEMBERS);
    Ok(answer)
}
