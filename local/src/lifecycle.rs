//! Lifecycle events on one machine, as EventBridge would carry them to a backend: every event is
//! kept for `GET /_local/events` (the last [`RECENT_EVENTS`], [`crate::devtools`]) and, with
//! `--events-url`, POSTed to the developer's backend as the JSON a rule's target receives. The
//! handlers never wait for the backend: they hand events to a bounded queue ([`FORWARD_QUEUE`]) that
//! one task drains ([`Forwarding`]): several POSTs at once, each with a time limit, so that a
//! backend hanging on one event holds up no other; each event tried [`Forwarding::attempts`] times
//! with a growing pause. A backend that fails every try for a while is taken for down: events then
//! wait in the queue, one tried a second, until it answers again — a webhook restarted or paused
//! in a debugger gets what it missed, as EventBridge's own retries would give it, instead of each
//! queued event costing it its every time limit (which made 10,000 events queued behind a hanging
//! backend take some 59 hours to drain). An event the queue has no room for, or that every attempt
//! failed, is counted and logged, as EventBridge counts `FailedInvocations`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::header;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde_json::Value;
use shared::events::RecentEvents;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How many events `/_local/events` keeps.
pub const RECENT_EVENTS: usize = 1000;
/// Events waiting for the `--events-url` backend, at most.
pub const FORWARD_QUEUE: usize = 10_000;

/// How events are forwarded to `--events-url`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarding {
    /// POSTs in flight at once.
    pub concurrency: usize,
    /// How long one POST may take: EventBridge gives an API destination 5 s.
    pub timeout: Duration,
    /// Tries per event before it is given up.
    pub attempts: u32,
    /// The pause before an event's second try, doubled before each next one (0.2, 0.4, 0.8 s).
    pub first_retry: Duration,
    /// Failed tries in a row, whatever their events, after which the backend is taken for down.
    pub down_after: u32,
    /// While the backend is down, one event is tried at a time, this often.
    pub probe_every: Duration,
}

impl Default for Forwarding {
    fn default() -> Self {
        Self {
            concurrency: 16,
            timeout: Duration::from_secs(5),
            attempts: 4,
            first_retry: Duration::from_millis(200),
            down_after: 8,
            probe_every: Duration::from_secs(1),
        }
    }
}

/// What forwarding to `--events-url` did.
#[derive(Debug, Default)]
pub struct Forwarded {
    pub delivered: AtomicU64,
    /// Events every attempt failed for.
    pub failed: AtomicU64,
    /// Attempts after a failed one.
    pub retries: AtomicU64,
    /// Whether the backend is taken for down: events wait, one tried at a time.
    pub down: AtomicBool,
}

/// The gateway's events: kept, and forwarded when a URL was given.
#[derive(Debug)]
pub struct Lifecycle {
    pub events: Arc<RecentEvents>,
    pub url: Option<String>,
    pub forwarded: Arc<Forwarded>,
    pub forwarding: Forwarding,
    outbox: std::sync::Mutex<Option<mpsc::Receiver<Value>>>,
}

impl Lifecycle {
    /// Events stamped with the local account and `region`, forwarded to `url` when there is one.
    pub fn new(url: Option<String>, region: &str) -> Self {
        Self::with_forwarding(url, region, Forwarding::default())
    }

    /// The same, forwarded as `forwarding` says.
    pub fn with_forwarding(url: Option<String>, region: &str, forwarding: Forwarding) -> Self {
        let events = RecentEvents::new(RECENT_EVENTS, crate::settings::ACCOUNT, region);
        let (events, outbox) = match &url {
            Some(_) => {
                let (tap, outbox) = mpsc::channel(FORWARD_QUEUE);
                (events.with_tap(tap), Some(outbox))
            }
            None => (events, None),
        };
        Self {
            events: Arc::new(events),
            url,
            forwarded: Arc::default(),
            forwarding,
            outbox: std::sync::Mutex::new(outbox),
        }
    }

    /// The forwarding task, once: it runs until `shutdown`, then stops.
    pub fn forwarder(
        &self,
        shutdown: CancellationToken,
    ) -> Option<impl std::future::Future<Output = ()> + use<>> {
        let url = self.url.clone()?;
        let outbox = shared::sync::lock(&self.outbox).take()?;
        let http = match reqwest::Client::builder().timeout(self.forwarding.timeout).build() {
            Ok(http) => http,
            Err(err) => {
                tracing::error!(url, error = %err, "no HTTP client for --events-url: events are only listed at /_local/events");
                return None;
            }
        };
        let forwarder = Forwarder {
            http,
            url,
            settings: self.forwarding,
            forwarded: self.forwarded.clone(),
            retries: BTreeMap::new(),
            next: 0,
            failures_in_a_row: 0,
            next_probe: Instant::now(),
        };
        Some(forwarder.run(outbox, shutdown))
    }
}

/// One try of one event: the event, which try it was, and why it failed.
type Tried = (Value, u32, Result<(), String>);

/// The forwarding task's state.
struct Forwarder {
    http: reqwest::Client,
    url: String,
    settings: Forwarding,
    forwarded: Arc<Forwarded>,
    /// Events waiting for another try, by when it is due (and a number that keeps keys apart), with
    /// the tries they had.
    retries: BTreeMap<(Instant, u64), (Value, u32)>,
    next: u64,
    failures_in_a_row: u32,
    next_probe: Instant,
}

impl Forwarder {
    fn down(&self) -> bool {
        self.failures_in_a_row >= self.settings.down_after
    }

    /// Whether another try may start now: one of `concurrency` while the backend answers; while it
    /// is down, one at a time, once a `probe_every`.
    fn may_start(&self, in_flight: usize) -> bool {
        if self.down() {
            in_flight == 0 && Instant::now() >= self.next_probe
        } else {
            in_flight < self.settings.concurrency
        }
    }

    fn due_retry(&mut self) -> Option<(Value, u32)> {
        let (&key, _) = self.retries.first_key_value()?;
        (key.0 <= Instant::now()).then(|| self.retries.remove(&key)).flatten()
    }

    /// When the loop has something to do without news from the queue or a try: the next retry
    /// due, or the next probe. Whatever was due when the loop last started tries has started.
    fn wake_at(&self, in_flight: usize) -> Option<Instant> {
        let retry = self.retries.first_key_value().map(|(key, _)| key.0);
        if self.down() {
            match in_flight {
                0 if Instant::now() < self.next_probe => Some(self.next_probe),
                0 => retry,
                _ => None,
            }
        } else if in_flight < self.settings.concurrency {
            retry
        } else {
            None
        }
    }

    fn start(&mut self, event: Value, attempt: u32) -> impl std::future::Future<Output = Tried> + use<> {
        if self.down() {
            self.next_probe = Instant::now() + self.settings.probe_every;
        }
        let (http, url) = (self.http.clone(), self.url.clone());
        async move {
            let sent = http
                .post(&url)
                .header(header::CONTENT_TYPE.as_str(), "application/json")
                .body(event.to_string())
                .send()
                .await;
            let outcome = match sent {
                Ok(answer) if answer.status().is_success() => Ok(()),
                Ok(answer) => Err(format!("answered {}", answer.status())),
                Err(err) if err.is_timeout() => Err("no answer in time".to_owned()),
                Err(err) => Err(err.to_string()),
            };
            (event, attempt, outcome)
        }
    }

    fn finished(&mut self, (event, attempt, outcome): Tried) {
        let was_down = self.down();
        match outcome {
            Ok(()) => {
                self.forwarded.delivered.fetch_add(1, Ordering::Relaxed);
                self.failures_in_a_row = 0;
            }
            Err(why) => {
                self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
                if attempt >= self.settings.attempts {
                    self.forwarded.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = self.url, id = %event["id"], why, "a lifecycle event could not be delivered; given up");
                } else {
                    tracing::debug!(
                        url = self.url,
                        why,
                        attempt,
                        "a lifecycle event was not delivered; trying again"
                    );
                    self.forwarded.retries.fetch_add(1, Ordering::Relaxed);
                    let pause = self.settings.first_retry * 2u32.saturating_pow(attempt - 1);
                    self.next += 1;
                    self.retries.insert((Instant::now() + pause, self.next), (event, attempt + 1));
                }
            }
        }
        let down = self.down();
        self.forwarded.down.store(down, Ordering::Relaxed);
        if down && !was_down {
            tracing::warn!(
                url = self.url,
                "the events backend failed {} tries in a row: events wait, one tried every {:?}, until it answers",
                self.failures_in_a_row,
                self.settings.probe_every
            );
        } else if was_down && !down {
            tracing::info!(url = self.url, "the events backend answers again");
        }
    }

    async fn run(mut self, mut outbox: mpsc::Receiver<Value>, shutdown: CancellationToken) {
        let mut in_flight = FuturesUnordered::new();
        let mut open = true;
        loop {
            while self.may_start(in_flight.len()) {
                let next = match self.due_retry() {
                    Some(retry) => Some(retry),
                    None if self.retries.len() < FORWARD_QUEUE => {
                        outbox.try_recv().ok().map(|event| (event, 1))
                    }
                    None => None,
                };
                let Some((event, attempt)) = next else { break };
                in_flight.push(self.start(event, attempt));
            }
            let take_new = open && self.may_start(in_flight.len()) && self.retries.len() < FORWARD_QUEUE;
            let wake = self.wake_at(in_flight.len());
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(tried) = in_flight.next(), if !in_flight.is_empty() => self.finished(tried),
                event = outbox.recv(), if take_new => match event {
                    Some(event) => in_flight.push(self.start(event, 1)),
                    None => open = false,
                },
                () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => {}
            }
            if !open && in_flight.is_empty() && self.retries.is_empty() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicUsize};

    use axum::http::StatusCode;
    use shared::Events;
    use shared::events::LifecycleEvent;
    use shared::presence::{Change, Member};

    use super::*;

    /// A backend that hangs on every request while `hanging`; it counts the requests it got and the
    /// events it accepted.
    struct Backend {
        url: String,
        hanging: Arc<AtomicBool>,
        requests: Arc<AtomicUsize>,
        accepted: Arc<AtomicUsize>,
    }

    async fn backend() -> Backend {
        let hanging = Arc::new(AtomicBool::new(false));
        let (requests, accepted) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let app = axum::Router::new().route(
            "/events",
            axum::routing::post({
                let (hanging, requests, accepted) = (hanging.clone(), requests.clone(), accepted.clone());
                move || {
                    let (hanging, requests, accepted) = (hanging.clone(), requests.clone(), accepted.clone());
                    async move {
                        requests.fetch_add(1, Ordering::SeqCst);
                        if hanging.load(Ordering::SeqCst) {
                            std::future::pending::<()>().await;
                        }
                        accepted.fetch_add(1, Ordering::SeqCst);
                        StatusCode::OK
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/events", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Backend { url, hanging, requests, accepted }
    }

    fn joined(channel: &str) -> Vec<LifecycleEvent> {
        let connection = shared::ConnectionRef {
            id: shared::ConnectionId::parse("abc=").expect("id"),
            connected_at_ms: 1,
        };
        let member = Member::new(connection, &shared::Identity::Anonymous, 1, false);
        let change = Change { member, clients: 2, seq: 2, watchers: 0 };
        LifecycleEvent::of_join(&shared::Channel::parse(channel).expect("channel"), &change, 0)
    }

    async fn until(what: &str, within: Duration, done: impl Fn() -> bool) {
        let deadline = Instant::now() + within;
        while !done() {
            assert!(Instant::now() < deadline, "{what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn start(url: &str, forwarding: Forwarding) -> (Arc<Lifecycle>, CancellationToken) {
        let lifecycle = Arc::new(Lifecycle::with_forwarding(Some(url.to_owned()), "us-east-1", forwarding));
        let shutdown = CancellationToken::new();
        tokio::spawn(lifecycle.forwarder(shutdown.clone()).expect("a forwarder"));
        (lifecycle, shutdown)
    }

    #[tokio::test]
    async fn a_backend_that_hangs_on_everything_is_tried_once_a_probe_and_gets_what_waited_when_it_answers() {
        let backend = backend().await;
        backend.hanging.store(true, Ordering::SeqCst);
        let forwarding = Forwarding {
            timeout: Duration::from_millis(200),
            first_retry: Duration::from_millis(20),
            probe_every: Duration::from_millis(100),
            ..Forwarding::default()
        };
        let (lifecycle, shutdown) = start(&backend.url, forwarding);
        // FORWARD_EVENTS=10000 for the figure in the terms (10,000 queued events).
        let events: usize = std::env::var("FORWARD_EVENTS").ok().and_then(|n| n.parse().ok()).unwrap_or(300);
        let began = Instant::now();
        for n in 0..events {
            lifecycle.events.publish(&joined(&format!("room/{n}"))).await.expect("publish");
        }
        until("taken for down", Duration::from_secs(30), || lifecycle.forwarded.down.load(Ordering::SeqCst))
            .await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let tried = backend.requests.load(Ordering::SeqCst);
        // One wave of tries, then a probe every 100 ms, each taking its 200 ms: not four a waiting event.
        assert!(tried <= forwarding.concurrency + 20, "{tried} tries while it hung");
        backend.hanging.store(false, Ordering::SeqCst);
        let answering = Instant::now();
        until("every event delivered or given up", Duration::from_secs(60), || {
            let forwarded = &lifecycle.forwarded;
            forwarded.delivered.load(Ordering::SeqCst) + forwarded.failed.load(Ordering::SeqCst)
                == events as u64
        })
        .await;
        let failed = lifecycle.forwarded.failed.load(Ordering::SeqCst);
        eprintln!(
            "{events} events: {tried} tries in the {:.1} s the backend hung, all delivered or given up {:.2} s after it answered ({failed} given up)",
            (answering - began).as_secs_f64(),
            answering.elapsed().as_secs_f64()
        );
        assert!(failed <= 5, "only the probes' events used their tries up: {failed}");
        assert!(!lifecycle.forwarded.down.load(Ordering::SeqCst), "it answers again");
        assert_eq!(backend.accepted.load(Ordering::SeqCst) as u64, events as u64 - failed);
        shutdown.cancel();
    }
}
