//! `POST /api/presence`: `{"channel":…}`, answered exactly as a client's `presence` action
//! (`docs/protocol.md`: exact `clients` and `users`, the longest-standing `members` first), without
//! its permission or hooks.

use async_trait::async_trait;
use shared::Channel;

use super::contract::{Call, Method};
use super::error::ServerError;
use super::fields;
use super::history::rendered;
use crate::actions::{self, Fields, Reply};

pub struct Presence {
    channel: Channel,
}

pub fn parse(body: &str) -> Result<Box<dyn Method>, ServerError> {
    let fields: Fields = fields::body(body)?;
    Ok(Box::new(Presence { channel: fields.channel()? }))
}

#[async_trait]
impl Method for Presence {
    async fn serve(self: Box<Self>, call: &Call<'_>) -> Result<serde_json::Value, ServerError> {
        let answer = actions::presence::read(call.ports, self.channel, call.received_at_ms).await?;
        rendered(Reply::Presence(answer))
    }
}
