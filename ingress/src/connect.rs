//! `$connect`: the connection is remembered, with a `Ttl` past API Gateway's two-hour maximum so that
//! a missed `$disconnect` expires by itself, and an authenticated user's connection is subscribed to
//! its own channel, `user/<sub>`, and so a member of it.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::channel::MAX_SUBSCRIPTIONS;
use shared::limits;
use shared::presence::Member;
use shared::{ConnectionId, ConnectionRecord, ConnectionRef, Identity, Subscription};

use crate::error::IngressError;
use crate::ports::Ports;
use crate::response::response;

pub(crate) async fn connect(
    ports: &Ports,
    id: ConnectionId,
    event: &ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, IngressError> {
    let context = &event.request_context;
    let record = ConnectionRecord {
        id,
        connected_at_ms: context.connected_at,
        source_ip: context.identity.source_ip.clone(),
        expires_at_s: limits::expires_at_s(context.request_time_epoch),
    };
    ports.store.put(&record).await?;
    let identity = Identity::from_authorizer(&context.authorizer.fields);
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
