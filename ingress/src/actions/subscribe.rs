//! `subscribe`: the connection receives every message published to a channel, or, with a pattern
//! ending in `/*`, to every channel below it. Answered `{"type":"subscribed","channel":…}`.

use async_trait::async_trait;
use shared::channel::MAX_SUBSCRIPTIONS;
use shared::limits;
use shared::{ChannelPattern, ConnectionRef, InputError, SubscribeError, Subscription};

use super::{Action, Context, Fields, Refusal, Reply};

pub struct Subscribe {
    pattern: ChannelPattern,
}

pub fn parse(fields: Fields) -> Result<Box<dyn Action>, InputError> {
    Ok(Box::new(Subscribe { pattern: fields.pattern()? }))
}

#[async_trait]
impl Action for Subscribe {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal> {
        cx.identity.may_subscribe(&self.pattern)?;
        let subscription = Subscription {
            connection: ConnectionRef { id: cx.connection.clone(), connected_at_ms: cx.connected_at_ms },
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
        tracing::debug!(connection = %cx.connection, channel = %subscription.pattern, "subscribed");
        Ok(Reply::ack("subscribed", subscription.pattern.as_str(), None))
    }
}
