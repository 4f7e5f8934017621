//! How long a broadcast takes to reach every connection through the whole local pipeline.
//!
//! `cargo run --release -p local --example fanout -- [CONNECTIONS] [BROADCASTS]` starts a gateway on a
//! free loopback port, opens the connections, sends the broadcasts one after another from the first
//! connection, and prints the time from send to the last delivery of each. Every delivery is an
//! `@connections` HTTP call from the worker's SDK client, as on AWS. A figure, not a test: the pipeline's
//! own speed, so without the post budget that paces the worker on AWS (and by default here), and
//! without API Gateway's 500 new connections a second, which would only slow the setup down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use local::{Gateway, Settings};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let connections: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let broadcasts: usize = args.next().map_or(Ok(5), |a| a.parse())?;

    let settings = Settings {
        worker: worker::WorkerSettings { post_rate: u32::MAX, ..Default::default() },
        connect_rate: None,
        ..Settings::default()
    };
    let gateway = Gateway::new(TcpListener::bind("127.0.0.1:0").await?, settings)?;
    let url = gateway.ws_url();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(gateway.run(shutdown.clone().cancelled_owned()));

    let received = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let started = Instant::now();
    let mut sender = None;
    for n in 0..connections {
        let (client, _) = tokio_tungstenite::connect_async(&url).await?;
        let (sink, mut stream) = client.split();
        if n == 0 {
            sender = Some(sink);
        }
        let (received, progress) = (received.clone(), progress.clone());
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Text(_)) {
                    received.fetch_add(1, Ordering::Relaxed);
                    progress.notify_one();
                }
            }
        });
    }
    println!("{connections} connections open in {:.2?}", started.elapsed());

    let mut sender = sender.ok_or_else(|| anyhow::anyhow!("no connections"))?;
    let mut times = Vec::new();
    for b in 0..broadcasts {
        let target = (b + 1) * connections;
        let sent = Instant::now();
        sender.send(Message::text(format!(r#"{{"action":"broadcast","data":{{"n":{b}}}}}"#))).await?;
        while received.load(Ordering::Relaxed) < target {
            if tokio::time::timeout(Duration::from_secs(30), progress.notified()).await.is_err() {
                anyhow::bail!("only {} of {target} deliveries after 30 s", received.load(Ordering::Relaxed));
            }
        }
        let elapsed = sent.elapsed();
        println!(
            "broadcast {b}: {connections} deliveries in {elapsed:.2?} ({:.0} deliveries/s)",
            connections as f64 / elapsed.as_secs_f64()
        );
        times.push(elapsed);
    }
    times.sort();
    println!("median time to last delivery: {:.2?}", times[times.len() / 2]);

    shutdown.cancel();
    server.await??;
    Ok(())
}
