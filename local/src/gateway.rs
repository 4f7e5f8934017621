//! The gateway itself: its state, its routes, and how it starts and stops.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use ingress::Ingress;
use shared::aws::{ApiGatewayPoster, DynamoStore, SqsQueue};
use shared::memory::{MemoryQueue, MemoryStore};
use shared::{ConnectionStore, Queue, QueueSource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use worker::Worker;
use worker::metrics::Totals;

use crate::function::{MeteredIngress, MeteredWorker};

use crate::esm::Mapping;
use crate::function::Function;
use crate::registry::Registry;
use crate::routing::{InvalidExpression, RouteSelector};
use crate::settings::{Backend, Bucket, Settings};
use crate::sigv4::Verifier;
use crate::sqs::SqsEndpoint;
use crate::{connection, faults, management, serve};

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

/// What every request handler shares.
pub struct AppState {
    pub settings: Settings,
    pub selector: RouteSelector,
    pub registry: Registry,
    pub ingress: Arc<dyn Function>,
    /// The `$connect` route's authorizer, when there is one.
    pub authorizer: Option<Arc<dyn Function>>,
    /// The stage throttle's bucket, shared by every connection as API Gateway's is.
    pub throttle: Option<governor::DefaultDirectRateLimiter>,
    /// The account's bucket of new connections.
    pub connect_rate: Option<governor::DefaultDirectRateLimiter>,
    /// The account's request throttle, which every `@connections` call takes a token from.
    pub account_rate: Option<governor::DefaultDirectRateLimiter>,
    /// `@connections` calls refused by it.
    pub account_throttled: AtomicU64,
    /// Checks every `@connections` call's signature.
    pub verifier: Verifier,
    /// The connection store, for [`STATS_PATH`].
    pub store: Arc<dyn ConnectionStore>,
    /// The in-memory queue, for [`STATS_PATH`]; SQS keeps its own figures.
    pub queue_stats: Option<Arc<MemoryQueue>>,
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

/// A bound, not yet running gateway.
/// The connections a shutdown closed with 1001 and the `$disconnect`s that then succeeded.
#[derive(Debug, Default)]
pub struct ShutdownReport {
    pub closed: AtomicU64,
    pub disconnects: AtomicU64,
}

pub struct Gateway {
    listener: TcpListener,
    state: Arc<AppState>,
    store: Arc<dyn ConnectionStore>,
    source: Arc<dyn QueueSource>,
    memory: Option<(Arc<MemoryStore>, Arc<MemoryQueue>)>,
    worker: Arc<MeteredWorker>,
    /// The SQS endpoint for backends, when one was asked for.
    sqs: Option<(TcpListener, Arc<SqsEndpoint>)>,
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
    #[error("the SQS endpoint serves the in-process queue; with --backend aws, send to the real queue")]
    SqsWithAwsBackend,
    /// AWS refuses the event source mapping: a message would come back to another invocation while the
    /// first still posts it, and be delivered twice.
    #[error(
        "Invalid request provided: Queue visibility timeout: {visibility:?} is less than Function timeout: \
         {function:?} (raise --visibility-timeout-secs or lower --worker-timeout-secs)"
    )]
    VisibilityTimeout { visibility: Duration, function: Duration },
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
        let (visibility, function) = (settings.queue.visibility_timeout, settings.esm.function_timeout);
        if visibility < function {
            return Err(StartError::VisibilityTimeout { visibility, function });
        }
        let selector = RouteSelector::parse(&settings.route_selection_expression, settings.routes.clone())?;
        let Adapters { store, queue, source, memory } = Adapters::new(&settings);
        let ingress_totals = Arc::new(ingress::metrics::Totals::default());
        let ingress = MeteredIngress {
            ingress: Ingress::new(store.clone(), queue.clone()),
            totals: ingress_totals.clone(),
        };
        let endpoint = format!("http://{local_addr}/{}", settings.api.stage);
        let credentials = aws_credential_types::Credentials::new(
            &settings.credentials.access_key_id,
            &settings.credentials.secret_access_key,
            None,
            None,
            "local-gateway",
        );
        let poster = ApiGatewayPoster::for_local_endpoint(&endpoint, &settings.api.region, credentials);
        let worker_totals = Arc::new(Totals::default());
        let worker = Arc::new(MeteredWorker {
            worker: Worker::new(store.clone(), Arc::new(poster), queue.clone(), settings.worker.clone()),
            totals: worker_totals.clone(),
        });
        let settings_authorizer = settings.authorizer.clone().map(|a| a as Arc<dyn Function>);
        let state = Arc::new(AppState {
            throttle: settings.stage_throttle.map(Bucket::limiter),
            connect_rate: settings.connect_rate.map(Bucket::limiter),
            account_rate: settings.account_rate.map(Bucket::limiter),
            account_throttled: AtomicU64::new(0),
            verifier: Verifier::new(settings.credentials.clone(), settings.api.region.clone()),
            shutdown_report: ShutdownReport::default(),
            buffer_full: AtomicU64::new(0),
            store: store.clone(),
            queue_stats: memory.as_ref().map(|(_, queue)| queue.clone()),
            worker_totals,
            ingress_totals,
            injected: faults::Injected::default(),
            settings,
            selector,
            registry: Registry::default(),
            ingress: wrap(Arc::new(ingress)),
            authorizer: settings_authorizer,
            local_addr,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
        });
        Ok(Self { listener, state, store, source, memory, worker, sqs: None })
    }

    /// Serves SQS's `SendMessage` for the in-process queue on `listener`, so backends can publish
    /// (see [`crate::sqs`]). With `Backend::Aws` the queue is a real one, with its own endpoint.
    pub fn with_sqs_endpoint(mut self, listener: TcpListener) -> Result<Self, StartError> {
        let Some((_, queue)) = &self.memory else {
            return Err(StartError::SqsWithAwsBackend);
        };
        let name = self.state.settings.queue_name.clone();
        let queue_url = format!("http://{}/{}/{name}", listener.local_addr()?, crate::sqs::ACCOUNT);
        let verifier = crate::sigv4::Verifier::for_service(
            self.state.settings.credentials.clone(),
            self.state.settings.api.region.clone(),
            crate::sqs::SERVICE,
        );
        let endpoint = SqsEndpoint { queue: queue.clone(), queue_name: name, queue_url, verifier };
        self.sqs = Some((listener, Arc::new(endpoint)));
        Ok(self)
    }

    /// The queue URL backends send to, when the SQS endpoint is served.
    pub fn queue_url(&self) -> Option<String> {
        self.sqs.as_ref().map(|(_, endpoint)| endpoint.queue_url.clone())
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
    /// `$disconnect`s, gives requests and worker invocations in progress a moment to finish, and
    /// returns: within a few seconds, whatever clients and functions are doing.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, state, source, worker, store, sqs, .. } = self;
        let token = state.shutdown.clone();
        let mapping = Mapping {
            queue: source,
            queue_name: state.settings.queue_name.clone(),
            api: state.settings.api.clone(),
            function: worker,
            settings: state.settings.esm,
        };
        let esm = tokio::spawn(mapping.run(token.clone()));
        let signal = tokio::spawn({
            let token = token.clone();
            async move {
                tokio::select! {
                    () = shutdown => token.cancel(),
                    () = token.cancelled() => {}
                }
            }
        });

        let app = router(state.clone());
        let stopping = async {
            token.cancelled().await;
            tokio::time::Instant::now()
        };
        let sqs = async {
            if let Some((listener, endpoint)) = sqs {
                let app = crate::sqs::router(endpoint);
                serve::serve(listener, app, state.settings.request_timeout, token.clone()).await;
            }
        };
        let ((), (), began) = tokio::join!(
            serve::serve(listener, app, state.settings.request_timeout, token.clone()),
            sqs,
            stopping
        );
        state.connections.close();
        let (_, esm) = tokio::join!(state.connections.wait(), esm);
        if esm.is_err() {
            tracing::error!("the event source mapping panicked");
        }
        signal.abort();
        let records = match &state.settings.backend {
            Backend::Memory => count_records(store.as_ref()).await.ok(),
            Backend::Aws { .. } => None,
        };
        tracing::info!(
            closed = state.shutdown_report.closed.load(Ordering::Relaxed),
            disconnects = state.shutdown_report.disconnects.load(Ordering::Relaxed),
            records_left = records,
            elapsed_ms = began.elapsed().as_millis() as u64,
            "stopped"
        );
        Ok(())
    }
}

async fn count_records(store: &dyn ConnectionStore) -> Result<usize, shared::StoreError> {
    use futures::TryStreamExt;
    store.scan().map_ok(|page| page.len()).try_fold(0, |n, len| async move { Ok(n + len) }).await
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
    let records = match count_records(state.store.as_ref()).await {
        Ok(records) => records,
        Err(err) => {
            return (StatusCode::SERVICE_UNAVAILABLE, format!("scanning the store failed: {err}"))
                .into_response();
        }
    };
    let queue = state.queue_stats.as_ref().map(|queue| {
        let stats = queue.stats();
        serde_json::json!({
            "visible": stats.visible,
            "in_flight": stats.in_flight,
            "delayed": stats.delayed,
            "dead": stats.dead,
        })
    });
    let body = serde_json::json!({
        "connections": state.registry.len(),
        "records": records,
        "queue": queue,
        "faults_injected": state.injected.to_json(),
        "posts_refused_buffer_full": state.buffer_full.load(Ordering::Relaxed),
        "calls_refused_account_throttle": state.account_throttled.load(Ordering::Relaxed),
        "worker": state.worker_totals.to_json(),
        "ingress": state.ingress_totals.to_json(),
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
        .route(crate::demo::CLIENT_PATH, get(crate::demo::client))
        .route(crate::demo::TOKEN_PATH, get(crate::demo::token))
        .fallback(|| async { management::forbidden() })
        .with_state(state)
}
