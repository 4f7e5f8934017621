//! `POST /api/unsubscribe`: `{"user":"mallory","channel":"chat/general"}` ends that subscription on
//! every connection of the user, ends their membership of the channel (its `leave` frames and
//! lifecycle events as for any unsubscribe), and tells each connection
//! `{"type":"unsubscribed","channel":…,"reason":…}` — the frame a client's own unsubscribe is
//! answered with, here with a `reason` and no `ref`, so that the client library forgets the channel
//! rather than subscribing again after a reconnect. A wildcard pattern is ended as the client
//! subscribed it; a user's own channel cannot be left. Answered `{"unsubscribed":N}`, the
//! connections whose subscription was ended (a connection that never held it counts too: the
//! store cannot tell them apart, and ending one that does not exist is what was asked).

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use shared::{Channel, ChannelPattern, InputError};

use super::connections;
use super::contract::{Call, Method};
use super::error::ServerError;
use super::fields;

pub struct Unsubscribe {
    user: String,
    own: Channel,
    pattern: ChannelPattern,
    reason: String,
}

#[derive(Deserialize)]
struct Fields {
    user: Option<serde_json::Value>,
    channel: Option<serde_json::Value>,
    reason: Option<serde_json::Value>,
}

pub fn parse(body: &str) -> Result<Box<dyn Method>, ServerError> {
    let fields: Fields = fields::body(body)?;
    let (user, own) = fields::user(fields.user.as_ref())?;
    let pattern = match &fields.channel {
        None | Some(serde_json::Value::Null) => return Err(InputError::MissingChannel.into()),
        Some(serde_json::Value::String(text)) => ChannelPattern::parse(text).map_err(InputError::from)?,
        Some(other) => return Err(InputError::ChannelNotAString { found: fields::kind(other) }.into()),
    };
    if pattern.as_channel().as_ref() == Some(&own) {
        return Err(ServerError::field(
            "channel",
            "a user's own channel is held by every connection of theirs; disconnect them instead",
        ));
    }
    let reason = fields::reason(fields.reason.as_ref(), "unsubscribed by the server")?;
    Ok(Box::new(Unsubscribe { user, own, pattern, reason }))
}

#[async_trait]
impl Method for Unsubscribe {
    async fn serve(self: Box<Self>, call: &Call<'_>) -> Result<serde_json::Value, ServerError> {
        let closer = connections::closer(call)?;
        let targets = connections::of_user(call, &self.own).await?;
        let channel = self.pattern.as_channel();
        let membership = channel.as_ref().and_then(|channel| call.ports.membership_of(channel));
        let mut ended = Vec::with_capacity(targets.len());
        for connection in &targets {
            let unavailable = |what: &str| {
                ServerError::Unavailable(format!(
                    "{what} for {} of user {}'s {} connections ({} done); send it again",
                    connection.id,
                    self.user,
                    targets.len(),
                    ended.len()
                ))
            };
            call.ports.store.unsubscribe(&connection.id, &self.pattern).await.map_err(|err| {
                tracing::error!(caller = %call.caller, error = %err, "could not remove a subscription");
                unavailable("the subscription could not be removed")
            })?;
            if let (Some(channel), Some(membership)) = (&channel, &membership) {
                membership.leave(channel, &connection.id, call.received_at_ms).await.map_err(|err| {
                    tracing::error!(caller = %call.caller, error = %err, "could not end a membership");
                    unavailable("the membership could not be ended")
                })?;
            }
            ended.push(connection.id.clone());
        }
        let frame = serde_json::json!({ "type": "unsubscribed", "channel": self.pattern.as_str(), "reason": self.reason });
        // Told after the subscription ends, so that nothing of the channel follows the frame. A
        // connection that cannot be told still lost the subscription: the answer counts it.
        let (_, untold) =
            connections::tell(closer, &ended, Some(Bytes::from(frame.to_string())), false).await;
        tracing::info!(caller = %call.caller, user = %self.user, channel = %self.pattern, connections = ended.len(), untold, "unsubscribed");
        Ok(serde_json::json!({ "unsubscribed": ended.len() }))
    }
}
