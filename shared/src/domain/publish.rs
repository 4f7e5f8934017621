//! What a backend queues to publish without a WebSocket: one SQS `SendMessage` whose body is the
//! same shape as a client's publish. The worker turns it into a [`super::Job`].

use serde::Deserialize;
use serde_json::value::RawValue;

use super::envelope::MessageId;
use crate::channel::Channel;

/// What a backend sends to the queue to publish without a WebSocket: the same shape as a client's
/// publish, `{"action":"publish","channel":"user/alice","data":{…}}`, with an optional `"id"` (a
/// UUID) that clients see as the message's id — set it to make the backend's own retries
/// recognisable as duplicates. Any channel may be published to, `user/…` included.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendPublish {
    pub action: BackendAction,
    pub channel: Channel,
    pub data: Box<RawValue>,
    #[serde(default)]
    pub id: Option<MessageId>,
}

/// The actions a backend may queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendAction {
    Publish,
}
