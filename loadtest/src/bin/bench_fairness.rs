//! What per-client quotas protect, in one run on the in-process local gateway with its defaults
//! (25 messages a second per connection, 50 per user) but the stage throttle off: 100 ordinary
//! clients each publishing once a second to a channel they are subscribed to, first alone, then
//! beside one client publishing as fast as its socket allows. Counts what was answered and
//! delivered, never what was planned.
//!
//! The stage throttle is off because it is one bucket for every client, applied before any function
//! runs: a flood drains it for everyone whatever the ingress answers (docs/protocol.md, rate_limited).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Parser;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use local::{Gateway, Settings};
use serde_json::{Value, json};
use shared::quota::QuotaSettings;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100)]
    clients: usize,
    #[arg(long, default_value_t = 20)]
    secs: u64,
    /// A third run: the abuser beside the ordinary clients with no quota at all.
    #[arg(long)]
    without_quotas: bool,
}

#[derive(Default)]
struct Ordinary {
    published: AtomicU64,
    refused: AtomicU64,
    delivered: AtomicU64,
    latency: Mutex<Option<Histogram<u64>>>,
}

/// One ordinary client: subscribes to its own channel, publishes its send time once a second, and
/// times each delivery back.
async fn ordinary(url: String, n: usize, secs: u64, counts: Arc<Ordinary>) -> anyhow::Result<()> {
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await?;
    let channel = format!("room/{n}");
    socket.send(Message::text(json!({"action":"subscribe","channel":channel}).to_string())).await?;
    // Spread over the second, as independent users are, rather than all at one instant.
    tokio::time::sleep(Duration::from_millis((n as u64 * 1000 / 100) % 1000)).await;
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut histogram = Histogram::<u64>::new(3)?;
    let until = started + Duration::from_secs(secs);
    let drain = until + Duration::from_secs(3);
    loop {
        tokio::select! {
            _ = tick.tick(), if Instant::now() < until => {
                let at = started.elapsed().as_micros() as u64;
                socket.send(Message::text(json!({"action":"publish","channel":channel,"data":at}).to_string())).await?;
            }
            frame = socket.next() => {
                let Some(Ok(Message::Text(text))) = frame else { continue };
                let frame: Value = serde_json::from_str(&text)?;
                match frame["type"].as_str() {
                    Some("published") => { counts.published.fetch_add(1, Ordering::Relaxed); }
                    Some("message") => {
                        counts.delivered.fetch_add(1, Ordering::Relaxed);
                        let sent = frame["data"].as_u64().unwrap_or_default();
                        histogram.record((started.elapsed().as_micros() as u64).saturating_sub(sent).max(1))?;
                    }
                    Some("subscribed") => {}
                    _ => { counts.refused.fetch_add(1, Ordering::Relaxed); }
                }
            }
            _ = tokio::time::sleep_until(drain) => break,
        }
    }
    let mut latency = counts.latency.lock().await;
    match latency.as_mut() {
        Some(all) => all.add(&histogram)?,
        None => *latency = Some(histogram),
    }
    Ok(())
}

/// The abuser: publishes without waiting, as fast as the socket takes them, and counts the answers.
async fn abuser(url: String, secs: u64) -> anyhow::Result<(u64, u64, u64, Option<Duration>)> {
    let (socket, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut sink, mut stream) = socket.split();
    let sent = Arc::new(AtomicU64::new(0));
    let counting = sent.clone();
    let writer = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            let text = json!({"action":"publish","channel":"flood/1","data":"x"}).to_string();
            if sink.send(Message::text(text)).await.is_err() {
                break;
            }
            counting.fetch_add(1, Ordering::Relaxed);
        }
    });
    let (mut published, mut limited, mut closed) = (0, 0, None);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs + 3);
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, stream.next()).await {
        if let Message::Close(_) = frame {
            closed = Some(started.elapsed());
            break;
        }
        if let Message::Text(text) = frame {
            let frame: Value = serde_json::from_str(&text)?;
            if frame["type"] == "published" {
                published += 1;
            } else if frame["error"]["code"] == "rate_limited" {
                limited += 1;
            }
        }
    }
    writer.abort();
    Ok((sent.load(Ordering::Relaxed), published, limited, closed))
}

async fn run(args: &Args, with_abuser: bool, quotas: QuotaSettings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway = Gateway::new(listener, Settings { stage_throttle: None, quotas, ..Settings::default() })?;
    let url = gateway.ws_url();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    let server = tokio::spawn(async move { gateway.run(stopping.cancelled_owned()).await });
    let counts = Arc::new(Ordinary::default());
    let clients: Vec<_> = (0..args.clients)
        .map(|n| tokio::spawn(ordinary(url.clone(), n, args.secs, counts.clone())))
        .collect();
    let flood = with_abuser.then(|| tokio::spawn(abuser(url.clone(), args.secs)));
    for client in clients {
        client.await??;
    }
    let latency = counts.latency.lock().await.take().unwrap_or(Histogram::new(3)?);
    println!(
        "{}: ordinary clients published {} (refused {}), delivered {}; delivery p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        match (with_abuser, quotas == QuotaSettings::UNLIMITED) {
            (false, false) => "alone",
            (false, true) => "alone, no quotas (the limit check's baseline)",
            (true, false) => "beside the abuser",
            (true, true) => "beside the abuser, no quotas",
        },
        counts.published.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.delivered.load(Ordering::Relaxed),
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        latency.max() as f64 / 1000.0,
    );
    if let Some(flood) = flood {
        let (sent, published, limited, closed) = flood.await??;
        let closed = closed
            .map_or("never closed".to_owned(), |after| format!("closed after {:.2} s", after.as_secs_f64()));
        println!(
            "  the abuser sent {sent}: {published} published, {limited} answered rate_limited; {closed}"
        );
    }
    stop.cancel();
    server.await??;
    let (published, delivered) =
        (counts.published.load(Ordering::Relaxed), counts.delivered.load(Ordering::Relaxed));
    anyhow::ensure!(counts.refused.load(Ordering::Relaxed) == 0, "an ordinary client's publish was refused");
    anyhow::ensure!(delivered == published, "{published} published, {delivered} delivered");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    println!(
        "bench_fairness: {} ordinary clients at 1/s for {} s, stage throttle off, default quotas",
        args.clients, args.secs
    );
    // The limit check's cost: the same ordinary clients with no quota to check.
    run(&args, false, QuotaSettings::UNLIMITED).await?;
    run(&args, false, QuotaSettings::default()).await?;
    run(&args, true, QuotaSettings::default()).await?;
    if args.without_quotas {
        run(&args, true, QuotaSettings::UNLIMITED).await?;
    }
    Ok(())
}
