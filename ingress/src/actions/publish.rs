//! `publish`: `data` goes to every connection subscribed to the channel (or to a wildcard above it),
//! the sender too if it is one, through the worker. Answered
//! `{"type":"published","channel":…,"id":…,"offset":…,"epoch":…}` once it is queued, with the id its
//! subscribers will see and, when the channel keeps history, its place there: the offset is taken
//! here, before the queue, so that what one client publishes in sequence is numbered in that order
//! and every redelivery of the job carries the same offset. A channel whose namespace says
//! `publish = "backend"` refuses every client's publish (`forbidden_channel`). A namespace's publish
//! hook is asked first: it may refuse the message, change its data, or drop it — answered
//! `"dropped":true`, with no offset, and delivered to no one.

use async_trait::async_trait;
use serde_json::value::RawValue;
use shared::namespaces::Publishers;
use shared::{Channel, Envelope, InputError, Job, Sender};

use super::contract::{Action, Context, enqueue};
use super::fields::Fields;
use super::reply::{Ack, Refusal, Reply};
use super::{hooks, quota};

pub struct Publish {
    channel: Channel,
    data: Box<RawValue>,
}

pub fn parse(mut fields: Fields) -> Result<Box<dyn Action>, InputError> {
    let channel = fields.channel()?;
    Ok(Box::new(Publish { channel, data: fields.data()? }))
}

#[async_trait]
impl Action for Publish {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        cx.identity.may_publish(&self.channel)?;
        quota::take(cx, Some(&self.channel)).await?;
        if cx.ports.namespaces.of(&self.channel).publishers == Publishers::Backend {
            return Err(InputError::ForbiddenChannel {
                verb: "publish to",
                channel: self.channel.to_string(),
                reason: "its namespace is published to by the app's backend alone",
            }
            .into());
        }
        let sender =
            Sender { connection: Some(cx.connection.clone()), user: cx.identity.user().map(str::to_owned) };
        let channel = self.channel.to_string();
        let history = cx.ports.history_of(&self.channel);
        let envelope = Envelope::message(self.channel, sender, cx.received_at_ms, self.data)?;
        let id = envelope.id.clone();
        let Some(mut envelope) = hooks::publish(cx, envelope).await? else {
            tracing::debug!(connection = %cx.connection, message = %id, "publish dropped by its hook");
            return Ok(Reply::Ack(Ack { id: Some(id), dropped: true, ..Ack::new("published", &channel) }));
        };
        if let Some(history) = history {
            history.append(&mut envelope).await.map_err(|err| {
                tracing::error!(connection = %cx.connection, error = %err, "could not number a publish in its channel's history");
                unkept()
            })?;
        }
        let position = envelope.position();
        enqueue(cx, &Job::publish(envelope)).await?;
        tracing::debug!(connection = %cx.connection, message = %id, "publish queued");
        Ok(Reply::Ack(Ack { id: Some(id), position, ..Ack::new("published", &channel) }))
    }
}

/// What a publish that could not be numbered is refused with.
pub(crate) fn unkept() -> Refusal {
    Refusal::Unavailable("the message could not be kept in its channel's history; send it again".into())
}
