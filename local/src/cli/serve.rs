//! `local` (the default command): serves API Gateway WebSocket, `@connections` and the SQS endpoint
//! on this machine until Ctrl-C or SIGTERM, with the template's defaults unless a flag says otherwise.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use authorizer::jwks::{FileJwks, JwksSource, Keys};
use authorizer::{Authorizer, Verifier};
use local::esm::EsmSettings;
use local::host::AllowedHosts;
use local::settings::{DEFAULT_HOST, DEFAULT_PORT, DEFAULT_SQS_PORT, DevTokens};
use local::{Backend, Bucket, Credentials, Faults, Gateway, Settings};
use shared::history::HistorySettings;
use shared::queue::QueueSettings;
use shared::quota::QuotaSettings;
use tokio::net::TcpListener;
use worker::{Fleet, Lanes, WorkerSettings};

use super::backend::{BackendArgs, Queues, backend};
use super::namespaces::{describe_namespaces, hooks_endpoint, namespace_file};
use super::signals::shutdown_signal;

/// The gateway's defaults, which every flag's default is read from.
fn defaults() -> Settings {
    Settings::default()
}

/// How the gateway serves, as its flags say.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("auth").args(["jwt_secret", "jwks"])))]
pub struct ServeArgs {
    #[command(flatten)]
    pub(crate) store: BackendArgs,
    /// Address to bind; anything but loopback exposes the API to the network.
    #[arg(long, default_value_t = DEFAULT_HOST, env = "LOCAL_HOST")]
    pub(crate) host: IpAddr,
    /// Port to bind; 0 picks a free one.
    #[arg(long, default_value_t = DEFAULT_PORT, env = "LOCAL_PORT")]
    pub(crate) port: u16,
    /// Port of the SQS endpoint (SendMessage, SendMessageBatch) that backends publish through; 0
    /// picks a free one. Only with the in-memory backend.
    #[arg(long, default_value_t = DEFAULT_SQS_PORT, env = "LOCAL_SQS_PORT")]
    pub(crate) sqs_port: u16,
    /// Stage name: clients may connect to /{stage} and @connections is also served under it.
    #[arg(long, default_value_t = defaults().api.stage)]
    pub(crate) stage: String,
    /// The region `@connections` signatures must be scoped to (SigV4, service execute-api).
    #[arg(long, default_value_t = defaults().api.region)]
    pub(crate) region: String,
    /// The access key id `@connections` callers sign with (and the gateway's own worker does).
    #[arg(long, default_value_t = Credentials::default().access_key_id)]
    pub(crate) access_key_id: String,
    /// The secret access key that goes with --access-key-id.
    #[arg(long, default_value_t = Credentials::default().secret_access_key)]
    pub(crate) secret_access_key: String,
    /// The API's RouteSelectionExpression.
    #[arg(long, default_value_t = defaults().route_selection_expression)]
    pub(crate) route_selection_expression: String,
    /// A custom route key (repeatable); every route is integrated with the ingress function.
    #[arg(long = "route")]
    pub(crate) routes: Vec<String>,
    /// Seconds without a client message before the connection is closed with 1001.
    #[arg(long, default_value_t = defaults().idle_timeout.as_secs())]
    pub(crate) idle_timeout_secs: u64,
    /// Seconds after which every connection is closed with 1001.
    #[arg(long, default_value_t = defaults().max_connection_duration.as_secs())]
    pub(crate) max_connection_secs: u64,
    /// Bytes waiting for a client that does not read before `@connections` answers it 429.
    #[arg(long, default_value_t = defaults().outbound_buffer_bytes)]
    pub(crate) outbound_buffer_bytes: usize,
    /// Seconds a client may take to send a request's headers, and then its body.
    #[arg(long, default_value_t = defaults().request_timeout.as_secs())]
    pub(crate) request_timeout_secs: u64,
    /// SQS event source mapping BatchSize.
    #[arg(long, default_value_t = defaults().esm.batch_size)]
    pub(crate) batch_size: usize,
    /// MaximumBatchingWindow, in milliseconds.
    #[arg(long, default_value_t = defaults().esm.batch_window.as_millis() as u64)]
    pub(crate) batch_window_ms: u64,
    /// Worker invocations at once (ScalingConfig.MaximumConcurrency; the template's
    /// WorkerMaxConcurrency).
    #[arg(long, default_value_t = defaults().esm.max_concurrency)]
    pub(crate) worker_concurrency: usize,
    /// Bulk worker invocations at once: the bulk lane's mapping, which posts the shard jobs of large
    /// audiences (the template's BulkWorkerMaxConcurrency).
    #[arg(long, default_value_t = Lanes::default().bulk_concurrency)]
    pub(crate) bulk_worker_concurrency: u32,
    /// `@connections` calls per second of --account-rate the bulk lane leaves to the interactive
    /// lane, so that small audiences are posted promptly during a large fan-out (the template's
    /// InteractivePostRate).
    #[arg(long, default_value_t = Lanes::default().interactive_post_rate)]
    pub(crate) interactive_post_rate: u32,
    /// One queue for everything, as a stack deployed before lanes: shard jobs wait on the main
    /// queue with every other message.
    #[arg(long)]
    pub(crate) one_queue: bool,
    /// The queue's visibility timeout, in seconds.
    #[arg(long, default_value_t = defaults().queue.visibility_timeout.as_secs())]
    pub(crate) visibility_timeout_secs: u64,
    /// Bytes of messages the in-process queue holds at most (visible, delayed, in flight and dead
    /// together); sends past it are refused (SQS's OverLimit to backends), so that no sender can grow
    /// the gateway's memory without end.
    #[arg(long, default_value_t = defaults().queue.max_bytes)]
    pub(crate) queue_max_bytes: usize,
    /// Receives before a message moves to the dead-letter list.
    #[arg(long, default_value_t = defaults().queue.max_receive_count.unwrap_or_default())]
    pub(crate) max_receive_count: u32,
    /// `@connections` posts in flight at once per worker invocation (POST_CONCURRENCY). Half the
    /// template's 128: here every invocation shares one process, whose open files also hold the
    /// clients' sockets, and each call in flight is two of them (five invocations of 128 ran 18,000
    /// clients out of the 20,000-file limit, `scripts/bench-fanout`); at loopback latency 64 already
    /// keep the CPU busy.
    #[arg(long, default_value_t = defaults().worker.post_concurrency)]
    pub(crate) post_concurrency: usize,
    /// `@connections` calls per second each worker invocation starts at (the template's
    /// AccountPostRate divided by WorkerMaxConcurrency); it adapts from there to the account's 429s,
    /// up to --account-rate.
    #[arg(long, default_value_t = defaults().worker.post_rate)]
    pub(crate) post_rate: u32,
    /// Connections per shard: a broadcast or a publish to more is split into shard jobs on the queue,
    /// posted by several worker invocations at once (the template's FanoutShardSize; 0 never splits).
    #[arg(long, default_value_t = defaults().worker.shard_size)]
    pub(crate) shard_size: usize,
    /// How long the worker keeps retrying a connection whose posts fail (429, 5xx) before it goes into
    /// a retry job, in milliseconds.
    #[arg(long, default_value_t = defaults().worker.target_retry_budget.as_millis() as u64)]
    pub(crate) retry_budget_ms: u64,
    /// The worker's Timeout, in seconds: it retries until shortly before, then queues retry jobs.
    #[arg(long, default_value_t = defaults().esm.function_timeout.as_secs())]
    pub(crate) worker_timeout_secs: u64,
    /// Connection records younger than this are kept despite a 410 (API Gateway's answer during a
    /// `$connect`), in seconds.
    #[arg(long, default_value_t = defaults().worker.prune_grace.as_secs())]
    pub(crate) prune_grace_secs: u64,
    /// Messages kept per channel for `history` and recovery on reconnect (the template's
    /// HistorySize); 0 turns history and offsets off.
    #[arg(long, default_value_t = defaults().history.size as u64,
          value_parser = clap::value_parser!(u64).range(0..=HistorySettings::MAX_SIZE as u64))]
    pub(crate) history_size: u64,
    /// Seconds each message stays in its channel's history (the template's HistoryTtlSeconds).
    #[arg(long, default_value_t = defaults().history.ttl.as_secs(),
          value_parser = clap::value_parser!(u64).range(1..=HistorySettings::MAX_TTL.as_secs()))]
    pub(crate) history_ttl_secs: u64,
    /// The namespace file: options by a channel's first segment (history, presence, joinLeave,
    /// who publishes), over the flags above, which stay the defaults of every other channel.
    /// Default: namespaces.toml where the gateway starts, when there is one. A file that is wrong
    /// stops the gateway, naming its line.
    #[arg(long, value_name = "FILE")]
    pub(crate) namespaces: Option<PathBuf>,
    /// The Lambda Invoke API that runs the hooks the namespace file names: `cargo lambda watch`
    /// serves one at http://127.0.0.1:9000, `sam local start-lambda` at the port it is given.
    #[arg(long, value_name = "URL", value_parser = hooks_endpoint)]
    pub(crate) hooks_endpoint: Option<String>,
    /// `publish` and `broadcast` messages one connection may send a second, with two seconds' burst
    /// (the template's PublishRatePerConnection, 25); past it the client is answered `rate_limited`.
    /// 0: no limit. `--no-throttle` makes it 0 unless given.
    #[arg(long, value_name = "N")]
    pub(crate) publish_rate_per_connection: Option<u32>,
    /// The same for all of one user's connections together (PublishRatePerUser, 50). 0: no limit.
    #[arg(long, value_name = "N")]
    pub(crate) publish_rate_per_user: Option<u32>,
    /// The most deliveries one user's messages (an anonymous connection's) may make a minute, the
    /// cost guard (FanoutPerUserPerMinute); past it their publishes and broadcasts are answered
    /// `rate_limited` until the next minute. 0: no ceiling.
    #[arg(long, value_name = "N", default_value_t = defaults().fanout_per_minute)]
    pub(crate) fanout_per_user_per_minute: u64,
    /// Keep no channel members (the template's Presence=false): no `presence`, no `join` or
    /// `leave` frames, no lifecycle events.
    #[arg(long, conflicts_with = "events_url")]
    pub(crate) no_presence: bool,
    /// POST each lifecycle event (ChannelOccupied, ChannelVacated, MemberJoined, MemberLeft) to
    /// this http(s) URL, as an EventBridge rule's target receives it, trying each 4 times; the
    /// recent ones are listed at /_local/events either way.
    #[arg(long, value_parser = events_url)]
    pub(crate) events_url: Option<String>,
    /// The stage throttle: messages per second from all clients together (ThrottlingRateLimit).
    #[arg(long, default_value_t = Bucket::STAGE.rate)]
    pub(crate) throttle_rate: u32,
    /// Messages the stage accepts at once above the rate (ThrottlingBurstLimit).
    #[arg(long, default_value_t = Bucket::STAGE.burst)]
    pub(crate) throttle_burst: u32,
    /// New connections per second, all clients together (API Gateway's account limit, with a burst
    /// as large); handshakes past it are refused with 429.
    #[arg(long, default_value_t = Bucket::CONNECT.rate)]
    pub(crate) connect_rate: u32,
    /// `@connections` calls per second, every caller together: API Gateway's account throttle. Calls
    /// past it are answered 429 LimitExceededException.
    #[arg(long, default_value_t = Bucket::ACCOUNT.rate)]
    pub(crate) account_rate: u32,
    /// `@connections` calls the account bucket lets through at once above its rate.
    #[arg(long, default_value_t = Bucket::ACCOUNT.burst)]
    pub(crate) account_burst: u32,
    /// No stage throttle, no connection rate limit and no account throttle (for load tests of the
    /// pipeline itself).
    #[arg(long, conflicts_with_all = ["throttle_rate", "throttle_burst", "connect_rate", "account_rate", "account_burst"])]
    pub(crate) no_throttle: bool,
    /// Run the $connect authorizer with this HS256 secret (32 bytes or more): clients connect with
    /// `?token=<JWT>`, as minted by the `token` command with the same secret.
    #[arg(long, help_heading = "Authorization", conflicts_with = "jwks")]
    pub(crate) jwt_secret: Option<String>,
    /// Run the $connect authorizer with the RS256/ES256 keys of this JWKS file (an OIDC issuer's
    /// `jwks.json`), read again when a token names a key it lacks.
    #[arg(long, help_heading = "Authorization")]
    pub(crate) jwks: Option<PathBuf>,
    /// The `iss` tokens must have (JWT_ISSUER in the template).
    #[arg(long, help_heading = "Authorization", requires = "auth")]
    pub(crate) jwt_issuer: Option<String>,
    /// The `aud` tokens must have (JWT_AUDIENCE in the template).
    #[arg(long, help_heading = "Authorization", requires = "auth")]
    pub(crate) jwt_audience: Option<String>,
    /// With --jwt-secret on a --host beyond loopback: serve /_local/token, which mints a token for
    /// any user, to the network too (it is off there otherwise; on loopback it is always on).
    #[arg(long, help_heading = "Authorization", requires = "jwt_secret")]
    pub(crate) expose_dev_tokens: bool,
    /// A name besides localhost and IP addresses that requests may address the gateway by (their
    /// `Host`), e.g. a name in /etc/hosts; `.example.test` allows it and every name below it.
    /// Requests naming any other host are refused on every endpoint: that is what a page on
    /// another site reaching the gateway through DNS rebinding names. Repeat for more names.
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub(crate) allowed_hosts: Vec<String>,
    /// Fault injection: the fraction of `@connections` POSTs answered 429 LimitExceededException.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    pub(crate) fault_post_throttle: f64,
    /// The fraction of POSTs answered 500.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    pub(crate) fault_post_error: f64,
    /// The fraction of POSTs answered late, after --fault-post-delay-ms.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    pub(crate) fault_post_delay_rate: f64,
    #[arg(long, default_value_t = 1_000, help_heading = "Fault injection")]
    pub(crate) fault_post_delay_ms: u64,
    /// The fraction of POSTs whose connection is cut on the spot, without a close frame or a
    /// `$disconnect` (answered 410): the worker must prune it.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    pub(crate) fault_drop_connection: f64,
    /// The fraction of worker invocations that fail before the handler runs.
    #[arg(long, default_value_t = 0.0, value_parser = fraction, help_heading = "Fault injection")]
    pub(crate) fault_worker_failure: f64,
}

impl ServeArgs {
    /// The quotas given, or the template's defaults — none under `--no-throttle`, which turns off
    /// every limit on clients for load tests of the pipeline itself.
    fn quotas(&self) -> QuotaSettings {
        let default =
            |given: Option<u32>, default: u32| given.unwrap_or(if self.no_throttle { 0 } else { default });
        QuotaSettings::new(
            default(self.publish_rate_per_connection, QuotaSettings::DEFAULT_PER_CONNECTION),
            default(self.publish_rate_per_user, QuotaSettings::DEFAULT_PER_USER),
        )
    }
    /// The gateway's settings, `backend` being where it keeps connections and jobs.
    fn settings(&self, backend: Backend) -> anyhow::Result<Settings> {
        let mut settings = Settings {
            authorizer: authorizer(self)?,
            dev_tokens: self.jwt_secret.clone().map(|secret| DevTokens {
                secret,
                issuer: self.jwt_issuer.clone(),
                audience: self.jwt_audience.clone(),
                exposed: self.expose_dev_tokens,
            }),
            allowed_hosts: AllowedHosts::new(self.allowed_hosts.iter().cloned())
                .map_err(|err| anyhow::anyhow!("--allowed-host {err}"))?,
            backend,
            route_selection_expression: self.route_selection_expression.clone(),
            routes: self.routes.clone(),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs),
            max_connection_duration: Duration::from_secs(self.max_connection_secs),
            outbound_buffer_bytes: self.outbound_buffer_bytes,
            request_timeout: Duration::from_secs(self.request_timeout_secs),
            credentials: Credentials {
                access_key_id: self.access_key_id.clone(),
                secret_access_key: self.secret_access_key.clone(),
            },
            queue: QueueSettings {
                visibility_timeout: Duration::from_secs(self.visibility_timeout_secs),
                max_receive_count: Some(self.max_receive_count),
                max_bytes: self.queue_max_bytes,
            },
            esm: EsmSettings {
                batch_size: self.batch_size,
                batch_window: Duration::from_millis(self.batch_window_ms),
                max_concurrency: self.worker_concurrency,
                function_timeout: Duration::from_secs(self.worker_timeout_secs),
                failure_rate: self.fault_worker_failure,
            },
            worker: WorkerSettings {
                post_rate: self.post_rate,
                // Without a throttle, nothing answers 429 to slow the worker down: --post-rate is its pace.
                account_rate: self.account_rate.max(self.post_rate),
                prune_grace: Duration::from_secs(self.prune_grace_secs),
                target_retry_budget: Duration::from_millis(self.retry_budget_ms),
                ..WorkerSettings::for_fleet(Fleet {
                    post_concurrency: self.post_concurrency,
                    account_post_rate: self.account_rate,
                    interactive_post_rate: self.interactive_post_rate,
                    max_concurrency: u32::try_from(self.worker_concurrency).unwrap_or(u32::MAX),
                    bulk_max_concurrency: self.bulk_worker_concurrency,
                    shard_size: self.shard_size,
                })
            },
            lanes: (!self.one_queue).then_some(Lanes {
                bulk_concurrency: self.bulk_worker_concurrency.max(1),
                interactive_post_rate: self.interactive_post_rate,
            }),
            history: HistorySettings {
                size: self.history_size as usize,
                ttl: Duration::from_secs(self.history_ttl_secs),
            },
            presence: !self.no_presence,
            namespaces: namespace_file(self.namespaces.as_deref())?,
            hooks_endpoint: self.hooks_endpoint.clone(),
            quotas: self.quotas(),
            fanout_per_minute: self.fanout_per_user_per_minute,
            events_url: self.events_url.clone(),
            stage_throttle: (!self.no_throttle)
                .then_some(Bucket { rate: self.throttle_rate, burst: self.throttle_burst }),
            connect_rate: (!self.no_throttle)
                .then_some(Bucket { rate: self.connect_rate, burst: self.connect_rate }),
            account_rate: (!self.no_throttle)
                .then_some(Bucket { rate: self.account_rate, burst: self.account_burst }),
            faults: Faults {
                post_throttle: self.fault_post_throttle,
                post_error: self.fault_post_error,
                post_delay_rate: self.fault_post_delay_rate,
                post_delay: Duration::from_millis(self.fault_post_delay_ms),
                drop_connection: self.fault_drop_connection,
            },
            ..Settings::default()
        };
        settings.api.stage = self.stage.clone();
        settings.api.region = self.region.clone();
        // Read before anything is made (a table, a queue): a file that is wrong starts nothing.
        settings.namespaces()?;
        Ok(settings)
    }
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(args: &ServeArgs) -> anyhow::Result<()> {
    if let Some(path) = &args.jwks {
        check_jwks(path).await?;
    }
    let queues = Queues {
        name: &defaults().queue_name,
        visibility_timeout: Duration::from_secs(args.visibility_timeout_secs),
        max_receive_count: args.max_receive_count,
        one_queue: args.one_queue,
    };
    let settings = args.settings(backend(&args.store, queues).await?)?;
    let listener = TcpListener::bind((args.host, args.port))
        .await
        .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
    let memory = matches!(settings.backend, Backend::Memory);
    let namespaces = describe_namespaces(&settings)?;
    let mut gateway = Gateway::new(listener, settings)?;
    if memory {
        let sqs = TcpListener::bind((args.host, args.sqs_port))
            .await
            .with_context(|| format!("could not listen on {}:{} (--sqs-port)", args.host, args.sqs_port))?;
        gateway = gateway.with_sqs_endpoint(sqs)?;
    }
    if let Some(warning) = exposure_warning(args, gateway.local_addr(), gateway.queue_url().as_deref()) {
        tracing::warn!("{warning}");
    }
    banner(args, &gateway);
    println!("  namespaces:   {namespaces}");
    gateway
        .run(async {
            shutdown_signal().await;
            tracing::info!("shutting down: closing connections");
        })
        .await?;
    Ok(())
}

/// What a developer needs to start: the URLs, the key pair, and a command to try.
fn banner(args: &ServeArgs, gateway: &Gateway) {
    println!("local gateway ready");
    println!("  WebSocket:    {}", gateway.ws_url());
    println!("  demo page:    {}/ (open it in two tabs)", gateway.ws_url().replacen("ws://", "http://", 1));
    println!("  @connections: {}/@connections/{{connectionId}}", gateway.connections_endpoint());
    println!(
        "  signed with:  access key {:?}, secret {:?}, region {}, service execute-api (SigV4)",
        args.access_key_id, args.secret_access_key, args.region
    );
    let http = gateway.ws_url().replacen("ws://", "http://", 1);
    let bearer = if args.jwt_secret.is_some() || args.jwks.is_some() {
        "a token with the server scope: local token --server"
    } else {
        "no tokens without --jwt-secret"
    };
    println!(
        "  server API:   {http}/iam/api/{{method}} (SigV4, as @connections), {http}/api/{{method}} ({bearer})"
    );
    println!("  publish:      cargo run --release -p local -- publish --channel news --data '\"hello\"'");
    if let Some(queue_url) = gateway.queue_url() {
        println!("  SQS queue:    {queue_url} (SendMessage, signed like @connections, service sqs)");
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
    if !args.no_presence {
        let events =
            format!("{}{}", gateway.ws_url().replacen("ws://", "http://", 1), local::devtools::EVENTS_PATH);
        match &args.events_url {
            Some(url) => println!("  events:       POSTed to {url}; the recent ones at {events}"),
            None => println!("  events:       {events} (POST them to your backend with --events-url)"),
        }
    }
}

/// An `--events-url`: an http or https URL.
fn events_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|err| format!("not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("events are POSTed over http or https, not {}", url.scheme()));
    }
    Ok(raw.to_owned())
}

/// Reads the `--jwks` file once at start: a gateway whose keys are missing or unreadable would
/// answer every handshake 500, so it does not start at all.
async fn check_jwks(path: &std::path::Path) -> anyhow::Result<()> {
    let set = FileJwks(path.to_owned()).fetch().await.map_err(|err| anyhow::anyhow!("--jwks {err}"))?;
    if set.keys.is_empty() {
        bail!("--jwks {} holds no keys: no token could be verified", path.display());
    }
    Ok(())
}

/// The authorizer the flags ask for, if any.
fn authorizer(args: &ServeArgs) -> anyhow::Result<Option<Arc<Authorizer>>> {
    let (issuer, audience) = (args.jwt_issuer.clone(), args.jwt_audience.clone());
    let verifier = match (&args.jwt_secret, &args.jwks) {
        (Some(secret), _) => Verifier::secret(secret.as_bytes(), issuer, audience)?,
        (None, Some(path)) => Verifier::jwks(Keys::new(Box::new(FileJwks(path.clone()))), issuer, audience),
        (None, None) => return Ok(None),
    };
    Ok(Some(Arc::new(Authorizer::new(verifier))))
}

pub(crate) fn fraction(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(value) if (0.0..=1.0).contains(&value) => Ok(value),
        _ => Err(format!("{text:?} is not a fraction between 0 and 1")),
    }
}

/// What a gateway listening on `addr` (and serving SQS at `queue_url`) exposes beyond this
/// machine, endpoint by endpoint, if it is not bound to loopback.
fn exposure_warning(args: &ServeArgs, addr: SocketAddr, queue_url: Option<&str>) -> Option<String> {
    let host = addr.ip();
    if host.is_loopback() {
        return None;
    }
    let reach =
        if host.is_unspecified() { "every network this machine is on".to_owned() } else { host.to_string() };
    let defaults = Credentials::default();
    let keys = if args.access_key_id == defaults.access_key_id
        && args.secret_access_key == defaults.secret_access_key
    {
        "the well-known key pair local/local"
    } else {
        "the key pair printed below"
    };
    let who = if args.jwt_secret.is_some() || args.jwks.is_some() { "anyone with a token" } else { "anyone" };
    let mut open = vec![
        format!("ws://{addr} (WebSocket): {who} can connect and send messages to your functions"),
        format!("http://{addr}/@connections: with {keys}, anyone can post to, read and close any connection"),
        format!(
            "http://{addr}/iam/api/ (the server API): with {keys}, anyone can publish, read any channel's history and members, and disconnect anyone"
        ),
        format!("http://{addr}/_local/stats: anyone can read what the gateway holds"),
        format!("http://{addr}/: the demo page"),
    ];
    if !args.no_presence {
        open.push(format!(
            "http://{addr}/_local/events: anyone can read the lifecycle events (channels, connection ids, users)"
        ));
    }
    if let Some(queue_url) = queue_url {
        open.push(format!(
            "{queue_url} (SQS): with {keys}, anyone can publish to any channel, every user's own included"
        ));
    }
    if args.jwt_secret.is_some() {
        open.push(if args.expose_dev_tokens {
            format!("http://{addr}/_local/token (--expose-dev-tokens): anyone can mint a token for any user and act as them")
        } else {
            format!("http://{addr}/_local/token stays off (it mints a token for any user); --expose-dev-tokens turns it on")
        });
    }
    let names = if args.allowed_hosts.is_empty() {
        "an IP address or localhost".to_owned()
    } else {
        format!("an IP address, localhost or {}", args.allowed_hosts.join(", "))
    };
    Some(format!(
        "listening on {addr}, not loopback: {reach} can reach {}. Every endpoint answers only requests that \
         address it by {names} (--allowed-host adds a name): a page elsewhere reaching it through DNS \
         rebinding is refused, a machine on the network is not",
        open.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_anything_but_loopback_is_warned_about() {
        let args = |extra: &[&str]| {
            let mut argv = vec!["local"];
            argv.extend_from_slice(extra);
            <ServeArgs as clap::FromArgMatches>::from_arg_matches(
                &<ServeArgs as clap::Args>::augment_args(clap::Command::new("local")).get_matches_from(argv),
            )
            .expect("args")
        };
        let at = |ip: [u8; 4]| SocketAddr::from((ip, 3001));
        assert_eq!(exposure_warning(&args(&[]), at([127, 0, 0, 1]), None), None);
        assert_eq!(exposure_warning(&args(&[]), "[::1]:3001".parse().expect("addr"), None), None);
        let queue = Some("http://0.0.0.0:9324/000000000000/local-broadcasts");
        let all = exposure_warning(&args(&[]), at([0, 0, 0, 0]), queue).expect("a warning");
        for endpoint in
            ["WebSocket", "/@connections", "/_local/stats", "/_local/events", "(SQS)", "local/local"]
        {
            assert!(all.contains(endpoint), "{endpoint}: {all}");
        }
        assert!(all.contains("every network") && !all.contains("/_local/token"), "{all}");
        assert!(all.contains("only requests that address it by an IP address or localhost"), "{all}");
        let named = exposure_warning(&args(&["--allowed-host", "devbox.lan"]), at([0, 0, 0, 0]), None)
            .expect("a warning");
        assert!(named.contains("an IP address, localhost or devbox.lan"), "{named}");
        let lan = exposure_warning(&args(&[]), at([192, 168, 1, 20]), None).expect("a warning");
        assert!(lan.contains("192.168.1.20") && !lan.contains("(SQS)"), "{lan}");
        let secret = "x".repeat(32);
        let tokens =
            exposure_warning(&args(&["--jwt-secret", &secret]), at([0, 0, 0, 0]), None).expect("a warning");
        assert!(
            tokens.contains("/_local/token stays off") && tokens.contains("--expose-dev-tokens"),
            "{tokens}"
        );
        let exposed = args(&["--jwt-secret", &secret, "--expose-dev-tokens", "--access-key-id", "k"]);
        let exposed = exposure_warning(&exposed, at([0, 0, 0, 0]), None).expect("a warning");
        assert!(exposed.contains("mint a token for any user and act as them"), "{exposed}");
        assert!(exposed.contains("the key pair printed below"), "{exposed}");
    }
}
