//! Messages to one connection, published at a steady rate from a broadcast's start, as a chat's
//! direct messages would be while an announcement goes out: when each was queued and when it first
//! reached its connection, which is what the lanes are for.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::value::RawValue;
use shared::sync::lock;
use shared::{ConnectionId, ConnectionRef, Envelope, Job, Queue};
use tokio::time::Instant;

/// The connection the direct messages go to: none of the broadcast's.
pub fn target() -> ConnectionId {
    ConnectionId::parse("simdirect").unwrap_or_else(|_| unreachable!("a valid id"))
}

/// Each direct message's publishing and first arrival, by its number.
#[derive(Debug, Default)]
pub struct DirectMessages {
    sent: Mutex<HashMap<u64, Sent>>,
}

#[derive(Debug)]
struct Sent {
    at: Instant,
    arrived: Option<Instant>,
    copies: u32,
}

/// What the direct messages saw.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirectReport {
    pub published: usize,
    pub delivered: usize,
    pub duplicated: u64,
    /// From queueing to first arrival, over the messages delivered.
    pub p50_s: f64,
    pub p99_s: f64,
    pub max_s: f64,
}

impl DirectMessages {
    /// Queues `rate` messages a second to [`target`] for `duration`, counting each as published
    /// only once the queue took it.
    pub async fn publish(&self, queue: Arc<dyn Queue>, rate: f64, duration: Duration) {
        let every = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let began = Instant::now();
        let mut ticks = tokio::time::interval(every);
        for n in 0u64.. {
            ticks.tick().await;
            if began.elapsed() >= duration {
                break;
            }
            let Ok(data) = RawValue::from_string(format!("\"d{n}\"")) else { break };
            let Ok(envelope) = Envelope::broadcast(target(), 0, data) else { break };
            let job = Job::to(envelope, ConnectionRef { id: target(), connected_at_ms: 0 });
            let at = Instant::now();
            if queue.send(&job).await.is_ok() {
                lock(&self.sent).insert(n, Sent { at, arrived: None, copies: 0 });
            }
        }
    }

    /// Counts a post to [`target`] that got through.
    pub fn arrived(&self, frame: &[u8]) {
        let number = serde_json::from_slice::<serde_json::Value>(frame)
            .ok()
            .and_then(|frame| frame["data"].as_str()?.strip_prefix('d')?.parse::<u64>().ok());
        if let Some(n) = number {
            let mut sent = lock(&self.sent);
            if let Some(sent) = sent.get_mut(&n) {
                sent.copies += 1;
                sent.arrived.get_or_insert_with(Instant::now);
            }
        }
    }

    pub fn report(&self) -> DirectReport {
        let sent = lock(&self.sent);
        let mut waits: Vec<f64> = sent
            .values()
            .filter_map(|sent| sent.arrived.map(|arrived| arrived.duration_since(sent.at).as_secs_f64()))
            .collect();
        waits.sort_by(f64::total_cmp);
        let at = |q: f64| waits.get(((waits.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied();
        DirectReport {
            published: sent.len(),
            delivered: waits.len(),
            duplicated: sent.values().map(|sent| u64::from(sent.copies.saturating_sub(1))).sum(),
            p50_s: at(0.5).unwrap_or_default(),
            p99_s: at(0.99).unwrap_or_default(),
            max_s: waits.last().copied().unwrap_or_default(),
        }
    }
}
