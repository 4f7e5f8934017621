//! The server API: what the app's backend asks over HTTPS — API Gateway's HTTP API on AWS, the
//! local gateway's `/api/…` and `/iam/api/…` locally — as Centrifugo's HTTP API, Pusher's REST API
//! and Ably's REST API offer: publish (with offsets, and idempotent with an `id`), broadcast, read
//! a channel's history and presence, disconnect a user or a connection, unsubscribe a user from a
//! channel. `docs/server-api.md` is its reference.
//!
//! Every method is `POST /api/<method>` with a JSON body, one file each, dispatched from
//! [`METHODS`] as the client's actions are from theirs; [`contract`] is what each is held to,
//! [`fields`] the fields they share, [`http`] the request and its answer, [`error`] the refusals,
//! [`connections`] whom a disconnect or an unsubscribe reaches. This file is the table and
//! [`serve`], nothing else.

mod broadcast;
mod connections;
mod contract;
mod disconnect;
pub mod error;
mod fields;
mod history;
pub mod http;
mod presence;
pub mod publish;
mod unsubscribe;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};

pub use self::contract::{Call, Caller, Method, Parse};
pub use self::error::ServerError;
pub use self::fields::MAX_REASON_BYTES;
use crate::ports::Ports;

/// Every method, by the path's last segment.
pub const METHODS: &[(&str, Parse)] = &[
    ("publish", publish::parse),
    ("broadcast", broadcast::parse),
    ("history", history::parse),
    ("presence", presence::parse),
    ("disconnect", disconnect::parse),
    ("unsubscribe", unsubscribe::parse),
];

/// Answers one server API request: its answer, the method it named (`api/<method>`, or `api` when
/// it named none), and the code of the error it answered, if any.
pub async fn serve(
    ports: &Ports,
    event: &ApiGatewayV2httpRequest,
) -> (ApiGatewayV2httpResponse, String, Option<&'static str>) {
    let named = http::method_of(event);
    let route = match &named {
        Ok(method) if METHODS.iter().any(|(name, _)| name == method) => format!("api/{method}"),
        _ => "api".to_owned(),
    };
    let outcome = async {
        let request = http::read(event)?;
        let unknown = |path| ServerError::UnknownMethod { path, known: known() };
        let method = named.map_err(unknown)?;
        let Some((_, parse)) = METHODS.iter().find(|(name, _)| *name == method) else {
            return Err(unknown(format!("{}{method}", http::TOKEN_PREFIX)));
        };
        let method = parse(&request.body)?;
        let call = Call { caller: &request.caller, received_at_ms: request.received_at_ms, ports };
        method.serve(&call).await
    }
    .await;
    match outcome {
        Ok(body) => (http::answer(200, &body), route, None),
        Err(err) => {
            if err.status() == 503 {
                tracing::error!(route, error = %err, "a server API call failed");
            } else {
                tracing::info!(route, code = err.code(), error = %err, "refused a server API call");
            }
            (http::answer(err.status(), &err.body()), route, Some(err.code()))
        }
    }
}

fn known() -> String {
    METHODS.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(",")
}
