//! The worker on in-memory ports, fed SQS events in the exact JSON shape Lambda receives: one test
//! binary, its files following the stages a batch goes through (`worker/src/stages`).

mod channels;
mod delivery;
mod lanes;
mod meter;
mod notify;
mod number;
mod presence;
mod retries;
mod shards;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::sqs::SqsEvent;
use serde_json::{Value, json};
use shared::clock::epoch_ms;
use shared::queue::MemoryQueue;
use shared::stack::StackPorts;
use shared::store::MemoryStore;
use shared::testing::{ObservedStore, Scripted, ScriptedPoster};
use shared::{
    Audience, Channel, ChannelPattern, ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore,
    Envelope, Job, Queue, QueueError, Sender, Shard, Subscription,
};
use tokio::time::Instant;
use worker::{Ports, Worker, WorkerSettings};

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
    poster: Arc<ScriptedPoster>,
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
    poster: Arc<ScriptedPoster>,
    settings: WorkerSettings,
) -> (Worker, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    (Worker::new(Ports::new(StackPorts::new(store, queue.clone()), poster), settings), queue)
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

/// A store of `n` connections, read in pages of `page_size`, that counts its reads: one scan per
/// batch, not one per message.
async fn with_connections(n: usize, page_size: usize) -> Arc<ObservedStore> {
    let store = ObservedStore::new(MemoryStore::with_page_size(page_size));
    for i in 0..n {
        let record = ConnectionRecord { id: id(i), connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
        store.put(&record).await.expect("put");
    }
    Arc::new(store)
}

/// Subscribes connection `n` to `pattern`.
async fn subscribe(store: &ObservedStore, n: usize, pattern: &str) {
    let subscription = Subscription {
        connection: old(n),
        pattern: ChannelPattern::parse(pattern).expect("pattern"),
        expires_at_s: 0,
        limit: 100,
    };
    store.subscribe(&subscription).await.expect("subscribe");
}
