//! Stage 2: a message on a channel that keeps history and has no place in it yet — a backend's
//! publish, which reaches the queue without an ingress before it — gets its channel's next offset
//! here, once per message id: SQS's redelivery of it gets the same offset. A client's publish was
//! numbered by the ingress and passes untouched. A message that cannot be numbered is left to SQS's
//! redelivery, before anyone has received it.

use bytes::Bytes;
use shared::Audience;

use super::batch::Delivery;
use super::invocation::Invocation;
use crate::report::BatchReport;

impl Invocation<'_> {
    pub async fn number(&self, deliveries: Vec<Delivery>, report: &mut BatchReport) -> Vec<Delivery> {
        let Some(history) = &self.ports.history else { return deliveries };
        let mut numbered = Vec::with_capacity(deliveries.len());
        for mut delivery in deliveries {
            let unplaced =
                matches!(delivery.audience, Audience::Channel(_)) && delivery.envelope.offset.is_none();
            if unplaced {
                if let Err(err) = history.append_once(&mut delivery.envelope).await {
                    tracing::error!(message = %delivery.message_id, error = %err, "could not number a message in its channel's history; it will be redelivered");
                    report.failed.push(delivery.message_id);
                    continue;
                }
                delivery.frame = Bytes::from(delivery.envelope.frame());
            }
            numbered.push(delivery);
        }
        numbered
    }
}
