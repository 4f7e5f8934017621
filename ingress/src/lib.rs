//! The ingress function: API Gateway's `$connect`, `$disconnect` and `$default` routes.
//!
//! `$connect` remembers the connection (and subscribes an authenticated user's connection to its own
//! channel), `$disconnect` forgets it and its subscriptions, and `$default` parses each message into
//! one of the [`actions`] and applies it: plain text and `echo` go straight back to the sender through
//! the route response, subscriptions are stored, a `broadcast` or `publish` is queued for the worker,
//! and anything malformed or forbidden gets a JSON error naming what is wrong. This function never
//! posts to other connections itself; fan-out is the worker's job.

mod actions;
pub mod metrics;

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use shared::channel::MAX_SUBSCRIPTIONS;
use shared::limits::{CONNECTION_TTL_MARGIN, MAX_CONNECTION_DURATION};
use shared::{
    ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore, Identity, InputError, Queue, StoreError,
    SubscribeError, Subscription,
};

use crate::actions::{Context, Refusal};
use crate::metrics::Handled;

/// Why an event could not be handled. API Gateway turns these into a rejected handshake (on
/// `$connect`) or an "Internal server error" message to the client.
#[derive(Debug, thiserror::Error)]
pub enum IngressError {
    #[error("the event has no valid requestContext.connectionId")]
    MissingConnectionId,
    #[error("unexpected requestContext.eventType {0:?}")]
    UnknownEventType(Option<String>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("could not subscribe the connection to its user's channel: {0}")]
    OwnChannel(#[source] SubscribeError),
}

impl IngressError {
    /// The name Lambda reports as the invocation's `errorType`, in CloudWatch and X-Ray: what went
    /// wrong, rather than the Rust type that carried it.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::MissingConnectionId => "MissingConnectionId",
            Self::UnknownEventType(_) => "UnknownEventType",
            Self::Store(StoreError::Unavailable(_)) => "StoreUnavailable",
            Self::Store(StoreError::Rejected(_)) => "StoreRejected",
            Self::OwnChannel(_) => "OwnChannelSubscriptionFailed",
        }
    }
}

/// Epoch seconds after which the store may expire what belongs to a connection made at
/// `connected_at_ms`: API Gateway's longest connection, and a margin.
pub fn expires_at_s(connected_at_ms: i64) -> i64 {
    let lifetime = (MAX_CONNECTION_DURATION + CONNECTION_TTL_MARGIN).as_secs();
    connected_at_ms / 1000 + i64::try_from(lifetime).unwrap_or(i64::MAX)
}

/// The handler and the two ports it needs.
#[derive(Clone)]
pub struct Ingress {
    store: Arc<dyn ConnectionStore>,
    queue: Arc<dyn Queue>,
}

impl std::fmt::Debug for Ingress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingress").finish_non_exhaustive()
    }
}

impl Ingress {
    pub fn new(store: Arc<dyn ConnectionStore>, queue: Arc<dyn Queue>) -> Self {
        Self { store, queue }
    }

    /// Handles one API Gateway WebSocket event, whatever its route.
    pub async fn handle(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, IngressError> {
        self.process(event).await.result
    }

    /// Does the work of [`Ingress::handle`] and says which route it served and what was refused, for
    /// the [`metrics`].
    pub async fn process(&self, event: ApiGatewayWebsocketProxyRequest) -> Handled {
        let route = event.request_context.route_key.clone().unwrap_or_default();
        let (result, code) = match self.dispatch(&event).await {
            Ok((response, code)) => (Ok(response), code),
            Err(err) => {
                let code = err.error_type();
                (Err(err), Some(code))
            }
        };
        Handled { route, code, result }
    }

    async fn dispatch(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> Result<(ApiGatewayProxyResponse, Option<&'static str>), IngressError> {
        let context = &event.request_context;
        let id = context
            .connection_id
            .as_deref()
            .and_then(|raw| ConnectionId::parse(raw).ok())
            .ok_or(IngressError::MissingConnectionId)?;
        // The event type, not the route key: custom routes still carry MESSAGE.
        match context.event_type.as_deref() {
            Some("CONNECT") => Ok((self.connect(id, event).await?, None)),
            Some("DISCONNECT") => {
                self.store.delete(&id).await?;
                tracing::info!(connection = %id, code = ?context.disconnect_status_code, "disconnected");
                Ok((response(200, None), None))
            }
            Some("MESSAGE") => Ok(self.message(id, event).await),
            other => Err(IngressError::UnknownEventType(other.map(str::to_owned))),
        }
    }

    async fn connect(
        &self,
        id: ConnectionId,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, IngressError> {
        let context = &event.request_context;
        let record = ConnectionRecord {
            id,
            connected_at_ms: context.connected_at,
            source_ip: context.identity.source_ip.clone(),
            expires_at_s: expires_at_s(context.request_time_epoch),
        };
        self.store.put(&record).await?;
        let identity = Identity::from_authorizer(&context.authorizer.fields);
        // A backend reaches every device of one user through their own channel.
        if let Some(channel) = identity.own_channel() {
            let subscription = Subscription {
                connection: ConnectionRef { id: record.id.clone(), connected_at_ms: record.connected_at_ms },
                pattern: channel.into(),
                expires_at_s: record.expires_at_s,
                limit: MAX_SUBSCRIPTIONS,
            };
            self.store.subscribe(&subscription).await.map_err(IngressError::OwnChannel)?;
        }
        tracing::info!(connection = %record.id, source_ip = ?record.source_ip, user = ?identity.user(), "connected");
        Ok(response(200, None))
    }

    /// The route response, and the code of the error it carries, if any.
    async fn message(
        &self,
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
                    store: self.store.as_ref(),
                    queue: self.queue.as_ref(),
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
}

fn response(status: i64, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = body.map(Body::Text);
    response
}
