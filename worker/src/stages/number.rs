//! Stage 2: a message on a channel whose namespace keeps history and has no place in it yet — a backend's
//! publish, which reaches the queue without an ingress before it — gets its channel's next offset
//! here, once per message id: SQS's redelivery of it gets the same offset. A client's publish was
//! numbered by the ingress and passes untouched. A message that cannot be numbered is left to SQS's
//! redelivery, before anyone has received it. Then every message's frame is rendered, once, for all
//! of its posts.

use bytes::Bytes;
use shared::Audience;

use super::batch::Batch;
use super::invocation::Invocation;

impl Invocation<'_> {
    pub async fn number(&self, batch: &mut Batch) {
        if let Some(history) = &self.ports.stack.history {
            for item in &mut batch.items {
                let unplaced = match &item.audience {
                    Audience::Channel(channel) => {
                        item.envelope.offset.is_none() && self.ports.stack.namespaces.history(channel).is_on()
                    }
                    _ => false,
                };
                if unplaced && let Err(err) = history.append_once(&mut item.envelope).await {
                    tracing::error!(sqs_id = %item.sqs_id, error = %err, "could not number a message in its channel's history; it will be redelivered");
                    item.redeliver();
                }
            }
        }
        for item in batch.items.iter_mut().filter(|item| !item.failed()) {
            item.frame = Bytes::from(item.envelope.frame());
        }
    }
}
