//! What the local gateway can be told, with API Gateway's, the template's and the event source
//! mapping's defaults.

use std::time::Duration;

use shared::history::HistorySettings;
use shared::limits::{IDLE_TIMEOUT, MAX_CONNECTION_DURATION};
use shared::namespaces::{ChannelOptions, Namespaces, NamespacesError};
use shared::queue::QueueSettings;
use shared::quota::QuotaSettings;
use shared::store::MemoryStore;
use worker::{Fleet, Lanes, WorkerSettings};

use crate::esm::EsmSettings;
use crate::faults::Faults;
use crate::host::AllowedHosts;
use crate::integration::Api;

/// Where the functions keep connections and queue broadcasts.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// In-process stand-ins for DynamoDB and SQS.
    #[default]
    Memory,
    /// The DynamoDB and SQS adapters through the AWS SDK, at the endpoints its configuration names
    /// (`AWS_ENDPOINT_URL`, or per service `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SQS`):
    /// moto, DynamoDB Local, or AWS itself. The gateway polls the queue like the event source mapping.
    /// `bulk_queue_url`: the bulk lane's queue; without one, shard jobs go on the main queue, as in
    /// a stack deployed before lanes.
    Aws { sdk: Box<aws_config::SdkConfig>, table: String, queue_url: String, bulk_queue_url: Option<String> },
}

/// Everything that can be configured, with API Gateway's and the template's defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    pub backend: Backend,
    pub api: Api,
    /// The API's `RouteSelectionExpression`.
    pub route_selection_expression: String,
    /// Custom route keys besides `$connect`, `$disconnect` and `$default`; all go to the ingress.
    pub routes: Vec<String>,
    pub idle_timeout: Duration,
    pub max_connection_duration: Duration,
    /// Bytes waiting for a client that does not read before `@connections` answers 429, as API
    /// Gateway does for a client that does not keep up. Counted in bytes, not frames, so that the
    /// gateway's memory stays bounded whatever its clients do.
    pub outbound_buffer_bytes: usize,
    /// The in-memory queue's visibility timeout and redrive policy (with `Backend::Aws`, SQS's own).
    pub queue: QueueSettings,
    pub queue_name: String,
    pub esm: EsmSettings,
    /// The worker's pacing and retries (`POST_CONCURRENCY`, its share of `ACCOUNT_POST_RATE`), as
    /// a one-queue worker's; with `lanes`, each lane's worker is made from them
    /// ([`WorkerSettings::lanes`]).
    pub worker: WorkerSettings,
    /// The bulk lane beside the main queue (the template's `BulkQueue` and `BulkWorkerFunction`):
    /// its worker's concurrency and the account's rate it leaves the interactive lane. `None`: one
    /// queue for everything.
    pub lanes: Option<Lanes>,
    /// How much of each channel's history is kept (the template's `HistorySize` and
    /// `HistoryTtlSeconds`); a size of 0 turns history and offsets off.
    pub history: HistorySettings,
    /// Whether channels keep their members (the template's `Presence`): `presence`, `join` and
    /// `leave`, lifecycle events.
    pub presence: bool,
    /// The namespace file (`namespaces.toml`) and what it holds, read at start over `history` and
    /// `presence`, which are the defaults of a channel in no listed namespace; `None`: every
    /// channel has them.
    pub namespaces: Option<NamespaceFile>,
    /// The Lambda Invoke API the hooks a namespace names are invoked through (`cargo lambda watch`'s
    /// `http://127.0.0.1:9000`, `sam local start-lambda`'s), signed with `credentials`; needed when
    /// the namespace file names any hook.
    pub hooks_endpoint: Option<String>,
    /// What one connection and one user may publish or broadcast a second (the template's
    /// `PublishRatePerConnection` and `PublishRatePerUser`); exact here, where one ingress counts all.
    pub quotas: QuotaSettings,
    /// The most deliveries one sender's messages may make a minute (the template's
    /// `FanoutPerUserPerMinute`); 0: no ceiling.
    pub fanout_per_minute: u64,
    /// Where lifecycle events are POSTed, as an EventBridge rule's target receives them (the
    /// template's `EventBusName` stands for it); `None`: they are only kept for `/_local/events`.
    pub events_url: Option<String>,
    /// Faults to inject, all off by default.
    pub faults: Faults,
    /// The stage's throttle on client messages (`ThrottlingRateLimit` and `ThrottlingBurstLimit` in
    /// template.yaml); `None` for none.
    pub stage_throttle: Option<Bucket>,
    /// New connections a second, all clients together: API Gateway's account limit. `None` for none.
    pub connect_rate: Option<Bucket>,
    /// `@connections` calls a second, every caller together: the account's request throttle, past
    /// which API Gateway answers 429. `None` for none.
    pub account_rate: Option<Bucket>,
    /// What `@connections` checks SigV4 signatures against, and what the gateway's own worker signs
    /// with.
    pub credentials: Credentials,
    /// How long a client may take to send a request's headers, and then its body: a connection that
    /// takes longer is closed, so that slow or silent clients cannot hold the gateway's sockets.
    pub request_timeout: Duration,
    /// Connections per page of the in-memory store's scans.
    pub scan_page_size: usize,
    /// The REQUEST authorizer run before `$connect`, as the template's `$connect` route has when a
    /// JWKS URL or secret is configured; `None`: everyone connects, anonymously.
    pub authorizer: Option<std::sync::Arc<authorizer::Authorizer>>,
    /// The secret behind `--jwt-secret`, with which the demo page gets development tokens
    /// ([`crate::devtools::TOKEN_PATH`]); `None`: it mints none.
    pub dev_tokens: Option<DevTokens>,
    /// The names besides `localhost` and IP addresses that a request's `Host` may give
    /// (`--allowed-host`): any other is refused on every endpoint, as DNS rebinding would use it.
    pub allowed_hosts: AllowedHosts,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            backend: Backend::Memory,
            api: Api { api_id: "local".into(), stage: "local".into(), region: "us-east-1".into() },
            route_selection_expression: "$request.body.action".into(),
            routes: Vec::new(),
            idle_timeout: IDLE_TIMEOUT,
            max_connection_duration: MAX_CONNECTION_DURATION,
            outbound_buffer_bytes: DEFAULT_OUTBOUND_BUFFER_BYTES,
            queue: QueueSettings::default(),
            queue_name: "local-broadcasts".into(),
            esm: EsmSettings::default(),
            worker: WorkerSettings::for_fleet(Fleet {
                post_concurrency: LOCAL_POST_CONCURRENCY,
                ..Fleet::default()
            }),
            lanes: Some(Lanes::default()),
            history: HistorySettings::default(),
            presence: true,
            namespaces: None,
            hooks_endpoint: None,
            quotas: QuotaSettings::default(),
            fanout_per_minute: 0,
            events_url: None,
            faults: Faults::default(),
            stage_throttle: Some(Bucket::STAGE),
            connect_rate: Some(Bucket::CONNECT),
            account_rate: Some(Bucket::ACCOUNT),
            credentials: Credentials::default(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            scan_page_size: MemoryStore::DEFAULT_PAGE_SIZE,
            authorizer: None,
            dev_tokens: None,
            allowed_hosts: AllowedHosts::default(),
        }
    }
}

/// A namespace file, as read from disk: its name (for errors) and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespaceFile {
    pub name: String,
    pub text: String,
}

impl Settings {
    /// Every channel's options: the namespace file's over the defaults, or an error naming the
    /// file's line.
    pub fn namespaces(&self) -> Result<Namespaces, NamespacesError> {
        let defaults = ChannelOptions::defaults(self.history, self.presence);
        match &self.namespaces {
            Some(file) => shared::namespaces::parse(&file.name, &file.text, defaults),
            None => Ok(Namespaces::uniform(defaults)),
        }
    }
}

/// The account the gateway stands in for: in the queue's URL and ARN and in every lifecycle event,
/// as AWS's documentation writes an account it means nothing by.
pub const ACCOUNT: &str = "000000000000";

/// Where the gateway listens unless told otherwise: loopback only.
pub const DEFAULT_HOST: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
/// The WebSocket and `@connections` port.
pub const DEFAULT_PORT: u16 = 3001;
/// The SQS endpoint's port: ElasticMQ's, which SQS tools for local development expect.
pub const DEFAULT_SQS_PORT: u16 = 9324;
/// The table `--backend aws` uses unless told otherwise.
pub const DEFAULT_TABLE: &str = "local-connections";

/// `@connections` posts in flight at once per worker invocation: half the template's 128. Here every
/// invocation shares one process, whose open files also hold the clients' sockets, and each call in
/// flight is two of them (five invocations of 128 ran 18,000 clients out of the 20,000-file limit,
/// `scripts/bench-fanout`); at loopback latency 64 already keep the CPU busy.
pub const LOCAL_POST_CONCURRENCY: usize = Fleet::DEFAULT_POST_CONCURRENCY / 2;

/// 1 MiB: eight of API Gateway's largest messages. AWS does not publish its own figure; this one keeps
/// a thousand stuck clients within a gigabyte (RELIABILITY.md measures ten).
pub const DEFAULT_OUTBOUND_BUFFER_BYTES: usize = 1024 * 1024;

/// Ample for a real client on a slow link, short enough that idle and slowloris sockets do not pile
/// up: hyper's own default for headers. AWS does not publish its figure.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A token bucket: `rate` tokens a second on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    pub rate: u32,
    pub burst: u32,
}

impl Bucket {
    /// The template's stage throttle.
    pub const STAGE: Self = Self { rate: 100, burst: 50 };
    /// API Gateway's new connections per second per account and region.
    pub const CONNECT: Self = Self { rate: 500, burst: 500 };
    /// API Gateway's request throttle per account and region, which every `@connections` call
    /// counts against.
    pub const ACCOUNT: Self =
        Self { rate: shared::limits::ACCOUNT_POST_RATE, burst: shared::limits::ACCOUNT_POST_RATE / 2 };

    pub fn limiter(self) -> governor::DefaultDirectRateLimiter {
        shared::pacing::token_bucket(self.rate, self.burst)
    }
}

/// An access key pair, as `@connections` callers sign with.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl Default for Credentials {
    /// Printed at start: these guard nothing but a developer's own machine.
    fn default() -> Self {
        Self { access_key_id: "local".into(), secret_access_key: "local".into() }
    }
}

impl Credentials {
    /// The pair as the AWS SDK signs with it, `name`d for its provider.
    pub fn for_sdk(&self, name: &'static str) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(&self.access_key_id, &self.secret_access_key, None, None, name)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("access_key_id", &self.access_key_id).finish_non_exhaustive()
    }
}

/// The secret development tokens are signed with, and the issuer and audience they name.
#[derive(Clone, Debug)]
pub struct DevTokens {
    pub secret: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    /// Whether [`crate::devtools::TOKEN_PATH`] serves requests on a bind beyond loopback
    /// (`--expose-dev-tokens`); it never serves a `Host` that is a DNS name other than `localhost`.
    pub exposed: bool,
}
