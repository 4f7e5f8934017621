//! `POST /api/broadcast`: `{"data":…}` to every connection, as a client's `broadcast` but from no
//! connection (its frame has no `from`). Answered `{"id":…}` once queued. An optional `id` (a
//! UUID) is the message's: a retry is delivered again under it, which clients drop as a repeat —
//! a broadcast has no history to number it once.

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::value::RawValue;
use shared::{Envelope, InputError, Job};

use super::contract::{Call, Method};
use super::error::ServerError;
use super::fields;

pub struct Broadcast {
    envelope: Envelope,
}

#[derive(Deserialize)]
struct Fields {
    data: Option<Box<RawValue>>,
    id: Option<serde_json::Value>,
}

pub fn parse(body: &str) -> Result<Box<dyn Method>, ServerError> {
    let fields: Fields = fields::body(body)?;
    let id = fields::id(fields.id.as_ref())?;
    let envelope = Envelope::backend_broadcast(0, fields.data.ok_or(InputError::MissingData)?)?;
    Ok(Box::new(Broadcast {
        envelope: match id {
            Some(id) => envelope.with_id(id),
            None => envelope,
        },
    }))
}

#[async_trait]
impl Method for Broadcast {
    async fn serve(self: Box<Self>, call: &Call<'_>) -> Result<serde_json::Value, ServerError> {
        let mut envelope = self.envelope;
        envelope.sent_at = call.received_at_ms;
        let id = envelope.id.clone();
        call.ports.queue.send(&Job::broadcast(envelope)).await.map_err(|err| {
            tracing::error!(caller = %call.caller, error = %err, "could not queue a server broadcast");
            ServerError::Unavailable("the broadcast could not be queued; send it again".into())
        })?;
        Ok(serde_json::json!({ "id": id }))
    }
}
