//! `init_time BOOTSTRAP`: how long a Lambda bootstrap takes from exec to its first poll of the Runtime
//! API, measured against a tiny local Runtime API that never hands it an event.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use axum::routing::get;
use clap::Parser;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Times a Lambda bootstrap's cold start: from exec to its first poll of a local Runtime API.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The bootstrap executable to start.
    bootstrap: PathBuf,
    /// How many cold starts to time.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Starts the bootstrap against a fresh Runtime API and returns the time to its first poll.
async fn cold_start(bootstrap: &PathBuf) -> anyhow::Result<Duration> {
    let polled = Arc::new(Notify::new());
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let api = listener.local_addr()?;
    let notify = polled.clone();
    let app = axum::Router::new().route(
        "/2018-06-01/runtime/invocation/next",
        get(move || {
            let notify = notify.clone();
            async move {
                notify.notify_one();
                // Like the real Runtime API with no event to give: hold the poll open.
                std::future::pending::<()>().await;
            }
        }),
    );
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let mut child = tokio::process::Command::new(bootstrap)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", api.to_string().as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", "init-time"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/init-time"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ACCESS_KEY_ID", "local"),
            ("AWS_SECRET_ACCESS_KEY", "local"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("CONNECTIONS_TABLE", "connections"),
            ("QUEUE_URL", "http://127.0.0.1:9/queue"),
            ("CONNECTIONS_ENDPOINT", "http://127.0.0.1:9/Prod"),
            // The authorizer's production configuration; it fetches the keys on first use, not at init.
            ("JWKS_URL", "https://127.0.0.1:9/.well-known/jwks.json"),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("could not start {}", bootstrap.display()))?;
    let outcome = tokio::select! {
        () = polled.notified() => Ok(started.elapsed()),
        status = child.wait() => Err(anyhow::anyhow!("the bootstrap exited before polling: {status:?}")),
        () = tokio::time::sleep(Duration::from_secs(10)) => Err(anyhow::anyhow!("no poll within 10 s")),
    };
    let _ = child.kill().await;
    server.abort();
    outcome
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let mut times = Vec::with_capacity(args.runs);
    for _ in 0..args.runs {
        times.push(cold_start(&args.bootstrap).await?);
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (min, p50, max) = (ms(times[0]), ms(times[times.len() / 2]), ms(times[times.len() - 1]));
    let size_mb = std::fs::metadata(&args.bootstrap)?.len() as f64 / 1e6;
    println!(
        "{}: {size_mb:.1} MB, init (exec to first poll) p50 {p50:.2} ms, min {min:.2} ms, max {max:.2} ms over {} runs",
        args.bootstrap.display(),
        args.runs
    );
    let json = serde_json::json!({ "bootstrap": args.bootstrap, "size_mb": size_mb, "runs": args.runs,
        "init_ms": { "p50": p50, "min": min, "max": max } });
    loadtest::report::write_json(args.json.as_deref(), &json)
}
