//! The subscribers of the bench's channel: every message each received, by the phase its data
//! names, and how long it took from when it was due.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::calls::token;

/// What each subscriber received, by phase: every delivery, the distinct ids, and their latency.
#[derive(Debug, Default)]
pub struct Received {
    by_phase: HashMap<String, (u64, HashSet<String>)>,
    latency: HashMap<String, Histogram<u64>>,
}

pub type Inbox = Arc<Mutex<Received>>;

/// A subscriber of `channel`: records each message by the phase its data names.
pub async fn subscriber(
    ws_url: String,
    channel: &'static str,
    start: Instant,
    inbox: Inbox,
) -> anyhow::Result<()> {
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("{ws_url}/?token={}", token("reader", false)?)).await?;
    socket.send(Message::text(json!({"action":"subscribe","channel":channel}).to_string())).await?;
    while let Some(Ok(frame)) = socket.next().await {
        let Message::Text(text) = frame else { continue };
        let frame: Value = serde_json::from_str(&text)?;
        if frame["type"] != "message" {
            continue;
        }
        let phase = frame["data"]["p"].as_str().unwrap_or_default().to_owned();
        let sent = frame["data"]["t"].as_u64().unwrap_or_default();
        let mut inbox = inbox.lock().await;
        let entry = inbox.by_phase.entry(phase.clone()).or_default();
        entry.0 += 1;
        entry.1.insert(frame["id"].as_str().unwrap_or_default().to_owned());
        let took = (start.elapsed().as_micros() as u64).saturating_sub(sent).max(1);
        inbox.latency.entry(phase).or_insert_with(|| Histogram::new(3).expect("a histogram")).record(took)?;
    }
    Ok(())
}

/// Waits until every subscriber has `count` deliveries of `phase` (or 15 s pass): the fewest any got.
pub async fn delivered(inboxes: &[Inbox], phase: &str, count: u64) -> (u64, usize, Option<Histogram<u64>>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut fewest = (u64::MAX, usize::MAX);
        let mut latency: Option<Histogram<u64>> = None;
        for inbox in inboxes {
            let inbox = inbox.lock().await;
            let (total, ids) = inbox.by_phase.get(phase).map_or((0, 0), |(n, ids)| (*n, ids.len()));
            fewest = (fewest.0.min(total), fewest.1.min(ids));
            if let Some(h) = inbox.latency.get(phase) {
                match latency.as_mut() {
                    Some(all) => all.add(h).expect("same bounds"),
                    None => latency = Some(h.clone()),
                }
            }
        }
        if fewest.0 >= count || Instant::now() > deadline {
            // Anything more than expected would be a duplicate: give it a moment to show.
            tokio::time::sleep(Duration::from_millis(500)).await;
            return (fewest.0, fewest.1, latency);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
