//! Stage 2's split: an audience larger than a shard queued as shard jobs, each connection reached
//! once, and the shards the queue refuses posted by the invocation itself.

use super::*;

/// How many times each connection was posted to.
fn posts_per_connection(poster: &ScriptedPoster) -> HashMap<ConnectionId, usize> {
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
    let store = with_connections(3_000, 100).await;
    let poster = Arc::new(ScriptedPoster::default());
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
    let store = with_connections(3_000, 100).await;
    // Even connections through the wildcard, every third one directly, some both ways: 2,000.
    for n in 0..3_000 {
        if n % 2 == 0 {
            subscribe(&store, n, "chat/*").await;
        }
        if n % 3 == 0 {
            subscribe(&store, n, "chat/general").await;
        }
    }
    subscribe(&store, 1, "news").await;
    let poster = Arc::new(ScriptedPoster::default());
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
    assert_eq!(store.scans(), 0, "a publish never scans");
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
    let store = with_connections(3_000, 100).await;
    let poster = Arc::new(ScriptedPoster::default());
    let settings = WorkerSettings { shard_size: 500, min_shards: 8, ..settings() };
    let stack = StackPorts::new(store.clone(), Arc::new(RefusingQueue));
    let ports = Ports::new(stack, poster.clone());
    let worker = Worker::new(ports, settings);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.shards_queued, report.delivered), (0, 3_000));
    let counts = posts_per_connection(&poster);
    assert!(counts.len() == 3_000 && counts.values().all(|&posts| posts == 1));
}

#[tokio::test]
async fn a_malformed_shard_job_is_poison_reported_alone() {
    let store = with_connections(30, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
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
