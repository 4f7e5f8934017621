//! `broadcast`: `data` goes to every connection, the sender included, through the worker. Answered
//! `{"type":"queued","id":…,"ref":…}` once queued when the message has a `ref`, else not at all.

use async_trait::async_trait;
use serde_json::value::RawValue;
use shared::{Envelope, InputError, Job};

use super::contract::{Action, Context, enqueue};
use super::fields::Fields;
use super::quota;
use super::reply::{Refusal, Reply};

pub struct Broadcast {
    data: Box<RawValue>,
}

pub fn parse(mut fields: Fields) -> Result<Box<dyn Action>, InputError> {
    Ok(Box::new(Broadcast { data: fields.data()? }))
}

#[async_trait]
impl Action for Broadcast {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        quota::take(cx, None).await?;
        let envelope = Envelope::broadcast(cx.connection.clone(), cx.received_at_ms, self.data)?;
        let message = envelope.id.clone();
        enqueue(cx, &Job::broadcast(envelope)).await?;
        tracing::debug!(connection = %cx.connection, %message, "broadcast queued");
        Ok(Reply::Queued(message))
    }
}
