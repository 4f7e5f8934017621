//! `worker_cpu`: the worker's CPU time per delivery, with the real SDK poster.
//!
//! The worker handler runs in this process, fanning SQS batches of broadcasts out to `--connections`
//! connections from the in-memory store, through `aws-sdk-apigatewaymanagement` to a stub
//! `@connections` endpoint that answers 200 from a child process, so that only the worker's own work
//! (scanning, SigV4 signing, HTTP, JSON) is counted. CPU time is the process's user + system time.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use clap::Parser;
use cpu_time::ProcessTime;
use serde_json::json;
use serde_json::value::RawValue;
use shared::poster::ApiGatewayPoster;
use shared::queue::MemoryQueue;
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
}

async fn serve_stub() -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{}", listener.local_addr()?);
    let app = axum::Router::new().fallback(|| async { axum::http::StatusCode::OK });
    axum::serve(listener, app).await?;
    Ok(())
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
        return runtime.block_on(serve_stub());
    }
    runtime.block_on(measure(args))
}

async fn measure(args: Args) -> anyhow::Result<()> {
    let mut stub = tokio::process::Command::new(std::env::current_exe()?)
        .arg("--stub")
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
    let worker = Worker::new(
        Ports {
            store,
            poster,
            queue: Arc::new(MemoryQueue::default()),
            history: None,
            presence: None,
            events: None,
        },
        settings,
    );
    let deadline = || tokio::time::Instant::now() + std::time::Duration::from_secs(900);
    let from = ConnectionId::parse("benchpublisher00")?;

    worker.handle(batch(args.batch, &from)?, deadline()).await;
    let (cpu, wall) = (ProcessTime::now(), Instant::now());
    for _ in 0..args.batches {
        let report = worker.process(batch(args.batch, &from)?, deadline()).await;
        anyhow::ensure!(report.failed.is_empty(), "the batch failed: {report:?}");
    }
    let (cpu, wall) = (cpu.elapsed(), wall.elapsed());
    let deliveries = (args.connections * args.batch * args.batches) as f64;
    let per_delivery_us = cpu.as_secs_f64() * 1e6 / deliveries;
    println!(
        "{deliveries} deliveries in {:.2} s: {per_delivery_us:.1} µs of worker CPU per delivery, {:.0} deliveries/s",
        wall.as_secs_f64(),
        deliveries / wall.as_secs_f64()
    );
    let json = json!({ "deliveries": deliveries, "cpu_s": cpu.as_secs_f64(), "wall_s": wall.as_secs_f64(),
        "cpu_per_delivery_us": per_delivery_us, "post_concurrency": args.post_concurrency,
        "runtime": if args.multi_thread { "multi_thread" } else { "current_thread" } });
    loadtest::report::write_json(args.json.as_deref(), &json)
}
