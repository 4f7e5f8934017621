//! `POST /api/history`: `{"channel":…,"limit":…,"since":{"offset":…,"epoch":…}}`, read and answered
//! exactly as a client's `history` action (`docs/protocol.md`), without its permission or hooks: the
//! same fields, the same limits, the same answer and errors.

use async_trait::async_trait;
use shared::{Channel, Position};

use super::contract::{Call, Method};
use super::error::ServerError;
use super::fields;
use crate::actions::{self, Fields, Reply};

pub struct History {
    channel: Channel,
    limit: usize,
    since: Option<Position>,
}

pub fn parse(body: &str) -> Result<Box<dyn Method>, ServerError> {
    let fields: Fields = fields::body(body)?;
    Ok(Box::new(History {
        channel: fields.channel()?,
        limit: fields.limit(actions::history::DEFAULT_LIMIT, actions::history::MAX_LIMIT)?,
        since: fields.since()?,
    }))
}

#[async_trait]
impl Method for History {
    async fn serve(self: Box<Self>, call: &Call<'_>) -> Result<serde_json::Value, ServerError> {
        let answer = actions::history::read(call.ports, self.channel, self.limit, self.since).await?;
        rendered(Reply::History(answer))
    }
}

/// A client's answer, as the server API's.
pub(super) fn rendered(reply: Reply) -> Result<serde_json::Value, ServerError> {
    let text = reply.render(None).unwrap_or_default();
    serde_json::from_str(&text)
        .map_err(|err| ServerError::Unavailable(format!("the answer did not render: {err}")))
}
