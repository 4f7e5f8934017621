//! Lifecycle events in memory: the local gateway's adapter (and the tests'). It keeps the most
//! recent events as an EventBridge rule's target receives them, for `GET /_local/events`, and hands
//! each to an optional tap — the gateway's `--events-url` forwarder — without ever waiting for it: a
//! tap that does not keep up loses events (counted), never slows a handler.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use serde_json::Value;
use tokio::sync::mpsc;

use super::port::{Events, EventsError, LifecycleEvent};
use crate::sync::lock;

/// The last `capacity` events, as delivered.
#[derive(Debug)]
pub struct RecentEvents {
    capacity: usize,
    account: String,
    region: String,
    events: Mutex<VecDeque<Value>>,
    tap: Option<mpsc::Sender<Value>>,
    /// Events the tap had no room for.
    dropped: AtomicU64,
}

impl RecentEvents {
    /// Keeps the last `capacity` events, stamped with `account` and `region` as EventBridge stamps
    /// them.
    pub fn new(capacity: usize, account: impl Into<String>, region: impl Into<String>) -> Self {
        Self {
            capacity: capacity.max(1),
            account: account.into(),
            region: region.into(),
            events: Mutex::new(VecDeque::new()),
            tap: None,
            dropped: AtomicU64::new(0),
        }
    }

    /// Also hands each event to `tap`, when it has room.
    pub fn with_tap(mut self, tap: mpsc::Sender<Value>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// The events kept, oldest first.
    pub fn recent(&self) -> Vec<Value> {
        lock(&self.events).iter().cloned().collect()
    }

    /// Events the tap had no room for.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Events for RecentEvents {
    async fn publish(&self, events: &[LifecycleEvent]) -> Result<(), EventsError> {
        let delivered: Vec<Value> = events
            .iter()
            .map(|event| event.delivered(&uuid::Uuid::new_v4().to_string(), &self.account, &self.region))
            .collect();
        {
            let mut kept = lock(&self.events);
            for event in &delivered {
                if kept.len() == self.capacity {
                    kept.pop_front();
                }
                kept.push_back(event.clone());
            }
        }
        if let Some(tap) = &self.tap {
            for event in delivered {
                if tap.try_send(event).is_err() {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::Channel;
    use crate::domain::{ConnectionId, ConnectionRef};
    use crate::presence::{Change, Member};

    fn change(clients: u64) -> Change {
        Change {
            member: Member {
                connection: ConnectionRef {
                    id: ConnectionId::parse("abc=").expect("id"),
                    connected_at_ms: 1,
                },
                user: None,
                info: None,
                since_ms: 1,
                join_leave: false,
                expires_at_s: 1,
            },
            clients,
            seq: clients,
            watchers: 0,
        }
    }

    #[tokio::test]
    async fn the_last_events_are_kept_and_a_full_tap_loses_events_without_waiting() {
        let (tap, mut taken) = mpsc::channel(2);
        let events = RecentEvents::new(3, "000000000000", "us-east-1").with_tap(tap);
        let room = Channel::parse("room/1").expect("channel");
        for clients in 1..=3 {
            events.publish(&LifecycleEvent::of_join(&room, &change(clients), 0)).await.expect("publish");
        }
        let kept = events.recent();
        assert_eq!(kept.len(), 3, "four events published, three kept");
        assert_eq!(kept[0]["detail"]["clients"], 1, "the oldest gone is the occupied one");
        assert_eq!(events.dropped(), 2, "the tap holds two");
        assert_eq!(taken.recv().await.expect("first")["detail-type"], "ChannelOccupied");
        let second = taken.try_recv().expect("second");
        assert_eq!(
            (second["detail-type"].as_str(), second["detail"]["clients"].as_u64()),
            (Some("MemberJoined"), Some(1))
        );
        assert!(taken.try_recv().is_err(), "the rest were dropped, not queued");
    }
}
