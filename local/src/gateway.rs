//! The gateway itself: its state, its routes, and how it starts and stops.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use ingress::Ingress;
use shared::history::{DynamoHistory, MemoryHistory};
use shared::hooks::{Hooks, LambdaHooks};
use shared::namespaces::{Namespaces, NamespacesError};
use shared::poster::ApiGatewayPoster;
use shared::presence::{DynamoPresence, MemoryPresence};
use shared::queue::{MemoryQueue, SqsQueue};
use shared::quota::MemoryQuotas;
use shared::store::{DynamoStore, MemoryStore};
use shared::usage::{Ceiling, DynamoUsage, MemoryUsage, Usage};
use shared::{ConnectionStore, Events, History, Presence, Queue, QueueSource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use worker::Worker;
use worker::metrics::Totals;

use crate::async_invoke::QueuedHooks;
use crate::devtools::{self, EVENTS_PATH, STATS_PATH, count_records};
use crate::esm::{EsmSettings, Mapping};
use crate::function::{Function, MeteredIngress, MeteredWorker};
use crate::lifecycle::Lifecycle;
use crate::registry::Registry;
use crate::routing::{InvalidExpression, RouteSelector};
use crate::server_api;
use crate::settings::{Backend, Bucket, Settings};
use crate::sigv4::Signatures;
use crate::sqs::SqsEndpoint;
use crate::state::{AppState, ShutdownReport};
use crate::{connection, exchange, faults, host, management, serve};

/// The ports the functions get for a backend.
struct Adapters {
    store: Arc<dyn ConnectionStore>,
    history: Option<Arc<dyn History>>,
    presence: Option<Arc<dyn Presence>>,
    queue: Arc<dyn Queue>,
    source: Arc<dyn QueueSource>,
    /// The bulk lane's queue, as the worker sends to it and as its mapping polls it.
    bulk: Option<(Arc<dyn Queue>, Arc<dyn QueueSource>)>,
    /// Where each sender's deliveries are counted, for the fan-out ceiling.
    usage: Arc<dyn Usage>,
    memory: Option<(Arc<MemoryStore>, Arc<MemoryQueue>)>,
    memory_bulk: Option<Arc<MemoryQueue>>,
}

impl Adapters {
    fn new(settings: &Settings, namespaces: &Namespaces) -> Self {
        let on = namespaces.any_history();
        let presence = namespaces.any_presence();
        match &settings.backend {
            Backend::Memory => {
                let history = on.then(|| Arc::new(MemoryHistory::of(namespaces.clone())) as Arc<dyn History>);
                let store = Arc::new(MemoryStore::with_page_size(settings.scan_page_size));
                let queue = Arc::new(MemoryQueue::new(settings.queue));
                let bulk = settings.lanes.map(|_| Arc::new(MemoryQueue::new(settings.queue)));
                Self {
                    store: store.clone(),
                    history,
                    presence: presence.then(|| Arc::new(MemoryPresence::new()) as Arc<dyn Presence>),
                    queue: queue.clone(),
                    source: queue.clone(),
                    bulk: bulk
                        .clone()
                        .map(|bulk| (bulk.clone() as Arc<dyn Queue>, bulk as Arc<dyn QueueSource>)),
                    usage: Arc::new(MemoryUsage::default()),
                    memory: Some((store, queue)),
                    memory_bulk: bulk,
                }
            }
            Backend::Aws { sdk, table, queue_url, bulk_queue_url } => {
                let queue = Arc::new(SqsQueue::from_sdk(sdk, queue_url));
                let store = Arc::new(DynamoStore::from_sdk(sdk, table));
                let history = on.then(|| {
                    Arc::new(DynamoHistory::from_sdk(sdk, table, namespaces.clone())) as Arc<dyn History>
                });
                let presence =
                    presence.then(|| Arc::new(DynamoPresence::from_sdk(sdk, table)) as Arc<dyn Presence>);
                let bulk = bulk_queue_url.as_ref().filter(|_| settings.lanes.is_some()).map(|url| {
                    let bulk = Arc::new(SqsQueue::from_sdk(sdk, url));
                    (bulk.clone() as Arc<dyn Queue>, bulk as Arc<dyn QueueSource>)
                });
                Self {
                    store,
                    history,
                    presence,
                    queue: queue.clone(),
                    source: queue,
                    bulk,
                    usage: Arc::new(DynamoUsage::from_sdk(sdk, table)),
                    memory: None,
                    memory_bulk: None,
                }
            }
        }
    }
}

/// Where the namespace file's hooks are invoked: the Invoke API the user named.
fn hooks(settings: &Settings, namespaces: &Namespaces) -> Result<Option<Arc<dyn Hooks>>, StartError> {
    let functions = namespaces.functions();
    match &settings.hooks_endpoint {
        Some(endpoint) => Ok(Some(Arc::new(QueuedHooks::start(Arc::new(LambdaHooks::for_endpoint(
            endpoint,
            &settings.api.region,
            &settings.credentials.access_key_id,
            &settings.credentials.secret_access_key,
        )))))),
        None if functions.is_empty() => Ok(None),
        None => Err(StartError::HooksWithoutEndpoint(functions.join(", "))),
    }
}

/// A bound, not yet running gateway.
pub struct Gateway {
    listener: TcpListener,
    state: Arc<AppState>,
    store: Arc<dyn ConnectionStore>,
    presence: Option<Arc<dyn Presence>>,
    source: Arc<dyn QueueSource>,
    memory: Option<(Arc<MemoryStore>, Arc<MemoryQueue>)>,
    memory_bulk: Option<Arc<MemoryQueue>>,
    worker: Arc<MeteredWorker>,
    /// The bulk lane: its queue as its mapping polls it, and its worker.
    bulk: Option<(Arc<dyn QueueSource>, Arc<MeteredWorker>)>,
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
    /// The namespace file is wrong: nothing of it applies, and the gateway does not start.
    #[error("{0}")]
    Namespaces(#[from] NamespacesError),
    #[error(
        "the namespace file names hooks ({0}) but no endpoint invokes them: start the functions with \
         `cargo lambda watch` (or `sam local start-lambda`) and give --hooks-endpoint http://127.0.0.1:9000"
    )]
    HooksWithoutEndpoint(String),
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
        let namespaces = settings.namespaces()?;
        let hooks = hooks(&settings, &namespaces)?;
        let Adapters { store, history, presence, queue, source, bulk, usage, memory, memory_bulk } =
            Adapters::new(&settings, &namespaces);
        let lifecycle = Lifecycle::new(settings.events_url.clone(), &settings.api.region);
        let events = presence.as_ref().map(|_| lifecycle.events.clone() as Arc<dyn Events>);
        let endpoint = format!("http://{local_addr}/{}", settings.api.stage);
        let credentials = settings.credentials.for_sdk("local-gateway");
        // `@connections` for both functions, as on AWS: the worker posts, the ingress closes floods.
        let poster =
            Arc::new(ApiGatewayPoster::for_local_endpoint(&endpoint, &settings.api.region, credentials));
        let ingress_totals = Arc::new(ingress::metrics::Totals::default());
        let ports = ingress::Ports {
            store: store.clone(),
            queue,
            history,
            presence: presence.clone(),
            events,
            hooks,
            quotas: Arc::new(MemoryQuotas::new(settings.quotas)),
            closer: Some(poster.clone()),
            ceiling: (settings.fanout_per_minute > 0)
                .then(|| Ceiling { usage: usage.clone(), per_minute: settings.fanout_per_minute }),
            namespaces,
        };
        let ingress = MeteredIngress { ingress: Ingress::new(ports.clone()), totals: ingress_totals.clone() };
        let worker_totals = Arc::new(Totals::default());
        // One worker function per queue, as the template deploys them, both counted in the stats.
        let metered = |worker| Arc::new(MeteredWorker { worker, totals: worker_totals.clone() });
        let worker_ports = worker::Ports::new(ports, poster);
        let (worker, bulk) = match (bulk, settings.lanes) {
            (Some((bulk_queue, bulk_source)), Some(lanes)) => {
                let worker_ports = worker_ports.with_bulk_queue(bulk_queue);
                let [interactive, bulk] = settings.worker.lanes(lanes);
                let bulk = metered(Worker::new(worker_ports.clone(), bulk));
                (metered(Worker::new(worker_ports, interactive)), Some((bulk_source, bulk)))
            }
            _ => (metered(Worker::new(worker_ports, settings.worker.clone())), None),
        };
        let settings_authorizer = settings.authorizer.clone().map(|a| a as Arc<dyn Function>);
        let state = Arc::new(AppState {
            throttle: settings.stage_throttle.map(Bucket::limiter),
            connect_rate: settings.connect_rate.map(Bucket::limiter),
            account_rate: settings.account_rate.map(Bucket::limiter),
            account_throttled: AtomicU64::new(0),
            signatures: Signatures::new(settings.credentials.clone(), settings.api.region.clone()),
            shutdown_report: ShutdownReport::default(),
            buffer_full: AtomicU64::new(0),
            store: store.clone(),
            lifecycle,
            queue_stats: memory.as_ref().map(|(_, queue)| queue.clone()),
            bulk_queue_stats: memory_bulk.clone(),
            worker_totals,
            ingress_totals,
            injected: faults::Injected::default(),
            settings,
            selector,
            registry: Registry::default(),
            ingress: wrap(Arc::new(ingress)),
            authorizer: settings_authorizer,
            server_authorizations: crate::authorizations::AuthorizerCache::default(),
            local_addr,
            shutdown: CancellationToken::new(),
            connections: TaskTracker::new(),
        });
        Ok(Self { listener, state, store, presence, source, memory, memory_bulk, worker, bulk, sqs: None })
    }

    /// Serves SQS's `SendMessage` for the in-process queue on `listener`, so backends can publish
    /// (see [`crate::sqs`]). With `Backend::Aws` the queue is a real one, with its own endpoint.
    pub fn with_sqs_endpoint(mut self, listener: TcpListener) -> Result<Self, StartError> {
        let Some((_, queue)) = &self.memory else {
            return Err(StartError::SqsWithAwsBackend);
        };
        let name = self.state.settings.queue_name.clone();
        let queue_url = format!("http://{}/{}/{name}", listener.local_addr()?, crate::settings::ACCOUNT);
        let signatures = crate::sigv4::Signatures::for_service(
            self.state.settings.credentials.clone(),
            self.state.settings.api.region.clone(),
            crate::sqs::SERVICE,
        );
        let request_timeout = self.state.settings.request_timeout;
        let endpoint = SqsEndpoint {
            queue: queue.clone(),
            queue_name: name,
            queue_url,
            signatures,
            request_timeout,
            allowed_hosts: self.state.settings.allowed_hosts.clone(),
        };
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

    /// Where channels' members are kept, when presence is on.
    pub fn presence(&self) -> Option<Arc<dyn Presence>> {
        self.presence.clone()
    }

    /// The in-memory store, for inspection, when the backend is [`Backend::Memory`].
    pub fn memory_store(&self) -> Option<Arc<MemoryStore>> {
        self.memory.as_ref().map(|(store, _)| store.clone())
    }

    /// The in-memory queue between the ingress and the worker, when the backend is [`Backend::Memory`].
    pub fn memory_queue(&self) -> Option<Arc<MemoryQueue>> {
        self.memory.as_ref().map(|(_, queue)| queue.clone())
    }

    /// The bulk lane's in-memory queue, when the backend is [`Backend::Memory`] and lanes are on.
    pub fn memory_bulk_queue(&self) -> Option<Arc<MemoryQueue>> {
        self.memory_bulk.clone()
    }

    /// The live connections, as API Gateway sees them.
    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then closes every connection with 1001, runs their
    /// `$disconnect`s, gives requests and worker invocations in progress a moment to finish, and
    /// returns: within a few seconds, whatever clients and functions are doing.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let Self { listener, state, source, worker, bulk, store, sqs, .. } = self;
        let token = state.shutdown.clone();
        let mapping = Mapping {
            queue: source,
            queue_name: state.settings.queue_name.clone(),
            api: state.settings.api.clone(),
            function: worker,
            settings: state.settings.esm,
        };
        let esm = tokio::spawn(mapping.run(token.clone()));
        let bulk_esm = bulk.zip(state.settings.lanes).map(|((source, worker), lanes)| {
            let mapping = Mapping {
                queue: source,
                queue_name: format!("{}-bulk", state.settings.queue_name),
                api: state.settings.api.clone(),
                function: worker,
                settings: EsmSettings {
                    max_concurrency: lanes.bulk_concurrency as usize,
                    ..state.settings.esm
                },
            };
            tokio::spawn(mapping.run(token.clone()))
        });
        let forwarder = state.lifecycle.forwarder(token.clone()).map(tokio::spawn);
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
        let bulk_esm = match bulk_esm {
            Some(bulk_esm) => bulk_esm.await,
            None => Ok(()),
        };
        if esm.is_err() || bulk_esm.is_err() {
            tracing::error!("an event source mapping panicked");
        }
        signal.abort();
        if let Some(forwarder) = forwarder {
            forwarder.abort();
        }
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

fn management_routes() -> axum::routing::MethodRouter<Arc<AppState>> {
    axum::routing::post(management::post_to_connection)
        .get(management::get_connection)
        .delete(management::delete_connection)
        // API Gateway answers a method it has no route for as it answers an unknown path.
        .fallback(|| async { exchange::forbidden() })
}

fn router(state: Arc<AppState>) -> Router {
    let client = devtools::CLIENT_MODULES.iter().fold(Router::new(), |router, &(path, source)| {
        router.route(path, get(move || async move { devtools::client_module(source) }))
    });
    client
        .route("/", get(connection::upgrade_root))
        .route("/{stage}", get(connection::upgrade_staged))
        .route(server_api::TOKEN_ROUTE, post(server_api::with_token).fallback(server_api::not_found))
        .route(server_api::IAM_ROUTE, post(server_api::with_iam).fallback(server_api::not_found))
        .route("/@connections/{id}", management_routes())
        .route("/{stage}/@connections/{id}", management_routes())
        .route(STATS_PATH, get(devtools::stats))
        .route(devtools::DEMO_SCRIPT_PATH, get(devtools::demo_script))
        .route(devtools::DEMO_STYLE_PATH, get(devtools::demo_style))
        .route(devtools::TOKEN_PATH, get(devtools::token))
        .route(EVENTS_PATH, get(devtools::events))
        .fallback(|| async { exchange::forbidden() })
        .layer(axum::middleware::from_fn_with_state(state.settings.allowed_hosts.clone(), host::guard))
        .with_state(state)
}
