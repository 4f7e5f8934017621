//! `worker_cpu`: the worker's CPU time per delivery, with the real SDK poster.
//!
//! The worker handler runs in this process, fanning SQS batches of broadcasts out to `--connections`
//! connections from the in-memory store, through `aws-sdk-apigatewaymanagement` to a stub
//! `@connections` endpoint that answers 200 from a child process, so that only the worker's own work
//! (scanning, SigV4 signing, HTTP, JSON) is counted. CPU time is the process's user + system time.
//!
//! A broadcast larger than a shard is split into shard jobs on the queue, as on AWS: they are taken
//! from it and run like the event source mapping would, batch after batch, until it is empty, so the
//! default case measures the real path. The deliveries counted are the calls the stub answered 200,
//! never the ones planned: fewer than every connection times every broadcast fails the run.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use axum::response::IntoResponse;
use clap::Parser;
use cpu_time::ProcessTime;
use serde_json::json;
use serde_json::value::RawValue;
use shared::poster::ApiGatewayPoster;
use shared::queue::MemoryQueue;
use shared::stack::StackPorts;
use shared::store::MemoryStore;
use shared::{ConnectionId, ConnectionRecord, ConnectionStore, Envelope, Job};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use worker::{Fleet, Ports, Worker, WorkerSettings};

// The worker bootstrap's allocator, so that the figure is the bootstrap's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Measures the worker handler's CPU time per delivery, through the real SDK poster to a stub
/// `@connections` endpoint.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Connection records in the in-memory store: each broadcast goes to every one.
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// Broadcasts per batch (the event source mapping's BatchSize).
    #[arg(long, default_value_t = 10)]
    batch: usize,
    /// Batches to time, after one to warm up.
    #[arg(long, default_value_t = 3)]
    batches: usize,
    #[arg(long, default_value_t = Fleet::DEFAULT_POST_CONCURRENCY)]
    post_concurrency: usize,
    /// Run on tokio's multi-thread runtime instead of the worker bootstrap's current-thread one.
    #[arg(long)]
    multi_thread: bool,
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Internal: serve the stub @connections endpoint and print its address.
    #[arg(long, hide = true)]
    stub: bool,
    /// Internal, for the test that it fails when posts go missing: the stub answers every Nth
    /// call 410 Gone (the worker prunes that connection, so later broadcasts miss it).
    #[arg(long, hide = true, default_value_t = 0)]
    stub_gone_every: u64,
}

/// Where the stub says how many calls it answered 200.
const COUNT_PATH: &str = "/_served";

async fn serve_stub(gone_every: u64) -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    let (calls, served) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let counted = served.clone();
    let app = axum::Router::new()
        .route(
            COUNT_PATH,
            axum::routing::get(move || async move { counted.load(Ordering::SeqCst).to_string() }),
        )
        .fallback(move || {
            let (calls, served) = (calls.clone(), served.clone());
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if gone_every > 0 && n % gone_every == 0 {
                    let gone = [("x-amzn-errortype", "GoneException")];
                    return (axum::http::StatusCode::GONE, gone, "{}").into_response();
                }
                served.fetch_add(1, Ordering::SeqCst);
                axum::http::StatusCode::OK.into_response()
            }
        });
    axum::serve(listener, app).await?;
    Ok(())
}

/// The calls the stub at `addr` has answered 200.
async fn served(addr: &str) -> anyhow::Result<u64> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {COUNT_PATH} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    tokio::io::AsyncWriteExt::write_all(&mut stream, request.as_bytes()).await?;
    let mut answer = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut stream, &mut answer).await?;
    let count = answer.rsplit("\r\n\r\n").next().unwrap_or_default().trim();
    count.parse().with_context(|| format!("the stub's count: {answer:?}"))
}

/// Runs the shard (and retry) jobs the worker queued, batch after batch as the event source
/// mapping does, until the queue is empty.
async fn drain(worker: &Worker, queue: &MemoryQueue, batch: usize) -> anyhow::Result<()> {
    let api =
        local::integration::Api { api_id: "bench".into(), stage: "Prod".into(), region: "us-east-1".into() };
    loop {
        let messages = queue.receive_message(batch);
        if messages.is_empty() {
            match queue.next_visible_at() {
                // A retry job, delayed: wait for it as SQS would.
                Some(at) => tokio::time::sleep_until(at).await,
                None => return Ok(()),
            }
            continue;
        }
        let event: SqsEvent = serde_json::from_value(local::integration::sqs(&api, "worker-cpu", &messages))?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(900);
        let report = worker.process(event, deadline).await;
        anyhow::ensure!(report.failed.is_empty(), "a shard batch failed: {report:?}");
        for message in &messages {
            queue.delete_message(&message.receipt_handle);
        }
    }
}

fn batch(size: usize, from: &ConnectionId) -> anyhow::Result<SqsEvent> {
    let records: Vec<serde_json::Value> = (0..size)
        .map(|n| {
            let data = RawValue::from_string(format!(r#"{{"n":{n},"text":"{}"}}"#, "x".repeat(100)))?;
            let body = Job::broadcast(Envelope::broadcast(from.clone(), 0, data)?).to_body();
            Ok(json!({ "messageId": format!("m{n}"), "receiptHandle": "r", "body": body,
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs" }))
        })
        .collect::<anyhow::Result<_>>()?;
    Ok(serde_json::from_value(json!({ "Records": records }))?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = if args.multi_thread {
        tokio::runtime::Builder::new_multi_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    };
    if args.stub {
        return runtime.block_on(serve_stub(args.stub_gone_every));
    }
    runtime.block_on(measure(args))
}

async fn measure(args: Args) -> anyhow::Result<()> {
    let mut stub = tokio::process::Command::new(std::env::current_exe()?)
        .args(["--stub", "--stub-gone-every", &args.stub_gone_every.to_string()])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(stub.stdout.take().context("stub stdout")?).lines();
    let addr = lines.next_line().await?.context("the stub printed no address")?;

    let store = Arc::new(MemoryStore::default());
    for n in 0..args.connections {
        let id = ConnectionId::parse(&format!("bench{n:011}"))?;
        store.put(&ConnectionRecord { id, connected_at_ms: 0, source_ip: None, expires_at_s: 0 }).await?;
    }
    let poster = Arc::new(ApiGatewayPoster::for_local_endpoint(
        &format!("http://{addr}/Prod"),
        "us-east-1",
        aws_credential_types::Credentials::new("local", "local", None, None, "worker_cpu"),
    ));
    // No post-rate budget: the figure is CPU per delivery, not the pace the budget sets.
    let settings = WorkerSettings {
        post_concurrency: args.post_concurrency,
        post_rate: u32::MAX,
        ..WorkerSettings::default()
    };
    let queue = Arc::new(MemoryQueue::default());
    let stack = StackPorts::new(store, queue.clone());
    let ports = Ports::new(stack, poster);
    let worker = Worker::new(ports, settings);
    let deadline = || tokio::time::Instant::now() + std::time::Duration::from_secs(900);
    let from = ConnectionId::parse("benchpublisher00")?;

    // One batch to warm up (connections, the SDK's first calls), its shards included.
    worker.handle(batch(args.batch, &from)?, deadline()).await;
    drain(&worker, &queue, args.batch).await?;
    let before = served(&addr).await?;
    let (cpu, wall) = (ProcessTime::now(), Instant::now());
    for _ in 0..args.batches {
        let report = worker.process(batch(args.batch, &from)?, deadline()).await;
        anyhow::ensure!(report.failed.is_empty(), "the batch failed: {report:?}");
        drain(&worker, &queue, args.batch).await?;
    }
    let (cpu, wall) = (cpu.elapsed(), wall.elapsed());
    let deliveries = served(&addr).await? - before;
    let owed = (args.connections * args.batch * args.batches) as u64;
    anyhow::ensure!(
        deliveries >= owed,
        "the stub answered {deliveries} posts with 200, fewer than the {owed} deliveries owed \
         ({} connections × {} broadcasts): no figure",
        args.connections,
        args.batch * args.batches
    );
    let per_delivery_us = cpu.as_secs_f64() * 1e6 / deliveries as f64;
    println!(
        "{deliveries} deliveries (posts the stub answered) in {:.2} s: {per_delivery_us:.1} µs of worker CPU per delivery, {:.0} deliveries/s",
        wall.as_secs_f64(),
        deliveries as f64 / wall.as_secs_f64()
    );
    let json = json!({ "deliveries": deliveries, "owed": owed, "cpu_s": cpu.as_secs_f64(), "wall_s": wall.as_secs_f64(),
        "cpu_per_delivery_us": per_delivery_us, "post_concurrency": args.post_concurrency,
        "runtime": if args.multi_thread { "multi_thread" } else { "current_thread" } });
    loadtest::report::write_json(args.json.as_deref(), &json)
}
