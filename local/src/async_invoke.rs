//! Lambda's queue for asynchronous invocations, as the gateway's stand-in: an event hook's `Event`
//! invocation is taken at once (Lambda answers 202) and run later by a task that invokes the
//! function through the local Invoke API. As Lambda does, it tries a run whose function raised twice
//! more before giving the event up with an error line, where Lambda would send it to the function's
//! on-failure destination; Lambda waits a minute, then two, between the tries, the gateway
//! [`RETRY_DELAYS`], so that a test or a developer sees the retry. A run that could not start — the
//! Invoke API unreachable (the user's `cargo lambda watch` restarting, say), throttled, failing — is
//! Lambda's throttling or system error, which it retries with backoff for as long as the event may
//! live (six hours) without counting it against those two: so does the gateway. Local runners
//! (`cargo lambda watch`, `sam local start-lambda`) run functions as `RequestResponse`, which is why
//! the run is one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use shared::hooks::{HookError, Hooks, Invoked};
use tokio::sync::{Semaphore, mpsc};

/// Between a failed run and the next: Lambda's minute and two minutes, shortened.
pub const RETRY_DELAYS: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// How long an event that could not start may wait for its function: Lambda's maximum event age.
pub const MAX_EVENT_AGE: Duration = Duration::from_secs(6 * 3600);

/// Between tries of a run that could not start: doubling from the first, up to the last.
const START_BACKOFF: (Duration, Duration) = (Duration::from_millis(200), Duration::from_secs(5));

/// Events waiting to run, at most: past it an `Event` invocation is refused as throttled, as
/// Lambda's would be, and the worker leaves the message to SQS's redelivery.
pub const QUEUE_CAPACITY: usize = 10_000;

/// Runs at once, at most, like a function's concurrency.
const CONCURRENT_RUNS: usize = 16;

/// How long one run may take: Lambda's longest function timeout.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

/// What happened to the events handed over so far.
#[derive(Debug, Default)]
pub struct AsyncTotals {
    pub queued: AtomicU64,
    pub ran: AtomicU64,
    pub retried: AtomicU64,
    pub given_up: AtomicU64,
}

/// The Invoke API's hooks, with `Event` invocations queued and retried here.
pub struct QueuedHooks {
    inner: Arc<dyn Hooks>,
    queue: mpsc::Sender<(String, Vec<u8>)>,
    pub totals: Arc<AsyncTotals>,
}

impl std::fmt::Debug for QueuedHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedHooks").field("totals", &self.totals).finish_non_exhaustive()
    }
}

impl QueuedHooks {
    /// Starts the queue's task on the current runtime; it ends when the hooks are dropped.
    pub fn start(inner: Arc<dyn Hooks>) -> Self {
        let (queue, mut events) = mpsc::channel::<(String, Vec<u8>)>(QUEUE_CAPACITY);
        let totals = Arc::new(AsyncTotals::default());
        let (runner, counts) = (inner.clone(), totals.clone());
        tokio::spawn(async move {
            let runs = Arc::new(Semaphore::new(CONCURRENT_RUNS));
            while let Some((function, request)) = events.recv().await {
                let Ok(permit) = runs.clone().acquire_owned().await else { return };
                let (runner, counts) = (runner.clone(), counts.clone());
                tokio::spawn(async move {
                    run(&*runner, &function, request, &counts).await;
                    drop(permit);
                });
            }
        });
        Self { inner, queue, totals }
    }
}

async fn run(hooks: &dyn Hooks, function: &str, request: Vec<u8>, totals: &AsyncTotals) {
    let queued = tokio::time::Instant::now();
    for (attempt, delay) in std::iter::once(None).chain(RETRY_DELAYS.map(Some)).enumerate() {
        if let Some(delay) = delay {
            totals.retried.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
        let mut backoff = START_BACKOFF.0;
        let failure = loop {
            match hooks.invoke(function, request.clone(), RUN_TIMEOUT).await {
                Ok(Invoked::Answer(_)) => {
                    totals.ran.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Ok(Invoked::Raised { error_type, message }) => {
                    break format!("it raised {error_type}: {message}");
                }
                Err(err) if err.is_retryable() && queued.elapsed() < MAX_EVENT_AGE => {
                    tracing::debug!(function, error = %err, "an event hook's run could not start; trying again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(START_BACKOFF.1);
                }
                Err(err) => break err.to_string(),
            }
        };
        tracing::warn!(function, attempt = attempt + 1, failure, "an event hook's run failed");
    }
    totals.given_up.fetch_add(1, Ordering::Relaxed);
    tracing::error!(
        function,
        tries = RETRY_DELAYS.len() + 1,
        "an event hook's event is given up after its retries (on AWS: its on-failure destination)"
    );
}

#[async_trait]
impl Hooks for QueuedHooks {
    async fn invoke(
        &self,
        function: &str,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Invoked, HookError> {
        self.inner.invoke(function, request, timeout).await
    }

    async fn notify(&self, function: &str, request: Vec<u8>) -> Result<(), HookError> {
        self.queue.try_send((function.to_owned(), request)).map_err(|_| {
            HookError::Unavailable(format!(
                "TooManyRequestsException: more than {QUEUE_CAPACITY} events wait for their function"
            ))
        })?;
        self.totals.queued.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}
