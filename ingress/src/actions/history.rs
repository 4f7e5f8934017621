//! `history`: a channel's kept messages, oldest first, each as it was delivered —
//! `{"action":"history","channel":"chat/general","limit":50}` for the newest `limit` (1 to 100,
//! default 50), with `"since":{"offset":41,"epoch":…}` for those after a position. Answered
//! `{"type":"history","channel":…,"offset":<latest>,"epoch":…,"messages":[…],"more":…}`, within API
//! Gateway's 128 KB: fewer messages and `"more":true` rather than a larger answer. Offsets between two
//! messages that hold none (a publish that failed once numbered) are listed in `"missing"`, so that a
//! client waiting for one stops waiting. It needs the same permission as a subscribe to the channel.
//!
//! A `since` must be a position in the channel's current stream: one in another epoch (its history
//! was lost since) or past the latest offset is refused `unrecoverable_position`, as Centrifugo
//! refuses it, rather than answered with messages of a stream the client never followed. A `since`
//! older than what is kept is answered with what is kept: the first message's offset tells the
//! client what it can no longer have.

use async_trait::async_trait;
use serde_json::value::RawValue;
use shared::history::Range;
use shared::limits::HISTORY_ANSWER_BYTES;
use shared::{Channel, ChannelPattern, InputError, Position};

use super::contract::{Action, Context};
use super::fields::Fields;
use super::hooks;
use super::reply::{HistoryAnswer, Refusal, Reply};
use crate::ports::Ports;

/// The most messages one answer holds.
pub const MAX_LIMIT: usize = 100;
/// How many when the client does not say.
pub const DEFAULT_LIMIT: usize = 50;

pub struct History {
    channel: Channel,
    limit: usize,
    since: Option<Position>,
}

pub fn parse(fields: Fields) -> Result<Box<dyn Action>, InputError> {
    Ok(Box::new(History {
        channel: fields.channel()?,
        limit: fields.limit(DEFAULT_LIMIT, MAX_LIMIT)?,
        since: fields.since()?,
    }))
}

#[async_trait]
impl Action for History {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        let pattern = ChannelPattern::from(self.channel.clone());
        cx.identity.may_subscribe(&pattern)?;
        hooks::may_subscribe(cx, &pattern, "history").await?;
        read(cx.ports, self.channel, self.limit, self.since).await.map(Reply::History)
    }
}

/// Reads `limit` of `channel`'s kept messages (after `since`, or the newest): the answer a client's
/// `history` and the server API's are given alike, once allowed.
pub(crate) async fn read(
    ports: &Ports,
    channel: Channel,
    limit: usize,
    since: Option<Position>,
) -> Result<HistoryAnswer, Refusal> {
    let mut answer = HistoryAnswer {
        channel: channel.to_string(),
        position: None,
        messages: Vec::new(),
        missing: Vec::new(),
        more: false,
    };
    let Some(history) = ports.history_of(&channel) else { return Ok(answer) };
    let range = match &since {
        Some(since) => Range::After { offset: since.offset, limit },
        None => Range::Newest(limit),
    };
    let page = history.read(&channel, range, HISTORY_ANSWER_BYTES).await.map_err(|err| {
        tracing::error!(channel = %channel, error = %err, "could not read a channel's history");
        Refusal::Unavailable("the channel's history could not be read; send it again".into())
    })?;
    if let Some(since) = &since {
        // Another epoch's offsets, or one past the latest, name other messages than the client
        // had: answering with this stream's would hand it another stream's messages silently.
        if since.epoch != page.stream.epoch || since.offset > page.stream.offset {
            return Err(InputError::UnrecoverablePosition {
                offset: page.stream.offset,
                epoch: page.stream.epoch.to_string(),
            }
            .into());
        }
    }
    answer.position = Some(Position { offset: page.stream.offset, epoch: page.stream.epoch });
    answer.messages =
        page.messages.into_iter().filter_map(|kept| RawValue::from_string(kept.frame).ok()).collect();
    answer.missing = page.missing;
    answer.more = page.more;
    answer.fit(since.is_none());
    Ok(answer)
}
