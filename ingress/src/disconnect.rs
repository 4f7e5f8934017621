//! `$disconnect`: the connection's record and its subscriptions are deleted, and it leaves every
//! channel it was a member of (with their `leave` frames and events). API Gateway calls it on a
//! best-effort basis; what a missed one leaves expires with the connection's `Ttl`, or is pruned by
//! the worker on a 410.

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::ConnectionId;

use crate::error::IngressError;
use crate::ports::Ports;
use crate::response::response;

pub(crate) async fn disconnect(
    ports: &Ports,
    id: ConnectionId,
    event: &ApiGatewayWebsocketProxyRequest,
) -> Result<ApiGatewayProxyResponse, IngressError> {
    let context = &event.request_context;
    let held = ports.store.delete(&id).await?;
    if let Some(membership) = ports.membership() {
        membership.leave_all(&id, &held, context.request_time_epoch).await?;
    }
    tracing::info!(connection = %id, code = ?context.disconnect_status_code, "disconnected");
    Ok(response(200, None))
}
