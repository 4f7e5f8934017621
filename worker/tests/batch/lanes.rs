//! The two lanes: the interactive worker hands every shard of a large audience to the bulk queue and
//! posts none of it, so its invocations stay free for small audiences; each lane's retry jobs go
//! back on its own queue; a worker of a one-queue stack splits as it always did.

use worker::{Lane, Lanes};

use super::*;

/// A worker of `lane` with its main queue and the bulk queue, each returned.
fn lane_worker(
    store: Arc<dyn ConnectionStore>,
    poster: Arc<ScriptedPoster>,
    lane: Lane,
) -> (Worker, Arc<MemoryQueue>, Arc<MemoryQueue>) {
    let (main, bulk) = (Arc::new(MemoryQueue::default()), Arc::new(MemoryQueue::default()));
    let base = WorkerSettings { shard_size: 500, ..settings() };
    let [interactive, bulk_lane] = base.lanes(Lanes { bulk_concurrency: 2, interactive_post_rate: 100 });
    let settings = match lane {
        Lane::Interactive => interactive,
        Lane::Bulk => bulk_lane,
    };
    let ports = Ports::new(StackPorts::new(store, main.clone()), poster).with_bulk_queue(bulk.clone());
    (Worker::new(ports, settings), main, bulk)
}

fn audience(body: &str) -> Audience {
    Job::parse(body).expect("a job").audience
}

#[tokio::test]
async fn the_interactive_lane_hands_every_shard_of_a_large_broadcast_to_the_bulk_lane_and_posts_none() {
    let store = with_connections(3_000, 100).await;
    let poster = Arc::new(ScriptedPoster::default());
    let (interactive, main, bulk) = lane_worker(store.clone(), poster.clone(), Lane::Interactive);

    let report = interactive.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(poster.calls(), 0, "not one post: the invocation stays free for the next direct message");
    assert!(main.peek().is_empty(), "nothing for the main queue");
    let shards = bulk.peek();
    // Enough for two bulk invocations to take three rounds of batches of ten.
    assert_eq!(shards.len(), 60, "{report:?}");
    assert_eq!(report.shards_queued, 60);
    assert!(shards.iter().all(|body| matches!(audience(body), Audience::Shard(shard) if shard.of() == 60)));

    let (bulk_worker, bulk_main, bulk_bulk) = lane_worker(store.clone(), poster.clone(), Lane::Bulk);
    let done = bulk_worker.process(sqs_event(&shards), deadline(30.0)).await;

    assert!(done.failed.is_empty());
    assert_eq!(done.delivered, 3_000, "every connection, by the bulk lane");
    assert_eq!(poster.recipients().len(), 3_000);
    assert!(bulk_main.peek().is_empty() && bulk_bulk.peek().is_empty(), "a shard is not split again");
}

#[tokio::test]
async fn a_direct_message_on_the_interactive_lane_is_posted_at_once() {
    let store = with_connections(3, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    let (interactive, _, bulk) = lane_worker(store, poster.clone(), Lane::Interactive);
    let envelope = Envelope::broadcast(
        id(0),
        1,
        serde_json::value::RawValue::from_string("\"dm\"".into()).expect("JSON"),
    )
    .expect("fits");
    let direct = Job::to(envelope, old(1)).to_body();

    let report = interactive.process(sqs_event(&[direct]), deadline(30.0)).await;

    assert_eq!(report.delivered, 1);
    assert_eq!(poster.recipients(), [id(1)].into_iter().collect());
    assert!(bulk.peek().is_empty(), "a small audience never goes near the bulk lane");
}

#[tokio::test]
async fn each_lanes_retry_jobs_go_back_on_its_own_queue() {
    let store = with_connections(3, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(2), Scripted::Transient);

    let (interactive, main, bulk) = lane_worker(store.clone(), poster.clone(), Lane::Interactive);
    let report = interactive.process(sqs_event(&[broadcast_body(0, "1")]), deadline(1.5)).await;
    assert_eq!(report.requeued, 1, "{report:?}");
    assert_eq!((main.peek_delayed().len(), bulk.peek_delayed().len()), (1, 0), "the interactive lane's");

    let (bulk_worker, main, bulk) = lane_worker(store.clone(), poster.clone(), Lane::Bulk);
    let shard = Job::shard(
        Job::parse(&broadcast_body(0, "2")).expect("a job").envelope,
        Shard::new(0, 1).expect("the whole"),
    );
    let report = bulk_worker.process(sqs_event(&[shard.to_body()]), deadline(1.5)).await;
    assert_eq!(report.requeued, 1, "{report:?}");
    assert_eq!((main.peek_delayed().len(), bulk.peek_delayed().len()), (0, 1), "the bulk lane's");
}

#[tokio::test]
async fn a_worker_of_a_one_queue_stack_posts_the_first_shard_itself_and_queues_the_rest_beside_everything() {
    let store = with_connections(3_000, 100).await;
    let poster = Arc::new(ScriptedPoster::default());
    let (worker, queue) =
        worker_with(store, poster.clone(), WorkerSettings { shard_size: 500, min_shards: 6, ..settings() });

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert_eq!(report.shards_queued as usize, queue.peek().len());
    assert!(report.delivered > 0, "shard 0, posted here");
    assert!(queue.peek().iter().all(|body| matches!(audience(body), Audience::Shard(_))));
}
