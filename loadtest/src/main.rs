//! `loadtest`: opens a swarm of WebSocket connections against a URL and reports how delivery went.
//! `cargo run --release -p loadtest -- --help`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use loadtest::recovery::RecoverySwarmSettings;
use loadtest::swarm::{self, Scenario, SwarmSettings};

/// A WebSocket swarm: connects, drives a scenario, and reports delivery, loss and latency.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The WebSocket URL: the local gateway, the baseline, or a deployed wss:// API.
    #[arg(long, default_value = "ws://127.0.0.1:3001")]
    url: String,
    /// Connections to open.
    #[arg(long, default_value_t = 100)]
    connections: u32,
    /// New connections per second (API Gateway's default account limit is 500).
    #[arg(long, default_value_t = 500)]
    connect_rate: u32,
    #[arg(long, value_enum, default_value_t = Scenario::Broadcast)]
    scenario: Scenario,
    /// Connections that publish (the first ones opened).
    #[arg(long, default_value_t = 1)]
    publishers: u32,
    /// Messages each publisher sends.
    #[arg(long, default_value_t = 10)]
    messages: u64,
    /// Messages per second, all publishers together.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Bytes per message, at least.
    #[arg(long, default_value_t = 0)]
    size: usize,
    /// Seconds the hold scenario keeps the connections open.
    #[arg(long, default_value_t = 10)]
    hold_secs: u64,
    /// Extra connections that complete their handshake and then never read: they count in no other
    /// figure, and show what a stuck client costs everyone else.
    #[arg(long, default_value_t = 0)]
    stuck: u32,
    /// The channels scenario: how many channels the connections are spread over.
    #[arg(long, default_value_t = 100)]
    channels: u32,
    /// The channels scenario: connections also subscribed to the wildcard over every channel.
    #[arg(long, default_value_t = 0)]
    wildcards: u32,
    /// Connect with development tokens signed with this secret, one user per connection (the
    /// gateway's --jwt-secret).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Seconds to wait for deliveries after the last publish.
    #[arg(long, default_value_t = 10)]
    settle_secs: u64,
    /// Upper bound on the whole run, in seconds.
    #[arg(long, default_value_t = 300)]
    deadline_secs: u64,
    /// The recovery scenario: seconds a subscriber stays connected before its socket is cut, drawn
    /// at random between --cut-min-secs and --cut-max-secs; 0 never cuts.
    #[arg(long, default_value_t = 5.0, help_heading = "Recovery scenario")]
    cut_min_secs: f64,
    #[arg(long, default_value_t = 20.0, help_heading = "Recovery scenario")]
    cut_max_secs: f64,
    /// Milliseconds a cut subscriber stays away before it reconnects, drawn between these two.
    #[arg(long, default_value_t = 0, help_heading = "Recovery scenario")]
    away_min_ms: u64,
    #[arg(long, default_value_t = 1_000, help_heading = "Recovery scenario")]
    away_max_ms: u64,
    /// The fraction of cuts the server makes (DELETE @connections, signed with the gateway's key
    /// pair); the rest drop the socket without a close frame.
    #[arg(long, default_value_t = 0.5, help_heading = "Recovery scenario")]
    server_cuts: f64,
    /// Milliseconds a message ahead of a missing offset waits before the history is read (the
    /// browser client's orderWaitMs).
    #[arg(long, default_value_t = 1_000, help_heading = "Recovery scenario")]
    order_wait_ms: u64,
    /// `@connections` for the server's cuts; by default the --url's host over http.
    #[arg(long, help_heading = "Recovery scenario")]
    connections_endpoint: Option<String>,
    /// The key pair `@connections` calls are signed with (the local gateway's by default).
    #[arg(long, default_value = "local", help_heading = "Recovery scenario")]
    access_key_id: String,
    #[arg(long, default_value = "local", help_heading = "Recovery scenario")]
    secret_access_key: String,
    #[arg(long, default_value = "us-east-1", help_heading = "Recovery scenario")]
    region: String,
    /// The presence scenario: joins and leaves measured at every member (half by unsubscribe,
    /// half by closing the socket).
    #[arg(long, default_value_t = 20, help_heading = "Presence scenario")]
    probes: u32,
    /// The presence scenario: `presence` requests, one after another.
    #[arg(long, default_value_t = 100, help_heading = "Presence scenario")]
    presence_reads: u32,
    /// The presence scenario: connections that then join and leave one channel at random (0: none).
    #[arg(long, default_value_t = 0, help_heading = "Presence scenario")]
    churn_connections: u32,
    /// The presence scenario: the channels the churn is spread over (1: one crowd that never
    /// empties; many: small rooms that fill and empty all the time).
    #[arg(long, default_value_t = 1, help_heading = "Presence scenario")]
    churn_channels: u32,
    #[arg(long, default_value_t = 60, help_heading = "Presence scenario")]
    churn_secs: u64,
    /// The presence scenario: receive the gateway's lifecycle events here (start it with
    /// `--events-url http://<this address>/`) and check them.
    #[arg(long, help_heading = "Presence scenario")]
    events_listen: Option<std::net::SocketAddr>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    json: Option<std::path::PathBuf>,
    /// Draw latency over the run and its distribution to this SVG file.
    #[arg(long)]
    chart: Option<std::path::PathBuf>,
    /// Exit non-zero if more deliveries than this were lost, or any was misdelivered.
    #[arg(long)]
    max_lost: Option<u64>,
    /// Exit non-zero if the p99 latency passes this many milliseconds.
    #[arg(long)]
    max_p99_ms: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();
    // Every connection is a file descriptor; the soft limit is often 1,024.
    if let Err(err) = rlimit::increase_nofile_limit(u64::MAX) {
        eprintln!("could not raise the open-file limit: {err}");
    }
    if args.scenario == Scenario::Recovery {
        return recovery(args).await;
    }
    if args.scenario == Scenario::Presence {
        return presence(args).await;
    }
    let settings = SwarmSettings {
        url: args.url,
        connections: args.connections,
        connect_rate: args.connect_rate,
        scenario: args.scenario,
        publishers: args.publishers,
        messages: args.messages,
        rate: args.rate,
        size: args.size,
        hold: Duration::from_secs(args.hold_secs),
        settle: Duration::from_secs(args.settle_secs),
        deadline: Duration::from_secs(args.deadline_secs),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
        stuck: args.stuck,
        channels: args.channels,
        wildcards: args.wildcards,
        jwt_secret: args.jwt_secret,
    };
    let outcome = swarm::run(settings).await?;
    let report = outcome.report;
    println!("{report}");
    loadtest::report::write_json(args.json.as_deref(), &report)?;
    if let Some(path) = &args.chart {
        loadtest::chart::write_svg(path, &report, &outcome.samples)?;
    }
    let mut failed = false;
    if let Some(max) = args.max_lost.filter(|max| report.tally.lost > *max) {
        eprintln!("FAIL: {} deliveries lost, more than --max-lost {max}", report.tally.lost);
        failed = true;
    }
    if args.max_lost.is_some() && report.tally.misdelivered > 0 {
        eprintln!(
            "FAIL: {} deliveries reached connections outside their channels",
            report.tally.misdelivered
        );
        failed = true;
    }
    if let Some(max) = args.max_p99_ms.filter(|max| report.latency_ms.p99 > *max) {
        eprintln!("FAIL: p99 latency {:.2} ms is over --max-p99-ms {max}", report.latency_ms.p99);
        failed = true;
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The presence scenario: `--connections` members, then the probes, the reads and the churn.
async fn presence(args: Args) -> anyhow::Result<ExitCode> {
    let settings = loadtest::presence::PresenceSwarmSettings {
        url: args.url,
        members: args.connections,
        probes: args.probes,
        presence_reads: args.presence_reads,
        churn_connections: args.churn_connections,
        churn_channels: args.churn_channels,
        churn: Duration::from_secs(args.churn_secs),
        events_listen: args.events_listen,
        deadline: Duration::from_secs(args.deadline_secs),
    };
    let report = loadtest::presence::run(settings).await?;
    println!("{report}");
    loadtest::report::write_json(args.json.as_deref(), &report)?;
    if args.max_lost.is_some() && !report.clean() {
        eprintln!(
            "FAIL: the run is not clean (frames lost, counts not exact, or events out of turn or missing)"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The recovery scenario: `--connections` less `--publishers` subscribers, cut at random.
async fn recovery(args: Args) -> anyhow::Result<ExitCode> {
    let secs = Duration::from_secs_f64;
    let endpoint = match args.connections_endpoint {
        Some(endpoint) => endpoint,
        None => {
            let uri: http::Uri = args.url.parse()?;
            let scheme = if uri.scheme_str() == Some("wss") { "https" } else { "http" };
            format!(
                "{scheme}://{}{}",
                uri.authority().map(|a| a.as_str()).unwrap_or_default(),
                uri.path().trim_end_matches('/')
            )
        }
    };
    let publishers = args.publishers.max(1);
    let settings = RecoverySwarmSettings {
        url: args.url,
        subscribers: args.connections.saturating_sub(publishers),
        channels: args.channels.max(1),
        publishers,
        messages: args.messages,
        rate: args.rate,
        size: args.size,
        cut_every: (args.cut_max_secs > 0.0).then(|| (secs(args.cut_min_secs), secs(args.cut_max_secs))),
        away: (Duration::from_millis(args.away_min_ms), Duration::from_millis(args.away_max_ms)),
        server_cuts: args.server_cuts,
        order_wait: Duration::from_millis(args.order_wait_ms),
        endpoint,
        region: args.region,
        credentials: (args.access_key_id, args.secret_access_key),
        settle: Duration::from_secs(args.settle_secs),
        deadline: Duration::from_secs(args.deadline_secs),
    };
    let report = loadtest::recovery::run(settings).await?;
    println!("{report}");
    loadtest::report::write_json(args.json.as_deref(), &report)?;
    let mut failed = false;
    if args.max_lost.is_some() && !report.clean() {
        eprintln!(
            "FAIL: lost {}, duplicated {}, reordered {}, mismatched {}",
            report.lost, report.duplicated, report.reordered, report.mismatched
        );
        failed = true;
    }
    if let Some(max) = args.max_p99_ms.filter(|max| report.latency_ms.p99 > *max) {
        eprintln!("FAIL: p99 latency {:.2} ms is over --max-p99-ms {max}", report.latency_ms.p99);
        failed = true;
    }
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
