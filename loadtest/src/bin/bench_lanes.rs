//! One-to-one messages through a running gateway, timed: a recipient subscribes to a channel of its
//! own, `--senders` connections publish to it in turn `--rate` times a second for `--secs`, each message carrying its send
//! time, and the recipient times each arrival. `scripts/bench-lanes` runs it on an idle gateway and
//! beside a swarm's broadcasts to 10,000, with the lanes and with one queue. Prints one JSON line of
//! what was answered and delivered, never what was planned.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// The gateway's WebSocket URL.
    #[arg(long)]
    url: String,
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Connections the messages are sent from, in turn: 50 a second from one would pass its quota.
    #[arg(long, default_value_t = 5)]
    senders: usize,
    /// How long to wait for the last messages after the sender stops.
    #[arg(long, default_value_t = 30)]
    drain_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let channel = format!("dm/{}", uuid::Uuid::new_v4().simple());
    let (mut recipient, _) = tokio_tungstenite::connect_async(&args.url).await?;
    recipient.send(Message::text(json!({"action":"subscribe","channel":channel}).to_string())).await?;
    loop {
        let Some(frame) = recipient.next().await else { anyhow::bail!("closed before subscribing") };
        if let Message::Text(text) = frame? {
            let frame: Value = serde_json::from_str(&text)?;
            anyhow::ensure!(frame["type"] == "subscribed", "subscribing answered {frame}");
            break;
        }
    }
    // Several senders, each within a connection's quota (25 a second by default).
    let (published, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut sinks = Vec::new();
    for _ in 0..args.senders.max(1) {
        let (sender, _) = tokio_tungstenite::connect_async(&args.url).await?;
        let (sink, mut answers) = sender.split();
        sinks.push(sink);
        let (counting_published, counting_refused) = (published.clone(), refused.clone());
        tokio::spawn(async move {
            while let Some(Ok(frame)) = answers.next().await {
                let Message::Text(text) = frame else { continue };
                let frame: Value = serde_json::from_str(&text).unwrap_or_default();
                match frame["type"].as_str() {
                    Some("published") => counting_published.fetch_add(1, Ordering::Relaxed),
                    Some("broadcast" | "message") => 0,
                    _ => counting_refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    let started = Instant::now();
    let (rate, secs, text_channel) = (args.rate, args.secs, channel.clone());
    let sent_count = Arc::new(AtomicU64::new(0));
    let counting_sent = sent_count.clone();
    let sending = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.01)));
        let mut sent = 0u64;
        while started.elapsed() < Duration::from_secs(secs) {
            tick.tick().await;
            let at = started.elapsed().as_micros() as u64;
            let text = json!({"action":"publish","channel":text_channel,"data":at}).to_string();
            let turn = sent as usize % sinks.len();
            let sink = &mut sinks[turn];
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
            sent += 1;
            counting_sent.store(sent, Ordering::Relaxed);
        }
        sent
    });
    let mut latency = Histogram::<u64>::new(3)?;
    let drain = started + Duration::from_secs(args.secs + args.drain_secs);
    let mut delivered = 0u64;
    while Instant::now() < drain {
        let frame = match tokio::time::timeout(Duration::from_millis(100), recipient.next()).await {
            Ok(Some(frame)) => Some(frame?),
            Ok(None) => break,
            Err(_) => None,
        };
        let frame: Value = match frame {
            Some(Message::Text(text)) => serde_json::from_str(&text)?,
            _ => Value::Null,
        };
        if frame["type"] == "message" && frame["channel"] == channel.as_str() {
            delivered += 1;
            let sent = frame["data"].as_u64().unwrap_or_default();
            latency.record((started.elapsed().as_micros() as u64).saturating_sub(sent).max(1))?;
        }
        // Every publish is answered and every one accepted has arrived: nothing is left to wait for.
        let (accepted, answered) = (published.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
        if sending.is_finished()
            && accepted + answered >= sent_count.load(Ordering::Relaxed)
            && delivered >= accepted
        {
            break;
        }
    }
    let sent = sending.await?;
    let (published, refused) = (published.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    let ms = |q: f64| latency.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "{}",
        json!({
            "sent": sent, "published": published, "refused": refused, "delivered": delivered,
            "p50_ms": ms(0.5), "p99_ms": ms(0.99), "max_ms": latency.max() as f64 / 1000.0,
        })
    );
    Ok(())
}
