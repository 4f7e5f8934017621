//! Stage 8: the deliveries each client's messages made counted against its sender for the minute,
//! when the stack sets a fan-out ceiling; a backend's publish counts against no one.

use shared::usage::{Ceiling, MemoryUsage, Usage, minute_of};

use super::*;

fn metered(store: Arc<dyn ConnectionStore>, usage: Arc<MemoryUsage>) -> Worker {
    let stack = StackPorts {
        ceiling: Some(Ceiling { usage, per_minute: 1_000 }),
        ..StackPorts::new(store, Arc::new(MemoryQueue::default()))
    };
    Worker::new(Ports::new(stack, Arc::new(ScriptedPoster::default())), settings())
}

#[tokio::test]
async fn each_senders_deliveries_are_added_to_its_count_for_the_minute() {
    let store = with_connections(30, 10).await;
    let usage = Arc::new(MemoryUsage::default());
    let worker = metered(store, usage.clone());
    let alice = {
        let data = serde_json::value::RawValue::from_string("\"hi\"".into()).expect("raw json");
        let sender = Sender { connection: Some(id(1)), user: Some("alice".into()) };
        let mut envelope = Envelope::broadcast(id(1), 1_764_167_186_000, data).expect("fits");
        envelope.user = sender.user;
        Job::broadcast(envelope).to_body()
    };

    let report = worker
        .process(sqs_event(&[broadcast_body(0, "1"), broadcast_body(0, "2"), alice]), deadline(30.0))
        .await;

    assert_eq!(report.delivered, 90);
    let (minute, _) = minute_of(shared::clock::epoch_ms());
    assert_eq!(
        usage.used(&format!("conn:{}", id(0)), minute).await.expect("read"),
        60,
        "an anonymous sender's"
    );
    assert_eq!(usage.used("user:alice", minute).await.expect("read"), 30, "a user's");
}

#[tokio::test]
async fn a_backends_publish_counts_against_no_one() {
    let store = with_connections(5, 10).await;
    for n in 0..5 {
        subscribe(&store, n, "news").await;
    }
    let usage = Arc::new(MemoryUsage::default());
    let worker = metered(store, usage.clone());
    let publish = json!({"action": "publish", "channel": "news", "data": "hi"}).to_string();

    let report = worker.process(sqs_event(&[publish]), deadline(30.0)).await;

    assert_eq!(report.delivered, 5);
    assert!(usage.is_empty(), "nothing counted");
}
