//! The swarm: many WebSocket connections, driven through a scenario, and what they saw.
//!
//! Connections open at a bounded rate (API Gateway admits 500 new connections a second per account),
//! each in its own task that records what it receives. Publishers then send probes at a bounded rate;
//! the run ends once every expected delivery has arrived, or `settle` after the last publish, or at
//! `deadline`, whichever comes first. Everything it does is bounded in count and time.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use shared::limits::MAX_FRAME_BYTES;
use tokio::net::TcpSocket;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use crate::ledger::{self, Audience, Published, Trace};
use crate::probe::{Action, Probe};
use crate::report::{Percentiles, Report};

/// What the swarm does once connected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Publishers send `echo` probes; each times its own round trip.
    Echo,
    /// Publishers send `broadcast` probes; every connection should receive every one.
    Broadcast,
    /// Connections stay open and idle for `hold`; drops are reported.
    Hold,
    /// Each connection subscribes to one of `channels` channels (and the first `wildcards` also to a
    /// wildcard over all of them); publishers publish to channels at random. Every subscriber must get
    /// exactly its channels' messages, once: anything else is lost, duplicated or misdelivered.
    Channels,
}

#[derive(Clone, Debug)]
pub struct SwarmConfig {
    pub url: String,
    pub connections: u32,
    /// New connections per second.
    pub connect_rate: u32,
    pub scenario: Scenario,
    pub publishers: u32,
    /// Messages per publisher.
    pub messages: u64,
    /// Messages per second, all publishers together.
    pub rate: f64,
    /// Bytes per message, at least.
    pub size: usize,
    /// How long the hold scenario holds.
    pub hold: Duration,
    /// How long to wait for deliveries after the last publish.
    pub settle: Duration,
    /// The whole run's upper bound.
    pub deadline: Duration,
    pub progress: bool,
    /// Extra connections that complete their handshake and then never read, with a receive window of
    /// a few kilobytes: what a hung browser tab or a stalled mobile client does to everyone else.
    pub stuck: u32,
    /// The channels scenario's number of channels.
    pub channels: u32,
    /// Connections (the first after the publishers) also subscribed to the wildcard over every channel.
    pub wildcards: u32,
    /// Connect with development tokens signed with this secret (`?token=`), one user per connection.
    pub jwt_secret: Option<String>,
}

impl Default for SwarmConfig {
    fn default() -> Self {
        Self {
            url: "ws://127.0.0.1:3001".into(),
            connections: 100,
            connect_rate: 500,
            scenario: Scenario::Broadcast,
            publishers: 1,
            messages: 10,
            rate: 10.0,
            size: 0,
            hold: Duration::from_secs(10),
            settle: Duration::from_secs(10),
            deadline: Duration::from_secs(300),
            progress: false,
            stuck: 0,
            channels: 100,
            wildcards: 0,
            jwt_secret: None,
        }
    }
}

/// Who subscribes to what in the channels scenario.
#[derive(Clone, Copy, Debug)]
pub struct Channels {
    pub count: u32,
    /// Connections `publishers..publishers + wildcards` are also on the wildcard.
    pub wildcard_from: u32,
    pub wildcard_to: u32,
}

impl Channels {
    /// The channel connection `index` is subscribed to.
    pub fn of(&self, index: u32) -> u32 {
        index % self.count.max(1)
    }

    pub fn on_wildcard(&self, index: u32) -> bool {
        (self.wildcard_from..self.wildcard_to).contains(&index)
    }

    /// Whether connection `index` receives what is published on `channel`.
    pub fn member(&self, index: u32, channel: u32) -> bool {
        self.on_wildcard(index) || self.of(index) == channel
    }

    /// The patterns connection `index` subscribes to.
    fn patterns(&self, index: u32) -> Vec<String> {
        let mut patterns = vec![crate::probe::channel_name(self.of(index))];
        if self.on_wildcard(index) {
            patterns.push(crate::probe::ALL_CHANNELS.to_owned());
        }
        patterns
    }

    /// The channel of the `n`th publish: spread over every channel, in no particular order.
    pub fn target(&self, n: u64) -> u32 {
        (n.wrapping_mul(2_654_435_761) % u64::from(self.count.max(1))) as u32
    }
}

/// `url` with a `token` query parameter.
fn with_token(url: &str, token: &str) -> String {
    let has_path = url.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
    if has_path { format!("{url}?token={token}") } else { format!("{url}/?token={token}") }
}

/// Ports one source address can use towards one destination: stay well inside Linux's ephemeral
/// range (32768–60999) before moving to the next loopback source address.
const CONNECTIONS_PER_SOURCE_ADDRESS: u32 = 20_000;

/// What the tasks share with the driver.
struct Shared {
    started: Instant,
    connected: AtomicU64,
    resolved: AtomicU64,
    /// Distinct deliveries so far (a duplicate is not counted twice).
    receipts: AtomicU64,
    changed: Notify,
}

impl Shared {
    fn now_us(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// What one connection task hands back.
struct ConnectionResult {
    trace: Trace,
    connect_us: Option<u64>,
    /// (received at, latency), in microseconds.
    latencies: Vec<(u64, u64)>,
    errors: Vec<String>,
}

/// A whole run's outcome: the report and the samples behind its chart.
#[derive(Debug)]
pub struct Outcome {
    pub report: Report,
    /// (milliseconds since the first publish, latency in microseconds) per delivery.
    pub samples: Vec<(u64, u64)>,
}

struct Target {
    addr: SocketAddr,
    loopback: bool,
}

async fn resolve(url: &str) -> anyhow::Result<Target> {
    let uri: http::Uri = url.parse().with_context(|| format!("{url} is not a URL"))?;
    let host = uri.host().context("the URL has no host")?;
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("wss") { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await?
        .next()
        .with_context(|| format!("{host} did not resolve"))?;
    Ok(Target { addr, loopback: addr.ip().is_loopback() })
}

/// Spreads connections over 127.0.0.1, .2, … once one source address would run out of ports.
fn source_address(target: &Target, index: u32, connections: u32) -> Option<IpAddr> {
    if !target.loopback || !target.addr.is_ipv4() || connections <= CONNECTIONS_PER_SOURCE_ADDRESS {
        return None;
    }
    let n = index / CONNECTIONS_PER_SOURCE_ADDRESS;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250) as u8 + 1)))
}

fn error_kind(err: &tokio_tungstenite::tungstenite::Error) -> String {
    use tokio_tungstenite::tungstenite::Error;
    match err {
        Error::Http(response) => format!("handshake_{}", response.status().as_u16()),
        Error::Io(io) => format!("io_{:?}", io.kind()).to_lowercase(),
        Error::ConnectionClosed | Error::AlreadyClosed => "closed".into(),
        Error::Protocol(_) => "protocol".into(),
        Error::Tls(_) => "tls".into(),
        Error::Capacity(_) => "capacity".into(),
        _ => "other".into(),
    }
}

/// The receive buffer of a stuck connection: small, so that the server's side fills quickly.
const STUCK_RECEIVE_BUFFER: u32 = 4096;

async fn connect(
    url: &str,
    target: &Target,
    source: Option<IpAddr>,
    receive_buffer: Option<u32>,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    let socket = if target.addr.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() }
        .map_err(|e| format!("io_{:?}", e.kind()).to_lowercase())?;
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0)).map_err(|e| format!("bind_{:?}", e.kind()).to_lowercase())?;
    }
    if let Some(bytes) = receive_buffer {
        socket.set_recv_buffer_size(bytes).map_err(|e| format!("io_{:?}", e.kind()).to_lowercase())?;
    }
    let stream =
        socket.connect(target.addr).await.map_err(|e| format!("connect_{:?}", e.kind()).to_lowercase())?;
    stream.set_nodelay(true).ok();
    let (ws, _) = tokio_tungstenite::client_async_tls_with_config(url, stream, None, None)
        .await
        .map_err(|e| error_kind(&e))?;
    Ok(ws)
}

/// `text` as one text message in frames of at most API Gateway's 32 KB: a larger single frame closes
/// the connection with 1009, so clients fragment what they send.
pub fn frames(text: String) -> Vec<Message> {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    if text.len() <= MAX_FRAME_BYTES {
        return vec![Message::text(text)];
    }
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(MAX_FRAME_BYTES).collect();
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(n, chunk)| {
            let opcode = if n == 0 { OpCode::Data(Data::Text) } else { OpCode::Data(Data::Continue) };
            Message::Frame(Frame::message(chunk.to_vec(), opcode, n == last))
        })
        .collect()
}

/// What every connection task needs to know about the run.
struct Run {
    url: String,
    target: Target,
    connections: u32,
    shared: Shared,
    stop: CancellationToken,
    /// The channels scenario's subscriptions.
    channels: Option<Channels>,
    jwt_secret: Option<String>,
    /// Connections subscribed and ready for the channels scenario's publishes.
    ready: Vec<std::sync::atomic::AtomicBool>,
}

impl Run {
    /// The URL connection `index` connects to: with a token of its own when the run is authenticated.
    fn url_for(&self, index: u32) -> String {
        let Some(secret) = &self.jwt_secret else { return self.url.clone() };
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let claims = authorizer::token::DevClaims {
            sub: format!("swarm-{index}"),
            exp: now + 3600,
            ..Default::default()
        };
        match authorizer::token::mint(secret.as_bytes(), &claims) {
            Ok(token) => with_token(&self.url, &token),
            Err(_) => self.url.clone(),
        }
    }
}

/// Subscribes to each pattern, waiting for each `subscribed` reply and trying again after the stage
/// throttle's `Too Many Requests`; the error kind if a subscription is refused or the run ends first.
async fn subscribe_all<S>(ws: &mut S, patterns: Vec<String>, stop: &CancellationToken) -> Result<(), String>
where
    S: futures::Sink<Message>
        + futures::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + Unpin,
{
    for pattern in patterns {
        let request = serde_json::json!({ "action": "subscribe", "channel": pattern }).to_string();
        'attempts: loop {
            if ws.send(Message::text(request.clone())).await.is_err() {
                return Err("send_failed".into());
            }
            loop {
                let frame = tokio::select! {
                    frame = tokio::time::timeout(CONNECT_TIMEOUT, ws.next()) => frame,
                    () = stop.cancelled() => return Err("cancelled".into()),
                };
                let text = match frame {
                    Ok(Some(Ok(Message::Text(text)))) => text,
                    Ok(Some(Ok(_))) => continue,
                    Ok(Some(Err(err))) => return Err(error_kind(&err)),
                    Ok(None) => return Err("closed".into()),
                    Err(_) => return Err("subscribe_timeout".into()),
                };
                let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
                if reply["type"] == "subscribed" {
                    break 'attempts;
                }
                if reply["message"] == "Too Many Requests" {
                    // Jittered, so that throttled subscribers do not all come back at once.
                    sleep(Duration::from_millis(rand::random_range(200..1000))).await;
                    continue 'attempts;
                }
                let code = reply["error"]["code"].as_str().unwrap_or("unknown");
                return Err(format!("subscribe_{code}"));
            }
        }
    }
    Ok(())
}

/// How long one handshake may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

async fn connection(run: Arc<Run>, index: u32, mut outgoing: mpsc::Receiver<String>) -> ConnectionResult {
    let (shared, stop) = (&run.shared, &run.stop);
    let source = source_address(&run.target, index, run.connections);
    let mut result = ConnectionResult {
        trace: Trace { index, ..Trace::default() },
        connect_us: None,
        latencies: Vec::new(),
        errors: Vec::new(),
    };
    let began = shared.now_us();
    let url = run.url_for(index);
    let attempt = tokio::select! {
        attempt = tokio::time::timeout(CONNECT_TIMEOUT, connect(&url, &run.target, source, None)) => attempt,
        () = stop.cancelled() => Ok(Err("cancelled".into())),
    };
    let mut ws = match attempt {
        Ok(Ok(ws)) => ws,
        Ok(Err(kind)) => {
            result.errors.push(kind);
            shared.resolved.fetch_add(1, Ordering::Relaxed);
            shared.changed.notify_waiters();
            return result;
        }
        Err(_) => {
            result.errors.push("connect_timeout".into());
            shared.resolved.fetch_add(1, Ordering::Relaxed);
            shared.changed.notify_waiters();
            return result;
        }
    };
    let connected = shared.now_us();
    result.trace.connected_at_us = Some(connected);
    result.connect_us = Some(connected - began);
    shared.connected.fetch_add(1, Ordering::Relaxed);
    if let Some(channels) = run.channels {
        // Nothing published before the subscriptions took is expected of this connection.
        match subscribe_all(&mut ws, channels.patterns(index), stop).await {
            Ok(()) => {
                result.trace.connected_at_us = Some(shared.now_us());
                if let Some(ready) = run.ready.get(index as usize) {
                    ready.store(true, Ordering::Relaxed);
                }
            }
            Err(kind) => {
                result.errors.push(kind);
                result.trace.connected_at_us = None;
            }
        }
    }
    shared.resolved.fetch_add(1, Ordering::Relaxed);
    shared.changed.notify_waiters();

    let (mut sink, mut stream) = ws.split();
    // The run waits for distinct deliveries: a duplicate must not stand in for a message still missing.
    let mut seen = std::collections::HashSet::new();
    loop {
        tokio::select! {
            () = stop.cancelled() => {
                let close = CloseFrame { code: CloseCode::Normal, reason: "swarm done".into() };
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(Some(close)))).await;
                break;
            }
            Some(text) = outgoing.recv() => {
                let mut failed = false;
                for frame in frames(text) {
                    failed = failed || sink.feed(frame).await.is_err();
                }
                if failed || sink.flush().await.is_err() {
                    result.errors.push("send_failed".into());
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
            }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    let at = shared.now_us();
                    match Probe::find(&text) {
                        Some(probe) => {
                            result.trace.received.push((probe.p, probe.s));
                            result.latencies.push((at, at.saturating_sub(probe.t)));
                            if seen.insert((probe.p, probe.s)) {
                                shared.receipts.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        None => {
                            let reply = serde_json::from_str::<serde_json::Value>(&text).unwrap_or_default();
                            // A publish's acknowledgement is not a delivery.
                            if reply["type"] != "published" {
                                let code = reply["error"]["code"].as_str().map(str::to_owned);
                                let code = code.or_else(|| (reply["message"] == "Too Many Requests").then(|| "throttled".to_owned()));
                                result.errors.push(format!("error_frame_{}", code.unwrap_or_else(|| "unknown".into())));
                            }
                        }
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    result.errors.push(format!("close_{code}"));
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(err)) => {
                    result.errors.push(error_kind(&err));
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
                None => {
                    result.errors.push("closed".into());
                    result.trace.dropped_at_us = Some(shared.now_us());
                    break;
                }
            },
        }
    }
    result
}

/// Holds a connection that never reads until the run stops; true if its handshake completed.
async fn stuck_connection(run: Arc<Run>, index: u32) -> bool {
    let source = source_address(&run.target, index, run.connections);
    let opened = connect(&run.url, &run.target, source, Some(STUCK_RECEIVE_BUFFER));
    let ws = tokio::select! {
        opened = tokio::time::timeout(CONNECT_TIMEOUT, opened) => match opened {
            Ok(Ok(ws)) => ws,
            _ => return false,
        },
        () = run.stop.cancelled() => return false,
    };
    run.stop.cancelled().await;
    drop(ws);
    true
}

fn progress_bar(enabled: bool, length: u64, message: &'static str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    let style =
        ProgressStyle::with_template("{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// Waits until `done` holds or `until`, waking on every change the tasks report.
async fn wait_for(
    shared: &Shared,
    until: Instant,
    bar: &ProgressBar,
    progress: impl Fn() -> u64,
    done: impl Fn() -> bool,
) {
    while !done() && Instant::now() < until {
        let changed = shared.changed.notified();
        tokio::select! {
            () = changed => {}
            () = sleep(Duration::from_millis(100)) => {}
            () = sleep_until(until) => {}
        }
        bar.set_position(progress());
    }
    bar.set_position(progress());
}

/// Runs the swarm and accounts for what it saw.
pub async fn run(config: SwarmConfig) -> anyhow::Result<Outcome> {
    if config.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let publishers = config.publishers.clamp(1, config.connections);
    let channels = (config.scenario == Scenario::Channels).then(|| Channels {
        count: config.channels.max(1),
        wildcard_from: publishers,
        wildcard_to: publishers.saturating_add(config.wildcards),
    });
    let run = Arc::new(Run {
        channels,
        jwt_secret: config.jwt_secret.clone(),
        ready: (0..config.connections).map(|_| std::sync::atomic::AtomicBool::new(false)).collect(),
        url: config.url.clone(),
        target: resolve(&config.url).await?,
        connections: config.connections.saturating_add(config.stuck),
        shared: Shared {
            started: Instant::now(),
            connected: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            changed: Notify::new(),
        },
        stop: CancellationToken::new(),
    });
    let (shared, stop) = (&run.shared, &run.stop);
    let deadline = shared.started + config.deadline;

    // Open the connections at the configured rate.
    let total = u64::from(config.connections);
    let bar = progress_bar(config.progress, total, "connecting");
    let interval = Duration::from_secs_f64(1.0 / f64::from(config.connect_rate.max(1)));
    let mut tasks = Vec::with_capacity(config.connections as usize);
    let mut senders = Vec::with_capacity(publishers as usize);
    let mut next = Instant::now();
    for index in 0..config.connections {
        sleep_until(next).await;
        next += interval;
        let (tx, rx) = mpsc::channel(64);
        if index < publishers {
            senders.push(tx);
        } else {
            drop(tx);
        }
        tasks.push(tokio::spawn(connection(run.clone(), index, rx)));
        bar.set_position(shared.connected.load(Ordering::Relaxed));
    }
    wait_for(
        shared,
        deadline,
        &bar,
        || shared.connected.load(Ordering::Relaxed),
        || shared.resolved.load(Ordering::Relaxed) == total,
    )
    .await;
    bar.finish_and_clear();
    let connected = shared.connected.load(Ordering::Relaxed);
    // After the readers, at the same rate, so that nobody's handshake waits behind them.
    let mut stuck = Vec::with_capacity(config.stuck as usize);
    for index in config.connections..config.connections.saturating_add(config.stuck) {
        sleep_until(next).await;
        next += interval;
        stuck.push(tokio::spawn(stuck_connection(run.clone(), index)));
    }

    let mut published = Vec::new();
    let mut first_publish_us = None;
    let mut last_publish = None;
    match config.scenario {
        Scenario::Hold => {
            let until = (Instant::now() + config.hold).min(deadline);
            let bar = progress_bar(config.progress, config.hold.as_secs(), "holding");
            while Instant::now() < until {
                sleep(Duration::from_millis(250).min(until - Instant::now())).await;
                bar.set_position(shared.started.elapsed().as_secs());
            }
            bar.finish_and_clear();
        }
        Scenario::Broadcast | Scenario::Echo | Scenario::Channels => {
            // How many ready connections each channel reaches.
            let reach: Vec<u64> = channels.map_or_else(Vec::new, |channels| {
                (0..channels.count)
                    .map(|k| {
                        (0..config.connections)
                            .filter(|&i| {
                                run.ready[i as usize].load(Ordering::Relaxed) && channels.member(i, k)
                            })
                            .count() as u64
                    })
                    .collect()
            });
            let count = u64::from(publishers) * config.messages;
            let per_message = |n: u64| match (config.scenario, channels) {
                (Scenario::Echo, _) => 1,
                (Scenario::Channels, Some(channels)) => reach[channels.target(n) as usize],
                _ => connected,
            };
            let expected_receipts: u64 = (0..count).map(per_message).sum();
            let bar = progress_bar(config.progress, expected_receipts, "delivering");
            let interval = Duration::from_secs_f64(1.0 / config.rate.max(0.001));
            let mut next = Instant::now();
            let mut expected_so_far = 0;
            for n in 0..count {
                if Instant::now() >= deadline {
                    break;
                }
                sleep_until(next).await;
                next += interval;
                let publisher = (n % u64::from(publishers)) as u32;
                let seq = n / u64::from(publishers);
                let at_us = shared.now_us();
                let probe = Probe { p: publisher, s: seq, t: at_us, pad: String::new() };
                let (action, audience) = match (config.scenario, channels) {
                    (Scenario::Echo, _) => (Action::Echo, Audience::Only(publisher)),
                    (Scenario::Channels, Some(channels)) => {
                        let channel = channels.target(n);
                        (Action::Publish(channel), Audience::Channel(channel))
                    }
                    _ => (Action::Broadcast, Audience::All),
                };
                // A publisher whose connection failed has a closed channel: nothing is published.
                if senders[publisher as usize].send(probe.message(action, config.size)).await.is_ok() {
                    expected_so_far += per_message(n);
                    published.push(Published { publisher, seq, at_us, audience });
                    first_publish_us.get_or_insert(at_us);
                    last_publish = Some(Instant::now());
                }
                bar.set_position(shared.receipts.load(Ordering::Relaxed));
            }
            let until = last_publish.map_or(deadline, |at| (at + config.settle).min(deadline));
            let expected_now = expected_so_far;
            wait_for(
                shared,
                until,
                &bar,
                || shared.receipts.load(Ordering::Relaxed),
                || shared.receipts.load(Ordering::Relaxed) >= expected_now,
            )
            .await;
            bar.finish_and_clear();
        }
    }
    let finished_us = shared.now_us();
    stop.cancel();

    let mut traces = Vec::with_capacity(tasks.len());
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut connect = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)?;
    let mut samples = Vec::new();
    let mut last_receipt_us = first_publish_us.unwrap_or(0);
    for task in tasks {
        let result = task.await.context("a connection task panicked")?;
        if let Some(us) = result.connect_us {
            connect.saturating_record(us.max(1));
        }
        for (at, us) in &result.latencies {
            latency.saturating_record((*us).max(1));
            last_receipt_us = last_receipt_us.max(*at);
            samples.push((at.saturating_sub(first_publish_us.unwrap_or(0)) / 1000, *us));
        }
        for kind in result.errors {
            *errors.entry(kind).or_default() += 1;
        }
        traces.push(result.trace);
    }
    let mut stuck_connected = 0;
    for task in stuck {
        stuck_connected += u64::from(task.await.context("a stuck connection task panicked")?);
    }
    let members = move |index: u32, channel: u32| channels.is_some_and(|c| c.member(index, channel));
    let tally = ledger::tally(&published, &traces, &members);
    let delivery_window_s =
        first_publish_us.map(|first| last_receipt_us.saturating_sub(first) as f64 / 1e6).unwrap_or(0.0);
    let report = Report {
        url: config.url.clone(),
        scenario: format!("{:?}", config.scenario).to_lowercase(),
        connections: u64::from(config.connections),
        connected,
        dropped: tally.dropped,
        stuck: stuck_connected,
        sent: published.len() as u64,
        expected: tally.expected,
        received: tally.received,
        lost: tally.lost,
        duplicated: tally.duplicated,
        unexpected: tally.unexpected,
        misdelivered: tally.misdelivered,
        errors,
        latency_ms: Percentiles::of(&latency),
        connect_ms: Percentiles::of(&connect),
        deliveries_per_sec: if delivery_window_s > 0.0 {
            tally.received as f64 / delivery_window_s
        } else {
            0.0
        },
        time_to_last_delivery_ms: delivery_window_s * 1e3,
        duration_s: finished_us as f64 / 1e6,
    };
    Ok(Outcome { report, samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_members_are_those_on_the_channel_and_those_on_the_wildcard() {
        let channels = Channels { count: 10, wildcard_from: 1, wildcard_to: 3 };
        assert!(channels.member(13, 3) && !channels.member(13, 4));
        assert!(channels.member(2, 7), "on the wildcard");
        assert_eq!(channels.patterns(2), ["load/c2", "load/*"]);
        assert_eq!(channels.patterns(13), ["load/c3"]);
        let targets: std::collections::HashSet<u32> = (0..1000).map(|n| channels.target(n)).collect();
        assert_eq!(targets.len(), 10, "publishes reach every channel");
    }

    #[test]
    fn a_token_goes_in_the_query_string_with_or_without_a_path() {
        assert_eq!(with_token("ws://127.0.0.1:3001", "t"), "ws://127.0.0.1:3001/?token=t");
        assert_eq!(with_token("wss://x.example/Prod", "t"), "wss://x.example/Prod?token=t");
    }

    #[test]
    fn messages_past_32_kb_are_sent_in_fragments_of_at_most_32_kb() {
        assert!(matches!(frames("small".into()).as_slice(), [Message::Text(_)]));
        let big = "x".repeat(100 * 1024);
        let fragments = frames(big.clone());
        assert_eq!(fragments.len(), 4);
        let mut joined = Vec::new();
        for (n, fragment) in fragments.iter().enumerate() {
            let Message::Frame(frame) = fragment else { panic!("a raw frame") };
            assert!(frame.payload().len() <= MAX_FRAME_BYTES);
            assert_eq!(frame.header().is_final, n == 3);
            joined.extend_from_slice(frame.payload());
        }
        assert_eq!(joined, big.as_bytes());
    }
}
