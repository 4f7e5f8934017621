//! The ingress function: API Gateway's `$connect`, `$disconnect` and `$default` routes.
//!
//! `$connect` remembers the connection (and subscribes an authenticated user's connection to its own
//! channel), `$disconnect` forgets it and its subscriptions and ends its memberships, and `$default` parses each message into
//! one of the [`actions`] and applies it: plain text and `echo` go straight back to the sender through
//! the route response, subscriptions are stored, a `broadcast` or `publish` is queued for the worker,
//! and anything malformed or forbidden gets a JSON error naming what is wrong. This function never
//! posts to other connections itself; fan-out is the worker's job.
//!
//! It also serves the server API ([`server`]): the app's backend's publishes, history and presence
//! reads, disconnects and unsubscribes, over API Gateway's HTTP API; [`event`] tells the two kinds
//! of invocation apart.
//!
//! [`Ingress::run`] dispatches each event by its kind, and [`Ingress::process`] a WebSocket event by
//! its type: [`connect`], [`disconnect`], [`message`]. [`error`] is what fails an invocation,
//! [`metrics`] what it writes as an EMF line, [`deployment`] the function's environment and [`Ports`]
//! its ports.

mod actions;
mod connect;
pub mod deployment;
mod disconnect;
pub mod error;
pub mod event;
mod message;
pub mod metrics;
pub mod ports;
mod response;
pub mod server;

use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use shared::ConnectionId;

pub use crate::deployment::Deployment;
pub use crate::error::IngressError;
pub use crate::event::{Event, Response};
use crate::metrics::Handled;
pub use crate::ports::Ports;

/// The handler and its ports.
#[derive(Clone, Debug)]
pub struct Ingress {
    ports: Ports,
}

impl Ingress {
    pub fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// Handles one API Gateway WebSocket event, whatever its route.
    pub async fn handle(
        &self,
        event: ApiGatewayWebsocketProxyRequest,
    ) -> Result<ApiGatewayProxyResponse, IngressError> {
        self.process(event).await.result
    }

    /// Handles one event of either kind, WebSocket or server API, and says which route it served and
    /// what was refused, for the [`metrics`]: what the bootstrap runs.
    pub async fn run(&self, event: Event) -> Handled<Response> {
        match event {
            Event::WebSocket(event) => {
                let handled = self.process(*event).await;
                Handled {
                    route: handled.route,
                    code: handled.code,
                    result: handled.result.map(Response::WebSocket),
                }
            }
            Event::Http(event) => {
                let (response, route, code) = server::serve(&self.ports, &event).await;
                Handled { route, code, result: Ok(Response::Http(response)) }
            }
        }
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
            Some("CONNECT") => Ok((connect::connect(&self.ports, id, event).await?, None)),
            Some("DISCONNECT") => Ok((disconnect::disconnect(&self.ports, id, event).await?, None)),
            Some("MESSAGE") => Ok(message::message(&self.ports, id, event).await),
            other => Err(IngressError::UnknownEventType(other.map(str::to_owned))),
        }
    }
}
