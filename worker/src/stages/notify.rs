//! Stage 3: every new message on a channel whose namespace has an event hook — a client's publish
//! or the backend's, now with its offset — handed to that function as an `Event` invocation, which
//! Lambda queues and retries by itself. Before the fan-out, so that a message Lambda would not take
//! (throttled, unavailable) is left to SQS's redelivery before anyone has received it: its offset
//! stays (numbering is once per id) and no subscriber gets it twice. A function Lambda refuses (no
//! such function, no permission) is logged and the message goes on: a misconfigured hook must not
//! stop a channel. Shard and retry jobs are the same message again and hand nothing.

use shared::Audience;

use super::batch::Batch;
use super::invocation::Invocation;

impl Invocation<'_> {
    pub async fn notify(&self, batch: &Batch) {
        let Some(hooks) = &self.ports.stack.hooks else { return };
        let namespaces = &self.ports.stack.namespaces;
        let handed =
            batch.items.iter().filter(|item| !item.failed() && item.attempt == 0).filter_map(|item| {
                let Audience::Channel(channel) = &item.audience else { return None };
                let hook = namespaces.of(channel).event_hook.as_ref()?;
                let request = shared::hooks::shapes::event_request(channel, &item.envelope);
                Some(async move { (item, hook, hooks.notify(&hook.function, request).await) })
            });
        for (item, hook, handed) in futures::future::join_all(handed).await {
            match handed {
                Ok(()) => {}
                Err(err) if err.is_retryable() => {
                    tracing::warn!(sqs_id = %item.sqs_id, function = %hook.function, error = %err, "the event hook did not take the message; it will be redelivered");
                    item.redeliver();
                }
                Err(err) => {
                    tracing::error!(sqs_id = %item.sqs_id, function = %hook.function, error = %err, "the event hook cannot be invoked; the message is delivered without it");
                }
            }
        }
    }
}
