//! `unsubscribe`: ends a subscription, answered `{"type":"unsubscribed","channel":…}` whether or not
//! there was one, so that a client retrying it after a lost reply gets the same answer. Unsubscribing
//! from a channel ends the connection's membership of it.

use async_trait::async_trait;
use shared::{ChannelPattern, InputError};

use super::contract::{Action, Context};
use super::fields::Fields;
use super::reply::{Ack, Refusal, Reply};

pub struct Unsubscribe {
    pattern: ChannelPattern,
}

pub fn parse(fields: Fields) -> Result<Box<dyn Action>, InputError> {
    Ok(Box::new(Unsubscribe { pattern: fields.pattern()? }))
}

#[async_trait]
impl Action for Unsubscribe {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        if let Err(err) = cx.ports.store.unsubscribe(cx.connection, &self.pattern).await {
            tracing::error!(connection = %cx.connection, error = %err, "could not remove a subscription");
            return Err(Refusal::Unavailable("the subscription could not be removed; send it again".into()));
        }
        if let Some(channel) = self.pattern.as_channel()
            && let Some(membership) = cx.ports.membership_of(&channel)
            && let Err(err) = membership.leave(&channel, cx.connection, cx.received_at_ms).await
        {
            tracing::error!(connection = %cx.connection, error = %err, "could not end a membership");
            return Err(Refusal::Unavailable("the membership could not be ended; send it again".into()));
        }
        Ok(Reply::Ack(Ack::new("unsubscribed", self.pattern.as_str())))
    }
}
