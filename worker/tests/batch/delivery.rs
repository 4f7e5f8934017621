//! Stages 1, 3, 5 and 7: a batch parsed (poison reported alone), posted to every connection of its
//! audience within the concurrency bound, and gone connections pruned unless still connecting.

use super::*;

#[tokio::test]
async fn every_message_of_a_batch_reaches_every_connection_with_one_scan() {
    let store = with_connections(25, 7).await;
    let poster = Arc::new(ScriptedPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);
    let bodies: Vec<String> = (0..3).map(|n| broadcast_body(0, &format!("{{\"n\":{n}}}"))).collect();

    let response = worker.handle(sqs_event(&bodies), deadline(30.0)).await;

    assert!(response.batch_item_failures.is_empty());
    assert_eq!(store.scans(), 2, "the probe and the rest of the table, once per batch, not per message");
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
    let store = with_connections(5, 2).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(3), Scripted::Gone);
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker
        .process(sqs_event(&[broadcast_body(0, "\"hi\""), broadcast_body(0, "\"again\"")]), deadline(30.0))
        .await;

    assert!(report.failed.is_empty(), "a gone connection is not a failure");
    assert_eq!(report.pruned, 1);
    assert_eq!(report.delivered, 8);
    assert_eq!(store.inner().ids(), [id(0), id(1), id(2), id(4)]);
}

#[tokio::test]
async fn a_gone_connection_still_completing_its_handshake_is_not_pruned() {
    let store = with_connections(2, 10).await;
    let connecting =
        ConnectionRecord { id: id(7), connected_at_ms: epoch_ms(), source_ip: None, expires_at_s: 0 };
    store.put(&connecting).await.expect("put");
    let poster = Arc::new(ScriptedPoster::default());
    // API Gateway answers 410 until the handshake completes, and for good once the connection is gone.
    poster.script(&id(7), Scripted::Gone);
    poster.script(&id(1), Scripted::Gone);
    let (worker, _queue) = worker(store.clone(), poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert_eq!((report.pruned, report.kept_connecting), (1, 1));
    assert_eq!(store.inner().ids(), [id(0), id(7)], "the old gone record is pruned, the young one kept");
}

#[tokio::test]
async fn posts_never_exceed_the_concurrency_bound() {
    let store = with_connections(200, 50).await;
    let poster = Arc::new(ScriptedPoster::with_delay(Duration::from_millis(2)));
    let (worker, _queue) = worker(store, poster.clone(), 8);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert_eq!(report.delivered, 200);
    assert!(poster.max_in_flight() <= 8, "{} posts in flight", poster.max_in_flight());
    assert!(poster.max_in_flight() > 1, "posts ran one at a time");
}

#[tokio::test]
async fn a_poison_message_is_reported_alone_and_the_rest_of_the_batch_is_delivered() {
    let store = with_connections(3, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    let (worker, _queue) = worker(store, poster.clone(), 4);
    let bodies = [broadcast_body(0, "1"), "not a job".to_owned(), broadcast_body(1, "2")];

    let response = worker.handle(sqs_event(&bodies), deadline(30.0)).await;

    let failed: Vec<&str> = response.batch_item_failures.iter().map(|f| f.item_identifier.as_str()).collect();
    assert_eq!(failed, [message_id(1)]);
    assert_eq!(poster.delivered().len(), 6);
}

#[tokio::test]
async fn a_payload_too_large_answer_is_not_redelivered_to_everyone() {
    let store = with_connections(2, 10).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(1), Scripted::PayloadTooLarge);
    let (worker, _queue) = worker(store, poster, 4);

    let report = worker.process(sqs_event(&[broadcast_body(0, "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(report.delivered, 1);
}

#[tokio::test]
async fn a_failed_scan_reports_every_broadcast_of_the_batch() {
    let store = Arc::new(ObservedStore::new(MemoryStore::default()).failing_scans());
    let (worker, _queue) = worker(store, Arc::new(ScriptedPoster::default()), 4);

    let report =
        worker.process(sqs_event(&[broadcast_body(0, "1"), broadcast_body(0, "2")]), deadline(30.0)).await;

    assert_eq!(report.failed, [message_id(0), message_id(1)]);
}
