//! `POST /api/publish`: one message — `{"channel":"chat/general","data":…}`, or to several channels
//! at once with `"channels":[…]` — or a batch, `{"messages":[{…},…]}`, of at most [`MAX_PUBLISHES`]
//! publishes (each channel of each message counts). Answered
//! `{"published":[{"channel":…,"id":…,"offset":…,"epoch":…},…]}`, one entry per publish in the
//! order given, once each is numbered and queued: the delivery path is the client's publish's from
//! there on. Every message is checked before any is published, so a bad batch publishes nothing.
//!
//! A message's optional `id` (a UUID) makes a retry safe: on a channel that keeps history, the same
//! `id` is numbered once for as long as the channel's stream lives (`HistorySettings::stream_lifetime`:
//! API Gateway's two-hour connection plus the history's TTL, so at least the history's TTL after
//! the first publish), and a retry is answered with the first offset and queued no second time.
//! On a channel without history there is nothing to number: a retry is delivered again with the
//! same id, which clients drop as a repeat. The channel's hooks are not asked (the backend is the
//! one they stand for), and `publish = "backend"` namespaces take it.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::value::RawValue;
use shared::{Channel, Envelope, InputError, Job, MessageId, Sender};

use super::contract::{Call, Method};
use super::error::ServerError;
use super::fields;
use crate::actions::unkept;

/// The most publishes one request makes: a batch's messages times their channels.
pub const MAX_PUBLISHES: usize = 100;

#[derive(Debug)]
struct Message {
    envelope: Envelope,
    /// Given by the publisher: numbered once however often it is sent.
    chosen: bool,
}

#[derive(Debug)]
pub struct Publish {
    messages: Vec<Message>,
}

/// One message's fields, or the whole body's when it is not a batch.
#[derive(Deserialize)]
struct Fields {
    channel: Option<serde_json::Value>,
    channels: Option<serde_json::Value>,
    data: Option<Box<RawValue>>,
    id: Option<serde_json::Value>,
    messages: Option<Box<RawValue>>,
}

pub fn parse(body: &str) -> Result<Box<dyn Method>, ServerError> {
    let fields: Fields = fields::body(body)?;
    let items = match fields.messages {
        None => vec![fields],
        Some(batch) => {
            if fields.channel.is_some() || fields.channels.is_some() || fields.data.is_some() {
                return Err(ServerError::field(
                    "messages",
                    "a batch's body holds \"messages\" alone; each message names its channel and data",
                ));
            }
            let raws: Vec<Box<RawValue>> = serde_json::from_str(batch.get())
                .map_err(|_| ServerError::field("messages", "must be an array of messages"))?;
            if raws.is_empty() {
                return Err(ServerError::field("messages", "is empty"));
            }
            if raws.len() > MAX_PUBLISHES {
                return Err(ServerError::BatchTooLarge { count: raws.len(), limit: MAX_PUBLISHES });
            }
            raws.iter()
                .enumerate()
                .map(|(at, raw)| {
                    let item: Fields = serde_json::from_str(raw.get()).map_err(|_| {
                        ServerError::field("messages", format!("message {at} is not a JSON object"))
                    })?;
                    if item.messages.is_some() {
                        return Err(ServerError::field(
                            "messages",
                            format!("message {at} is itself a batch"),
                        ));
                    }
                    Ok(item)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let mut messages = Vec::new();
    for item in items {
        let id = fields::id(item.id.as_ref())?;
        let data = item.data.ok_or(InputError::MissingData)?;
        for channel in channels(item.channel, item.channels)? {
            if messages.len() == MAX_PUBLISHES {
                return Err(ServerError::BatchTooLarge { count: MAX_PUBLISHES + 1, limit: MAX_PUBLISHES });
            }
            // Stamped when served; the limit (with room for its position) is checked now.
            let envelope = Envelope::message(channel, Sender::default(), 0, data.clone())?;
            let envelope = match &id {
                Some(id) => envelope.with_id(id.clone()),
                None => envelope,
            };
            messages.push(Message { envelope, chosen: id.is_some() });
        }
    }
    Ok(Box::new(Publish { messages }))
}

/// `channel`, or `channels` (1 to [`MAX_PUBLISHES`] distinct channels), never both.
fn channels(
    channel: Option<serde_json::Value>,
    channels: Option<serde_json::Value>,
) -> Result<Vec<Channel>, ServerError> {
    let one = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => Ok(Channel::parse(text).map_err(InputError::from)?),
        other => Err(ServerError::from(InputError::ChannelNotAString { found: fields::kind(other) })),
    };
    match (channel, channels) {
        (Some(_), Some(_)) => {
            Err(ServerError::field("channels", "give \"channel\" or \"channels\", not both"))
        }
        (None | Some(serde_json::Value::Null), None) => Err(InputError::MissingChannel.into()),
        (Some(channel), None) => Ok(vec![one(&channel)?]),
        (None, Some(serde_json::Value::Array(list))) => {
            if list.is_empty() {
                return Err(ServerError::field("channels", "is empty"));
            }
            if list.len() > MAX_PUBLISHES {
                return Err(ServerError::BatchTooLarge { count: list.len(), limit: MAX_PUBLISHES });
            }
            let mut found: Vec<Channel> = Vec::with_capacity(list.len());
            for value in &list {
                let channel = one(value)?;
                if found.contains(&channel) {
                    return Err(ServerError::field("channels", format!("names \"{channel}\" twice")));
                }
                found.push(channel);
            }
            Ok(found)
        }
        (None, Some(other)) => Err(ServerError::field(
            "channels",
            format!("must be an array of channels, not {}", fields::kind(&other)),
        )),
    }
}

#[async_trait]
impl Method for Publish {
    async fn serve(self: Box<Self>, call: &Call<'_>) -> Result<serde_json::Value, ServerError> {
        let mut published = Vec::with_capacity(self.messages.len());
        for Message { mut envelope, chosen } in self.messages {
            envelope.sent_at = call.received_at_ms;
            let channel = envelope.channel.clone().ok_or(InputError::MissingChannel)?;
            let fresh = match call.ports.history_of(&channel) {
                Some(history) => {
                    let placed = if chosen {
                        history.append_once(&mut envelope).await
                    } else {
                        history.append(&mut envelope).await.map(|()| true)
                    };
                    placed.map_err(|err| {
                        tracing::error!(caller = %call.caller, error = %err, "could not number a server publish");
                        ServerError::from(unkept())
                    })?
                }
                None => true,
            };
            let mut answer = serde_json::json!({ "channel": channel.as_str(), "id": envelope.id });
            if let Some(position) = envelope.position() {
                answer["offset"] = position.offset.into();
                answer["epoch"] = position.epoch.to_string().into();
            }
            // Numbered before, it was queued then (a retry is answered the same, and queues nothing):
            // kept in history whatever became of that queueing, a subscriber who missed it recovers
            // it by its offset.
            if fresh {
                let id: MessageId = envelope.id.clone();
                call.ports.queue.send(&Job::publish(envelope)).await.map_err(|err| {
                    tracing::error!(caller = %call.caller, message = %id, error = %err, "could not queue a server publish");
                    ServerError::Unavailable(format!(
                        "the message to \"{channel}\" could not be queued{}; send the request again{}",
                        if published.is_empty() { String::new() } else { format!(" ({} before it were)", published.len()) },
                        if chosen { "" } else { ", with ids to publish each message once" }
                    ))
                })?;
            }
            published.push(answer);
        }
        Ok(serde_json::json!({ "published": published }))
    }
}
