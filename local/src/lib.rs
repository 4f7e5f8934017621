//! The local gateway: API Gateway WebSocket and the SQS event source mapping on one machine.
//!
//! It serves WebSocket clients and the `@connections` management API on one port, turns every
//! handshake, message and close into the exact event API Gateway would send, and hands it — as JSON,
//! through serde — to the very `ingress` and `worker` handlers that run on Lambda. Broadcasts travel
//! through an in-process SQS stand-in to the worker, which reaches the clients through the real
//! `aws-sdk-apigatewaymanagement` client pointed at this gateway, so every delivery is an HTTP
//! `@connections` call as on AWS.

pub mod connection;
pub mod esm;
pub mod events;
pub mod faults;
pub mod function;
pub mod ids;
pub mod management;
pub mod registry;
pub mod routing;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use ingress::Ingress;
use shared::aws::{ApiGatewayPoster, DynamoStore, SqsQueue};
use shared::limits::{IDLE_TIMEOUT, MAX_CONNECTION_DURATION};
use shared::memory::{MemoryQueue, MemoryStore, QueueSettings};
use shared::{ConnectionStore, Queue, QueueSource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use worker::{Worker, WorkerSettings};

use crate::esm::{EsmSettings, Mapping};
use crate::events::Api;
pub use crate::faults::Faults;
use crate::function::Function;
use crate::registry::Registry;
use crate::routing::{InvalidExpression, RouteSelector};

/// Where the functions keep connections and queue broadcasts.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// In-process stand-ins for DynamoDB and SQS.
    #[default]
    Memory,
    /// The DynamoDB and SQS adapters through the AWS SDK, at the endpoints its configuration names
    /// (`AWS_ENDPOINT_URL`, or per service `AWS_ENDPOINT_URL_DYNAMODB` and `AWS_ENDPOINT_URL_SQS`):
    /// moto, DynamoDB Local, or AWS itself. The gateway polls the queue like the event source mapping.
    Aws { sdk: Box<aws_config::SdkConfig>, table: String, queue_url: String },
}

/// The ports the functions get for a backend.
struct Adapters {
    store: Arc<dyn ConnectionStore>,
    queue: Arc<dyn Queue>,
    source: Arc<dyn QueueSource>,
    memory: Option<(Arc<MemoryStore>, Arc<MemoryQueue>)>,
}

impl Adapters {
    fn new(settings: &Settings) -> Self {
        match &settings.backend {
            Backend::Memory => {
                let store = Arc::new(MemoryStore::with_page_size(settings.scan_page_size));
                let queue = Arc::new(MemoryQueue::new(settings.queue));
                Self {
                    store: store.clone(),
                    queue: queue.clone(),
                    source: queue.clone(),
                    memory: Some((store, queue)),
                }
            }
            Backend::Aws { sdk, table, queue_url } => {
                let queue = Arc::new(SqsQueue::from_sdk(sdk, queue_url));
                let store = Arc::new(DynamoStore::from_sdk(sdk, table));
                Self { store, queue: queue.clone(), source: queue, memory: None }
            }
        }
    }
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
    /// Frames waiting for a slow client before `@connections` answers 429.
    pub outbound_buffer: usize,
    /// The in-memory queue's visibility timeout and redrive policy (with `Backend::Aws`, SQS's own).
    pub queue: QueueSettings,
    pub queue_name: String,
    pub esm: EsmSettings,
    /// The worker's pacing and retries (`POST_CONCURRENCY`, its share of `ACCOUNT_POST_RATE`).
    pub worker: WorkerSettings,
    /// Faults to inject, all off by default.
    pub faults: Faults,
    /// The stage's throttle on client messages (`ThrottlingRateLimit` and `ThrottlingBurstLimit` in
    /// template.yaml); `None` for none.
    pub stage_throttle: Option<StageThrottle>,
    /// Connections per page of the in-memory store's scans.
    pub scan_page_size: usize,
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
            outbound_buffer: 1024,
            queue: QueueSettings::default(),
            queue_name: "local-broadcasts".into(),
            esm: EsmSettings::default(),
            worker: WorkerSettings::default(),
            faults: Faults::default(),
            stage_throttle: Some(StageThrottle::default()),
            scan_page_size: MemoryStore::DEFAULT_PAGE_SIZE,
        }
    }
}

/// A token bucket: `rate` messages a second on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageThrottle {
    pub rate: u32,
    pub burst: u32,
}

impl Default for StageThrottle {
    /// The template's defaults.
    fn default() -> Self {
        Self { rate: 100, burst: 50 }
    }
}

impl StageThrottle {
    fn limiter(self) -> governor::DefaultDirectRateLimiter {
        shared::pacing::token_bucket(self.rate, self.burst)
    }
}

/// What every request handler shares.
pub struct AppState {
    pub settings: Settings,
    pub selector: RouteSelector,
    pub registry: Registry,
    pub ingress: Arc<dyn Function>,
    /// The stage throttle's bucket, shared by every connection as API Gateway's is.
    pub throttle: Option<governor::DefaultDirectRateLimiter>,
    /// The connection store, for [`STATS_PATH`].
    pub store: Arc<dyn ConnectionStore>,
    /// The in-memory queue, for [`STATS_PATH`]; SQS keeps its own figures.
    pub queue_stats: Option<Arc<MemoryQueue>>,
    /// Faults injected so far.
    pub injected: faults::Injected,
    pub local_addr: SocketAddr,
    /// Cancelled when the gateway shuts down: every connection closes with 1001.
    pub shutdown: CancellationToken,
    /// The connection tasks, awaited on shutdown so that every `$disconnect` runs.
    pub connections: TaskTracker,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("local_addr", &self.local_addr)
            .field("live", &self.registry.len())
            .finish_non_exhaustive()
    }
}

/// A bound, not yet running gateway.
pub struct Gateway {
    listener: TcpListener,
    state: Arc<AppState>,
    store: Arc<dyn ConnectionStore>,
    source: Arc<dyn QueueSource>,
    memory: Option<(Arc<MemoryStore>, Arc<MemoryQueue>)>,
    worker: Arc<Worker>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("local_addr", &self.state.local_addr).finish_non_exhaustive()
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Route(#[from] InvalidExpression),
    #[error("could not use the listener: {0}")]
    Io(#[from] std::io::Error),
}

impl Gateway {
    /// Wires the functions to in-memory adapters and to this gateway's own `@connections` endpoint.
    pub fn new(listener: TcpListener, settings: Settings) -> Result<Self, StartError> {
        Self::with_ingress(listener, settings, |ingress| ingress)
    }

    /// Like [`Gateway::new`], with the ingress function wrapped by `wrap`: a seam for tests that need
    /// an integration to answer what the project's own ingress never does (say, reject a handshake).
    pub fn with_ingress(
        listener: TcpListener,
        settings: Settings,
        wrap: impl FnOnce(Arc<dyn Function>) -> Arc<dyn Function>,
    ) -> Result<Self, StartError> {
        let local_addr = listener.local_addr()?;
        let selector = RouteSelector::parse(&settings.route_selection_expression, settings.routes.clone())?;
        let Adapters { store, queue, source, memory } = Adapters::new(&settings);
        let ingress = Ingress::new(store.clone(), queue.clone());
        let endpoint = format!("http://{local_addr}/{}", settings.api.stage);
        let poster = ApiGatewayPoster::for_local_endpoint(&endpoint);
        let worker =
            Arc::new(Worker::new(store.clone(), Arc::new(poster), queue.clone(), settings.worker.clone()));
        let state = Arc::new(AppState {
            throttle: settings.stage_throttle.map(StageThrottle::limiter),
            store: store.clone(),
            queue_stats: memory.as_ref().map(|(_, queue)| queue.clone()),
            injected: faults::Injected::default(),
            settings,
            selector,
            registry: Registry::default(),
            ingress: wrap(Arc::new(ingress)),
            local_addr,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
        });
        Ok(Self { listener, state, store, source, memory, worker })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.state.local_addr
    }

    /// The URL WebSocket clients connect to.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.state.local_addr)
    }

    /// The management API's base URL: what `CONNECTIONS_ENDPOINT` is on AWS.
    pub fn connections_endpoint(&self) -> String {
        format!("http://{}/{}", self.state.local_addr, self.state.settings.api.stage)
    }

    /// The connection store the functions use.
    pub fn store(&self) -> Arc<dyn ConnectionStore> {
        self.store.clone()
    }

    /// The in-memory store, for inspection, when the backend is [`Backend::Memory`].
    pub fn memory_store(&self) -> Option<Arc<MemoryStore>> {
        self.memory.as_ref().map(|(store, _)| store.clone())
    }

    /// The in-memory queue between the ingress and the worker, when the backend is [`Backend::Memory`].
    pub fn memory_queue(&self) -> Option<Arc<MemoryQueue>> {
        self.memory.as_ref().map(|(_, queue)| queue.clone())
    }

    /// The live connections, as API Gateway sees them.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then closes every connection with 1001, runs their
    /// `$disconnect`s and lets the worker invocations in flight finish.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, state, source, worker, .. } = self;
        let token = state.shutdown.clone();
        let mapping = Mapping {
            queue: source,
            queue_name: state.settings.queue_name.clone(),
            api: state.settings.api.clone(),
            function: worker,
            settings: state.settings.esm,
        };
        let esm = tokio::spawn(mapping.run(token.clone()));

        let app = router(state.clone());
        let signal = token.clone();
        let served = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                tokio::select! {
                    () = shutdown => signal.cancel(),
                    () = signal.cancelled() => {}
                }
            })
            .await;
        token.cancel();
        state.connections.close();
        state.connections.wait().await;
        if esm.await.is_err() {
            tracing::error!("the event source mapping panicked");
        }
        served
    }
}

fn management_routes() -> axum::routing::MethodRouter<Arc<AppState>> {
    axum::routing::post(management::post_to_connection)
        .get(management::get_connection)
        .delete(management::delete_connection)
        // API Gateway answers a method it has no route for as it answers an unknown path.
        .fallback(|| async { management::forbidden() })
}

/// Not an AWS API: what the gateway holds, for scripts that check a run from outside (say, that
/// every lost connection's record was pruned).
pub const STATS_PATH: &str = "/_local/stats";

async fn stats(axum::extract::State(state): axum::extract::State<Arc<AppState>>) -> axum::response::Response {
    use axum::response::IntoResponse;
    use futures::TryStreamExt;
    let records = match state
        .store
        .scan()
        .map_ok(|page| page.len())
        .try_fold(0, |n, len| async move { Ok(n + len) })
        .await
    {
        Ok(records) => records,
        Err(err) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("scanning the store failed: {err}"))
                .into_response();
        }
    };
    let queue = state.queue_stats.as_ref().map(|queue| {
        let stats = queue.stats();
        serde_json::json!({ "visible": stats.visible, "in_flight": stats.in_flight, "dead": stats.dead })
    });
    let body = serde_json::json!({
        "connections": state.registry.len(),
        "records": records,
        "queue": queue,
        "faults_injected": state.injected.to_json(),
    });
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(connection::upgrade_root))
        .route("/{stage}", get(connection::upgrade_staged))
        .route("/@connections/{id}", management_routes())
        .route("/{stage}/@connections/{id}", management_routes())
        .route(STATS_PATH, get(stats))
        .fallback(|| async { management::forbidden() })
        .with_state(state)
}
