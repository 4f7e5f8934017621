//! The lanes on the gateway, as on AWS: a message to a channel of one, published while a broadcast
//! to thousands is being posted, reaches its subscriber while the broadcast's shard jobs still wait
//! on the bulk queue; with one queue for everything, it waits behind every one of them.

mod support;

use std::time::Duration;

use local::Settings;
use local::settings::Bucket;
use serde_json::json;
use shared::queue::MemoryQueue;
use shared::{Audience, ConnectionId, ConnectionRecord, ConnectionStore, Job};
use support::*;
use worker::{Fleet, Lanes, WorkerSettings};

/// Connections that are not there: each post to one costs the account's rate and is answered 410.
const ABSENT: usize = 2_400;

fn settings(lanes: Option<Lanes>) -> Settings {
    // An account of 500 calls a second stretches a broadcast to 2,400 over seconds.
    let fleet = Fleet { account_post_rate: 500, shard_size: 100, post_concurrency: 16, ..Fleet::default() };
    Settings {
        account_rate: Some(Bucket { rate: 500, burst: 250 }),
        worker: WorkerSettings { prune_grace: Duration::ZERO, ..WorkerSettings::for_fleet(fleet) },
        lanes,
        ..Settings::default()
    }
}

/// Shard jobs not yet taken by any invocation (not the retry jobs of connections the account's
/// throttle kept a post from, which come back on the queue a second later).
fn waiting(queue: &MemoryQueue) -> usize {
    queue
        .peek()
        .iter()
        .filter(|body| Job::parse(body).is_ok_and(|job| matches!(job.audience, Audience::Shard(_))))
        .count()
}

/// Starts a broadcast to [`ABSENT`] connections and the recipient, then publishes to a channel the
/// recipient alone is in; returns the shard jobs still waiting on `shards` when it arrived.
async fn shards_waiting_when_the_direct_message_arrives(
    gateway: &TestGateway,
    shards: &MemoryQueue,
) -> usize {
    let mut recipient = gateway.connect().await;
    let answer = request(&mut recipient, json!({"action": "subscribe", "channel": "dm/bob"})).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    let mut sender = gateway.connect().await;
    let connected_at_ms = shared::clock::epoch_ms() - 60_000;
    for n in 0..ABSENT {
        let id = ConnectionId::parse(&format!("absent{n:06}=")).expect("an id");
        let record = ConnectionRecord { id, connected_at_ms, source_ip: None, expires_at_s: i64::MAX / 2 };
        gateway.store.put(&record).await.expect("stored");
    }

    send_text(&mut sender, &json!({"action": "broadcast", "data": "announcement"}).to_string()).await;
    eventually("the broadcast's shard jobs on the queue", || waiting(shards) > 0).await;
    send_text(&mut sender, &json!({"action": "publish", "channel": "dm/bob", "data": "hi"}).to_string())
        .await;

    loop {
        let frame: serde_json::Value = serde_json::from_str(&next_text(&mut recipient).await).expect("JSON");
        if frame["type"] == "message" && frame["channel"] == "dm/bob" {
            assert_eq!(frame["data"], "hi");
            return waiting(shards);
        }
    }
}

#[tokio::test]
async fn a_direct_message_published_during_a_large_broadcast_passes_its_waiting_shard_jobs() {
    let gateway = TestGateway::start(settings(Some(Lanes::default()))).await;
    let bulk = gateway.bulk_queue.clone().expect("a bulk queue");

    let left = shards_waiting_when_the_direct_message_arrives(&gateway, &bulk).await;

    assert!(left > 0, "the broadcast's shards were all taken before the direct message arrived");
    assert_eq!(waiting(&gateway.queue), 0, "no shard job on the main queue");
    gateway.stop().await;
}

#[tokio::test]
async fn with_one_queue_a_direct_message_waits_behind_every_shard_job() {
    let gateway = TestGateway::start(settings(None)).await;
    assert!(gateway.bulk_queue.is_none());
    let queue = gateway.queue.clone();

    let left = shards_waiting_when_the_direct_message_arrives(&gateway, &queue).await;

    assert_eq!(left, 0, "queued after them, taken after them");
    gateway.stop().await;
}
