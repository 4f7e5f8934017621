//! `simulate`: one broadcast to `--connections` simulated connections, through the real worker and
//! event source mappings (one per lane, or one queue with `--one-queue`) under a paused clock (see
//! `loadtest::simulate`), with `--direct-rate` messages a second to one other connection beside
//! it. Prints the report as JSON.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use loadtest::simulate::{SimSettings, run};
use worker::{Fleet, Lanes, WorkerSettings};

/// One broadcast to --connections simulated connections, through the real worker and event source
/// mapping under a paused clock; prints what it did as JSON.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    connections: usize,
    /// The shortest and longest `@connections` call, in milliseconds (Lambda to API Gateway in one
    /// region).
    #[arg(long, default_value_t = 20)]
    latency_min_ms: u64,
    #[arg(long, default_value_t = 60)]
    latency_max_ms: u64,
    /// The fraction of calls answered 429 whatever the account's bucket holds.
    #[arg(long, default_value_t = 0.0)]
    throttle: f64,
    /// Calls per second the endpoint serves at most, one after another: to compare with the local
    /// gateway, its pipeline-mode rate on the same machine (none on AWS).
    #[arg(long)]
    capacity: Option<f64>,
    /// The fraction of connections that are gone (410).
    #[arg(long, default_value_t = 0.0)]
    gone: f64,
    /// The account's `@connections` calls per second; its burst is half of it.
    #[arg(long, default_value_t = shared::limits::ACCOUNT_POST_RATE)]
    account_rate: u32,
    /// The fastest one invocation may post (default: the account's rate). Set it to the account rate
    /// ÷ WorkerMaxConcurrency for a fixed share, as the worker paced before it adapted.
    #[arg(long)]
    worker_max_rate: Option<u32>,
    /// Worker invocations at once on the main queue (WorkerMaxConcurrency).
    #[arg(long, default_value_t = Fleet::DEFAULT_MAX_CONCURRENCY)]
    max_concurrency: u32,
    /// Bulk worker invocations at once (BulkWorkerMaxConcurrency).
    #[arg(long, default_value_t = Fleet::DEFAULT_BULK_MAX_CONCURRENCY)]
    bulk_concurrency: u32,
    /// The account's calls per second the bulk lane leaves the interactive lane (InteractivePostRate).
    #[arg(long, default_value_t = Fleet::DEFAULT_INTERACTIVE_POST_RATE)]
    interactive_post_rate: u32,
    /// One queue for everything, as before lanes: shard jobs and every other message together.
    #[arg(long)]
    one_queue: bool,
    /// Messages a second to one other connection, queued from the broadcast's start (0: none).
    #[arg(long, default_value_t = 0.0)]
    direct_rate: f64,
    /// For how long, in seconds (default: the account's floor for the broadcast).
    #[arg(long)]
    direct_secs: Option<f64>,
    /// Calls in flight per invocation (PostConcurrency).
    #[arg(long, default_value_t = Fleet::DEFAULT_POST_CONCURRENCY)]
    post_concurrency: usize,
    /// Connections per shard (FanoutShardSize; 0 never splits).
    #[arg(long, default_value_t = Fleet::DEFAULT_SHARD_SIZE)]
    shard_size: usize,
    /// The fewest shards a split makes (the worker sets WorkerMaxConcurrency × 10 × 3).
    #[arg(long)]
    min_shards: Option<u32>,
    /// The worker's memory (WorkerMemorySize): its share of a core (memory ÷ 1,769 MB) and its cost.
    #[arg(long, default_value_t = loadtest::simulate::settings::DEFAULT_MEMORY_MB)]
    memory_mb: u32,
    /// The worker's CPU per delivery at one full core, in µs. Default: what `worker_cpu` measured at
    /// commit 1a2c517 on the project's 2-core AMD EPYC build machine (42.2 and 41.3 µs; BENCHMARKS.md,
    /// Worker CPU); 0 charges none.
    #[arg(long, default_value_t = loadtest::simulate::settings::DEFAULT_CPU_PER_DELIVERY.as_secs_f64() * 1e6)]
    cpu_us_per_delivery: f64,
    /// The worker's timeout, in seconds.
    #[arg(long, default_value_t = 30)]
    timeout_secs: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the report to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let defaults = SimSettings::default();
    let mut worker = WorkerSettings::for_fleet(Fleet {
        post_concurrency: args.post_concurrency,
        account_post_rate: args.account_rate,
        interactive_post_rate: args.interactive_post_rate,
        max_concurrency: args.max_concurrency,
        bulk_max_concurrency: args.bulk_concurrency,
        shard_size: args.shard_size,
    });
    let lanes = (!args.one_queue).then_some(Lanes {
        bulk_concurrency: args.bulk_concurrency.max(1),
        interactive_post_rate: args.interactive_post_rate,
    });
    let direct_secs =
        args.direct_secs.unwrap_or(args.connections as f64 / f64::from(args.account_rate.max(1)));
    if let Some(rate) = args.worker_max_rate {
        worker.account_rate = rate;
    }
    if let Some(min_shards) = args.min_shards {
        worker.min_shards = min_shards;
    }
    let settings = SimSettings {
        connections: args.connections,
        latency: (
            Duration::from_millis(args.latency_min_ms),
            Duration::from_millis(args.latency_max_ms.max(args.latency_min_ms)),
        ),
        throttle: args.throttle,
        capacity: args.capacity,
        gone: args.gone,
        account_rate: f64::from(args.account_rate),
        account_burst: f64::from(args.account_rate / 2),
        worker,
        lanes,
        direct_rate: args.direct_rate,
        direct_for: Duration::from_secs_f64(direct_secs.max(0.0)),
        esm: local::esm::EsmSettings {
            max_concurrency: args.max_concurrency as usize,
            function_timeout: Duration::from_secs(args.timeout_secs),
            ..defaults.esm
        },
        seed: args.seed,
        memory_mb: args.memory_mb,
        cpu_per_delivery: (args.cpu_us_per_delivery > 0.0)
            .then(|| Duration::from_secs_f64(args.cpu_us_per_delivery / 1e6)),
        ..defaults
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    let report = runtime.block_on(run(settings))?;
    loadtest::report::write_json(args.json.as_deref(), &report)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    anyhow::ensure!(report.finished, "the broadcast did not finish within the simulated hour");
    Ok(())
}
