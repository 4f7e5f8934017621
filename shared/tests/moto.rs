//! The AWS adapters through the real SDK against `moto_server`, a DynamoDB and SQS stand-in.
//!
//! `scripts/test` starts moto on a free loopback port and passes it in `MOTO_ENDPOINT`. Without it
//! these tests fail rather than skip: they are how the adapters' SDK calls are known to work.

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use futures::TryStreamExt;
use serde_json::value::RawValue;
use shared::aws::provision::{ensure_queue, ensure_table, sdk_for_endpoint};
use shared::history::{DynamoHistory, HistorySettings, Page, Range};
use shared::queue::SqsQueue;
use shared::store::DynamoStore;
use shared::{
    Channel, ChannelPattern, ConnectionId, ConnectionRecord, ConnectionRef, ConnectionStore, Envelope,
    History, Job, Position, Queue, QueueSource, Sender, Shard, SubscribeError, Subscription,
};

async fn scanned_ids(store: &DynamoStore) -> Vec<ConnectionId> {
    let pages: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");
    pages.into_iter().flatten().map(|c| c.id).collect()
}

async fn sdk() -> aws_config::SdkConfig {
    let endpoint = testkit::moto_endpoint();
    let sdk = sdk_for_endpoint(&endpoint).await;
    aws_sdk_dynamodb::Client::new(&sdk)
        .list_tables()
        .send()
        .await
        .unwrap_or_else(|err| panic!("moto is unreachable at {endpoint}: {err:?}"));
    sdk
}

fn id(n: usize) -> ConnectionId {
    ConnectionId::parse(&format!("moto{n:06}AAAAAA=")).expect("id")
}

fn record(n: usize) -> ConnectionRecord {
    ConnectionRecord {
        id: id(n),
        connected_at_ms: 1_764_167_186_000,
        source_ip: Some("192.0.2.1".into()),
        expires_at_s: 1_764_175_000,
    }
}

fn job(n: usize) -> Job {
    let data = RawValue::from_string(format!("{{\"n\":{n}}}")).expect("raw");
    Job::broadcast(Envelope::broadcast(id(0), 0, data).expect("fits"))
}

async fn table() -> (aws_config::SdkConfig, String) {
    let sdk = sdk().await;
    let table = testkit::unique_name("connections");
    ensure_table(&sdk, &table).await.expect("create table");
    (sdk, table)
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_stored_connection_has_the_single_table_keys_and_a_ttl() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table);
    store.put(&record(1)).await.expect("put");
    let listed: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");
    assert_eq!(listed.concat(), [ConnectionRef { id: id(1), connected_at_ms: 1_764_167_186_000 }]);

    let key = AttributeValue::S(format!("CONN#{}", id(1)));
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&table)
        .key("Pk", key.clone())
        .key("Sk", key)
        .send()
        .await
        .expect("get")
        .item
        .expect("the item");
    assert_eq!(item["Ttl"], AttributeValue::N("1764175000".into()));
    assert_eq!(item["ConnectedAt"], AttributeValue::N("1764167186000".into()));
    assert_eq!(item["SourceIp"], AttributeValue::S("192.0.2.1".into()));
}

fn pattern(raw: &str) -> ChannelPattern {
    ChannelPattern::parse(raw).expect(raw)
}

fn subscription(n: usize, raw: &str, limit: usize) -> Subscription {
    Subscription {
        connection: ConnectionRef { id: id(n), connected_at_ms: 1_764_167_186_000 + n as i64 },
        pattern: pattern(raw),
        expires_at_s: 1_764_175_000,
        limit,
    }
}

async fn subscriber_ids(store: &DynamoStore, raw: &str) -> Vec<ConnectionId> {
    let pages: Vec<Vec<ConnectionRef>> = store.subscribers(&pattern(raw)).try_collect().await.expect("query");
    let mut ids: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
    ids.sort();
    ids
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn subscriptions_are_items_beside_the_connection_found_by_query_and_skipped_by_a_scan() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table).with_page_limit(2);
    for n in 0..5 {
        store.put(&record(n)).await.expect("put");
        store.subscribe(&subscription(n, "chat/*", 100)).await.expect("subscribe");
    }
    store.subscribe(&subscription(1, "news", 100)).await.expect("subscribe");

    assert_eq!(subscriber_ids(&store, "chat/*").await, (0..5).map(id).collect::<Vec<_>>());
    let pages: Vec<Vec<ConnectionRef>> = store.subscribers(&pattern("news")).try_collect().await.expect("q");
    assert_eq!(pages.concat(), [ConnectionRef { id: id(1), connected_at_ms: 1_764_167_186_001 }]);
    assert!(subscriber_ids(&store, "nobody").await.is_empty());
    assert_eq!(scanned_ids(&store).await.len(), 5, "a scan lists connections, not subscriptions");

    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let item = client
        .get_item()
        .table_name(&table)
        .key("Pk", AttributeValue::S("CHAN#news".into()))
        .key("Sk", AttributeValue::S(format!("SUB#{:03}#{}", Shard::bucket(id(1).as_str()), id(1))))
        .send()
        .await
        .expect("get")
        .item
        .expect("the subscription item");
    assert_eq!(item["Ttl"], AttributeValue::N("1764175000".into()));
    let connection = AttributeValue::S(format!("CONN#{}", id(1)));
    let item = client
        .get_item()
        .table_name(&table)
        .key("Pk", connection.clone())
        .key("Sk", connection)
        .send()
        .await
        .expect("get")
        .item
        .expect("the connection item");
    let mut subs = item["Subs"].as_ss().expect("a string set").clone();
    subs.sort();
    assert_eq!(subs, ["chat/*", "news"]);
    assert_eq!(item["SourceIp"], AttributeValue::S("192.0.2.1".into()), "subscribing keeps the record");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_connection_holds_at_most_its_limit_and_a_gone_connection_none() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table);
    store.put(&record(0)).await.expect("put");
    for raw in ["a", "b", "b"] {
        store.subscribe(&subscription(0, raw, 2)).await.expect(raw);
    }
    assert!(matches!(
        store.subscribe(&subscription(0, "c", 2)).await,
        Err(SubscribeError::TooMany { limit: 2 })
    ));
    assert!(subscriber_ids(&store, "c").await.is_empty(), "nothing stored for a refused subscription");
    store.unsubscribe(&id(0), &pattern("a")).await.expect("unsubscribe");
    store.unsubscribe(&id(0), &pattern("never")).await.expect("not subscribed is fine");
    store.subscribe(&subscription(0, "c", 2)).await.expect("room again");
    assert!(subscriber_ids(&store, "a").await.is_empty());

    assert!(matches!(store.subscribe(&subscription(7, "a", 2)).await, Err(SubscribeError::NotConnected)));
    store.unsubscribe(&id(7), &pattern("a")).await.expect("unsubscribing a gone connection is fine");
    assert_eq!(scanned_ids(&store).await, [id(0)], "no item was created for the gone connection");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn deleting_connections_deletes_their_subscription_items() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table);
    for n in 0..4 {
        store.put(&record(n)).await.expect("put");
        store.subscribe(&subscription(n, "chat/*", 100)).await.expect("subscribe");
        store.subscribe(&subscription(n, &format!("room/r{n}"), 100)).await.expect("subscribe");
    }
    store.delete(&id(0)).await.expect("disconnect");
    store.delete_many(&[id(1), id(2), id(9)]).await.expect("prune");

    assert_eq!(subscriber_ids(&store, "chat/*").await, [id(3)]);
    for n in 0..3 {
        assert!(subscriber_ids(&store, &format!("room/r{n}")).await.is_empty(), "room/r{n}");
    }
    let items = aws_sdk_dynamodb::Client::new(&sdk).scan().table_name(&table).send().await.expect("scan");
    assert_eq!(items.count(), 3, "connection 3, its two subscriptions, nothing else");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_scan_pages_through_every_connection_once() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table).with_page_limit(10);
    for n in 0..25 {
        store.put(&record(n)).await.expect("put");
    }

    let pages: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");

    assert!(pages.len() >= 3, "25 records at 10 a page take at least 3 pages, got {}", pages.len());
    let ids: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
    let distinct: HashSet<&ConnectionId> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (25, 25));
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_parallel_scan_finds_every_connection_once() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table).with_segments(4).with_page_limit(5);
    for n in 0..30 {
        store.put(&record(n)).await.expect("put");
    }

    let ids: Vec<ConnectionId> = scanned_ids(&store).await;

    let distinct: HashSet<&ConnectionId> = ids.iter().collect();
    assert_eq!((ids.len(), distinct.len()), (30, 30));
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn the_shards_of_a_broadcast_are_scan_segments_listing_each_connection_once() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table).with_page_limit(4);
    for n in 0..40 {
        store.put(&record(n)).await.expect("put");
    }
    let mut ids = Vec::new();
    for shard in Shard::all(3) {
        let pages: Vec<Vec<ConnectionRef>> = store.scan_shard(shard).try_collect().await.expect("scan");
        let listed: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
        assert!(listed.len() < 40, "segment {shard} listed {} of 40", listed.len());
        ids.extend(listed);
    }
    ids.sort();
    assert_eq!(ids, (0..40).map(id).collect::<Vec<_>>());
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn the_shards_of_a_channel_are_sort_key_ranges_listing_each_subscriber_once() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table).with_page_limit(3);
    for n in 0..40 {
        store.put(&record(n)).await.expect("put");
        store.subscribe(&subscription(n, "chat/*", 100)).await.expect("subscribe");
    }
    // A subscription as written before sort keys had a bucket: found whole, skipped by a split.
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    store.put(&record(40)).await.expect("put");
    client
        .put_item()
        .table_name(&table)
        .item("Pk", AttributeValue::S("CHAN#chat/*".into()))
        .item("Sk", AttributeValue::S(format!("CONN#{}", id(40))))
        .item("ConnectedAt", AttributeValue::N("1".into()))
        .send()
        .await
        .expect("put a legacy subscription");

    let mut ids = Vec::new();
    for shard in Shard::all(7) {
        let pages: Vec<Vec<ConnectionRef>> =
            store.subscribers_shard(&pattern("chat/*"), shard).try_collect().await.expect("query");
        let listed: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
        assert!(listed.len() < 40, "shard {shard} listed {} of 40", listed.len());
        assert!(listed.iter().all(|listed| shard.holds(listed.as_str())), "shard {shard}: {listed:?}");
        ids.extend(listed);
    }
    ids.sort();
    assert_eq!(ids, (0..40).map(id).collect::<Vec<_>>());
    assert_eq!(subscriber_ids(&store, "chat/*").await, (0..41).map(id).collect::<Vec<_>>());

    store.unsubscribe(&id(40), &pattern("chat/*")).await.expect("unsubscribe");
    assert_eq!(subscriber_ids(&store, "chat/*").await.len(), 40, "the legacy item is deleted too");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn deletes_are_batched_idempotent_and_touch_nothing_else() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table);
    for n in 0..60 {
        store.put(&record(n)).await.expect("put");
    }

    // 60 deletes, 5 of them of ids that do not exist: three BatchWriteItem calls of at most 25.
    let doomed: Vec<ConnectionId> = (5..60).chain(100..105).map(id).collect();
    store.delete_many(&doomed).await.expect("delete many");
    store.delete(&id(0)).await.expect("delete");
    store.delete(&id(0)).await.expect("deleting twice is fine");

    let left: Vec<ConnectionId> = scanned_ids(&store).await;
    let left: HashSet<ConnectionId> = left.into_iter().collect();
    assert_eq!(left, (1..5).map(id).collect());
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_scan_skips_items_that_are_not_connections() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table);
    store.put(&record(1)).await.expect("put");
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table)
        .item("Pk", AttributeValue::S("TOPIC#lobby".into()))
        .item("Sk", AttributeValue::S("SUB#x".into()))
        .send()
        .await
        .expect("put a topic item");

    let ids: Vec<ConnectionId> = scanned_ids(&store).await;
    assert_eq!(ids, [id(1)]);
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn delayed_jobs_stay_invisible_for_their_delay() {
    let sdk = sdk().await;
    let (url, _) = ensure_queue(&sdk, &testkit::unique_name("delayed"), Duration::from_secs(30), 5)
        .await
        .expect("queue");
    let queue = SqsQueue::from_sdk(&sdk, &url);
    let jobs: Vec<Job> = (0..3).map(job).collect();

    let results = queue.send_batch(&jobs, Duration::from_millis(1_500)).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    assert!(queue.receive(10, Duration::ZERO).await.expect("receive").is_empty(), "hidden while delayed");
    let mut received = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while received < jobs.len() && std::time::Instant::now() < deadline {
        received += queue.receive(10, Duration::from_secs(1)).await.expect("receive").len();
    }
    assert_eq!(received, jobs.len(), "visible once the delay (rounded up to 2 s) has passed");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn jobs_are_sent_in_batches_of_ten_and_each_failure_is_reported_alone() {
    let sdk = sdk().await;
    let (url, _) =
        ensure_queue(&sdk, &testkit::unique_name("jobs"), Duration::from_secs(30), 5).await.expect("queue");
    let queue = SqsQueue::from_sdk(&sdk, &url);
    let mut jobs: Vec<Job> = (0..23).map(job).collect();
    // A job no SQS message can hold: only that one fails.
    let huge = RawValue::from_string(format!("\"{}\"", "x".repeat(300 * 1024))).expect("raw");
    jobs[7].envelope.data = Some(huge);

    let results = queue.send_batch(&jobs, Duration::ZERO).await;

    let failed: Vec<usize> = results.iter().enumerate().filter(|(_, r)| r.is_err()).map(|(i, _)| i).collect();
    assert_eq!(failed, [7]);
    let mut bodies = HashSet::new();
    loop {
        let batch = queue.receive(10, Duration::ZERO).await.expect("receive");
        if batch.is_empty() {
            break;
        }
        queue
            .delete(&batch.iter().map(|m| m.receipt_handle.clone()).collect::<Vec<_>>())
            .await
            .expect("delete");
        bodies.extend(batch.into_iter().map(|m| m.body));
    }
    assert_eq!(bodies.len(), 22);
    assert!(bodies.contains(&jobs[22].to_body()));
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn an_undeleted_message_is_redelivered_then_dead_lettered() {
    let sdk = sdk().await;
    let (url, dlq_url) =
        ensure_queue(&sdk, &testkit::unique_name("redrive"), Duration::from_secs(1), 2).await.expect("queue");
    let queue = SqsQueue::from_sdk(&sdk, &url);
    let poison = job(1);
    queue.send(&poison).await.expect("send");

    for expected_count in 1..=2 {
        let batch = queue.receive(10, Duration::from_secs(5)).await.expect("receive");
        assert_eq!(batch.len(), 1, "delivery {expected_count}");
        assert_eq!(batch[0].receive_count, expected_count);
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }
    assert!(queue.receive(10, Duration::from_secs(1)).await.expect("receive").is_empty(), "moved to the DLQ");

    let dead =
        SqsQueue::from_sdk(&sdk, &dlq_url).receive(10, Duration::from_secs(1)).await.expect("receive dlq");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, poison.to_body());
}

fn message(channel: &str, n: usize) -> Envelope {
    let data = RawValue::from_string(format!("{{\"n\":{n}}}")).expect("raw");
    let sender = Sender { connection: Some(id(0)), user: None };
    Envelope::message(Channel::parse(channel).expect("channel"), sender, 0, data).expect("fits")
}

fn offsets(page: &Page) -> Vec<u64> {
    page.messages.iter().map(|kept| kept.offset).collect()
}

async fn history(size: usize) -> (aws_config::SdkConfig, String, DynamoHistory) {
    let (sdk, table) = table().await;
    let settings = HistorySettings { size, ..HistorySettings::default() };
    let history = DynamoHistory::new(aws_sdk_dynamodb::Client::new(&sdk), &table, settings);
    (sdk, table, history)
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_channels_history_numbers_each_message_in_one_epoch_and_reads_back_what_is_kept() {
    let (sdk, table, history) = history(4).await;
    let news = Channel::parse("news").expect("channel");
    let empty = history.stream(&news).await.expect("stream");
    assert_eq!(empty.offset, 0);
    for n in 1..=6 {
        let mut envelope = message("news", n);
        history.append(&mut envelope).await.expect("append");
        assert_eq!(envelope.position(), Some(Position { offset: n as u64, epoch: empty.epoch.clone() }));
    }
    let newest = history.read(&news, Range::Newest(3), usize::MAX).await.expect("read");
    assert_eq!((offsets(&newest), newest.stream.offset), (vec![4, 5, 6], 6));
    assert!(newest.more, "3 is kept, older than the three read");
    let all = history.read(&news, Range::Newest(4), usize::MAX).await.expect("read");
    assert_eq!((offsets(&all), all.more), (vec![3, 4, 5, 6], false), "nothing older kept");
    let frame: Envelope =
        serde_json::from_str(&newest.messages[0].frame).expect("a kept frame is an envelope");
    assert_eq!(frame.offset, Some(4));
    let after = history.read(&news, Range::After { offset: 0, limit: 10 }, usize::MAX).await.expect("read");
    assert_eq!(offsets(&after), [3, 4, 5, 6], "no more than the four kept");
    assert!(!after.recovers(1, &empty.epoch), "2 is no longer kept");
    assert!(after.recovers(2, &empty.epoch));
    let limited = history.read(&news, Range::After { offset: 3, limit: 2 }, usize::MAX).await.expect("read");
    assert_eq!((offsets(&limited), limited.more), (vec![4, 5], true));

    let store = DynamoStore::from_sdk(&sdk, &table);
    store.put(&record(1)).await.expect("put");
    assert_eq!(scanned_ids(&store).await, [id(1)], "a scan for connections never reads history");
    let meta = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&table)
        .key("Pk", AttributeValue::S("HIST#news".into()))
        .key("Sk", AttributeValue::S("META".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the stream's state");
    assert!(meta.get("Ttl").is_some_and(|ttl| ttl.as_n().is_ok()), "{meta:?}");
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_message_given_again_keeps_its_first_offset_and_takes_no_other() {
    let (_sdk, _table, history) = history(100).await;
    let news = Channel::parse("news").expect("channel");
    let mut first = message("news", 1);
    assert!(history.append_once(&mut first).await.expect("append"), "placed by this call");
    let mut again = first.clone();
    again.offset = None;
    again.epoch = None;
    assert!(!history.append_once(&mut again).await.expect("append again"), "placed before");
    assert_eq!(again.position(), first.position(), "a redelivery: the same offset");
    let mut next = message("news", 2);
    history.append_once(&mut next).await.expect("append");
    assert_eq!(next.offset, Some(2));
    let page = history.read(&news, Range::Newest(10), usize::MAX).await.expect("read");
    assert_eq!(offsets(&page), [1, 2]);
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn expired_history_is_not_served_and_an_expired_stream_starts_again_in_a_new_epoch() {
    let (sdk, table, history) = history(100).await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let news = Channel::parse("news").expect("channel");
    for n in 1..=3 {
        history.append(&mut message("news", n)).await.expect("append");
    }
    // DynamoDB deletes expired items within days, not at once: until then a read finds them.
    let expire = |sk: &str| {
        client
            .update_item()
            .table_name(&table)
            .key("Pk", AttributeValue::S("HIST#news".into()))
            .key("Sk", AttributeValue::S(sk.into()))
            .update_expression("SET #t = :past")
            .expression_attribute_names("#t", "Ttl")
            .expression_attribute_values(":past", AttributeValue::N("1000".into()))
            .send()
    };
    expire("OFF#00000000000000000002").await.expect("expire a message");
    let page = history.read(&news, Range::After { offset: 0, limit: 10 }, usize::MAX).await.expect("read");
    assert_eq!(offsets(&page), [1, 3], "the expired one is not served");
    assert!(!page.recovers(1, &page.stream.epoch), "2 is gone: 1 cannot be recovered from");
    let epoch = page.stream.epoch.clone();

    expire("META").await.expect("expire the stream");
    let restarted = history.stream(&news).await.expect("stream");
    assert_eq!(restarted.offset, 0, "a stream whose state expired starts again");
    assert_ne!(restarted.epoch, epoch, "in a new epoch, so no old position is taken for a new one");
    let mut next = message("news", 4);
    history.append(&mut next).await.expect("append");
    assert_eq!(next.position(), Some(Position { offset: 1, epoch: restarted.epoch }));
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn connections_written_before_the_index_are_given_their_place_in_it_and_only_those() {
    let (sdk, table) = table().await;
    let store = DynamoStore::from_sdk(&sdk, &table);
    store.put(&record(1)).await.expect("put");
    // As an earlier version wrote it: no `Conn`, so the connections' index does not hold it.
    let old = format!("CONN#{}", id(2));
    aws_sdk_dynamodb::Client::new(&sdk)
        .put_item()
        .table_name(&table)
        .item("Pk", AttributeValue::S(old.clone()))
        .item("Sk", AttributeValue::S(old))
        .item("ConnectedAt", AttributeValue::N("1764167186000".into()))
        .item("Ttl", AttributeValue::N("1764175000".into()))
        .send()
        .await
        .expect("put an old connection");
    store.subscribe(&subscription(1, "chat/*", 100)).await.expect("subscribe");
    assert_eq!(scanned_ids(&store).await, [id(1)], "a broadcast would miss the old one");

    assert_eq!(store.index_old_connections().await.expect("index"), 1, "the old one alone");
    let mut ids = scanned_ids(&store).await;
    ids.sort();
    assert_eq!(ids, [id(1), id(2)]);
    assert_eq!(store.index_old_connections().await.expect("again"), 0, "nothing left to index");
}

fn member(n: usize, user: Option<&str>, join_leave: bool) -> shared::presence::Member {
    shared::presence::Member {
        connection: ConnectionRef { id: id(n), connected_at_ms: 1_764_167_186_000 + n as i64 },
        user: user.map(str::to_owned),
        info: Some(shared::identity::Info::parse(r#"{"name":"N"}"#).expect("info")),
        since_ms: 1_764_167_190_000,
        join_leave,
        expires_at_s: 4_000_000_000,
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_channels_members_are_counted_once_each_with_one_first_and_one_last_and_read_back_whole() {
    use shared::Presence;
    use shared::presence::DynamoPresence;
    let (sdk, table) = table().await;
    let presence = DynamoPresence::from_sdk(&sdk, &table);
    let room = Channel::parse("room/1").expect("channel");
    let first = presence.join(&room, &member(1, Some("alice"), false)).await.expect("join").expect("new");
    assert_eq!((first.clients, first.seq), (1, 1), "the first member occupies it");
    assert_eq!(presence.join(&room, &member(1, Some("alice"), true)).await.expect("again"), None);
    let second = presence.join(&room, &member(2, None, false)).await.expect("join").expect("new");
    assert_eq!((second.clients, second.seq), (2, 2));
    let watchers: Vec<Vec<ConnectionRef>> = presence.watchers(&room).try_collect().await.expect("watchers");
    assert_eq!(watchers.concat(), [member(1, None, true).connection], "joining again set joinLeave");

    let roster = presence.members(&room, 1_764_167_200).await.expect("members");
    assert!(roster.expired.is_empty());
    let mut members = roster.members;
    members.sort_by(|a, b| a.connection.cmp(&b.connection));
    assert_eq!(members, [member(1, Some("alice"), true), member(2, None, false)], "every field read back");
    assert!(presence.members(&room, 4_000_000_000).await.expect("later").members.is_empty());

    assert_eq!(presence.leave(&room, &id(3)).await.expect("not a member"), None);
    let left = presence.leave(&room, &id(1)).await.expect("leave").expect("was one");
    assert_eq!((left.member.user.as_deref(), left.clients, left.seq), (Some("alice"), 1, 3));
    assert_eq!(presence.leave(&room, &id(1)).await.expect("again"), None, "one leave counts");
    let last = presence.leave(&room, &id(2)).await.expect("leave").expect("was one");
    assert_eq!((last.clients, last.seq), (0, 4), "the last member vacates it");
    assert!(presence.members(&room, 0).await.expect("members").members.is_empty());
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn concurrent_joins_and_leaves_of_one_channel_see_one_first_and_one_last_member() {
    use shared::Presence;
    use shared::presence::DynamoPresence;
    let (sdk, table) = table().await;
    let presence = std::sync::Arc::new(DynamoPresence::from_sdk(&sdk, &table));
    let room = Channel::parse("room/busy").expect("channel");
    for round in 0..3 {
        let joins = futures::future::join_all((0..20).map(|n| {
            let (presence, room) = (std::sync::Arc::clone(&presence), room.clone());
            async move { presence.join(&room, &member(n, None, false)).await.expect("join") }
        }))
        .await;
        assert_eq!(joins.iter().flatten().filter(|c| c.clients == 1).count(), 1, "round {round}");
        let leaves = futures::future::join_all((0..20).map(|n| {
            let (presence, room) = (std::sync::Arc::clone(&presence), room.clone());
            async move { presence.leave(&room, &id(n)).await.expect("leave") }
        }))
        .await;
        assert_eq!(leaves.iter().flatten().filter(|c| c.clients == 0).count(), 1, "round {round}");
        let mut seqs: Vec<u64> = joins.iter().chain(&leaves).flatten().map(|c| c.seq).collect();
        seqs.sort_unstable();
        assert_eq!(
            seqs,
            (round * 40 + 1..=round * 40 + 40).collect::<Vec<u64>>(),
            "each change numbered once"
        );
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn lifecycle_events_go_to_the_named_bus_and_a_bus_that_does_not_exist_is_refused_not_retried() {
    use shared::Events;
    use shared::events::{EventBridgeEvents, LifecycleEvent};
    let sdk = sdk().await;
    let bus = testkit::unique_name("events");
    aws_sdk_eventbridge::Client::new(&sdk).create_event_bus().name(&bus).send().await.expect("create bus");
    let room = Channel::parse("room/1").expect("channel");
    let change =
        shared::presence::Change { member: member(1, Some("alice"), false), clients: 1, seq: 1, watchers: 0 };
    // Eleven events: two calls of PutEvents' ten at most.
    let events: Vec<LifecycleEvent> =
        (0..6).flat_map(|_| LifecycleEvent::of_join(&room, &change, 1_764_167_190_000)).take(11).collect();
    EventBridgeEvents::from_sdk(&sdk, &bus).publish(&events).await.expect("published");
    let missing = EventBridgeEvents::from_sdk(&sdk, "no-such-bus").publish(&events[..1]).await;
    match missing {
        Err(err) => assert!(!err.is_retryable(), "{err}"),
        // moto accepts any bus name in PutEvents but reports each entry failed.
        Ok(()) => panic!("a bus that does not exist took the events"),
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn a_senders_deliveries_are_counted_by_minute_in_an_item_of_their_own_which_no_scan_lists() {
    use shared::usage::{DynamoUsage, Usage};
    let (sdk, table) = table().await;
    let usage = DynamoUsage::from_sdk(&sdk, &table);
    let store = DynamoStore::from_sdk(&sdk, &table);
    store.put(&record(1)).await.expect("put");

    usage.add("user:mallory", 29_000_000, 2_000).await.expect("added");
    usage.add("user:mallory", 29_000_000, 500).await.expect("added");
    usage.add("user:mallory", 29_000_001, 7).await.expect("added");

    assert_eq!(usage.used("user:mallory", 29_000_000).await.expect("read"), 2_500);
    assert_eq!(usage.used("user:mallory", 29_000_001).await.expect("read"), 7);
    assert_eq!(usage.used("user:alice", 29_000_000).await.expect("read"), 0, "no item: nothing used");
    let item = aws_sdk_dynamodb::Client::new(&sdk)
        .get_item()
        .table_name(&table)
        .key("Pk", AttributeValue::S("USAGE#user:mallory".into()))
        .key("Sk", AttributeValue::S("MIN#29000000".into()))
        .send()
        .await
        .expect("get")
        .item
        .expect("the item");
    assert_eq!(item["Ttl"], AttributeValue::N(((29_000_000 + 3) * 60).to_string()), "gone two minutes after");
    assert_eq!(scanned_ids(&store).await, [id(1)], "a broadcast's scan lists connections alone");
}
