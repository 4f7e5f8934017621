//! `local`: runs the WebSocket API on this machine. `cargo run --release -p local -- --help`.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use authorizer::jwks::{FileJwks, Keys};
use authorizer::{Authorizer, Verifier};
use clap::{Parser, ValueEnum};
use local::esm::EsmSettings;
use local::{Backend, Bucket, Credentials, Faults, Gateway, Settings};
use shared::memory::QueueSettings;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;
use worker::WorkerSettings;

// Every delivery is an SDK call that allocates freely; glibc's malloc was a quarter of the gateway's
// CPU in a 10,000-connection broadcast.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The local gateway's default `--post-concurrency` (see the flag).
const LOCAL_POST_CONCURRENCY: usize = shared::WorkerConfig::DEFAULT_POST_CONCURRENCY / 2;

/// A local stand-in for API Gateway WebSocket and the SQS event source mapping, running the project's
/// own ingress and worker handlers.
#[derive(Debug, Parser)]
#[command(version, args_conflicts_with_subcommands = true)]
#[command(group(clap::ArgGroup::new("auth").args(["jwt_secret", "jwks"])))]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Where connections and broadcasts are kept: in this process, or DynamoDB and SQS through the
    /// AWS SDK at the endpoints its usual configuration names (AWS_ENDPOINT_URL, AWS_REGION, ...).
    #[arg(long, value_enum, default_value_t = BackendKind::Memory)]
    backend: BackendKind,
    /// With --backend aws: the DynamoDB table of connections.
    #[arg(long, env = "CONNECTIONS_TABLE", default_value = "local-connections")]
    table: String,
    /// With --backend aws: the SQS queue of broadcasts.
    #[arg(long, env = "QUEUE_URL")]
    queue_url: Option<String>,
    /// With --backend aws: create the table, and the queue `local-broadcasts` with its dead-letter
    /// queue, if they do not exist (for moto or DynamoDB Local; on AWS, deploy the template instead).
    #[arg(long)]
    create: bool,
    /// Address to bind; anything but loopback exposes the API to the network.
    #[arg(long, default_value = "127.0.0.1", env = "LOCAL_HOST")]
    host: IpAddr,
    /// Port to bind; 0 picks a free one.
    #[arg(long, default_value_t = 3001, env = "LOCAL_PORT")]
    port: u16,
    /// Port of the SQS endpoint (SendMessage, SendMessageBatch) that backends publish through; 0
    /// picks a free one. Only with the in-memory backend.
    #[arg(long, default_value_t = 9324, env = "LOCAL_SQS_PORT")]
    sqs_port: u16,
    /// Stage name: clients may connect to /{stage} and @connections is also served under it.
    #[arg(long, default_value = "local")]
    stage: String,
    /// The region `@connections` signatures must be scoped to (SigV4, service execute-api).
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// The access key id `@connections` callers sign with (and the gateway's own worker does).
    #[arg(long, default_value_t = Credentials::default().access_key_id)]
    access_key_id: String,
    /// The secret access key that goes with --access-key-id.
    #[arg(long, default_value_t = Credentials::default().secret_access_key)]
    secret_access_key: String,
    /// The API's RouteSelectionExpression.
    #[arg(long, default_value = "$request.body.action")]
    route_selection_expression: String,
    /// A custom route key (repeatable); every route is integrated with the ingress function.
    #[arg(long = "route")]
    routes: Vec<String>,
    /// Seconds without a client message before the connection is closed with 1001.
    #[arg(long, default_value_t = 600)]
    idle_timeout_secs: u64,
    /// Seconds after which every connection is closed with 1001.
    #[arg(long, default_value_t = 7200)]
    max_connection_secs: u64,
    /// Bytes waiting for a client that does not read before `@connections` answers it 429.
    #[arg(long, default_value_t = local::settings::DEFAULT_OUTBOUND_BUFFER_BYTES)]
    outbound_buffer_bytes: usize,
    /// Seconds a client may take to send a request's headers, and then its body.
    #[arg(long, default_value_t = local::settings::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout_secs: u64,
    /// SQS event source mapping BatchSize.
    #[arg(long, default_value_t = 10)]
    batch_size: usize,
    /// MaximumBatchingWindow, in milliseconds.
    #[arg(long, default_value_t = 0)]
    batch_window_ms: u64,
    /// Worker invocations at once (ScalingConfig.MaximumConcurrency; the template's
    /// WorkerMaxConcurrency).
    #[arg(long, default_value_t = EsmSettings::default().max_concurrency)]
    worker_concurrency: usize,
    /// The queue's visibility timeout, in seconds.
    #[arg(long, default_value_t = 30)]
    visibility_timeout_secs: u64,
    /// Receives before a message moves to the dead-letter list.
    #[arg(long, default_value_t = 5)]
    max_receive_count: u32,
    /// `@connections` posts in flight at once per worker invocation (POST_CONCURRENCY). Half the
    /// template's 128: here every invocation shares one process, whose open files also hold the
    /// clients' sockets, and each call in flight is two of them (five invocations of 128 ran 18,000
    /// clients out of the 20,000-file limit, `scripts/bench-fanout`); at loopback latency 64 already
    /// keep the CPU busy.
    #[arg(long, default_value_t = LOCAL_POST_CONCURRENCY)]
    post_concurrency: usize,
    /// `@connections` calls per second each worker invocation starts at (the template's
    /// AccountPostRate divided by WorkerMaxConcurrency); it adapts from there to the account's 429s,
    /// up to --account-rate.
    #[arg(long, default_value_t = WorkerSettings::default().post_rate)]
    post_rate: u32,
    /// Connections per shard: a broadcast or a publish to more is split into shard jobs on the queue,
    /// posted by several worker invocations at once (the template's FanoutShardSize; 0 never splits).
    #[arg(long, default_value_t = WorkerSettings::default().shard_size)]
    shard_size: usize,
    /// How long the worker keeps retrying a connection whose posts fail (429, 5xx) before it goes into
    /// a retry job, in milliseconds.
    #[arg(long, default_value_t = worker::DEFAULT_TARGET_RETRY_BUDGET.as_millis() as u64)]
    retry_budget_ms: u64,
    /// The worker's Timeout, in seconds: it retries until shortly before, then queues retry jobs.
    #[arg(long, default_value_t = 30)]
    worker_timeout_secs: u64,
    /// Connection records younger than this are kept despite a 410 (API Gateway's answer during a
    /// `$connect`), in seconds.
    #[arg(long, default_value_t = shared::limits::PRUNE_GRACE.as_secs())]
    prune_grace_secs: u64,
    /// The stage throttle: messages per second from all clients together (ThrottlingRateLimit).
    #[arg(long, default_value_t = Bucket::STAGE.rate)]
    throttle_rate: u32,
    /// Messages the stage accepts at once above the rate (ThrottlingBurstLimit).
    #[arg(long, default_value_t = Bucket::STAGE.burst)]
    throttle_burst: u32,
    /// New connections per second, all clients together (API Gateway's account limit, with a burst
    /// as large); handshakes past it are refused with 429.
    #[arg(long, default_value_t = Bucket::CONNECT.rate)]
    connect_rate: u32,
    /// `@connections` calls per second, every caller together: API Gateway's account throttle. Calls
    /// past it are answered 429 LimitExceededException.
    #[arg(long, default_value_t = Bucket::ACCOUNT.rate)]
    account_rate: u32,
    /// `@connections` calls the account bucket lets through at once above its rate.
    #[arg(long, default_value_t = Bucket::ACCOUNT.burst)]
    account_burst: u32,
    /// No stage throttle, no connection rate limit and no account throttle (for load tests of the
    /// pipeline itself).
    #[arg(long, conflicts_with_all = ["throttle_rate", "throttle_burst", "connect_rate", "account_rate", "account_burst"])]
    no_throttle: bool,
    /// Run the $connect authorizer with this HS256 secret (32 bytes or more): clients connect with
    /// `?token=<JWT>`, as minted by the `token` command with the same secret.
    #[arg(long, help_heading = "Authorization", conflicts_with = "jwks")]
    jwt_secret: Option<String>,
    /// Run the $connect authorizer with the RS256/ES256 keys of this JWKS file (an OIDC issuer's
    /// `jwks.json`), read again when a token names a key it lacks.
    #[arg(long, help_heading = "Authorization")]
    jwks: Option<PathBuf>,
    /// The `iss` tokens must have (JWT_ISSUER in the template).
    #[arg(long, help_heading = "Authorization", requires = "auth")]
    jwt_issuer: Option<String>,
    /// The `aud` tokens must have (JWT_AUDIENCE in the template).
    #[arg(long, help_heading = "Authorization", requires = "auth")]
    jwt_audience: Option<String>,
    /// Fault injection: the fraction of `@connections` POSTs answered 429 LimitExceededException.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    fault_post_throttle: f64,
    /// The fraction of POSTs answered 500.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    fault_post_error: f64,
    /// The fraction of POSTs answered late, after --fault-post-delay-ms.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    fault_post_delay_rate: f64,
    #[arg(long, default_value_t = 1_000, help_heading = "Fault injection")]
    fault_post_delay_ms: u64,
    /// The fraction of POSTs whose connection is cut on the spot, without a close frame or a
    /// `$disconnect` (answered 410): the worker must prune it.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    fault_drop_connection: f64,
    /// The fraction of worker invocations that fail before the handler runs.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    fault_worker_failure: f64,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Mint a development token (HS256) for a gateway started with --jwt-secret; prints it.
    Token(TokenArgs),
    /// Publish to a channel as a backend does: one SQS SendMessage to the broadcast queue, the local
    /// gateway's or a deployed stack's (its QueueUrl output).
    Publish(PublishArgs),
}

#[derive(Debug, clap::Args)]
struct PublishArgs {
    /// The channel: `user/<sub>` reaches every connection of one user.
    #[arg(long)]
    channel: String,
    /// The message's `data`: any JSON.
    #[arg(long)]
    data: String,
    /// A UUID to give the message, so that subscribers recognise a retried publish as a duplicate.
    #[arg(long)]
    id: Option<String>,
    /// The queue: the local gateway's (printed at its start), or a deployed stack's QueueUrl output,
    /// which is reached with your usual AWS credentials.
    #[arg(long, env = "QUEUE_URL", default_value = "http://127.0.0.1:9324/000000000000/local-broadcasts")]
    queue_url: String,
    /// For a local queue: the gateway's --access-key-id, --secret-access-key and --region.
    #[arg(long, default_value_t = Credentials::default().access_key_id)]
    access_key_id: String,
    #[arg(long, default_value_t = Credentials::default().secret_access_key)]
    secret_access_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
}

/// The SQS message body of a backend's publish, checked as the worker will check it.
fn publish_body(args: &PublishArgs) -> anyhow::Result<String> {
    let data = serde_json::value::RawValue::from_string(args.data.clone())
        .with_context(|| format!("--data is not JSON: {}", args.data))?;
    let mut body = serde_json::json!({ "action": "publish", "channel": args.channel, "data": data });
    if let Some(id) = &args.id {
        body["id"] = serde_json::Value::from(id.as_str());
    }
    let body = body.to_string();
    shared::Job::from_queue(&body, "00000000-0000-4000-8000-000000000000", 0)
        .map_err(|err| anyhow::anyhow!("the worker would refuse this publish: {}", err.0))?;
    Ok(body)
}

/// Whether a queue URL is on this machine (the local gateway's) rather than AWS's.
fn is_local(queue_url: &str) -> bool {
    let host = queue_url.split_once("://").map_or(queue_url, |(_, rest)| rest);
    let host = host.split(['/', ':']).next().unwrap_or_default();
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn publish(args: &PublishArgs) -> anyhow::Result<String> {
    let body = publish_body(args)?;
    let sdk = if is_local(&args.queue_url) {
        let origin: String = {
            let (scheme, rest) = args.queue_url.split_once("://").context("the queue URL has no scheme")?;
            format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
        };
        let credentials = aws_credential_types::Credentials::new(
            &args.access_key_id,
            &args.secret_access_key,
            None,
            None,
            "local-gateway",
        );
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(args.region.clone()))
            .endpoint_url(origin)
            .credentials_provider(credentials)
            .load()
            .await
    } else {
        // sqs.<region>.amazonaws.com/<account>/<name>: the queue's own region, whatever the profile's.
        let region =
            args.queue_url.split("sqs.").nth(1).and_then(|rest| rest.split('.').next()).map(str::to_owned);
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region));
        }
        loader.load().await
    };
    let sent = aws_sdk_sqs::Client::new(&sdk)
        .send_message()
        .queue_url(&args.queue_url)
        .message_body(body)
        .send()
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "SendMessage to {} failed: {}",
                args.queue_url,
                aws_sdk_sqs::error::DisplayErrorContext(err)
            )
        })?;
    Ok(sent.message_id.unwrap_or_default())
}

#[derive(Debug, clap::Args)]
struct TokenArgs {
    /// The user: the token's `sub`. Their connections are subscribed to `user/<sub>`.
    #[arg(long)]
    sub: String,
    /// A channel pattern the user may subscribe to (repeatable); none given: every channel.
    #[arg(long)]
    subscribe: Vec<String>,
    /// A channel the user may publish to, or a pattern ending in /* (repeatable); none given: every
    /// channel.
    #[arg(long)]
    publish: Vec<String>,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 3600)]
    ttl_secs: u64,
    /// The gateway's --jwt-secret.
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    secret: String,
    #[arg(long)]
    issuer: Option<String>,
    #[arg(long)]
    audience: Option<String>,
}

fn token(args: &TokenArgs) -> anyhow::Result<String> {
    if args.secret.len() < authorizer::verify::MIN_SECRET_BYTES {
        bail!("{}", authorizer::verify::ConfigError::SecretTooShort);
    }
    for pattern in args.subscribe.iter().chain(&args.publish) {
        shared::ChannelPattern::parse(pattern).with_context(|| format!("{pattern:?}"))?;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let listed = |patterns: &Vec<String>| (!patterns.is_empty()).then(|| patterns.clone());
    let claims = authorizer::token::DevClaims {
        sub: args.sub.clone(),
        subscribe: listed(&args.subscribe),
        publish: listed(&args.publish),
        exp: now + args.ttl_secs,
        iss: args.issuer.clone(),
        aud: args.audience.clone(),
    };
    Ok(authorizer::token::mint(args.secret.as_bytes(), &claims)?)
}

/// The authorizer the flags ask for, if any.
fn authorizer(args: &Args) -> anyhow::Result<Option<Arc<Authorizer>>> {
    let (issuer, audience) = (args.jwt_issuer.clone(), args.jwt_audience.clone());
    let verifier = match (&args.jwt_secret, &args.jwks) {
        (Some(secret), _) => Verifier::secret(secret.as_bytes(), issuer, audience)?,
        (None, Some(path)) => Verifier::jwks(Keys::new(Box::new(FileJwks(path.clone()))), issuer, audience),
        (None, None) => return Ok(None),
    };
    Ok(Some(Arc::new(Authorizer::new(verifier))))
}

fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    Memory,
    Aws,
}

async fn backend(args: &Args) -> anyhow::Result<Backend> {
    if args.backend == BackendKind::Memory {
        return Ok(Backend::Memory);
    }
    if args.queue_url.is_none() && !args.create {
        bail!("--backend aws needs --queue-url (or QUEUE_URL), or --create to make the queue");
    }
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut queue_url = args.queue_url.clone();
    if args.create {
        shared::aws::provision::ensure_table(&sdk, &args.table)
            .await
            .map_err(|err| anyhow::anyhow!("could not create table {}: {err}", args.table))?;
        let (url, _dlq) = shared::aws::provision::ensure_queue(
            &sdk,
            "local-broadcasts",
            Duration::from_secs(args.visibility_timeout_secs),
            args.max_receive_count,
        )
        .await
        .map_err(|err| anyhow::anyhow!("could not create the queue: {err}"))?;
        queue_url.get_or_insert(url);
    }
    let queue_url = queue_url.context("no queue URL")?;
    Ok(Backend::Aws { sdk: Box::new(sdk), table: args.table.clone(), queue_url })
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM, what `kill` and process managers send.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM; only Ctrl-C stops the gateway");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}

/// What binding `host` exposes, if it is not loopback.
fn exposure_warning(host: IpAddr, port: u16) -> Option<String> {
    (!host.is_loopback()).then(|| {
        let reach = if host.is_unspecified() {
            "every network this machine is on".to_owned()
        } else {
            host.to_string()
        };
        format!(
            "listening on {host}:{port}, not loopback: anyone who can reach {reach} can open WebSocket \
             connections, send messages to your functions, read /_local/stats, and call @connections \
             with the credentials printed below"
        )
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr, in colour only on a terminal; stdout carries the URLs, for scripts.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let args = Args::parse();
    match &args.command {
        Some(Command::Token(token_args)) => {
            println!("{}", token(token_args)?);
            return Ok(());
        }
        Some(Command::Publish(publish_args)) => {
            let id = publish(publish_args).await?;
            println!("published to {} (SQS message {id})", publish_args.channel);
            return Ok(());
        }
        None => {}
    }
    let mut settings = Settings {
        authorizer: authorizer(&args)?,
        dev_tokens: args.jwt_secret.clone().map(|secret| local::demo::DevTokens {
            secret,
            issuer: args.jwt_issuer.clone(),
            audience: args.jwt_audience.clone(),
        }),
        backend: backend(&args).await?,
        route_selection_expression: args.route_selection_expression.clone(),
        routes: args.routes.clone(),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_connection_duration: Duration::from_secs(args.max_connection_secs),
        outbound_buffer_bytes: args.outbound_buffer_bytes,
        request_timeout: Duration::from_secs(args.request_timeout_secs),
        credentials: Credentials {
            access_key_id: args.access_key_id.clone(),
            secret_access_key: args.secret_access_key.clone(),
        },
        queue: QueueSettings {
            visibility_timeout: Duration::from_secs(args.visibility_timeout_secs),
            max_receive_count: Some(args.max_receive_count),
        },
        esm: EsmSettings {
            batch_size: args.batch_size,
            batch_window: Duration::from_millis(args.batch_window_ms),
            max_concurrency: args.worker_concurrency,
            function_timeout: Duration::from_secs(args.worker_timeout_secs),
            failure_rate: args.fault_worker_failure,
        },
        worker: WorkerSettings {
            post_concurrency: args.post_concurrency,
            post_rate: args.post_rate,
            // Without a throttle, nothing answers 429 to slow the worker down: --post-rate is its pace.
            account_rate: args.account_rate.max(args.post_rate),
            shard_size: args.shard_size,
            min_shards: worker::min_shards(u32::try_from(args.worker_concurrency).unwrap_or(u32::MAX)),
            prune_grace: Duration::from_secs(args.prune_grace_secs),
            target_retry_budget: Duration::from_millis(args.retry_budget_ms),
            ..WorkerSettings::default()
        },
        stage_throttle: (!args.no_throttle)
            .then_some(Bucket { rate: args.throttle_rate, burst: args.throttle_burst }),
        connect_rate: (!args.no_throttle)
            .then_some(Bucket { rate: args.connect_rate, burst: args.connect_rate }),
        account_rate: (!args.no_throttle)
            .then_some(Bucket { rate: args.account_rate, burst: args.account_burst }),
        faults: Faults {
            post_throttle: args.fault_post_throttle,
            post_error: args.fault_post_error,
            post_delay_rate: args.fault_post_delay_rate,
            post_delay: Duration::from_millis(args.fault_post_delay_ms),
            drop_connection: args.fault_drop_connection,
        },
        ..Settings::default()
    };
    settings.api.stage = args.stage.clone();
    settings.api.region = args.region.clone();

    let listener = TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
    if let Some(warning) = exposure_warning(args.host, args.port) {
        tracing::warn!("{warning}");
    }
    let memory = matches!(settings.backend, Backend::Memory);
    let mut gateway = Gateway::new(listener, settings)?;
    if memory {
        let sqs = TcpListener::bind((args.host, args.sqs_port))
            .await
            .with_context(|| format!("could not listen on {}:{} (--sqs-port)", args.host, args.sqs_port))?;
        gateway = gateway.with_sqs_endpoint(sqs)?;
    }
    println!("local gateway ready");
    println!("  WebSocket:    {}", gateway.ws_url());
    println!("  demo page:    {}/ (open it in two tabs)", gateway.ws_url().replacen("ws://", "http://", 1));
    println!("  @connections: {}/@connections/{{connectionId}}", gateway.connections_endpoint());
    println!(
        "  signed with:  access key {:?}, secret {:?}, region {}, service execute-api (SigV4)",
        args.access_key_id, args.secret_access_key, args.region
    );
    if let Some(queue_url) = gateway.queue_url() {
        println!("  SQS queue:    {queue_url} (SendMessage, signed like @connections, service sqs)");
        println!("  publish:      cargo run --release -p local -- publish --channel news --data '\"hello\"'");
    }
    if args.jwt_secret.is_some() {
        println!(
            "  authorizer:   HS256 tokens in ?token=; mint one with: cargo run --release -p local -- token --sub alice"
        );
        println!(
            "  try:          npx wscat -c \"{}?token=$(cargo run -q --release -p local -- token --sub alice)\"",
            gateway.ws_url()
        );
    } else if let Some(path) = &args.jwks {
        println!("  authorizer:   RS256/ES256 tokens in ?token=, keys from {}", path.display());
    } else {
        println!("  try:          npx wscat -c {}", gateway.ws_url());
    }
    gateway
        .run(async {
            shutdown_signal().await;
            tracing::info!("shutting down: closing connections");
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_gateway_binds_loopback_unless_told_otherwise() {
        Args::command().debug_assert();
        // A developer's LOCAL_HOST would change the default; the variable is read, never set.
        if std::env::var_os("LOCAL_HOST").is_none() {
            assert_eq!(Args::parse_from(["local"]).host, IpAddr::from([127, 0, 0, 1]));
        }
        assert!(Args::parse_from(["local", "--host", "0.0.0.0"]).host.is_unspecified());
    }

    #[test]
    fn its_help_says_what_it_is() {
        let about = Args::command().get_about().map(ToString::to_string).unwrap_or_default();
        assert!(about.starts_with("A local stand-in for API Gateway WebSocket"), "{about}");
    }

    #[test]
    fn binding_anything_but_loopback_is_warned_about() {
        assert_eq!(exposure_warning(IpAddr::from([127, 0, 0, 1]), 3001), None);
        assert_eq!(exposure_warning("::1".parse().expect("ip"), 3001), None);
        let all = exposure_warning(IpAddr::from([0, 0, 0, 0]), 3001).expect("a warning");
        assert!(all.contains("every network") && all.contains("@connections"), "{all}");
        let lan = exposure_warning(IpAddr::from([192, 168, 1, 20]), 3001).expect("a warning");
        assert!(lan.contains("192.168.1.20"), "{lan}");
    }

    #[test]
    fn issuer_and_audience_need_an_authorizer_and_a_token_needs_a_long_secret() {
        assert!(Args::try_parse_from(["local", "--jwt-issuer", "x"]).is_err());
        assert!(Args::try_parse_from(["local", "--jwt-secret", "s", "--jwks", "f"]).is_err());
        let args = TokenArgs {
            sub: "alice".into(),
            subscribe: vec!["chat/*".into()],
            publish: vec![],
            ttl_secs: 60,
            secret: "short".into(),
            issuer: None,
            audience: None,
        };
        assert!(token(&args).is_err());
        let long = TokenArgs { secret: "x".repeat(32), ..args };
        assert_eq!(token(&long).expect("a token").matches('.').count(), 2);
        assert!(token(&TokenArgs { subscribe: vec!["a/*/b".into()], ..long }).is_err());
    }

    #[test]
    fn a_publish_is_checked_before_it_is_sent_and_local_queues_are_told_from_aws_ones() {
        let args = |channel: &str, data: &str| PublishArgs {
            channel: channel.into(),
            data: data.into(),
            id: None,
            queue_url: String::new(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            region: String::new(),
        };
        let body = publish_body(&args("user/alice", r#"{"text":"shipped"}"#)).expect("a body");
        assert_eq!(body, r#"{"action":"publish","channel":"user/alice","data":{"text":"shipped"}}"#);
        assert!(publish_body(&args("chat/*", "1")).is_err(), "a wildcard");
        assert!(publish_body(&args("chat", "{not json")).is_err(), "not JSON");
        assert!(is_local("http://127.0.0.1:9324/000000000000/local-broadcasts"));
        assert!(is_local("http://localhost:3002/q"));
        assert!(!is_local("https://sqs.eu-west-1.amazonaws.com/123456789012/ws-broadcasts"));
    }

    #[test]
    fn fault_rates_must_be_fractions() {
        assert!(Args::try_parse_from(["local", "--fault-post-throttle", "0.1"]).is_ok());
        for bad in ["1.5", "-0.1", "ten"] {
            assert!(Args::try_parse_from(["local", "--fault-post-error", bad]).is_err(), "{bad}");
        }
    }
}
