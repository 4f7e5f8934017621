//! `$connect`: the connection is remembered, with a `Ttl` past API Gateway's two-hour maximum so that
//! a missed `$disconnect` expires by itself, and an authenticated user's connection is subscribed to
//! its own channel, `user/<sub>`, and so a member of it. A user whose connection was closed for
//! flooding lately is refused with 429 (`shared::quota::BARRED_FOR`).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::channel::MAX_SUBSCRIPTIONS;
use shared::limits;
use shared::presence::Member;
use shared::{ConnectionId, ConnectionRecord, ConnectionRef, Identity, Subscription};

use crate::error::IngressError;
use crate::ports::Ports;
use crate::response::response;

/// What a barred client's handshake is refused with.
pub(crate) const BARRED: &str =
    "Too many messages: connections were closed for flooding; try again in a minute";

pub(crate) async fn connect(
    ports: &Ports,
    id: ConnectionId,
    event: &ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, IngressError> {
    let context = &event.request_context;
    let identity = Identity::from_authorizer(&context.authorizer.fields);
    // A user closed for flooding is refused for a while; a store that fails lets them in (quotas
    // fail open).
    if let Some(user) = identity.user() {
        match ports.quotas.barred(user).await {
            Ok(Some(left)) => {
                tracing::info!(
                    user,
                    left_s = left.as_secs(),
                    "refused a connection: closed for flooding lately"
                );
                return Ok(response(429, Some(BARRED.into())));
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(user, error = %err, "could not read the bars; the connection goes through")
            }
        }
    }
    let record = ConnectionRecord {
        id,
        connected_at_ms: context.connected_at,
        source_ip: context.identity.source_ip.clone(),
        expires_at_s: limits::expires_at_s(context.request_time_epoch),
    };
    ports.store.put(&record).await?;
    // A backend reaches every device of one user through their own channel.
    if let Some(channel) = identity.own_channel() {
        let me = ConnectionRef { id: record.id.clone(), connected_at_ms: record.connected_at_ms };
        let subscription = Subscription {
            connection: me.clone(),
            pattern: channel.clone().into(),
            expires_at_s: record.expires_at_s,
            limit: MAX_SUBSCRIPTIONS,
        };
        ports.store.subscribe(&subscription).await.map_err(IngressError::OwnChannel)?;
        // A member of its own channel like any subscriber: `presence` of `user/<sub>` is that
        // user's devices, and its occupied and vacated events say when the user comes and goes.
        if let Some(membership) = ports.membership_of(&channel) {
            let member = Member::new(me, &identity, context.request_time_epoch, false);
            membership.join(&channel, &member, context.request_time_epoch).await?;
        }
    }
    tracing::info!(connection = %record.id, source_ip = ?record.source_ip, user = ?identity.user(), "connected");
    Ok(response(200, None))
}
