//! The traffic: publishers that each publish in sequence — a publish answered before the next goes —
//! at the configured rate all together, spread over the channels. Every acknowledgement says the
//! message's offset and id: the truth subscribers' deliveries are held against.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::tungstenite::Message;

use super::context::{Ctx, channel_of};
use crate::swarm::socket::{self, connect, frames};

/// What was published: each channel's messages by offset (their ids), and the publishes refused.
#[derive(Debug, Default)]
pub struct Published {
    pub by_channel: HashMap<String, BTreeMap<u64, String>>,
    pub refused: BTreeMap<String, u64>,
}

impl Published {
    pub fn latest_by_channel(&self) -> HashMap<String, u64> {
        self.by_channel
            .iter()
            .map(|(channel, messages)| (channel.clone(), messages.keys().next_back().copied().unwrap_or(0)))
            .collect()
    }

    pub fn count(&self) -> u64 {
        self.by_channel.values().map(|m| m.len() as u64).sum()
    }

    fn merge(&mut self, other: Published) {
        for (channel, messages) in other.by_channel {
            self.by_channel.entry(channel).or_default().extend(messages);
        }
        for (kind, n) in other.refused {
            *self.refused.entry(kind).or_default() += n;
        }
    }
}

/// Runs every publisher to its last message (or the deadline).
pub(crate) async fn publish(ctx: &std::sync::Arc<Ctx>, deadline: Instant) -> Published {
    let publishers = ctx.settings.publishers;
    let tasks: Vec<_> = (0..publishers).map(|p| tokio::spawn(publisher(ctx.clone(), p, deadline))).collect();
    let mut published = Published::default();
    for task in tasks {
        if let Ok(part) = task.await {
            published.merge(part);
        }
    }
    published
}

async fn publisher(ctx: std::sync::Arc<Ctx>, p: u32, deadline: Instant) -> Published {
    let settings = &ctx.settings;
    let mut published = Published::default();
    let mut refuse = |kind: String| *published.refused.entry(kind).or_default() += 1;
    let source = socket::source_address(
        &ctx.target,
        settings.subscribers + p,
        settings.subscribers + settings.publishers,
    );
    let mut ws = match connect(&settings.url, &ctx.target, source, None).await {
        Ok(ws) => ws,
        Err(kind) => {
            refuse(format!("publisher_{kind}"));
            return published;
        }
    };
    let interval = Duration::from_secs_f64(f64::from(settings.publishers) / settings.rate.max(0.001));
    let mut next = Instant::now() + interval.mul_f64(f64::from(p) / f64::from(settings.publishers.max(1)));
    let pad = "x".repeat(settings.size);
    for n in 0..settings.messages {
        if Instant::now() >= deadline || ctx.stop.is_cancelled() {
            break;
        }
        sleep_until(next).await;
        next += interval;
        let channel =
            channel_of((n as u32).wrapping_mul(settings.publishers).wrapping_add(p), settings.channels);
        let reference = n.to_string();
        let data = json!({ "t": ctx.now_us(), "p": p, "pad": pad });
        let request =
            json!({ "action": "publish", "channel": channel, "data": data, "ref": reference }).to_string();
        crate::frame_check::sent(&request);
        let mut failed = false;
        for frame in frames(request) {
            failed = failed || ws.feed(frame).await.is_err();
        }
        if failed || ws.flush().await.is_err() {
            refuse("publisher_send_failed".into());
            return published;
        }
        // In sequence: the answer, then the next publish.
        let answer = loop {
            match timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => {
                    crate::frame_check::received(&text);
                    let value: Value = serde_json::from_str(&text).unwrap_or_default();
                    if value["ref"] == reference.as_str() || value["message"] == "Too Many Requests" {
                        break Some(value);
                    }
                }
                Ok(Some(Ok(_))) => {}
                _ => break None,
            }
        };
        match answer {
            Some(value) if value["type"] == "published" => {
                let (Some(offset), Some(id)) = (value["offset"].as_u64(), value["id"].as_str()) else {
                    refuse("published_without_offset".into());
                    continue;
                };
                published.by_channel.entry(channel).or_default().insert(offset, id.to_owned());
            }
            Some(value) => {
                let kind =
                    value["error"]["code"].as_str().map_or_else(|| "throttled".to_owned(), str::to_owned);
                refuse(format!("publish_{kind}"));
            }
            None => {
                refuse("publish_unanswered".into());
                return published;
            }
        }
    }
    let _ = ws.close(None).await;
    published
}
