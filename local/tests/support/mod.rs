//! A gateway on a free loopback port, and a small WebSocket client for driving it.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use local::function::Function;
use local::{AppState, Gateway, Settings};
use shared::channel::MAX_SUBSCRIPTIONS;
use shared::queue::MemoryQueue;
use shared::store::MemoryStore;
use shared::{ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore, Subscription};
use testkit::contract::Direction;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

pub type Client = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Long enough for a loaded 2-core machine; only reached when something is broken.
pub const PATIENCE: Duration = Duration::from_secs(10);

pub struct TestGateway {
    pub ws_url: String,
    pub http_url: String,
    pub store: Arc<MemoryStore>,
    pub queue: Arc<MemoryQueue>,
    /// The bulk lane's queue, when the gateway has lanes.
    pub bulk_queue: Option<Arc<MemoryQueue>>,
    pub state: Arc<AppState>,
    /// Where channels' members are kept, when presence is on.
    pub presence: Option<Arc<dyn shared::Presence>>,
    /// The SQS endpoint's queue URL, when started with [`TestGateway::start_with_sqs`].
    pub queue_url: Option<String>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestGateway {
    pub async fn start(settings: Settings) -> Self {
        Self::start_with(settings, |ingress| ingress).await
    }

    /// A gateway that also serves SQS's `SendMessage` for its queue.
    pub async fn start_with_sqs(settings: Settings) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sqs = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = Gateway::new(listener, settings).unwrap().with_sqs_endpoint(sqs).unwrap();
        Self::run(gateway)
    }

    pub async fn start_with(
        settings: Settings,
        wrap: impl FnOnce(Arc<dyn Function>) -> Arc<dyn Function>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gateway = Gateway::with_ingress(listener, settings, wrap).unwrap();
        Self::run(gateway)
    }

    fn run(gateway: Gateway) -> Self {
        let shutdown = CancellationToken::new();
        let ws_url = gateway.ws_url();
        let http_url = format!("http://{}", gateway.local_addr());
        let store = gateway.memory_store().expect("the in-memory backend");
        let queue = gateway.memory_queue().expect("the in-memory backend");
        let bulk_queue = gateway.memory_bulk_queue();
        let state = gateway.state();
        let presence = gateway.presence();
        let queue_url = gateway.queue_url();
        let task = tokio::spawn(gateway.run(shutdown.clone().cancelled_owned()));
        Self {
            ws_url,
            http_url,
            store,
            queue,
            bulk_queue,
            state,
            presence,
            queue_url,
            shutdown,
            task: Some(task),
        }
    }

    pub async fn connect(&self) -> Client {
        let (client, _) = tokio_tungstenite::connect_async(&self.ws_url).await.unwrap();
        client
    }

    /// Connects and returns the client with the connection id the gateway gave it.
    pub async fn connect_with_id(&self) -> (Client, ConnectionId) {
        let before: Vec<ConnectionId> = self.store.ids();
        let client = self.connect().await;
        let id =
            self.store.ids().into_iter().find(|id| !before.contains(id)).expect("a new connection record");
        (client, id)
    }

    /// `client` drops off the network and its `$disconnect` is lost, as happens on AWS: the gateway
    /// has forgotten it, the store still lists it (and its subscriptions), with a record older than
    /// the grace the worker gives connections still completing their handshake. That record.
    pub async fn vanish(&self, mut client: Client, id: &ConnectionId) -> ConnectionRecord {
        let aged = ConnectionRecord {
            connected_at_ms: shared::clock::epoch_ms() - 60_000,
            ..self.store.get(id).expect("the connection's record")
        };
        let patterns = self.store.subscriptions_of(id);
        client.close(None).await.expect("close");
        eventually("the connection to be gone from the gateway", || self.state.registry.get(id).is_none())
            .await;
        self.store.put(&aged).await.expect("put back");
        for pattern in patterns {
            let subscription = Subscription {
                connection: ConnectionRef { id: id.clone(), connected_at_ms: aged.connected_at_ms },
                pattern,
                expires_at_s: aged.expires_at_s,
                limit: MAX_SUBSCRIPTIONS,
            };
            self.store.subscribe(&subscription).await.expect("subscribe back");
        }
        aged
    }

    /// What `GET /_local/stats` answers.
    pub async fn stats(&self) -> serde_json::Value {
        let response = reqwest::get(format!("{}{}", self.http_url, local::STATS_PATH)).await.expect("stats");
        serde_json::from_str(&response.text().await.expect("a body")).expect("JSON")
    }

    /// Stops the gateway and waits for it: every connection closed, every `$disconnect` run.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            tokio::time::timeout(PATIENCE, task).await.expect("the gateway stops").unwrap().unwrap();
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Waits, up to [`PATIENCE`], for `condition` to hold.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The next text message, skipping control frames.
pub async fn next_text<S>(client: &mut WebSocketStream<S>) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let message = tokio::time::timeout(PATIENCE, client.next())
            .await
            .expect("a message in time")
            .expect("the connection is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => {
                testkit::contract::check(Direction::Received, text.as_str());
                return text.to_string();
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("expected text, got {other:?}"),
        }
    }
}

/// The close frame the server sends next; data messages before it are an error.
pub async fn next_close(client: &mut Client) -> CloseFrame {
    loop {
        let message = tokio::time::timeout(PATIENCE, client.next()).await.expect("a close in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return frame,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// Nothing else arrives within `quiet`.
pub async fn assert_silent(client: &mut Client, quiet: Duration) {
    if let Ok(message) = tokio::time::timeout(quiet, client.next()).await {
        panic!("expected silence, got {message:?}");
    }
}

/// Sends `payload` as one text message in fragments of `fragment` bytes, as a client must past 32 KB.
pub async fn send_fragmented(client: &mut Client, payload: &[u8], fragment: usize) {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let chunks: Vec<&[u8]> = payload.chunks(fragment).collect();
    for (n, chunk) in chunks.iter().enumerate() {
        let opcode = if n == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
        let frame = Frame::message(chunk.to_vec(), opcode, n == chunks.len() - 1);
        client.send(Message::Frame(frame)).await.unwrap();
    }
}

/// Sends `request` and returns the next text frame as JSON: the answer, where nothing else is due.
pub async fn request(client: &mut Client, request: serde_json::Value) -> serde_json::Value {
    testkit::contract::check(Direction::Sent, &request.to_string());
    request_invalid(client, request).await
}

/// Sends `request` unchecked and returns the next text frame as JSON: [`request`] for a request a
/// bad-input test makes on purpose, answered as any.
pub async fn request_invalid(client: &mut Client, request: serde_json::Value) -> serde_json::Value {
    send_invalid(client, &request.to_string()).await;
    serde_json::from_str(&next_text(client).await).expect("a JSON reply")
}

/// Sends `text`, a frame `docs/asyncapi.yaml` describes (the test fails if it does not).
pub async fn send_text<S>(client: &mut WebSocketStream<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    testkit::contract::check(Direction::Sent, text);
    send_invalid(client, text).await;
}

/// Sends `text` as it is, unchecked: what a bad-input test sends on purpose.
pub async fn send_invalid<S>(client: &mut WebSocketStream<S>, text: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    client.send(Message::text(text)).await.unwrap();
}

/// The gateway's default credentials, as a backend holds them.
pub fn credentials() -> aws_credential_types::Credentials {
    let local = local::Credentials::default();
    aws_credential_types::Credentials::new(local.access_key_id, local.secret_access_key, None, None, "tests")
}

/// The AWS SDK's `@connections` client for `endpoint`, signing as a backend would.
pub fn sdk_poster(endpoint: &str) -> shared::poster::ApiGatewayPoster {
    shared::poster::ApiGatewayPoster::for_local_endpoint(endpoint, "us-east-1", credentials())
}

/// Signs `request` with SigV4 for `execute-api` in us-east-1, with the AWS SDK's own signer (not the
/// gateway's verifier's code) and the gateway's default credentials.
pub fn sign(request: reqwest::Request) -> reqwest::Request {
    sign_with(request, credentials(), std::time::SystemTime::now())
}

pub fn sign_with(
    request: reqwest::Request,
    credentials: aws_credential_types::Credentials,
    at: std::time::SystemTime,
) -> reqwest::Request {
    sign_for(request, "execute-api", credentials, at)
}

/// Signs `request` with SigV4 for `service` in us-east-1.
pub fn sign_for(
    mut request: reqwest::Request,
    service: &str,
    credentials: aws_credential_types::Credentials,
    at: std::time::SystemTime,
) -> reqwest::Request {
    local::signing::sign_for(&mut request, service, credentials, "us-east-1", at).unwrap();
    request
}

/// Sends `request` signed.
pub async fn signed(request: reqwest::RequestBuilder) -> reqwest::Response {
    let (client, request) = request.build_split();
    client.execute(sign(request.unwrap())).await.unwrap()
}

/// A client that completes its handshake and then never reads. Its receive window is small, so the
/// gateway's side of the socket fills after a few kilobytes.
pub async fn stuck_client(gateway: &TestGateway) -> (WebSocketStream<TcpStream>, ConnectionId) {
    let before: Vec<ConnectionId> = gateway.store.ids();
    let client = small_window_client(&gateway.ws_url).await;
    let id =
        gateway.store.ids().into_iter().find(|id| !before.contains(id)).expect("a new connection record");
    (client, id)
}

/// A client whose receive window is a few kilobytes.
pub async fn small_window_client(ws_url: &str) -> WebSocketStream<TcpStream> {
    let addr = ws_url.trim_start_matches("ws://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    tokio_tungstenite::client_async(ws_url, stream).await.unwrap().0
}

/// Posts `size`-byte messages to `id` at the gateway at `http_url` until `@connections` answers 429,
/// and returns how many it took; panics if that has not happened after `limit` posts.
pub async fn fill(http_url: &str, id: &ConnectionId, size: usize, limit: usize) -> usize {
    let http = reqwest::Client::new();
    let url = format!("{http_url}/local/@connections/{id}");
    for accepted in 0..limit {
        let response = signed(http.post(&url).body(vec![b'x'; size])).await;
        match response.status().as_u16() {
            200 => {}
            429 => {
                assert_eq!(response.headers()["x-amzn-errortype"], "LimitExceededException");
                return accepted;
            }
            other => panic!("unexpected {other} after {accepted} posts"),
        }
    }
    panic!("{limit} posts of {size} bytes were all accepted by a client that never reads");
}

/// Wraps a function and records the `disconnectStatusCode` and `disconnectReason` of every
/// `$disconnect` it sees.
pub struct DisconnectRecorder {
    pub inner: Arc<dyn Function>,
    pub seen: std::sync::Mutex<Vec<(String, i64, String)>>,
}

impl DisconnectRecorder {
    pub fn wrap(inner: Arc<dyn Function>) -> Arc<Self> {
        Arc::new(Self { inner, seen: std::sync::Mutex::default() })
    }

    /// A gateway whose ingress is wrapped in a recorder, and the recorder.
    pub async fn gateway(settings: Settings) -> (TestGateway, Arc<Self>) {
        let recorder = std::sync::OnceLock::new();
        let gateway = TestGateway::start_with(settings, |ingress| {
            let wrapped = Self::wrap(ingress);
            let _ = recorder.set(wrapped.clone());
            wrapped
        })
        .await;
        let recorder = recorder.get().expect("the gateway wraps its ingress").clone();
        (gateway, recorder)
    }

    /// (connection id, code, reason) of each `$disconnect` so far.
    pub fn seen(&self) -> Vec<(String, i64, String)> {
        self.seen.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Function for DisconnectRecorder {
    async fn invoke(
        &self,
        payload: Vec<u8>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, local::function::FunctionError> {
        let event: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        let context = &event["requestContext"];
        if context["eventType"] == "DISCONNECT" {
            self.seen.lock().unwrap().push((
                context["connectionId"].as_str().unwrap_or_default().to_owned(),
                context["disconnectStatusCode"].as_i64().unwrap_or_default(),
                context["disconnectReason"].as_str().unwrap_or_default().to_owned(),
            ));
        }
        self.inner.invoke(payload, deadline).await
    }
}
