//! What hooks cost, side by side in one run on the in-process local gateway, its hooks served by a
//! loopback Invoke API that answers at once (`testkit::InvokeApi`, as `cargo lambda watch` would
//! with a warm function):
//!
//! 1. subscribe round trips (subscribe, then unsubscribe) to a namespace with a subscribe hook and
//!    to one without, alternated;
//! 2. publish round trips at `--rate` a second to a namespace with a publish hook and to one
//!    without, alternated;
//! 3. a subscribe hook that takes 5 s against its 1 s timeout: how long its refusals take, and the
//!    plain publishes' round trips meanwhile against phase 2's;
//! 4. an event hook handed every message of `--event-secs` at `--event-rate` a second, its Invoke
//!    API throttling every call for `--outage-secs` in the middle: offsets received, once each.
//!
//! Every figure counts answers received and events the Invoke API was handed, never the planned.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use local::settings::NamespaceFile;
use local::{Gateway, Settings};
use serde_json::{Value, json};
use shared::quota::QuotaSettings;
use testkit::{InvokeApi, Outcome};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Parser)]
struct Args {
    /// Round trips per kind in phases 1 and 2.
    #[arg(long, default_value_t = 2000)]
    round_trips: usize,
    /// Publishes a second in phase 2.
    #[arg(long, default_value_t = 1000)]
    rate: u64,
    #[arg(long, default_value_t = 60)]
    event_secs: u64,
    #[arg(long, default_value_t = 500)]
    event_rate: u64,
    #[arg(long, default_value_t = 10)]
    outage_secs: u64,
}

const FILE: &str = "[hooked]\nsubscribe_hook = { function = \"allow\" }\npublish_hook = { function = \"forward\" }\n\n\
                    [slow]\nsubscribe_hook = { function = \"slow\", timeout_ms = 1000 }\n\n\
                    [log]\nevent_hook = { function = \"archive\" }\nhistory_size = 1000\n";

type Client = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ask(client: &mut Client, request: Value) -> anyhow::Result<(Value, Duration)> {
    let started = Instant::now();
    client.send(Message::text(request.to_string())).await?;
    loop {
        match client.next().await {
            Some(Ok(Message::Text(text))) => {
                let answer: Value = serde_json::from_str(&text)?;
                if answer["type"] == "message" {
                    continue;
                }
                return Ok((answer, started.elapsed()));
            }
            Some(Ok(_)) => continue,
            other => anyhow::bail!("the connection ended: {other:?}"),
        }
    }
}

fn ms(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1000.0
}

fn line(what: &str, histogram: &Histogram<u64>) {
    println!(
        "{what}: n {}, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        histogram.len(),
        ms(histogram, 0.5),
        ms(histogram, 0.99),
        histogram.max() as f64 / 1000.0
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let api = InvokeApi::start().await;
    api.function("allow", |_| Outcome::Returns(Value::Null));
    api.function("forward", |event| {
        Outcome::Returns(json!({ "events": [{ "id": event["events"][0]["id"], "payload": event["events"][0]["payload"] }] }))
    });
    api.function("slow", |_| Outcome::After(Duration::from_secs(5), Box::new(Outcome::Returns(Value::Null))));
    let outage = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let offsets: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let (down, kept) = (outage.clone(), offsets.clone());
    api.function("archive", move |event| {
        if down.load(std::sync::atomic::Ordering::SeqCst) {
            return Outcome::Throttled;
        }
        if let Some(offset) = event["websocket"]["offset"].as_u64() {
            *kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(offset).or_default() += 1;
        }
        Outcome::Returns(Value::Null)
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let settings = Settings {
        namespaces: Some(NamespaceFile { name: "bench_hooks".into(), text: FILE.into() }),
        hooks_endpoint: Some(api.endpoint()),
        // What hooks cost, not what a client may send: one client publishes 1,000 a second here.
        stage_throttle: None,
        quotas: QuotaSettings::UNLIMITED,
        ..Settings::default()
    };
    let gateway = Gateway::new(listener, settings)?;
    let url = gateway.ws_url();
    let (stop, served) = (tokio_util::sync::CancellationToken::new(), gateway);
    let stopping = stop.clone();
    let server = tokio::spawn(async move { served.run(stopping.cancelled_owned()).await });
    let connect = move || {
        let url = url.clone();
        async move { anyhow::Ok(tokio_tungstenite::connect_async(url).await?.0) }
    };

    println!("bench_hooks: {} round trips a kind, publishes at {}/s", args.round_trips, args.rate);
    let mut client = connect().await?;
    let (mut hooked, mut plain) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
    for n in 0..args.round_trips * 2 {
        let (namespace, histogram) = if n % 2 == 0 { ("hooked", &mut hooked) } else { ("plain", &mut plain) };
        let channel = format!("{namespace}/{}", n % 50);
        let (answer, took) = ask(&mut client, json!({"action":"subscribe","channel":channel})).await?;
        anyhow::ensure!(answer["type"] == "subscribed", "{answer}");
        histogram.record(took.as_micros() as u64)?;
        ask(&mut client, json!({"action":"unsubscribe","channel":channel})).await?;
    }
    line("1. subscribe, plain namespace", &plain);
    line("1. subscribe, through a subscribe hook", &hooked);
    println!("   hook's cost at p99: {:.2} ms", ms(&hooked, 0.99) - ms(&plain, 0.99));

    let (mut hooked, mut plain) = (Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?);
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / args.rate));
    for n in 0..args.round_trips * 2 {
        tick.tick().await;
        let (namespace, histogram) = if n % 2 == 0 { ("hooked", &mut hooked) } else { ("plain", &mut plain) };
        let request = json!({"action":"publish","channel":format!("{namespace}/{}", n % 50),"data":n});
        let (answer, took) = ask(&mut client, request).await?;
        anyhow::ensure!(answer["type"] == "published", "{answer}");
        histogram.record(took.as_micros() as u64)?;
    }
    line("2. publish, plain namespace", &plain);
    line("2. publish, through a publish hook", &hooked);
    println!("   hook's cost at p99: {:.2} ms", ms(&hooked, 0.99) - ms(&plain, 0.99));
    let plain_alone = plain;

    let slow = (0..20).map(|n| {
        let connect = connect.clone();
        async move {
            let mut client = connect().await?;
            let (answer, took) =
                ask(&mut client, json!({"action":"subscribe","channel":format!("slow/{n}")})).await?;
            anyhow::ensure!(answer["error"]["code"] == "unavailable", "{answer}");
            anyhow::Ok(took)
        }
    });
    let slow = tokio::spawn(futures::future::try_join_all(slow));
    let mut beside = Histogram::<u64>::new(3)?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1500) {
        tick.tick().await;
        let (answer, took) =
            ask(&mut client, json!({"action":"publish","channel":"plain/1","data":1})).await?;
        anyhow::ensure!(answer["type"] == "published", "{answer}");
        beside.record(took.as_micros() as u64)?;
    }
    let refusals = slow.await??;
    let longest = refusals.iter().max().copied().unwrap_or_default();
    println!(
        "3. 20 subscribes through a 5 s hook with a 1 s timeout: all refused unavailable, the slowest in {:.3} s",
        longest.as_secs_f64()
    );
    line("3. plain publishes meanwhile", &beside);
    println!(
        "   against phase 2's plain publishes: p99 {:.2} ms beside {:.2} ms",
        ms(&beside, 0.99),
        ms(&plain_alone, 0.99)
    );

    let mut publisher = connect().await?;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / args.event_rate));
    let (started, mut published) = (Instant::now(), 0u64);
    let outage_from = Duration::from_secs(args.event_secs.saturating_sub(args.outage_secs) / 2);
    let outage_to = outage_from + Duration::from_secs(args.outage_secs);
    while started.elapsed() < Duration::from_secs(args.event_secs) {
        tick.tick().await;
        let elapsed = started.elapsed();
        outage.store(elapsed >= outage_from && elapsed < outage_to, std::sync::atomic::Ordering::SeqCst);
        let (answer, _) =
            ask(&mut publisher, json!({"action":"publish","channel":"log/app","data":published})).await?;
        anyhow::ensure!(answer["type"] == "published", "{answer}");
        published += 1;
    }
    outage.store(false, std::sync::atomic::Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(60);
    let count = || offsets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len() as u64;
    while count() < published && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let kept = offsets.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let duplicates: u32 = kept.values().map(|n| n - 1).sum();
    let missing = (1..=published).filter(|offset| !kept.contains_key(offset)).count();
    println!(
        "4. event hook, {} s at {}/s with its Invoke API throttling for {} s: {published} published, {} offsets received, {missing} missing, {duplicates} duplicates",
        args.event_secs,
        args.event_rate,
        args.outage_secs,
        kept.len()
    );
    stop.cancel();
    server.await??;
    anyhow::ensure!(missing == 0, "event hook missed {missing} offsets");
    Ok(())
}
