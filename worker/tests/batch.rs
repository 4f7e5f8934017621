//! The worker on in-memory ports, fed SQS events in the exact JSON shape Lambda receives.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use shared::clock::epoch_ms;
use shared::memory::{MemoryPoster, MemoryQueue, MemoryStore, Scripted};
use shared::{
    Audience, Channel, ChannelPattern, ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore,
    Envelope, Job, Queue, QueueError, Sender, Shard, StoreError, SubscribeError, Subscription,
};
use tokio::time::Instant;
use worker::{Worker, WorkerSettings};

fn id(n: usize) -> ConnectionId {
    ConnectionId::parse(&format!("conn{n:06}AAAAAA=")).expect("id")
}

fn broadcast_body(from: usize, data: &str) -> String {
    let data = serde_json::value::RawValue::from_string(data.to_owned()).expect("raw json");
    Job::broadcast(Envelope::broadcast(id(from), 1_764_167_186_000, data).expect("fits")).to_body()
}

fn sqs_event(bodies: &[String]) -> SqsEvent {
    let records: Vec<Value> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| {
            json!({
                "messageId": format!("059f36b4-87a3-44ab-83d2-66197597{n:04}"),
                "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1545082649183",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1545082649185"
                },
                "messageAttributes": {},
                "md5OfBody": "098f6bcd4621d373cade4e832627b4f6",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:my-queue",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).expect("an SQS event")
}

/// A worker with a queue of its own for retry jobs, quick backoff and no post-rate limit to speak of.
fn worker(
    store: Arc<dyn ConnectionStore>,
    poster: Arc<MemoryPoster>,
    concurrency: usize,
) -> (Worker, Arc<MemoryQueue>) {
    worker_with(store, poster, WorkerSettings { post_concurrency: concurrency, ..settings() })
}

fn settings() -> WorkerSettings {
    WorkerSettings {
        post_rate: 1_000_000,
        account_rate: 1_000_000,
        min_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(20),
        deadline_reserve: Duration::from_millis(100),
        ..WorkerSettings::default()
    }
}

fn worker_with(
    store: Arc<dyn ConnectionStore>,
    poster: Arc<MemoryPoster>,
    settings: WorkerSettings,
) -> (Worker, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    (Worker::new(store, poster, queue.clone(), settings), queue)
}

/// Lambda's deadline for an invocation that has `secs` to run.
fn deadline(secs: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(secs)
}

/// A connection as the store lists it, long past its handshake.
fn old(n: usize) -> ConnectionRef {
    ConnectionRef { id: id(n), connected_at_ms: 0 }
}

/// A retry job, as a worker would have queued it, carrying a broadcast of `7` to `targets`.
fn retry_job(targets: Vec<ConnectionRef>, attempt: u32) -> (Envelope, String) {
    let data = serde_json::value::RawValue::from_string("7".into()).expect("json");
    let envelope = Envelope::broadcast(id(0), 1, data).expect("fits");
    let body = Job::retries(&envelope, targets, attempt, 256 * 1024).remove(0).to_body();
    (envelope, body)
}

/// The connections a retry job names.
fn targets_of(job: Job) -> Vec<ConnectionRef> {
    match job.audience {
        Audience::Connections(targets) => targets,
        other => panic!("a retry job names its targets, not {other:?}"),
    }
}

/// A publish of `data` to `channel` by connection 0, as the ingress queues it.
fn publish_body(channel: &str, data: &str) -> String {
    let data = serde_json::value::RawValue::from_string(data.to_owned()).expect("raw json");
    let channel = Channel::parse(channel).expect("channel");
    let sender = Sender { connection: Some(id(0)), user: None };
    Job::publish(Envelope::message(channel, sender, 1_764_167_186_000, data).expect("fits")).to_body()
}

fn message_id(n: usize) -> String {
    format!("059f36b4-87a3-44ab-83d2-66197597{n:04}")
}

/// Counts scans, to prove there is one per batch and not one per message.
struct CountingStore {
    inner: MemoryStore,
    scans: AtomicUsize,
    fail_scans: bool,
    queries: AtomicUsize,
    fail_queries: bool,
    /// How long each query takes to begin answering, as a round trip to DynamoDB does.
    query_delay: Duration,
}

impl CountingStore {
    async fn with_connections(n: usize, page_size: usize) -> Arc<Self> {
        let inner = MemoryStore::with_page_size(page_size);
        for i in 0..n {
            let record = ConnectionRecord { id: id(i), connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
            inner.put(&record).await.expect("put");
        }
        Arc::new(Self::over(inner))
    }

    fn over(inner: MemoryStore) -> Self {
        Self {
            inner,
            scans: AtomicUsize::new(0),
            fail_scans: false,
            queries: AtomicUsize::new(0),
            fail_queries: false,
            query_delay: Duration::ZERO,
        }
    }

    /// Subscribes connection `n` to `pattern`.
    async fn subscribe(&self, n: usize, pattern: &str) {
        let subscription = Subscription {
            connection: old(n),
            pattern: ChannelPattern::parse(pattern).expect("pattern"),
            expires_at_s: 0,
            limit: 100,
        };
        self.inner.subscribe(&subscription).await.expect("subscribe");
    }
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
        self.scans.fetch_add(1, Ordering::SeqCst);
        if self.fail_scans {
            return Box::pin(futures::stream::iter([Err(StoreError::Unavailable("throttled".into()))]));
        }
        self.inner.scan_shard(shard)
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
        self.queries.fetch_add(1, Ordering::SeqCst);
        if self.fail_queries {
            return Box::pin(futures::stream::iter([Err(StoreError::Unavailable("throttled".into()))]));
        }
        let pages = self.inner.subscribers_shard(pattern, shard);
        let delay = self.query_delay;
        futures::stream::once(async move {
            tokio::time::sleep(delay).await;
            pages
        })
        .flatten()
        .boxed()
    }
}

#[tokio::test]
async fn every_message_of_a_batch_reaches_every_connection_with_one_scan() {
    let store = CountingStore::with_connections(25, 7).await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);
    let bodies: Vec<String> = (0..3).map(|n| broadcast_body(0, &format!("{{\"n\":{n}}}"))).collect();

    let response = worker.handle(sqs_event(&bodies), deadline(30.0)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        store.scans.load(Ordering::SeqCst),
        2,
        "the probe and the rest of the table, once per batch, not per message"
    );
    let delivered = poster.delivered();
    assert_eq!(delivered.len(), 3 * 25);
    for n in 0..25 {
        let frames: Vec<Value> = delivered
            .iter()
            .filter(|(to, _)| *to == id(n))
            .map(|(_, frame)| serde_json::from_slice(frame).expect("a JSON frame"))
            .collect();
        assert_eq!(frames.len(), 3, "connection {n}");
        let mut seen: Vec<i64> = frames.iter().map(|f| f["data"]["n"].as_i64().expect("n")).collect();
        seen.sort_unstable();
        assert_eq!(seen, [0, 1, 2]);
        assert!(frames.iter().all(|f| f["from"] == id(0).as_str() && f["type"] == "broadcast"));
        assert!(frames.iter().all(|f| f["id"].as_str().is_some_and(|id| id.len() == 36)));
    }
}

#[tokio::test]
async fn a_connection_that_answers_gone_is_pruned_and_the_sender_is_kept() {
    let store = CountingStore::with_connections(5, 2).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(3), Scripted::Gone);
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker
        .process(sqs_event(&[broadcast_body(0, "\"hi\""), broadcast_body(0, "\"again\"")]), deadline(30.0))
        .await;

    assert!(report.failed.is_empty(), "a gone connection is not a failure");
    assert_eq!(report.pruned, 1);
    assert_eq!(report.delivered, 8);
    assert_eq!(store.inner.ids(), [id(0), id(1), id(2), id(4)]);
}

#[tokio::test]
async fn a_gone_connection_still_completing_its_handshake_is_not_pruned() {
    let store = CountingStore::with_connections(2, 10).await;
    let connecting =
        ConnectionRecord { id: id(7), connected_at_ms: epoch_ms(), source_ip: None, expires_at_s: 0 };
    store.put(&connecting).await.expect("put");
    let poster = Arc::new(MemoryPoster::default());
    // API Gateway answers 410 until the handshake completes, and for good once the connection is gone.
    poster.script(&id(7), Scripted::Gone);
    poster.script(&id(1), Scripted::Gone);
    let (worker, _queue) = worker(store.clone(), poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert_eq!((report.pruned, report.kept_connecting), (1, 1));
    assert_eq!(store.inner.ids(), [id(0), id(7)], "the old gone record is pruned, the young one kept");
}

#[tokio::test]
async fn posts_never_exceed_the_concurrency_bound() {
    let store = CountingStore::with_connections(200, 50).await;
    let poster = Arc::new(MemoryPoster::with_delay(Duration::from_millis(2)));
    let (worker, _queue) = worker(store, poster.clone(), 8);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert_eq!(report.delivered, 200);
    assert!(poster.max_in_flight() <= 8, "{} posts in flight", poster.max_in_flight());
    assert!(poster.max_in_flight() > 1, "posts ran one at a time");
}

#[tokio::test]
async fn a_poison_message_is_reported_alone_and_the_rest_of_the_batch_is_delivered() {
    let store = CountingStore::with_connections(3, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker(store, poster.clone(), 4);
    let bodies = [broadcast_body(0, "1"), "not a job".to_owned(), broadcast_body(1, "2")];

    let response = worker.handle(sqs_event(&bodies), deadline(30.0)).await;

    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, [message_id(1)]);
    assert_eq!(poster.delivered().len(), 6);
}

#[tokio::test]
async fn throttled_and_failing_posts_are_retried_within_the_invocation_until_they_succeed() {
    let store = CountingStore::with_connections(3, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script_times(&id(1), Scripted::Throttled, 3);
    poster.script_times(&id(2), Scripted::Transient, 2);
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!((report.delivered, report.retried, report.requeued), (3, 5, 0));
    assert_eq!(poster.recipients().len(), 3);
    assert_eq!(poster.delivered().len(), 3, "each connection exactly once");
    assert_eq!(queue.stats().visible, 0, "nothing left for a retry job");
    assert_eq!(store.inner.len(), 3, "a throttled connection is not pruned");
}

#[tokio::test]
async fn connections_still_failing_near_the_deadline_go_back_on_the_queue_alone() {
    let store = CountingStore::with_connections(6, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(2), Scripted::Throttled);
    poster.script(&id(4), Scripted::Transient);
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(1.5)).await;

    assert!(report.failed.is_empty(), "redelivering the message would reach the other four twice");
    assert_eq!((report.delivered, report.requeued), (4, 2));
    assert!(queue.peek().is_empty(), "not visible at once: the retry job waits on the queue");
    let delayed = queue.peek_delayed();
    assert_eq!(delayed.len(), 1);
    let (body, wait) = &delayed[0];
    assert!(*wait > Duration::from_millis(500) && *wait <= Duration::from_secs(1), "{wait:?}");
    let job = Job::parse(body).expect("a retry job");
    assert_eq!(job.attempt, 1);
    let mut targets = targets_of(job);
    targets.sort();
    assert_eq!(targets, [old(2), old(4)], "with their ages, to judge a later 410");
}

#[tokio::test]
async fn a_retry_job_reaches_only_its_targets_without_scanning() {
    let store = CountingStore::with_connections(5, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);
    let (envelope, retry) = retry_job(vec![old(1), old(3)], 1);

    let report = worker.process(sqs_event(&[retry]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(store.scans.load(Ordering::SeqCst), 0, "a retry job needs no scan");
    let mut recipients: Vec<ConnectionId> = poster.recipients().into_iter().collect();
    recipients.sort();
    assert_eq!(recipients, [id(1), id(3)]);
    let frame: Value = serde_json::from_slice(&poster.delivered()[0].1).expect("json");
    assert_eq!(frame["id"], envelope.id.to_string(), "the retry carries the broadcast's own id");
    assert_eq!(queue.stats().visible, 0);
}

#[tokio::test]
async fn a_broadcast_out_of_attempts_gives_up_on_its_failing_connections() {
    let store = CountingStore::with_connections(3, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(1), Scripted::Transient);
    let (worker, queue) =
        worker_with(store.clone(), poster.clone(), WorkerSettings { max_job_attempts: 2, ..settings() });
    let (_, last_try) = retry_job(vec![old(1), old(2)], 1);

    let report = worker.process(sqs_event(&[last_try]), deadline(1.5)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.delivered, report.abandoned, report.requeued), (1, 1, 0));
    assert_eq!(queue.stats().visible, 0, "no further retry job");
}

#[tokio::test]
async fn the_post_rate_budget_caps_an_invocations_calls_and_queues_the_rest() {
    let store = CountingStore::with_connections(400, 100).await;
    let poster = Arc::new(MemoryPoster::default());
    // 20 calls a second with a burst of 10, for an invocation with about a second to post.
    let (worker, queue) = worker_with(
        store.clone(),
        poster.clone(),
        WorkerSettings {
            post_rate: 20,
            account_rate: 20,
            deadline_reserve: Duration::from_millis(100),
            ..settings()
        },
    );
    let started = Instant::now();

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(1.1)).await;

    // However slow this machine, the budget allows at most the burst plus 20/s over the time it took.
    let allowed = 10 + (20.0 * started.elapsed().as_secs_f64()).ceil() as usize;
    assert!(poster.calls() <= allowed, "{} calls, {allowed} allowed", poster.calls());
    assert!(report.requeued > 0, "400 connections cannot all be reached at 20/s in a second");
    assert!(report.delivered >= 10, "the burst alone allows 10: {report:?}");
    assert_eq!(report.delivered + report.requeued, 400, "{report:?}");
    assert!(report.failed.is_empty());
    let queued: usize =
        queue.peek_delayed().iter().map(|(body, _)| targets_of(Job::parse(body).expect("job")).len()).sum();
    assert_eq!(queued, report.requeued);
}

#[tokio::test]
async fn a_forbidden_post_goes_into_a_retry_job_rather_than_redelivering_the_message() {
    let store = CountingStore::with_connections(3, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(2), Scripted::Forbidden);
    let (worker, queue) = worker(store.clone(), poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.delivered, report.requeued), (2, 1));
    assert_eq!(queue.stats().delayed, 1);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_keeps_answering_429_costs_the_invocation_its_own_budget_not_the_deadline() {
    let store = CountingStore::with_connections(4, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    // A client that has stopped reading: its buffer stays full, every post is throttled.
    poster.script(&id(3), Scripted::Throttled);
    let settings = WorkerSettings {
        min_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_secs(2),
        deadline_reserve: Duration::from_secs(3),
        ..settings()
    };
    let (worker, queue) = worker_with(store.clone(), poster.clone(), settings.clone());
    let started = Instant::now();

    let report =
        worker.process(sqs_event(&[broadcast_body(0, "1"), broadcast_body(0, "2")]), deadline(30.0)).await;

    let took = started.elapsed();
    assert!(took <= settings.target_retry_budget + Duration::from_millis(100), "held for {took:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!((report.delivered, report.requeued), (6, 2), "the other three got both broadcasts");
    assert!(report.retried >= 2, "retried within its budget first: {report:?}");
    let delayed = queue.peek_delayed();
    assert_eq!(delayed.len(), 2, "one retry job per broadcast, for the stuck connection alone");
    for (body, wait) in delayed {
        assert_eq!(targets_of(Job::parse(&body).expect("job")), [old(3)]);
        assert_eq!(wait, settings.retry_job_delay, "delayed so that it does not spin");
    }
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_answered_429s_in_a_row_is_skipped_but_for_a_probe_a_second() {
    let store = CountingStore::with_connections(4, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(3), Scripted::Throttled);
    let settings = WorkerSettings { min_backoff: Duration::from_millis(50), ..settings() };
    let (worker, _queue) = worker_with(store.clone(), poster.clone(), settings.clone());

    // A batch of six: six 429s in a row from it, and nothing getting through.
    let batch: Vec<String> = (0..6).map(|n| broadcast_body(0, &n.to_string())).collect();
    let started = Instant::now();
    let first = worker.process(sqs_event(&batch), deadline(30.0)).await;
    assert_eq!((first.delivered, first.requeued), (18, 6), "{first:?}");
    assert!(started.elapsed() < settings.target_retry_budget, "stuck at once, not after its budget");

    // Within the next second: no call to it at all, and no waiting.
    let (started, calls) = (Instant::now(), poster.calls());
    let second = worker.process(sqs_event(&[broadcast_body(0, "2")]), deadline(30.0)).await;
    assert_eq!(started.elapsed(), Duration::ZERO, "held for {:?}", started.elapsed());
    assert_eq!(poster.calls() - calls, 3, "only the three others were posted to");
    assert_eq!((second.delivered, second.requeued, second.retried), (3, 1, 0), "{second:?}");

    // Nor from a retry job: it goes into the next one.
    let calls = poster.calls();
    let (_, retry) = retry_job(vec![old(3)], 1);
    let retried = worker.process(sqs_event(&[retry]), deadline(30.0)).await;
    assert_eq!((poster.calls() - calls, retried.requeued, retried.retried), (0, 1, 0), "{retried:?}");

    // A second on, one probe: it fails, without retries.
    tokio::time::advance(settings.probe_every).await;
    let third = worker.process(sqs_event(&[broadcast_body(0, "3")]), deadline(30.0)).await;
    assert_eq!((third.delivered, third.requeued, third.retried), (3, 1, 0), "{third:?}");

    // The client catches up: the next probe reaches it, and it is stuck no more.
    poster.unscript(&id(3));
    tokio::time::advance(settings.probe_every).await;
    let fourth = worker.process(sqs_event(&[broadcast_body(0, "4")]), deadline(30.0)).await;
    assert_eq!((fourth.delivered, fourth.requeued), (4, 0), "{fourth:?}");
    poster.script_times(&id(3), Scripted::Throttled, 2);
    let fifth = worker.process(sqs_event(&[broadcast_body(0, "5")]), deadline(30.0)).await;
    assert_eq!((fifth.delivered, fifth.retried), (4, 2), "retried again once it had recovered: {fifth:?}");
}

#[tokio::test(start_paused = true)]
async fn a_connection_failing_with_server_errors_is_not_taken_for_a_stuck_one() {
    let store = CountingStore::with_connections(2, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(1), Scripted::Transient);
    let (worker, _queue) = worker_with(
        store,
        poster.clone(),
        WorkerSettings { min_backoff: Duration::from_millis(50), ..settings() },
    );
    for n in 0..2 {
        let report = worker.process(sqs_event(&[broadcast_body(0, &n.to_string())]), deadline(30.0)).await;
        assert!(report.retried > 0, "retried within its budget each time: {report:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn each_later_retry_job_waits_twice_as_long_on_the_queue() {
    let store = CountingStore::with_connections(3, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(1), Scripted::Throttled);
    let (worker, queue) = worker(store, poster, 4);
    for (attempt, expected) in [(1, 2), (2, 4), (3, 8)] {
        let (_, retry) = retry_job(vec![old(1)], attempt);
        let report = worker.process(sqs_event(&[retry]), deadline(30.0)).await;
        assert_eq!(report.requeued, 1, "attempt {attempt}");
        let delayed = queue.peek_delayed();
        let (body, wait) = delayed.last().expect("a retry job");
        assert_eq!(Job::parse(body).expect("job").attempt, attempt + 1);
        assert_eq!(*wait, Duration::from_secs(expected), "attempt {attempt}");
    }
}

#[tokio::test]
async fn a_payload_too_large_answer_is_not_redelivered_to_everyone() {
    let store = CountingStore::with_connections(2, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(1), Scripted::PayloadTooLarge);
    let (worker, _queue) = worker(store, poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(report.delivered, 1);
}

#[tokio::test]
async fn a_failed_scan_reports_every_broadcast_of_the_batch() {
    let store = Arc::new(CountingStore { fail_scans: true, ..CountingStore::over(MemoryStore::default()) });
    let (worker, _queue) = worker(store, Arc::new(MemoryPoster::default()), 4);

    let report =
        worker.process(sqs_event(&[broadcast_body(0, "1"), broadcast_body(0, "2")]), deadline(30.0)).await;

    assert_eq!(report.failed, [message_id(0), message_id(1)]);
}

/// Ten connections: 0–2 on `chat/general`, 3–4 on `chat/*`, 5 on both, 6 on `chat/eu/*`, 7 on `news`,
/// 8 and 9 on nothing.
async fn subscribed_store() -> Arc<CountingStore> {
    let store = CountingStore::with_connections(10, 2).await;
    for n in 0..3 {
        store.subscribe(n, "chat/general").await;
    }
    for n in 3..5 {
        store.subscribe(n, "chat/*").await;
    }
    store.subscribe(5, "chat/*").await;
    store.subscribe(5, "chat/general").await;
    store.subscribe(6, "chat/eu/*").await;
    store.subscribe(7, "news").await;
    store
}

fn recipients(poster: &MemoryPoster) -> Vec<ConnectionId> {
    let mut ids: Vec<ConnectionId> = poster.delivered().into_iter().map(|(to, _)| to).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_publish_reaches_each_subscriber_of_its_channel_and_wildcards_once_and_no_one_else() {
    let store = subscribed_store().await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[publish_body("chat/general", "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(recipients(&poster), (0..6).map(id).collect::<Vec<_>>(), "5 once, though on two patterns");
    assert_eq!(store.scans.load(Ordering::SeqCst), 0, "a publish queries, never scans");
    assert_eq!(store.queries.load(Ordering::SeqCst), 2 * 2, "chat/general and chat/*: a probe, the rest");
    let frame: Value = serde_json::from_slice(&poster.delivered()[0].1).expect("json");
    assert_eq!((frame["type"].as_str(), frame["channel"].as_str()), (Some("message"), Some("chat/general")));

    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker_with(store.clone(), poster.clone(), settings());
    worker.process(sqs_event(&[publish_body("chat/eu/paris", "2")]), deadline(30.0)).await;
    assert_eq!(recipients(&poster), [id(3), id(4), id(5), id(6)]);

    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker_with(store.clone(), poster.clone(), settings());
    let report = worker.process(sqs_event(&[publish_body("empty", "3")]), deadline(30.0)).await;
    assert_eq!((report.delivered, poster.calls()), (0, 0), "a channel nobody is in costs no post");
}

#[tokio::test]
async fn a_batch_queries_each_channel_once_for_all_its_messages_beside_one_scan_for_broadcasts() {
    let store = subscribed_store().await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);
    let bodies = [
        publish_body("news", "1"),
        broadcast_body(0, "2"),
        publish_body("news", "3"),
        publish_body("chat/general", "4"),
    ];

    let report = worker.process(sqs_event(&bodies), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(report.delivered, 1 + 10 + 1 + 6);
    assert_eq!(store.scans.load(Ordering::SeqCst), 2, "the probe and the rest");
    assert_eq!(
        store.queries.load(Ordering::SeqCst),
        2 * (1 + 2),
        "news once, chat/general and chat/* once, each a probe and the rest"
    );
    let to_seven: Vec<i64> = poster
        .delivered()
        .iter()
        .filter(|(to, _)| *to == id(7))
        .map(|(_, frame)| serde_json::from_slice::<Value>(frame).expect("json")["data"].as_i64().expect("n"))
        .collect();
    assert_eq!(to_seven.len(), 3, "news twice and the broadcast: {to_seven:?}");
}

#[tokio::test]
async fn a_gone_subscriber_is_pruned_with_its_subscriptions_and_an_unreached_one_goes_into_a_retry_job() {
    let store = subscribed_store().await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(5), Scripted::Gone);
    poster.script(&id(1), Scripted::Throttled);
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[publish_body("chat/general", "1")]), deadline(1.5)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.delivered, report.pruned, report.requeued), (4, 1, 1));
    assert!(store.inner.get(&id(5)).is_none());
    assert!(store.inner.subscriptions_of(&id(5)).is_empty(), "and both its subscriptions");
    assert_eq!(store.inner.subscription_count(), 9 - 2);
    let delayed = queue.peek_delayed();
    assert_eq!(delayed.len(), 1);
    let job = Job::parse(&delayed[0].0).expect("a retry job");
    assert_eq!(job.envelope.channel.as_ref().map(Channel::as_str), Some("chat/general"));
    assert_eq!(targets_of(job), [old(1)], "only the connection left, not the channel again");
}

#[tokio::test]
async fn a_failed_query_redelivers_that_channels_messages_only() {
    let inner = MemoryStore::default();
    for n in 0..3 {
        let record = ConnectionRecord { id: id(n), connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
        inner.put(&record).await.expect("put");
    }
    let store = Arc::new(CountingStore { fail_queries: true, ..CountingStore::over(inner) });
    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);

    let report =
        worker.process(sqs_event(&[publish_body("news", "1"), broadcast_body(0, "2")]), deadline(30.0)).await;

    assert_eq!(report.failed, [message_id(0)], "the broadcast was delivered; the publish will be again");
    assert_eq!(report.delivered, 3);
}

#[tokio::test(start_paused = true)]
async fn the_channels_of_a_batch_are_probed_at_once_not_one_after_another() {
    let store = Arc::new(CountingStore {
        query_delay: Duration::from_millis(10),
        ..CountingStore::over(MemoryStore::default())
    });
    for n in 0..5 {
        let record = ConnectionRecord { id: id(n), connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
        store.inner.put(&record).await.expect("put");
        store.subscribe(n, &format!("room/{n}")).await;
    }
    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);
    let bodies: Vec<String> = (0..5).map(|n| publish_body(&format!("room/{n}"), "1")).collect();
    let started = Instant::now();

    let report = worker.process(sqs_event(&bodies), deadline(30.0)).await;

    // Each channel is two partitions (`room/n`, `room/*`), each query 10 ms: the probes take 20 ms
    // at once, or 100 ms one after another, before the rest of each channel is listed (100 ms).
    let took = started.elapsed();
    assert_eq!((report.delivered, store.queries.load(Ordering::SeqCst)), (5, 5 * 2 * 2));
    assert!(took < Duration::from_millis(150), "{took:?}");
}

/// How many times each connection was posted to.
fn posts_per_connection(poster: &MemoryPoster) -> HashMap<ConnectionId, usize> {
    let mut counts = HashMap::new();
    for (to, _) in poster.delivered() {
        *counts.entry(to).or_insert(0) += 1;
    }
    counts
}

fn shard_of(body: &str) -> Shard {
    match Job::parse(body).expect("job").audience {
        Audience::Shard(shard) => shard,
        other => panic!("a shard job, not {other:?}"),
    }
}

#[tokio::test]
async fn a_broadcast_larger_than_a_shard_is_split_and_each_connection_gets_it_once() {
    let store = CountingStore::with_connections(3_000, 100).await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, queue) = worker_with(
        store.clone(),
        poster.clone(),
        WorkerSettings { shard_size: 500, min_shards: 8, ..settings() },
    );

    let first = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    // About 3,000 connections in shards of 500 makes about 6, raised to the 8 that spread them.
    assert_eq!(first.shards_queued, 7, "{first:?}");
    let jobs = queue.peek();
    let mut shards: Vec<u32> = jobs.iter().map(|body| shard_of(body).index()).collect();
    shards.sort_unstable();
    assert_eq!(shards, (1..8).collect::<Vec<_>>());
    assert!(jobs.iter().all(|body| shard_of(body).of() == 8));
    assert!(first.delivered > 0 && first.delivered < 3_000, "this invocation posts shard 0 only");

    let rest = worker.process(sqs_event(&jobs), deadline(30.0)).await;

    assert!(rest.failed.is_empty());
    assert_eq!(rest.shards_queued, 0, "a shard is not split again");
    assert_eq!(first.delivered + rest.delivered, 3_000);
    let counts = posts_per_connection(&poster);
    assert_eq!(counts.len(), 3_000);
    assert!(counts.values().all(|&posts| posts == 1), "the shards never overlap");
}

#[tokio::test]
async fn a_publish_to_a_channel_larger_than_a_shard_is_split_and_each_subscriber_gets_it_once() {
    let store = CountingStore::with_connections(3_000, 100).await;
    // Even connections through the wildcard, every third one directly, some both ways: 2,000.
    for n in 0..3_000 {
        if n % 2 == 0 {
            store.subscribe(n, "chat/*").await;
        }
        if n % 3 == 0 {
            store.subscribe(n, "chat/general").await;
        }
    }
    store.subscribe(1, "news").await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, queue) = worker_with(
        store.clone(),
        poster.clone(),
        WorkerSettings { shard_size: 300, min_shards: 8, ..settings() },
    );

    let first = worker.process(sqs_event(&[publish_body("chat/general", "1")]), deadline(30.0)).await;

    assert!(first.shards_queued >= 7, "{first:?}");
    let jobs = queue.peek();
    let channel = Channel::parse("chat/general").expect("channel");
    for body in &jobs {
        let Audience::ChannelShard { channel: of, shard } = Job::parse(body).expect("job").audience else {
            panic!("a channel shard job: {body}");
        };
        assert!(of == channel && shard.index() > 0 && shard.of() == jobs.len() as u32 + 1, "{body}");
    }
    assert!(first.delivered > 0 && first.delivered < 2_000, "this invocation posts shard 0 only");

    let rest = worker.process(sqs_event(&jobs), deadline(30.0)).await;

    assert!(rest.failed.is_empty() && rest.shards_queued == 0, "{rest:?}");
    assert_eq!(store.scans.load(Ordering::SeqCst), 0, "a publish never scans");
    let counts = posts_per_connection(&poster);
    let subscribed: Vec<ConnectionId> = (0..3_000).filter(|n| n % 2 == 0 || n % 3 == 0).map(id).collect();
    let mut reached: Vec<ConnectionId> = counts.keys().cloned().collect();
    reached.sort();
    assert_eq!(reached, subscribed);
    assert!(counts.values().all(|&posts| posts == 1), "the shards never overlap, whatever the pattern");
}

/// A queue that refuses every message.
struct RefusingQueue;

#[async_trait]
impl Queue for RefusingQueue {
    async fn send(&self, _job: &Job) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("SQS is down".into()))
    }
    async fn send_batch(&self, jobs: &[Job], _delay: Duration) -> Vec<Result<(), QueueError>> {
        jobs.iter().map(|_| Err(QueueError::Unavailable("SQS is down".into()))).collect()
    }
}

#[tokio::test]
async fn shards_the_queue_refuses_are_posted_by_the_invocation_itself_once() {
    let store = CountingStore::with_connections(3_000, 100).await;
    let poster = Arc::new(MemoryPoster::default());
    let settings = WorkerSettings { shard_size: 500, min_shards: 8, ..settings() };
    let worker = Worker::new(store.clone(), poster.clone(), Arc::new(RefusingQueue), settings);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.shards_queued, report.delivered), (0, 3_000));
    let counts = posts_per_connection(&poster);
    assert!(counts.len() == 3_000 && counts.values().all(|&posts| posts == 1));
}

#[tokio::test]
async fn a_malformed_shard_job_is_poison_reported_alone() {
    let store = CountingStore::with_connections(30, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    let (worker, _queue) = worker(store, poster.clone(), 4);
    let data = serde_json::value::RawValue::from_string("1".into()).expect("json");
    let envelope = Envelope::broadcast(id(0), 1, data).expect("fits");
    let shard = Job::shard(envelope, Shard::new(2, 4).expect("shard")).to_body();
    let beyond = shard.replace(r#""index":2"#, r#""index":4"#);
    let none = shard.replace(r#""of":4"#, r#""of":0"#);
    assert_ne!(beyond, shard);
    assert_ne!(none, shard);
    let bodies = [beyond, shard, none];

    let response = worker.handle(sqs_event(&bodies), deadline(30.0)).await;

    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, [message_id(0), message_id(2)]);
    let reached = posts_per_connection(&poster);
    assert!(!reached.is_empty() && reached.len() < 30, "shard 2 of 4 only: {}", reached.len());
}

#[tokio::test(start_paused = true)]
async fn an_invocation_stops_posting_at_its_reserve_and_queues_the_rest_whatever_its_pace() {
    let store = CountingStore::with_connections(20_000, 7_000).await;
    // Each call takes 40 ms, as from Lambda to API Gateway.
    let poster = Arc::new(MemoryPoster::with_delay(Duration::from_millis(40)));
    let (worker, _queue) = worker_with(
        store.clone(),
        poster.clone(),
        WorkerSettings {
            post_concurrency: 64,
            post_rate: 2_000,
            account_rate: 2_000,
            shard_size: 0,
            deadline_reserve: Duration::from_secs(3),
            ..settings()
        },
    );
    let started = Instant::now();

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(5.0)).await;

    let took = started.elapsed();
    assert!(took < Duration::from_millis(2_500), "the invocation ran {took:?} of its 5 s");
    assert!(report.requeued > 10_000, "{report:?}");
    assert_eq!(report.delivered + report.requeued, 20_000, "{report:?}");
}
