//! `$default` (and any custom route): the message is read into one of the [`crate::actions`] and
//! applied, and the route response carries its answer: an echo, an acknowledgement, or an error with
//! its code (400 for the client's mistake, 503 when the store or the queue failed).

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::{ConnectionId, Identity, InputError};

use crate::actions::{self, Context, Refusal};
use crate::ports::Ports;
use crate::response::response;

/// The route response, and the code of the error it carries, if any.
pub(crate) async fn message(
    ports: &Ports,
    id: ConnectionId,
    event: &ApiGatewayWebsocketProxyRequest,
) -> (ApiGatewayProxyResponse, Option<&'static str>) {
    let body = event.body.as_deref().unwrap_or_default();
    let request = if event.is_base64_encoded {
        actions::Request { reference: None, action: Err(InputError::Binary) }
    } else {
        actions::read(body)
    };
    let reference = request.reference.as_deref();
    let outcome = match request.action {
        Ok(action) => {
            let context = &event.request_context;
            let identity = Identity::from_authorizer(&context.authorizer.fields);
            let cx = Context {
                connection: &id,
                connected_at_ms: context.connected_at,
                received_at_ms: context.request_time_epoch,
                identity: &identity,
                body,
                ports,
            };
            action.apply(&cx).await
        }
        Err(err) => Err(Refusal::Input(err)),
    };
    match outcome {
        Ok(reply) => (response(200, reply.render(reference)), None),
        Err(refusal) => {
            let (code, body) = refusal.render(reference);
            let status = if matches!(refusal, Refusal::Input(_)) {
                tracing::info!(connection = %id, code, "refused a message");
                400
            } else {
                503
            };
            (response(status, Some(body)), Some(code))
        }
    }
}
