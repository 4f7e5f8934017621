//! What every request handler shares: the settings, the live connections, the functions, the
//! buckets of API Gateway's throttles, and the figures `/_local/stats` shows.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use shared::ConnectionStore;
use shared::queue::MemoryQueue;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use worker::metrics::Totals;

use crate::faults;
use crate::function::Function;
use crate::registry::Registry;
use crate::routing::RouteSelector;
use crate::settings::Settings;
use crate::sigv4::Signatures;

/// What every request handler shares.
pub struct AppState {
    pub settings: Settings,
    pub selector: RouteSelector,
    pub registry: Registry,
    pub ingress: Arc<dyn Function>,
    /// The `$connect` route's authorizer, when there is one (the server API's too).
    pub authorizer: Option<Arc<dyn Function>>,
    /// The server API authorizer's answers, by token, as API Gateway caches them.
    pub server_authorizations: crate::authorizations::AuthorizerCache,
    /// The stage throttle's bucket, shared by every connection as API Gateway's is.
    pub throttle: Option<governor::DefaultDirectRateLimiter>,
    /// The account's bucket of new connections.
    pub connect_rate: Option<governor::DefaultDirectRateLimiter>,
    /// The account's request throttle, which every `@connections` call takes a token from.
    pub account_rate: Option<governor::DefaultDirectRateLimiter>,
    /// `@connections` calls refused by it.
    pub account_throttled: AtomicU64,
    /// Checks every `@connections` call's signature.
    pub signatures: Signatures,
    /// The connection store, for [`STATS_PATH`].
    pub store: Arc<dyn ConnectionStore>,
    /// Lifecycle events: kept for `/_local/events`, forwarded to `--events-url`.
    pub lifecycle: crate::lifecycle::Lifecycle,
    /// The in-memory queue, for [`STATS_PATH`]; SQS keeps its own figures.
    pub queue_stats: Option<Arc<MemoryQueue>>,
    /// The bulk lane's, when it has one.
    pub bulk_queue_stats: Option<Arc<MemoryQueue>>,
    /// What the worker's batches did: the figures its EMF lines carry on AWS.
    pub worker_totals: Arc<Totals>,
    /// The ingress's events by route and errors by code.
    pub ingress_totals: Arc<ingress::metrics::Totals>,
    /// Faults injected so far.
    pub injected: faults::Injected,
    pub local_addr: SocketAddr,
    /// Cancelled when the gateway shuts down: every connection closes with 1001.
    pub shutdown: CancellationToken,
    /// The connection tasks, awaited on shutdown so that every `$disconnect` runs.
    pub connections: TaskTracker,
    /// What the shutdown did, counted by the connection tasks themselves: a snapshot taken when
    /// the token is cancelled races the tasks that react to it on other threads.
    pub shutdown_report: ShutdownReport,
    /// `@connections` posts answered 429 because the client's outbound buffer was full.
    pub buffer_full: AtomicU64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("local_addr", &self.local_addr)
            .field("live", &self.registry.len())
            .finish_non_exhaustive()
    }
}

/// The connections a shutdown closed with 1001 and the `$disconnect`s that then succeeded.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    pub closed: AtomicU64,
    pub disconnects: AtomicU64,
}
