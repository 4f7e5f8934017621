//! Lifecycle events to an Amazon EventBridge bus, with `PutEvents`: ten entries to a call (its
//! limit), entries the bus failed (throttling, its own trouble) sent once more, and whatever is
//! still failed reported as retryable. Each event is one entry of `source` [`SOURCE`], its
//! `detail-type` and its `detail`; EventBridge stamps the id, account, region and time a rule's
//! target receives.

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::primitives::DateTime;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use super::port::{Events, EventsError, LifecycleEvent, SOURCE};
use crate::aws::is_retryable;

/// `PutEvents`' most entries in one call.
const MAX_ENTRIES: usize = 10;

/// An EventBridge bus.
#[derive(Clone, Debug)]
pub struct EventBridgeEvents {
    client: Client,
    bus: String,
}

impl EventBridgeEvents {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self { client, bus: bus.into() }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, bus: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), bus)
    }

    fn entry(&self, event: &LifecycleEvent) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .event_bus_name(&self.bus)
            .source(SOURCE)
            .detail_type(event.kind.detail_type())
            .detail(event.detail().to_string())
            .time(DateTime::from_millis(event.at_ms))
            .build()
    }
}

#[async_trait]
impl Events for EventBridgeEvents {
    async fn publish(&self, events: &[LifecycleEvent]) -> Result<(), EventsError> {
        for chunk in events.chunks(MAX_ENTRIES) {
            let mut entries: Vec<PutEventsRequestEntry> =
                chunk.iter().map(|event| self.entry(event)).collect();
            for attempt in 0..2 {
                let out = self.client.put_events().set_entries(Some(entries.clone())).send().await.map_err(
                    |err| {
                        if is_retryable(&err) {
                            EventsError::Unavailable(Box::new(err))
                        } else {
                            EventsError::Rejected(Box::new(err))
                        }
                    },
                )?;
                if out.failed_entry_count() == 0 {
                    break;
                }
                // The answer's entries are the request's, in order; a failed one carries an error code.
                let failed: Vec<PutEventsRequestEntry> = out
                    .entries()
                    .iter()
                    .zip(&entries)
                    .filter(|(result, _)| result.error_code().is_some())
                    .map(|(_, entry)| entry.clone())
                    .collect();
                if attempt == 1 || failed.is_empty() {
                    return Err(EventsError::Unavailable(
                        format!("{} of {} events failed on the bus", out.failed_entry_count(), entries.len())
                            .into(),
                    ));
                }
                entries = failed;
            }
        }
        Ok(())
    }
}
