//! `POST /api/disconnect`: every connection of a user, `{"user":"mallory"}`, or one,
//! `{"connection":"<id>"}`, is sent
//! `{"type":"disconnect","code":4000,"reason":"…","reconnect":false}` and then closed through
//! `@connections`; API Gateway then runs each one's `$disconnect`, whose leaves and lifecycle events
//! follow as for any close. `code` (4000 to 4999, default 4000), `reason` (at most 123 bytes) and
//! `reconnect` (default false: the client library stops) are the caller's: API Gateway closes the
//! socket with a code of its own, so the frame is what carries them. Answered
//! `{"disconnected":N}`, the connections closed (one already gone is not counted).

use async_trait::async_trait;
use bytes::Bytes;
use serde::Deserialize;
use shared::{Channel, ConnectionId};

use super::connections;
use super::contract::{Call, Method};
use super::error::ServerError;
use super::fields;

/// The code a disconnect carries when the caller gives none.
pub const DEFAULT_CODE: u16 = 4000;

enum Target {
    User(String, Channel),
    Connection(ConnectionId),
}

pub struct Disconnect {
    target: Target,
    code: u16,
    reason: String,
    reconnect: bool,
}

#[derive(Deserialize)]
struct Fields {
    user: Option<serde_json::Value>,
    connection: Option<serde_json::Value>,
    code: Option<serde_json::Value>,
    reason: Option<serde_json::Value>,
    reconnect: Option<serde_json::Value>,
}

pub fn parse(body: &str) -> Result<Box<dyn Method>, ServerError> {
    let fields: Fields = fields::body(body)?;
    let target = match (&fields.user, &fields.connection) {
        (Some(_), Some(_)) => {
            return Err(ServerError::field("connection", "give \"user\" or \"connection\", not both"));
        }
        (None, None) => return Err(ServerError::field("user", "give \"user\" or \"connection\"")),
        (Some(_), None) => {
            let (user, own) = fields::user(fields.user.as_ref())?;
            Target::User(user, own)
        }
        (None, Some(serde_json::Value::String(id))) => Target::Connection(
            ConnectionId::parse(id)
                .map_err(|_| ServerError::field("connection", format!("{id:?} is no connection id")))?,
        ),
        (None, Some(other)) => {
            return Err(ServerError::field(
                "connection",
                format!("must be a string, not {}", fields::kind(other)),
            ));
        }
    };
    let code = match &fields.code {
        None | Some(serde_json::Value::Null) => DEFAULT_CODE,
        Some(serde_json::Value::Number(n)) => match n.as_u64().and_then(|n| u16::try_from(n).ok()) {
            Some(code @ 4000..=4999) => code,
            _ => {
                return Err(ServerError::field(
                    "code",
                    format!("must be a whole number from 4000 to 4999, not {n}"),
                ));
            }
        },
        Some(other) => {
            return Err(ServerError::field(
                "code",
                format!("must be a whole number from 4000 to 4999, not {}", fields::kind(other)),
            ));
        }
    };
    let reconnect = match &fields.reconnect {
        None | Some(serde_json::Value::Null) => false,
        Some(serde_json::Value::Bool(on)) => *on,
        Some(other) => {
            return Err(ServerError::field(
                "reconnect",
                format!("must be true or false, not {}", fields::kind(other)),
            ));
        }
    };
    let reason = fields::reason(fields.reason.as_ref(), "disconnected by the server")?;
    Ok(Box::new(Disconnect { target, code, reason, reconnect }))
}

#[async_trait]
impl Method for Disconnect {
    async fn serve(self: Box<Self>, call: &Call<'_>) -> Result<serde_json::Value, ServerError> {
        let closer = connections::closer(call)?;
        let targets: Vec<ConnectionId> = match &self.target {
            Target::User(_, own) => {
                connections::of_user(call, own).await?.into_iter().map(|c| c.id).collect()
            }
            Target::Connection(id) => vec![id.clone()],
        };
        let frame = serde_json::json!({
            "type": "disconnect",
            "code": self.code,
            "reason": self.reason,
            "reconnect": self.reconnect,
        });
        let (closed, failed) =
            connections::tell(closer, &targets, Some(Bytes::from(frame.to_string())), true).await;
        let whom = match &self.target {
            Target::User(user, _) => format!("user {user}"),
            Target::Connection(id) => format!("connection {id}"),
        };
        tracing::info!(caller = %call.caller, whom, closed, failed, code = self.code, "disconnected");
        if failed > 0 {
            return Err(ServerError::Unavailable(format!(
                "{failed} of the {whom}'s connections could not be closed ({closed} were); send it again"
            )));
        }
        Ok(serde_json::json!({ "disconnected": closed }))
    }
}
