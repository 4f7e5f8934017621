//! Channels end to end through the local gateway: real WebSocket clients subscribe, publish and
//! receive, through the real ingress, queue, worker and `@connections`.

mod support;

use std::time::Duration;

use local::Settings;
use serde_json::{Value, json};
use support::*;

/// Subscribes and returns the answer: a channel's carries its latest offset and epoch, a pattern's
/// neither.
async fn subscribe(client: &mut Client, channel: &str) -> Value {
    let reply = request(client, json!({"action": "subscribe", "channel": channel})).await;
    assert_eq!((&reply["type"], &reply["channel"]), (&json!("subscribed"), &json!(channel)), "{reply}");
    assert_eq!(reply["offset"].is_u64(), !channel.ends_with("/*"), "{reply}");
    reply
}

/// Publishes and returns the id the reply gave.
async fn publish(client: &mut Client, channel: &str, data: Value) -> String {
    let reply = request(client, json!({"action": "publish", "channel": channel, "data": data})).await;
    assert_eq!(
        (reply["type"].as_str(), reply["channel"].as_str()),
        (Some("published"), Some(channel)),
        "{reply}"
    );
    reply["id"].as_str().expect("an id").to_owned()
}

async fn message(client: &mut Client) -> Value {
    let frame: Value = serde_json::from_str(&next_text(client).await).expect("a JSON frame");
    assert_eq!(frame["type"], "message", "{frame}");
    frame
}

#[tokio::test]
async fn a_publish_reaches_the_channels_subscribers_and_wildcards_once_each_and_nobody_else() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut general, _) = gateway.connect_with_id().await;
    let (mut wildcard, _) = gateway.connect_with_id().await;
    let (mut both, _) = gateway.connect_with_id().await;
    let (mut other_room, _) = gateway.connect_with_id().await;
    let (mut nothing, _) = gateway.connect_with_id().await;
    let (mut publisher, publisher_id) = gateway.connect_with_id().await;
    subscribe(&mut general, "chat/general").await;
    subscribe(&mut wildcard, "chat/*").await;
    subscribe(&mut both, "chat/*").await;
    subscribe(&mut both, "chat/general").await;
    subscribe(&mut other_room, "chat/random").await;

    let id = publish(&mut publisher, "chat/general", json!({"text": "hi"})).await;

    for client in [&mut general, &mut wildcard, &mut both] {
        let frame = message(client).await;
        assert_eq!(frame["id"], id.as_str());
        assert_eq!(frame["channel"], "chat/general");
        assert_eq!(frame["from"], publisher_id.as_str());
        assert_eq!(frame["data"], json!({"text": "hi"}));
        assert!(frame["sentAt"].as_i64().is_some() && frame.get("user").is_none(), "{frame}");
    }
    for client in [&mut general, &mut wildcard, &mut both, &mut other_room, &mut nothing, &mut publisher] {
        assert_silent(client, Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_sender_receives_its_own_publish_only_when_subscribed_and_a_wildcard_reaches_any_depth() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut alice = gateway.connect().await;
    let mut bob = gateway.connect().await;
    subscribe(&mut alice, "doc/*").await;

    let id = publish(&mut alice, "doc/42/cursor", json!(1)).await;
    assert_eq!(message(&mut alice).await["id"], id.as_str());
    publish(&mut bob, "doc/7", json!(2)).await;
    assert_eq!(message(&mut alice).await["data"], 2);
    publish(&mut bob, "doc", json!(3)).await;
    assert_silent(&mut alice, Duration::from_millis(300)).await;
    assert_silent(&mut bob, Duration::from_millis(100)).await;
}

#[tokio::test]
async fn after_unsubscribing_nothing_more_arrives_and_disconnecting_leaves_no_subscription() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut alice, alice_id) = gateway.connect_with_id().await;
    let mut bob = gateway.connect().await;
    subscribe(&mut alice, "news").await;
    subscribe(&mut alice, "sports/*").await;
    publish(&mut bob, "news", json!("first")).await;
    assert_eq!(message(&mut alice).await["data"], "first");

    let reply = request(&mut alice, json!({"action": "unsubscribe", "channel": "news"})).await;
    assert_eq!(reply, json!({"type": "unsubscribed", "channel": "news"}));
    publish(&mut bob, "news", json!("second")).await;
    assert_silent(&mut alice, Duration::from_millis(300)).await;

    assert_eq!(gateway.store.subscription_count(), 1);
    alice.close(None).await.expect("close");
    eventually("alice's $disconnect", || gateway.store.get(&alice_id).is_none()).await;
    assert_eq!(gateway.store.subscription_count(), 0, "her sports/* subscription went with her");
}

#[tokio::test]
async fn bad_channel_requests_get_their_error_code_and_the_connection_stays_open() {
    // A hundred subscriptions at once would pass the stage's 100 messages a second.
    let gateway = TestGateway::start(Settings { stage_throttle: None, ..Settings::default() }).await;
    let mut client = gateway.connect().await;
    let cases = [
        (json!({"action": "subscribe"}), "missing_channel"),
        (json!({"action": "subscribe", "channel": "a/*/b"}), "invalid_channel"),
        (json!({"action": "publish", "channel": "chat/*", "data": 1}), "invalid_channel"),
        (json!({"action": "publish", "channel": "chat"}), "missing_data"),
        (json!({"action": "subscribe", "channel": "user/alice"}), "forbidden_channel"),
        (json!({"action": "publish", "channel": "user/alice", "data": 1}), "forbidden_channel"),
    ];
    for (body, code) in cases {
        let reply = request_invalid(&mut client, body.clone()).await;
        assert_eq!(reply["error"]["code"], code, "{body}");
    }
    for n in 0..100 {
        subscribe(&mut client, &format!("room/{n}")).await;
    }
    let reply = request(&mut client, json!({"action": "subscribe", "channel": "room/100"})).await;
    assert_eq!(reply["error"]["code"], "too_many_subscriptions");
    send_text(&mut client, "still open").await;
    assert_eq!(next_text(&mut client).await, "still open");
    assert!(gateway.queue.peek().is_empty());
}

#[tokio::test]
async fn a_subscriber_that_vanished_without_its_disconnect_is_pruned_with_its_subscriptions() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut alice = gateway.connect().await;
    let (mut bob, bob_id) = gateway.connect_with_id().await;
    subscribe(&mut alice, "chat/general").await;
    subscribe(&mut bob, "chat/*").await;

    // Bob's network drops and his $disconnect is lost: the store still lists him and his subscription.
    gateway.vanish(bob, &bob_id).await;
    assert_eq!(gateway.store.subscription_count(), 2);

    publish(&mut alice, "chat/general", json!("still there?")).await;

    assert_eq!(message(&mut alice).await["data"], "still there?");
    eventually("the worker to prune bob", || gateway.store.get(&bob_id).is_none()).await;
    assert_eq!(gateway.store.subscription_count(), 1, "alice's alone");
}

/// The next `n` messages, in offset order (a replay's jobs are posted by several invocations at once).
async fn messages_by_offset(client: &mut Client, n: usize) -> Vec<Value> {
    let mut frames = Vec::new();
    for _ in 0..n {
        frames.push(message(client).await);
    }
    frames.sort_by_key(|frame| frame["offset"].as_u64());
    frames
}

#[tokio::test]
async fn a_subscriber_that_comes_back_with_its_last_position_gets_what_it_missed_then_live_messages() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut alice = gateway.connect().await;
    let mut bob = gateway.connect().await;
    let answer = subscribe(&mut alice, "news").await;
    let epoch = answer["epoch"].clone();
    assert_eq!(answer["offset"], 0);
    let first = publish(&mut bob, "news", json!(1)).await;
    let frame = message(&mut alice).await;
    assert_eq!((&frame["id"], &frame["offset"], &frame["epoch"]), (&json!(first), &json!(1), &epoch));

    alice.close(None).await.expect("close");
    let mut missed = Vec::new();
    for n in 2..=4 {
        missed.push(publish(&mut bob, "news", json!(n)).await);
    }
    let mut alice = gateway.connect().await;
    let since = json!({"offset": 1, "epoch": epoch});
    let answer = request(&mut alice, json!({"action": "subscribe", "channel": "news", "since": since})).await;
    assert_eq!(answer["recovered"], true, "{answer}");
    assert_eq!((&answer["offset"], &answer["epoch"]), (&json!(4), &epoch));
    let replayed = messages_by_offset(&mut alice, 3).await;
    let ids: Vec<&str> = replayed.iter().map(|frame| frame["id"].as_str().expect("id")).collect();
    assert_eq!(ids, missed, "the three missed, as published");
    assert_eq!(
        replayed.iter().map(|f| f["offset"].as_u64()).collect::<Vec<_>>(),
        [Some(2), Some(3), Some(4)]
    );
    publish(&mut bob, "news", json!(5)).await;
    assert_eq!(message(&mut alice).await["offset"], 5, "then live ones");
    assert_silent(&mut alice, Duration::from_millis(300)).await;

    let history = request(&mut bob, json!({"action": "history", "channel": "news", "limit": 2})).await;
    let offsets: Vec<Value> =
        history["messages"].as_array().expect("messages").iter().map(|m| m["offset"].clone()).collect();
    assert_eq!((offsets, &history["offset"]), (vec![json!(4), json!(5)], &json!(5)), "{history}");

    let lost = json!({"offset": 1, "epoch": "another"});
    let answer = request(&mut bob, json!({"action": "subscribe", "channel": "news", "since": lost})).await;
    assert_eq!(answer["recovered"], false, "{answer}");
    assert_silent(&mut bob, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn with_history_off_messages_carry_no_offset_and_nothing_is_kept() {
    let settings = Settings {
        history: shared::history::HistorySettings { size: 0, ..Default::default() },
        ..Settings::default()
    };
    let gateway = TestGateway::start(settings).await;
    let mut alice = gateway.connect().await;
    let reply = request(&mut alice, json!({"action": "subscribe", "channel": "news"})).await;
    assert_eq!(reply, json!({"type": "subscribed", "channel": "news"}));
    publish(&mut alice, "news", json!(1)).await;
    let frame = message(&mut alice).await;
    assert!(frame.get("offset").is_none() && frame.get("epoch").is_none(), "{frame}");
    let history = request(&mut alice, json!({"action": "history", "channel": "news"})).await;
    assert_eq!(history["messages"], json!([]));
}
