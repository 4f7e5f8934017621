//! Lifecycle events on one machine, as EventBridge would carry them to a backend: every event is
//! kept for `GET /_local/events` ([`EVENTS_PATH`], the last [`RECENT_EVENTS`]) and, with
//! `--events-url`, POSTed to the developer's backend one at a time, as the JSON a rule's target
//! receives. The handlers never wait for the backend: they hand events to a bounded queue
//! ([`FORWARD_QUEUE`]) that one task drains, trying each event [`ATTEMPTS`] times with a growing
//! pause; an event the queue has no room for, or that every attempt failed, is counted and logged,
//! as EventBridge counts `FailedInvocations` for a target that keeps failing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use shared::events::RecentEvents;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::state::AppState;

/// `GET`: the recent events, oldest first, with what forwarding did.
pub const EVENTS_PATH: &str = "/_local/events";
/// How many events [`EVENTS_PATH`] keeps.
pub const RECENT_EVENTS: usize = 1000;
/// Events waiting for the `--events-url` backend, at most.
pub const FORWARD_QUEUE: usize = 10_000;
/// Tries per event before it is given up.
pub const ATTEMPTS: u32 = 4;
/// The pause before the second try, doubled before each next one (0.2, 0.4, 0.8 s).
pub const FIRST_RETRY: Duration = Duration::from_millis(200);
/// How long one POST may take.
pub const POST_TIMEOUT: Duration = Duration::from_secs(5);

/// What forwarding to `--events-url` did.
#[derive(Debug, Default)]
pub struct Forwarded {
    pub delivered: AtomicU64,
    /// Events every attempt failed for.
    pub failed: AtomicU64,
    /// Attempts after a failed one.
    pub retries: AtomicU64,
}

/// The gateway's events: kept, and forwarded when a URL was given.
#[derive(Debug)]
pub struct Lifecycle {
    pub events: Arc<RecentEvents>,
    pub url: Option<String>,
    pub forwarded: Arc<Forwarded>,
    outbox: std::sync::Mutex<Option<mpsc::Receiver<Value>>>,
}

impl Lifecycle {
    /// Events stamped with the local account and `region`, forwarded to `url` when there is one.
    pub fn new(url: Option<String>, region: &str) -> Self {
        let events = RecentEvents::new(RECENT_EVENTS, crate::sqs::ACCOUNT, region);
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
            outbox: std::sync::Mutex::new(outbox),
        }
    }

    /// The forwarding task, once: it runs until `shutdown`, then stops.
    pub fn forwarder(
        &self,
        shutdown: CancellationToken,
    ) -> Option<impl std::future::Future<Output = ()> + use<>> {
        let url = self.url.clone()?;
        let mut outbox = shared::sync::lock(&self.outbox).take()?;
        let forwarded = self.forwarded.clone();
        let http = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
            Ok(http) => http,
            Err(err) => {
                tracing::error!(url, error = %err, "no HTTP client for --events-url: events are only listed at {EVENTS_PATH}");
                return None;
            }
        };
        Some(async move {
            loop {
                let event = tokio::select! {
                    event = outbox.recv() => match event { Some(event) => event, None => return },
                    () = shutdown.cancelled() => return,
                };
                forward(&http, &url, &event, &forwarded).await;
            }
        })
    }
}

/// POSTs one event, trying again after a failure or an answer other than 2xx.
async fn forward(http: &reqwest::Client, url: &str, event: &Value, forwarded: &Forwarded) {
    let mut pause = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        let sent = http
            .post(url)
            .header(header::CONTENT_TYPE.as_str(), "application/json")
            .body(event.to_string())
            .send()
            .await;
        let why = match sent {
            Ok(answer) if answer.status().is_success() => {
                forwarded.delivered.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Ok(answer) => format!("answered {}", answer.status()),
            Err(err) => err.to_string(),
        };
        if attempt == ATTEMPTS {
            forwarded.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(url, id = %event["id"], why, "a lifecycle event could not be delivered; given up");
            return;
        }
        tracing::debug!(url, why, attempt, "a lifecycle event was not delivered; trying again");
        forwarded.retries.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(pause).await;
        pause *= 2;
    }
}

/// `GET /_local/events`: `{"events":[…],"forwarding":{…}}`.
pub async fn recent(State(state): State<Arc<AppState>>) -> Response {
    let lifecycle = &state.lifecycle;
    let forwarding = lifecycle.url.as_ref().map(|url| {
        serde_json::json!({
            "url": url,
            "delivered": lifecycle.forwarded.delivered.load(Ordering::Relaxed),
            "failed": lifecycle.forwarded.failed.load(Ordering::Relaxed),
            "retries": lifecycle.forwarded.retries.load(Ordering::Relaxed),
            "dropped": lifecycle.events.dropped(),
        })
    });
    let body = serde_json::json!({ "events": lifecycle.events.recent(), "forwarding": forwarding });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}
