//! Stage 2 and 3 for publishes: each subscriber of a channel and its wildcards reached once, each
//! channel listed once per batch, a failed listing redelivering only its messages.

use super::*;

/// Ten connections: 0–2 on `chat/general`, 3–4 on `chat/*`, 5 on both, 6 on `chat/eu/*`, 7 on `news`,
/// 8 and 9 on nothing.
async fn subscribed_store() -> Arc<ObservedStore> {
    let store = with_connections(10, 2).await;
    for n in 0..3 {
        subscribe(&store, n, "chat/general").await;
    }
    for n in 3..5 {
        subscribe(&store, n, "chat/*").await;
    }
    subscribe(&store, 5, "chat/*").await;
    subscribe(&store, 5, "chat/general").await;
    subscribe(&store, 6, "chat/eu/*").await;
    subscribe(&store, 7, "news").await;
    store
}

fn recipients(poster: &ScriptedPoster) -> Vec<ConnectionId> {
    let mut ids: Vec<ConnectionId> = poster.delivered().into_iter().map(|(to, _)| to).collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_publish_reaches_each_subscriber_of_its_channel_and_wildcards_once_and_no_one_else() {
    let store = subscribed_store().await;
    let poster = Arc::new(ScriptedPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[publish_body("chat/general", "1")]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(recipients(&poster), (0..6).map(id).collect::<Vec<_>>(), "5 once, though on two patterns");
    assert_eq!(store.scans(), 0, "a publish queries, never scans");
    assert_eq!(store.queries(), 2 * 2, "chat/general and chat/*: a probe, the rest");
    let frame: Value = serde_json::from_slice(&poster.delivered()[0].1).expect("json");
    assert_eq!((frame["type"].as_str(), frame["channel"].as_str()), (Some("message"), Some("chat/general")));

    let poster = Arc::new(ScriptedPoster::default());
    let (worker, _queue) = worker_with(store.clone(), poster.clone(), settings());
    worker.process(sqs_event(&[publish_body("chat/eu/paris", "2")]), deadline(30.0)).await;
    assert_eq!(recipients(&poster), [id(3), id(4), id(5), id(6)]);

    let poster = Arc::new(ScriptedPoster::default());
    let (worker, _queue) = worker_with(store.clone(), poster.clone(), settings());
    let report = worker.process(sqs_event(&[publish_body("empty", "3")]), deadline(30.0)).await;
    assert_eq!((report.delivered, poster.calls()), (0, 0), "a channel nobody is in costs no post");
}

#[tokio::test]
async fn a_batch_queries_each_channel_once_for_all_its_messages_beside_one_scan_for_broadcasts() {
    let store = subscribed_store().await;
    let poster = Arc::new(ScriptedPoster::default());
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
    assert_eq!(store.scans(), 2, "the probe and the rest");
    assert_eq!(
        store.queries(),
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
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(5), Scripted::Gone);
    poster.script(&id(1), Scripted::Throttled);
    let (worker, queue) = worker(store.clone(), poster.clone(), 4);

    let report = worker.process(sqs_event(&[publish_body("chat/general", "1")]), deadline(1.5)).await;

    assert!(report.failed.is_empty());
    assert_eq!((report.delivered, report.pruned, report.requeued), (4, 1, 1));
    assert!(store.inner().get(&id(5)).is_none());
    assert!(store.inner().subscriptions_of(&id(5)).is_empty(), "and both its subscriptions");
    assert_eq!(store.inner().subscription_count(), 9 - 2);
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
    let store = Arc::new(ObservedStore::new(inner).failing_queries());
    let poster = Arc::new(ScriptedPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);

    let report =
        worker.process(sqs_event(&[publish_body("news", "1"), broadcast_body(0, "2")]), deadline(30.0)).await;

    assert_eq!(report.failed, [message_id(0)], "the broadcast was delivered; the publish will be again");
    assert_eq!(report.delivered, 3);
}

#[tokio::test(start_paused = true)]
async fn the_channels_of_a_batch_are_sampled_at_once_not_one_after_another() {
    let store =
        Arc::new(ObservedStore::new(MemoryStore::default()).with_query_delay(Duration::from_millis(10)));
    for n in 0..5 {
        let record = ConnectionRecord { id: id(n), connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
        store.put(&record).await.expect("put");
        subscribe(&store, n, &format!("room/{n}")).await;
    }
    let poster = Arc::new(ScriptedPoster::default());
    let (worker, _queue) = worker(store.clone(), poster.clone(), 4);
    let bodies: Vec<String> = (0..5).map(|n| publish_body(&format!("room/{n}"), "1")).collect();
    let started = Instant::now();

    let report = worker.process(sqs_event(&bodies), deadline(30.0)).await;

    // Each channel is two partitions (`room/n`, `room/*`), each query 10 ms: the samples take 20 ms
    // at once, or 100 ms one after another, before the rest of each channel is listed (100 ms).
    let took = started.elapsed();
    assert_eq!((report.delivered, store.queries()), (5, 5 * 2 * 2));
    assert!(took < Duration::from_millis(150), "{took:?}");
}
