//! A fan-out simulator for sizes one machine cannot hold: the real worker, the local gateway's event
//! source mapping and the in-memory queue, run under tokio's paused clock against a simulated
//! `@connections` endpoint.
//!
//! Nothing here is a model of the worker: [`Worker::process`] runs as on Lambda — probing, splitting
//! into shards, pacing, retrying, requeueing — and the mapping invokes it with SQS events as the
//! local gateway does, stopping an invocation at its timeout. What is simulated is the world around
//! it: `@connections` answers after a latency drawn from a range (20–60 ms, Lambda to API Gateway in
//! one region), takes a token from the account's bucket (10,000/s, burst 5,000) or answers 429, and
//! answers 410 for connections that are gone; every post that gets through is counted per connection.
//! Time only passes while every task waits, so a 100 s broadcast to a million connections takes the
//! seconds of CPU its work needs. CPU time on Lambda is not simulated: each post costs about 50 µs of
//! it (BENCHMARKS.md), which a 512 MB worker has for about 6,000 posts a second.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use local::esm::{EsmSettings, Mapping};
use local::events::Api;
use local::function::{Function, FunctionError};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::value::RawValue;
use shared::memory::{MemoryQueue, MemoryStore, QueueSettings};
use shared::{
    Audience, ChannelPattern, ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore, Envelope, Job,
    PostError, Poster, Queue, QueueError, Shard, StoreError, SubscribeError, Subscription,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use worker::{Worker, WorkerSettings};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimSettings {
    pub connections: usize,
    /// Each `@connections` call takes a time drawn uniformly from this range.
    pub latency: (Duration, Duration),
    /// The fraction of calls answered 429 whatever the account's bucket holds.
    pub throttle: f64,
    /// Calls per second the endpoint can serve, one after another, when something other than the
    /// account's rate limits it: the local gateway's CPU, shared with its clients on one machine.
    /// Measured there in pipeline mode, it lets a simulation be checked against a local run.
    /// `None` on AWS, whose fleet serves every call the account's bucket admits.
    pub capacity: Option<f64>,
    /// The fraction of connections that are gone (410) and get pruned.
    pub gone: f64,
    /// The account's `@connections` calls per second, and its burst.
    pub account_rate: f64,
    pub account_burst: f64,
    pub worker: WorkerSettings,
    pub esm: EsmSettings,
    pub queue: QueueSettings,
    /// Connections per page of a scan: DynamoDB's 1 MB pages hold about this many connection items.
    pub page_size: usize,
    /// The worker's memory, for its cost.
    pub memory_mb: u32,
    /// The broadcast's payload.
    pub message_bytes: usize,
    /// Simulated time after which the run stops, finished or not.
    pub limit: Duration,
    pub seed: u64,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            connections: 10_000,
            latency: (Duration::from_millis(20), Duration::from_millis(60)),
            throttle: 0.0,
            capacity: None,
            gone: 0.0,
            account_rate: f64::from(shared::limits::ACCOUNT_POST_RATE),
            account_burst: f64::from(shared::limits::ACCOUNT_POST_RATE / 2),
            worker: WorkerSettings::default(),
            esm: EsmSettings::default(),
            // The template's queue: six times the worker's timeout, five receives before the DLQ.
            queue: QueueSettings { visibility_timeout: Duration::from_secs(180), max_receive_count: Some(5) },
            page_size: 7_000,
            memory_mb: 512,
            message_bytes: 128,
            limit: Duration::from_secs(3_600),
            seed: 1,
        }
    }
}

/// What a simulated broadcast did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimReport {
    pub connections: usize,
    /// Connections not gone: those the broadcast must reach.
    pub live: usize,
    /// Live connections reached at least once.
    pub delivered: usize,
    /// Deliveries beyond the first to a connection.
    pub duplicated: u64,
    /// Live connections never reached.
    pub lost: usize,
    /// From the broadcast's queueing to the last connection reached.
    pub time_to_last_delivery_s: f64,
    /// The account's rate would reach everyone in this long at best: (live − burst) ÷ rate.
    pub floor_s: f64,
    pub invocations: u64,
    /// Invocations stopped at the function's timeout.
    pub timed_out: u64,
    pub longest_invocation_s: f64,
    pub shard_jobs: u64,
    pub retry_jobs: u64,
    pub dead_letters: usize,
    pub calls: u64,
    /// Calls refused by the account's bucket.
    pub throttled_by_account: u64,
    /// Calls answered 429 by injection.
    pub throttled_injected: u64,
    pub gone_answers: u64,
    /// Scan pages read, and DynamoDB's read units for them (eventually consistent, 4 KB each).
    pub scan_pages: u64,
    pub read_units: f64,
    pub cost_usd: f64,
    pub cost: Cost,
    pub finished: bool,
    pub settings: EchoedSettings,
}

/// The cost of one broadcast at AWS's list prices (us-east-1, `../shared/reference`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cost {
    /// $1.00 per million messages sent to connections.
    pub api_gateway: f64,
    /// $0.0000133334 per GB-s (arm64) and $0.20 per million invocations.
    pub lambda: f64,
    /// $0.40 per million requests: sends (ten jobs a batch), receives and deletes.
    pub sqs: f64,
    /// $0.125 per million read units, $0.625 per million write units (pruning).
    pub dynamodb: f64,
}

/// The settings a report was made with.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EchoedSettings {
    pub post_concurrency: usize,
    pub post_rate: u32,
    pub shard_size: usize,
    pub max_concurrency: usize,
    pub batch_size: usize,
    pub function_timeout_s: f64,
    pub latency_ms: (u128, u128),
    pub throttle: f64,
    pub capacity: Option<f64>,
    pub gone: f64,
}

/// Bytes of one connection item as a scan reads it (`Pk`, `Sk`, `ConnectedAt`, `Ttl`, `SourceIp`).
const ITEM_BYTES: usize = 120;

fn id(index: usize) -> ConnectionId {
    ConnectionId::parse(&format!("sim{index:09}")).unwrap_or_else(|_| unreachable!("sim ids are valid"))
}

fn index(id: &ConnectionId) -> Option<usize> {
    id.as_str().strip_prefix("sim")?.parse().ok()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// `@connections` as the account sees it.
struct SimPoster {
    latency: (Duration, Duration),
    throttle: f64,
    account_rate: f64,
    account_burst: f64,
    bucket: Mutex<(f64, Instant)>,
    /// The time each call takes to serve with a limited capacity, and when the server is next free.
    service: Option<(Duration, Mutex<Instant>)>,
    rng: Mutex<StdRng>,
    gone: Vec<bool>,
    received: Vec<AtomicU32>,
    last_delivery: Mutex<Option<Instant>>,
    calls: AtomicU64,
    throttled_by_account: AtomicU64,
    throttled_injected: AtomicU64,
    gone_answers: AtomicU64,
}

impl SimPoster {
    fn take_token(&self) -> bool {
        let mut bucket = lock(&self.bucket);
        let now = Instant::now();
        let refill = now.saturating_duration_since(bucket.1).as_secs_f64() * self.account_rate;
        bucket.0 = (bucket.0 + refill).min(self.account_burst);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[async_trait]
impl Poster for SimPoster {
    async fn post(&self, to: &ConnectionId, _frame: Bytes) -> Result<(), PostError> {
        let (latency, injected) = {
            let mut rng = lock(&self.rng);
            (rng.random_range(self.latency.0..=self.latency.1), rng.random_bool(self.throttle))
        };
        // The request reaches API Gateway half way, and the answer comes back in the other half.
        tokio::time::sleep(latency / 2).await;
        if let Some((each, free_at)) = &self.service {
            let done = {
                let mut free_at = lock(free_at);
                *free_at = (*free_at).max(Instant::now()) + *each;
                *free_at
            };
            tokio::time::sleep_until(done).await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let answer = if !self.take_token() {
            self.throttled_by_account.fetch_add(1, Ordering::Relaxed);
            Err(PostError::Throttled)
        } else if injected {
            self.throttled_injected.fetch_add(1, Ordering::Relaxed);
            Err(PostError::Throttled)
        } else {
            match index(to) {
                Some(i) if i < self.gone.len() && !self.gone[i] => {
                    self.received[i].fetch_add(1, Ordering::Relaxed);
                    *lock(&self.last_delivery) = Some(Instant::now());
                    Ok(())
                }
                _ => {
                    self.gone_answers.fetch_add(1, Ordering::Relaxed);
                    Err(PostError::Gone)
                }
            }
        };
        tokio::time::sleep(latency - latency / 2).await;
        answer
    }
}

/// The queue, counting what the worker sends to it.
struct CountingQueue {
    inner: Arc<MemoryQueue>,
    shard_jobs: AtomicU64,
    retry_jobs: AtomicU64,
    requests: AtomicU64,
}

impl CountingQueue {
    fn count(&self, jobs: &[Job]) {
        for job in jobs {
            match &job.audience {
                Audience::Shard(_) | Audience::ChannelShard { .. } => {
                    self.shard_jobs.fetch_add(1, Ordering::Relaxed)
                }
                Audience::Connections(_) => self.retry_jobs.fetch_add(1, Ordering::Relaxed),
                Audience::Everyone | Audience::Channel(_) => 0,
            };
        }
        self.requests.fetch_add(jobs.len().div_ceil(10) as u64, Ordering::Relaxed);
    }
}

#[async_trait]
impl Queue for CountingQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        self.count(std::slice::from_ref(job));
        self.inner.send(job).await
    }

    async fn send_batch(&self, jobs: &[Job], delay: Duration) -> Vec<Result<(), QueueError>> {
        self.count(jobs);
        self.inner.send_batch(jobs, delay).await
    }
}

/// The store, counting the pages its scans read.
struct CountingStore {
    inner: MemoryStore,
    pages: Arc<AtomicU64>,
    read_units: Arc<Mutex<f64>>,
}

#[async_trait]
impl ConnectionStore for CountingStore {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.inner.put(record).await
    }
    async fn delete(&self, id: &ConnectionId) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<(), StoreError> {
        self.inner.delete_many(ids).await
    }
    fn scan_shard(&self, shard: Shard) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let (pages, read_units) = (Arc::clone(&self.pages), Arc::clone(&self.read_units));
        self.inner
            .scan_shard(shard)
            .inspect(move |page| {
                if let Ok(page) = page {
                    pages.fetch_add(1, Ordering::Relaxed);
                    // An eventually consistent read unit is 4 KB, at half the price of a strong one.
                    *lock(&read_units) += (page.len() * ITEM_BYTES).div_ceil(4096).max(1) as f64 / 2.0;
                }
            })
            .boxed()
    }
    async fn subscribe(&self, subscription: &Subscription) -> Result<(), SubscribeError> {
        self.inner.subscribe(subscription).await
    }
    async fn unsubscribe(&self, id: &ConnectionId, pattern: &ChannelPattern) -> Result<(), StoreError> {
        self.inner.unsubscribe(id, pattern).await
    }
    fn subscribers_shard(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
    ) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.inner.subscribers_shard(pattern, shard)
    }
}

/// The worker as Lambda runs it, timing each invocation.
struct TimedFunction {
    worker: Worker,
    started: AtomicU64,
    finished: AtomicU64,
    /// Simulated seconds of every finished invocation, and of the longest.
    durations: Mutex<(f64, f64)>,
    running: AtomicUsize,
}

#[async_trait]
impl Function for TimedFunction {
    async fn invoke(&self, payload: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, FunctionError> {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
        // Counts the invocation down however it ends: Lambda stopping it at its timeout drops this.
        let guard = Running { function: self, began: Instant::now() };
        let response = self.worker.invoke(payload, deadline).await;
        self.finished.fetch_add(1, Ordering::Relaxed);
        drop(guard);
        response
    }
}

struct Running<'a> {
    function: &'a TimedFunction,
    began: Instant,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let took = self.began.elapsed().as_secs_f64();
        let mut durations = lock(&self.function.durations);
        durations.0 += took;
        durations.1 = durations.1.max(took);
        self.function.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs one broadcast to `settings.connections` and reports it. Call it on a runtime whose clock is
/// paused (`tokio::time::pause`), or it takes the broadcast's real time.
pub async fn run(settings: SimSettings) -> anyhow::Result<SimReport> {
    let mut rng = StdRng::seed_from_u64(settings.seed);
    let gone: Vec<bool> =
        (0..settings.connections).map(|_| rng.random_bool(settings.gone.clamp(0.0, 1.0))).collect();
    let live = gone.iter().filter(|gone| !**gone).count();

    let store = MemoryStore::with_page_size(settings.page_size.max(1));
    let connected_at_ms = shared::clock::epoch_ms() - 3_600_000;
    for i in 0..settings.connections {
        let record =
            ConnectionRecord { id: id(i), connected_at_ms, source_ip: None, expires_at_s: i64::MAX / 2 };
        store.put(&record).await?;
    }
    let pages = Arc::new(AtomicU64::new(0));
    let read_units = Arc::new(Mutex::new(0.0));
    let store =
        Arc::new(CountingStore { inner: store, pages: pages.clone(), read_units: read_units.clone() });

    let poster = Arc::new(SimPoster {
        latency: settings.latency,
        throttle: settings.throttle.clamp(0.0, 1.0),
        account_rate: settings.account_rate.max(1.0),
        account_burst: settings.account_burst.max(1.0),
        bucket: Mutex::new((settings.account_burst.max(1.0), Instant::now())),
        service: settings
            .capacity
            .filter(|capacity| *capacity > 0.0)
            .map(|capacity| (Duration::from_secs_f64(1.0 / capacity), Mutex::new(Instant::now()))),
        rng: Mutex::new(StdRng::seed_from_u64(settings.seed.wrapping_add(1))),
        received: (0..settings.connections).map(|_| AtomicU32::new(0)).collect(),
        gone,
        last_delivery: Mutex::new(None),
        calls: AtomicU64::new(0),
        throttled_by_account: AtomicU64::new(0),
        throttled_injected: AtomicU64::new(0),
        gone_answers: AtomicU64::new(0),
    });
    let memory_queue = Arc::new(MemoryQueue::new(settings.queue));
    let queue = Arc::new(CountingQueue {
        inner: memory_queue.clone(),
        shard_jobs: AtomicU64::new(0),
        retry_jobs: AtomicU64::new(0),
        requests: AtomicU64::new(0),
    });
    let worker = Worker::new(store.clone(), poster.clone(), queue.clone(), settings.worker.clone());
    let function = Arc::new(TimedFunction {
        worker,
        started: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        durations: Mutex::new((0.0, 0.0)),
        running: AtomicUsize::new(0),
    });

    let data = RawValue::from_string(format!("\"{}\"", "x".repeat(settings.message_bytes)))?;
    let envelope = Envelope::broadcast(id(0), shared::clock::epoch_ms(), data)?;
    let began = Instant::now();
    queue.send(&Job::broadcast(envelope)).await?;

    let mapping = Mapping {
        queue: memory_queue.clone(),
        queue_name: "simulated-broadcasts".into(),
        api: Api { api_id: "sim".into(), stage: "sim".into(), region: "us-east-1".into() },
        function: function.clone(),
        settings: settings.esm,
    };
    let shutdown = CancellationToken::new();
    let polling = tokio::spawn(mapping.run(shutdown.clone()));
    let finished = loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let stats = memory_queue.stats();
        let idle = stats.visible + stats.in_flight + stats.delayed == 0
            && function.running.load(Ordering::Relaxed) == 0;
        if idle {
            break true;
        }
        if began.elapsed() >= settings.limit {
            break false;
        }
    };
    shutdown.cancel();
    polling.await?;

    let counts: Vec<u32> = poster.received.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    let delivered = counts.iter().filter(|n| **n > 0).count();
    let duplicated: u64 = counts.iter().map(|n| u64::from(n.saturating_sub(1))).sum();
    let last = *lock(&poster.last_delivery);
    let invocations = function.started.load(Ordering::Relaxed);
    let (busy_s, longest) = *lock(&function.durations);
    let read_units = *lock(&read_units);
    let gone_answers = poster.gone_answers.load(Ordering::Relaxed);
    let sqs_requests = queue.requests.load(Ordering::Relaxed) + 2 * invocations;
    let cost = Cost {
        api_gateway: delivered as f64 * 1e-6 * settings.message_bytes.div_ceil(32 * 1024).max(1) as f64,
        lambda: busy_s * f64::from(settings.memory_mb) / 1024.0 * 0.000_013_333_4
            + invocations as f64 * 0.2e-6,
        sqs: sqs_requests as f64 * 0.4e-6,
        dynamodb: read_units * 0.125e-6 + gone_answers as f64 * 0.625e-6,
    };
    Ok(SimReport {
        connections: settings.connections,
        live,
        delivered,
        duplicated,
        lost: live - delivered,
        time_to_last_delivery_s: last.map_or(0.0, |last| last.duration_since(began).as_secs_f64()),
        floor_s: (live as f64 - settings.account_burst).max(0.0) / settings.account_rate.max(1.0),
        invocations,
        timed_out: invocations - function.finished.load(Ordering::Relaxed),
        longest_invocation_s: longest,
        shard_jobs: queue.shard_jobs.load(Ordering::Relaxed),
        retry_jobs: queue.retry_jobs.load(Ordering::Relaxed),
        dead_letters: memory_queue.stats().dead,
        calls: poster.calls.load(Ordering::Relaxed),
        throttled_by_account: poster.throttled_by_account.load(Ordering::Relaxed),
        throttled_injected: poster.throttled_injected.load(Ordering::Relaxed),
        gone_answers,
        scan_pages: pages.load(Ordering::Relaxed),
        read_units,
        cost_usd: cost.api_gateway + cost.lambda + cost.sqs + cost.dynamodb,
        cost,
        finished,
        settings: EchoedSettings {
            post_concurrency: settings.worker.post_concurrency,
            post_rate: settings.worker.post_rate,
            shard_size: settings.worker.shard_size,
            max_concurrency: settings.esm.max_concurrency,
            batch_size: settings.esm.batch_size,
            function_timeout_s: settings.esm.function_timeout.as_secs_f64(),
            latency_ms: (settings.latency.0.as_millis(), settings.latency.1.as_millis()),
            capacity: settings.capacity,
            throttle: settings.throttle,
            gone: settings.gone,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(connections: usize) -> SimSettings {
        SimSettings { connections, ..SimSettings::default() }
    }

    #[tokio::test(start_paused = true)]
    async fn a_sharded_broadcast_reaches_every_live_connection_once() {
        let report = run(small(20_000)).await.expect("simulated");
        assert!(report.finished);
        assert_eq!((report.delivered, report.lost, report.duplicated), (20_000, 0, 0));
        assert!(report.shard_jobs >= 9, "{} shard jobs", report.shard_jobs);
        assert!(report.invocations >= 2);
        assert!(report.time_to_last_delivery_s >= report.floor_s, "{report:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_small_broadcast_is_not_split() {
        let report = run(small(500)).await.expect("simulated");
        assert_eq!((report.delivered, report.lost, report.duplicated), (500, 0, 0));
        assert_eq!((report.shard_jobs, report.invocations), (0, 1));
        assert_eq!(report.scan_pages, 2, "the probe and the rest");
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_and_gone_connections_lose_nothing_and_double_nothing() {
        let report =
            run(SimSettings { throttle: 0.05, gone: 0.02, ..small(20_000) }).await.expect("simulated");
        assert!(report.finished);
        assert_eq!((report.lost, report.duplicated, report.dead_letters), (0, 0, 0), "{report:?}");
        assert!(report.throttled_injected > 0 && report.gone_answers > 0);
        assert!(report.live < 20_000);
    }

    #[tokio::test(start_paused = true)]
    async fn an_endpoint_of_limited_capacity_serves_no_faster_than_it() {
        let unlimited = run(small(4_000)).await.expect("simulated");
        let limited = run(SimSettings { capacity: Some(1_000.0), ..small(4_000) }).await.expect("simulated");
        assert_eq!((limited.delivered, limited.lost, limited.duplicated), (4_000, 0, 0));
        assert!(limited.time_to_last_delivery_s >= 4.0, "{limited:?}");
        assert!(unlimited.time_to_last_delivery_s < 2.0, "{unlimited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn without_shards_one_invocation_posts_everything() {
        let settings = SimSettings {
            worker: WorkerSettings { shard_size: 0, ..WorkerSettings::default() },
            ..small(5_000)
        };
        let report = run(settings).await.expect("simulated");
        assert_eq!((report.delivered, report.lost, report.duplicated), (5_000, 0, 0));
        assert_eq!((report.shard_jobs, report.invocations), (0, 1));
    }
}
