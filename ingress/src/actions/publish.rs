//! `publish`: `data` goes to every connection subscribed to the channel (or to a wildcard above it),
//! the sender too if it is one, through the worker. Answered `{"type":"published","channel":…,"id":…}`
//! with the id its subscribers will see, once it is queued.

use async_trait::async_trait;
use serde_json::value::RawValue;
use shared::{Channel, Envelope, InputError, Job, Sender};

use super::{Action, Context, Fields, Refusal, Reply, enqueue};

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
        let sender =
            Sender { connection: Some(cx.connection.clone()), user: cx.identity.user().map(str::to_owned) };
        let channel = self.channel.to_string();
        let envelope = Envelope::message(self.channel, sender, cx.received_at_ms, self.data)?;
        let id = envelope.id.clone();
        enqueue(cx, &Job::publish(envelope)).await?;
        tracing::debug!(connection = %cx.connection, message = %id, "publish queued");
        Ok(Reply::ack("published", &channel, Some(&id)))
    }
}
