//! The server API's goals, in one run on the in-process local gateway (its defaults, the stage
//! throttle off, the project's authorizer with a development secret, its SQS endpoint):
//!
//! 1. **publish**: `--rate` publishes a second for `--secs` to one channel with `--subscribers`,
//!    over the server API with a bearer token, then signed with SigV4, then the same count through
//!    SQS `SendMessage` (the way backends published before) — each answer timed from when it was due
//!    (open loop: a slow answer delays no later request), and every delivery counted and timed;
//! 2. **idempotency**: `--repeats` publishes, each sent again `--retry-after-ms` later with the same
//!    `id` and body, as a client whose timeout fired does: the offsets answered and the deliveries
//!    each subscriber got;
//! 3. **disconnect**: a user with `--connections` connections, each a member of a watched channel:
//!    how long until every socket is closed, and the `leave` frames and lifecycle events that follow.
//!
//! Counts what was answered and delivered, never what was planned.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, ensure};
use authorizer::{Authorizer, Verifier};
use clap::Parser;
use loadtest::server_api::calls::{Caller, SECRET, Way, ms, paced, token};
use loadtest::server_api::disconnect::disconnect_phase;
use loadtest::server_api::inbox::{Inbox, delivered, subscriber};
use local::{Gateway, Settings};
use serde_json::{Value, json};
use tokio::time::Instant;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 2000)]
    rate: u64,
    #[arg(long, default_value_t = 10)]
    secs: u64,
    /// Subscribers of the published channel: each delivery is an `@connections` call, and the
    /// account's 10,000 a second bound rate × subscribers.
    #[arg(long, default_value_t = 2)]
    subscribers: usize,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    #[arg(long, default_value_t = 10_000)]
    repeats: usize,
    #[arg(long, default_value_t = 200)]
    retry_after_ms: u64,
    #[arg(long, default_value_t = 100)]
    connections: usize,
}

async fn publish_phases(
    args: &Args,
    caller: &Arc<Caller>,
    inboxes: &[Inbox],
    start: Instant,
) -> anyhow::Result<()> {
    let count = args.rate * args.secs;
    let step = Duration::from_secs(1).as_nanos() as u64 / args.rate;
    // A second of each first, unmeasured: connections made, buffers grown.
    for way in [Way::Token, Way::SigV4, Way::Sqs] {
        let warm = (0..args.rate)
            .map(|n| (Duration::from_nanos(n * step), json!({"channel": "bench/warm", "data": n})))
            .collect();
        paced(caller, way, warm, args.concurrency).await?;
    }
    for (way, phase) in [(Way::Token, "token"), (Way::SigV4, "sigv4"), (Way::Sqs, "sqs")] {
        // Stamped when due: the delivery latency starts where the answer's does.
        let base = start.elapsed();
        let stamped = (0..count)
            .map(|n| {
                let at = Duration::from_nanos(n * step);
                let due = (base + at).as_micros() as u64;
                (at, json!({"channel": "bench/publish", "data": {"p": phase, "n": n, "t": due}}))
            })
            .collect::<Vec<_>>();
        let (answers, latency, took) = paced(caller, way, stamped, args.concurrency).await?;
        let offsets = answers.iter().filter(|a| a.as_ref().is_some_and(|a| a["offset"].is_u64())).count();
        let (got, distinct, delivery) = delivered(inboxes, phase, count).await;
        let delivery = delivery
            .map_or("none".to_owned(), |h| format!("p50 {:.1} ms, p99 {:.1} ms", ms(&h, 0.5), ms(&h, 0.99)));
        println!(
            "publish, {}: {} answered in {:.1} s ({:.0}/s), {} with an offset; answer p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; \
             each subscriber got at least {got} ({distinct} distinct) of {count}, delivery {delivery}",
            match way {
                Way::Token => "server API, bearer token",
                Way::SigV4 => "server API, SigV4",
                Way::Sqs => "SQS SendMessage (no offset comes back)",
            },
            answers.len(),
            took.as_secs_f64(),
            answers.len() as f64 / took.as_secs_f64(),
            offsets,
            ms(&latency, 0.5),
            ms(&latency, 0.99),
            latency.max() as f64 / 1000.0,
        );
        ensure!(
            got == count && distinct as u64 == count,
            "{phase}: {got} delivered ({distinct} distinct) of {count}"
        );
    }
    Ok(())
}

async fn idempotency_phase(args: &Args, caller: &Arc<Caller>, inboxes: &[Inbox]) -> anyhow::Result<()> {
    // Half the rate: with its retries, the same requests a second as the publish phases.
    let step = 2 * Duration::from_secs(1).as_nanos() as u64 / args.rate;
    let retry = Duration::from_millis(args.retry_after_ms);
    let mut bodies = Vec::with_capacity(args.repeats * 2);
    for n in 0..args.repeats as u64 {
        let body = json!({"channel": "bench/publish", "id": uuid::Uuid::new_v4(), "data": {"p": "idempotency", "n": n, "t": 0}});
        let at = Duration::from_nanos(n * step);
        bodies.push((at, body.clone()));
        bodies.push((at + retry, body));
    }
    bodies.sort_by_key(|(at, _)| *at);
    let (answers, latency, took) = paced(caller, Way::Token, bodies.clone(), args.concurrency).await?;
    let mut by_id: HashMap<String, Vec<Value>> = HashMap::new();
    for ((_, body), answer) in bodies.iter().zip(answers) {
        by_id
            .entry(body["id"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(answer.context("an answer")?);
    }
    let same = by_id.values().filter(|answers| answers.len() == 2 && answers[0] == answers[1]).count();
    let offsets: HashSet<u64> = by_id.values().filter_map(|answers| answers[0]["offset"].as_u64()).collect();
    let (got, distinct, _) = delivered(inboxes, "idempotency", args.repeats as u64).await;
    println!(
        "idempotency: {} publishes each sent twice, {} ms apart ({} requests in {:.1} s, answer p99 {:.1} ms): \
         {same} answered the same twice, {} distinct offsets; each subscriber got {got} deliveries, {distinct} distinct",
        args.repeats,
        args.retry_after_ms,
        by_id.values().map(Vec::len).sum::<usize>(),
        took.as_secs_f64(),
        ms(&latency, 0.99),
        offsets.len(),
    );
    ensure!(same == args.repeats && offsets.len() == args.repeats, "the retries were not answered the same");
    ensure!(
        got == args.repeats as u64 && distinct == args.repeats,
        "a retry was delivered again, or a publish lost"
    );
    Ok(())
}

/// Starts the gateway on a runtime of its own, on threads of its own, as `cargo run -p local` is a
/// process of its own: the bench's clients then never wait behind the gateway's tasks in one
/// scheduler's queue. Its WebSocket URL and queue URL, and what stops it.
fn start_gateway() -> anyhow::Result<(
    String,
    String,
    tokio_util::sync::CancellationToken,
    std::thread::JoinHandle<anyhow::Result<()>>,
)> {
    let (ready, urls) = std::sync::mpsc::channel();
    let stop = tokio_util::sync::CancellationToken::new();
    let stopping = stop.clone();
    let thread = std::thread::spawn(move || -> anyhow::Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        runtime.block_on(async move {
            let verifier = Verifier::secret(SECRET.as_bytes(), None, None)?;
            let settings = Settings {
                stage_throttle: None,
                authorizer: Some(Arc::new(Authorizer::new(verifier))),
                ..Settings::default()
            };
            let gateway = Gateway::new(tokio::net::TcpListener::bind("127.0.0.1:0").await?, settings)?
                .with_sqs_endpoint(tokio::net::TcpListener::bind("127.0.0.1:0").await?)?;
            ready.send((gateway.ws_url(), gateway.queue_url().context("the SQS endpoint")?))?;
            gateway.run(stopping.cancelled_owned()).await?;
            Ok(())
        })
    });
    let (ws_url, queue_url) = urls.recv().context("the gateway started")?;
    Ok((ws_url, queue_url, stop, thread))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let (ws_url, queue_url, stop, server) = start_gateway()?;
    let http_url = ws_url.replacen("ws://", "http://", 1);
    let credentials = local::Credentials::default().for_sdk("bench");
    let origin = queue_url.rsplitn(3, '/').nth(2).context("an origin")?.to_owned();
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(origin)
        .credentials_provider(credentials.clone())
        .load()
        .await;
    let caller = Arc::new(Caller {
        http: reqwest::Client::new(),
        base: http_url.clone(),
        bearer: token("backend", true)?,
        credentials,
        sqs: aws_sdk_sqs::Client::new(&sdk),
        queue_url,
    });
    println!(
        "bench_server_api: {}/s for {} s to a channel with {} subscribers, at most {} requests in flight; \
         the gateway in-process on a runtime and threads of its own, stage throttle off",
        args.rate, args.secs, args.subscribers, args.concurrency
    );
    let start = Instant::now();
    let inboxes: Vec<Inbox> = (0..args.subscribers).map(|_| Inbox::default()).collect();
    for inbox in &inboxes {
        tokio::spawn(subscriber(ws_url.clone(), "bench/publish", start, inbox.clone()));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    publish_phases(&args, &caller, &inboxes, start).await?;
    idempotency_phase(&args, &caller, &inboxes).await?;
    disconnect_phase(args.connections, &caller, &ws_url, &http_url).await?;
    stop.cancel();
    server.join().map_err(|_| anyhow::anyhow!("the gateway's thread panicked"))??;
    Ok(())
}
