//! The ingress function: API Gateway's `$connect`, `$disconnect` and `$default` routes.
//!
//! `$connect` remembers the connection, `$disconnect` forgets it, and `$default` parses each message:
//! plain text and `echo` go straight back to the sender through the route response, a `broadcast` is
//! queued for the worker, and anything malformed gets a JSON error naming what is wrong. This function
//! never posts to other connections itself; fan-out is the worker's job.

use std::sync::Arc;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use shared::limits::{CONNECTION_TTL_MARGIN, MAX_CONNECTION_DURATION};
use shared::{
    ConnectionId, ConnectionRecord, ConnectionStore, Envelope, Inbound, InputError, Job, Queue, QueueError,
    StoreError,
};

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
        let context = &event.request_context;
        let id = context
            .connection_id
            .as_deref()
            .and_then(|raw| ConnectionId::parse(raw).ok())
            .ok_or(IngressError::MissingConnectionId)?;
        // The event type, not the route key: custom routes still carry MESSAGE.
        match context.event_type.as_deref() {
            Some("CONNECT") => self.connect(id, &event).await,
            Some("DISCONNECT") => {
                self.store.delete(&id).await?;
                tracing::info!(connection = %id, code = ?context.disconnect_status_code, "disconnected");
                Ok(response(200, None))
            }
            Some("MESSAGE") => Ok(self.message(id, &event).await),
            other => Err(IngressError::UnknownEventType(other.map(str::to_owned))),
        }
    }

    async fn connect(
        &self,
        id: ConnectionId,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, IngressError> {
        let context = &event.request_context;
        let lifetime = (MAX_CONNECTION_DURATION + CONNECTION_TTL_MARGIN).as_secs();
        let record = ConnectionRecord {
            id,
            connected_at_ms: context.connected_at,
            source_ip: context.identity.source_ip.clone(),
            expires_at_s: context.request_time_epoch / 1000 + i64::try_from(lifetime).unwrap_or(i64::MAX),
        };
        self.store.put(&record).await?;
        tracing::info!(connection = %record.id, source_ip = ?record.source_ip, "connected");
        Ok(response(200, None))
    }

    async fn message(
        &self,
        id: ConnectionId,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        let body = event.body.as_deref().unwrap_or_default();
        let parsed = if event.is_base64_encoded { Err(InputError::Binary) } else { Inbound::parse(body) };
        let outcome = parsed.and_then(|inbound| match inbound {
            Inbound::Echo => Ok(Reply::Echo),
            Inbound::Broadcast { data } => {
                Envelope::broadcast(id.clone(), event.request_context.request_time_epoch, data)
                    .map(Reply::Queue)
            }
        });
        match outcome {
            Ok(Reply::Echo) => response(200, Some(body.to_owned())),
            Ok(Reply::Queue(envelope)) => {
                let message = envelope.id.clone();
                match self.queue.send(&Job::broadcast(envelope)).await {
                    Ok(()) => {
                        tracing::debug!(connection = %id, %message, "broadcast queued");
                        response(200, None)
                    }
                    Err(err) => {
                        tracing::error!(connection = %id, error = %err, "could not queue a broadcast");
                        response(503, Some(unavailable(&err)))
                    }
                }
            }
            Err(err) => {
                tracing::info!(connection = %id, code = err.code(), "refused a message");
                response(400, Some(err.to_client_json()))
            }
        }
    }
}

enum Reply {
    Echo,
    Queue(Envelope),
}

fn unavailable(err: &QueueError) -> String {
    let message = if err.is_retryable() {
        "the message could not be queued; send it again"
    } else {
        "the message could not be queued"
    };
    serde_json::json!({ "error": { "code": "unavailable", "message": message } }).to_string()
}

fn response(status: i64, body: Option<String>) -> ApiGatewayProxyResponse {
    let mut response = ApiGatewayProxyResponse::default();
    response.status_code = status;
    response.body = body.map(Body::Text);
    response
}
