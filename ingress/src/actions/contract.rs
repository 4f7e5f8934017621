//! What every action is held to, and what it may use: an [`Action`] is parsed from the message's
//! [`Fields`] by its row's [`Parse`], and applied with a [`Context`] — who sent it, and the ports —
//! into a [`Reply`] or a [`Refusal`]. [`enqueue`] is how an action puts a job on the queue.

use async_trait::async_trait;
use shared::{ConnectionId, Identity, InputError};

use super::fields::Fields;
use super::reply::{Refusal, Reply};
use crate::ports::Ports;

/// Reads an action's fields into the action, or says what is wrong with them.
pub type Parse = fn(Fields) -> Result<Box<dyn Action>, InputError>;

/// What an action does once parsed.
#[async_trait]
pub trait Action: Send + Sync {
    async fn apply(self: Box<Self>, cx: &Context<'_>) -> Result<Reply, Refusal>;
}

/// What an action may use: who sent it, and the ports.
pub struct Context<'a> {
    pub connection: &'a ConnectionId,
    /// Epoch milliseconds: when the connection was made, and when API Gateway received this message.
    pub connected_at_ms: i64,
    pub received_at_ms: i64,
    pub identity: &'a Identity,
    /// The message as the client sent it.
    pub body: &'a str,
    pub ports: &'a Ports,
}

/// Queues a job, or says the message could not be.
pub(super) async fn enqueue(cx: &Context<'_>, job: &shared::Job) -> Result<(), Refusal> {
    cx.ports.queue.send(job).await.map_err(|err| {
        tracing::error!(connection = %cx.connection, error = %err, "could not queue a message");
        Refusal::Unavailable(if err.is_retryable() {
            "the message could not be queued; send it again".into()
        } else {
            "the message could not be queued".into()
        })
    })
}
