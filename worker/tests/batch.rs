//! The worker on in-memory ports, fed SQS events in the exact JSON shape Lambda receives.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use futures::stream::BoxStream;
use serde_json::{Value, json};
use shared::clock::epoch_ms;
use shared::memory::{MemoryPoster, MemoryStore, Scripted};
use shared::{ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore, Envelope, Job, StoreError};
use worker::Worker;

fn id(n: usize) -> ConnectionId {
    ConnectionId::parse(&format!("conn{n:06}AAAAAA=")).expect("id")
}

fn broadcast_body(from: usize, data: &str) -> String {
    let data = serde_json::value::RawValue::from_string(data.to_owned()).expect("raw json");
    Job { envelope: Envelope::broadcast(id(from), 1_764_167_186_000, data).expect("fits") }.to_body()
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

fn message_id(n: usize) -> String {
    format!("059f36b4-87a3-44ab-83d2-66197597{n:04}")
}

/// Counts scans, to prove there is one per batch and not one per message.
struct CountingStore {
    inner: MemoryStore,
    scans: AtomicUsize,
    fail_scans: bool,
}

impl CountingStore {
    async fn with_connections(n: usize, page_size: usize) -> Arc<Self> {
        let inner = MemoryStore::with_page_size(page_size);
        for i in 0..n {
            let record = ConnectionRecord { id: id(i), connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
            inner.put(&record).await.expect("put");
        }
        Arc::new(Self { inner, scans: AtomicUsize::new(0), fail_scans: false })
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
    fn scan(&self) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        if self.fail_scans {
            return Box::pin(futures::stream::iter([Err(StoreError::Unavailable("throttled".into()))]));
        }
        self.inner.scan()
    }
}

#[tokio::test]
async fn every_message_of_a_batch_reaches_every_connection_with_one_scan() {
    let store = CountingStore::with_connections(25, 7).await;
    let poster = Arc::new(MemoryPoster::default());
    let worker = Worker::new(store.clone(), poster.clone(), 4);
    let bodies: Vec<String> = (0..3).map(|n| broadcast_body(0, &format!("{{\"n\":{n}}}"))).collect();

    let response = worker.handle(sqs_event(&bodies)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(store.scans.load(Ordering::SeqCst), 1, "one scan per batch, not per message");
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
    let worker = Worker::new(store.clone(), poster.clone(), 4);

    let report =
        worker.process(sqs_event(&[broadcast_body(0, "\"hi\""), broadcast_body(0, "\"again\"")])).await;

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
    let worker = Worker::new(store.clone(), poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")])).await;

    assert_eq!((report.pruned, report.kept_connecting), (1, 1));
    assert_eq!(store.inner.ids(), [id(0), id(7)], "the old gone record is pruned, the young one kept");
}

#[tokio::test]
async fn posts_never_exceed_the_concurrency_bound() {
    let store = CountingStore::with_connections(200, 50).await;
    let poster = Arc::new(MemoryPoster::with_delay(Duration::from_millis(2)));
    let worker = Worker::new(store, poster.clone(), 8);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")])).await;

    assert_eq!(report.delivered, 200);
    assert!(poster.max_in_flight() <= 8, "{} posts in flight", poster.max_in_flight());
    assert!(poster.max_in_flight() > 1, "posts ran one at a time");
}

#[tokio::test]
async fn a_poison_message_is_reported_alone_and_the_rest_of_the_batch_is_delivered() {
    let store = CountingStore::with_connections(3, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    let worker = Worker::new(store, poster.clone(), 4);
    let bodies = [broadcast_body(0, "1"), "not a job".to_owned(), broadcast_body(1, "2")];

    let response = worker.handle(sqs_event(&bodies)).await;

    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, [message_id(1)]);
    assert_eq!(poster.delivered().len(), 6);
}

#[tokio::test]
async fn a_throttled_post_fails_its_message_so_sqs_redelivers_it() {
    let store = CountingStore::with_connections(3, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(2), Scripted::Throttled);
    let worker = Worker::new(store.clone(), poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")])).await;

    assert_eq!(report.failed, [message_id(0)]);
    assert_eq!(store.inner.len(), 3, "a throttled connection is not pruned");
}

#[tokio::test]
async fn a_payload_too_large_answer_is_not_redelivered_to_everyone() {
    let store = CountingStore::with_connections(2, 10).await;
    let poster = Arc::new(MemoryPoster::default());
    poster.script(&id(1), Scripted::PayloadTooLarge);
    let worker = Worker::new(store, poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")])).await;

    assert!(report.failed.is_empty());
    assert_eq!(report.delivered, 1);
}

#[tokio::test]
async fn a_failed_scan_reports_every_broadcast_of_the_batch() {
    let store = Arc::new(CountingStore {
        inner: MemoryStore::default(),
        scans: AtomicUsize::new(0),
        fail_scans: true,
    });
    let worker = Worker::new(store, Arc::new(MemoryPoster::default()), 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1"), broadcast_body(0, "2")])).await;

    assert_eq!(report.failed, [message_id(0), message_id(1)]);
}
