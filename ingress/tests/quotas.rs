//! A client's quota of `publish` and `broadcast` messages a second, per connection and per user:
//! past it, `rate_limited` with how long to wait, nothing queued; other clients untouched; a quota
//! store that fails lets messages through.

use std::sync::Arc;

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use ingress::{Ingress, Ports};
use serde_json::{Value, json};
use shared::Quotas;
use shared::queue::MemoryQueue;
use shared::quota::{MemoryQuotas, QuotaSettings};
use shared::store::MemoryStore;
use shared::testing::BrokenQuotas;
use shared::usage::Usage;

mod events;
use events::context;

fn ingress(quotas: Arc<dyn Quotas>) -> (Ingress, Arc<MemoryQueue>) {
    ingress_with(quotas, Default::default())
}

fn ingress_with(
    quotas: Arc<dyn Quotas>,
    namespaces: shared::namespaces::Namespaces,
) -> (Ingress, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    let ports = Ports { quotas, namespaces, ..Ports::new(Arc::new(MemoryStore::default()), queue.clone()) };
    (Ingress::new(ports), queue)
}

/// A broadcast from `connection`, whose token's `sub` is `user` (`None`: anonymous).
fn broadcast(connection: &str, user: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
    message(connection, user, r#"{"action":"broadcast","data":"hi","ref":"r"}"#)
}

fn message(connection: &str, user: Option<&str>, body: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut context = context("$default", "MESSAGE");
    context["connectionId"] = json!(connection);
    if let Some(user) = user {
        context["authorizer"] = json!({ "principalId": user, "sub": user });
    }
    let event = json!({ "requestContext": context, "isBase64Encoded": false, "body": body });
    serde_json::from_value(event).expect("an event")
}

/// Sends `n` broadcasts and returns their answers, each held to the protocol's contract.
async fn send(ingress: &Ingress, connection: &str, user: Option<&str>, n: usize) -> Vec<Value> {
    let mut answers = Vec::new();
    for _ in 0..n {
        answers.push(answer(ingress, broadcast(connection, user)).await);
    }
    answers
}

async fn answer(ingress: &Ingress, event: ApiGatewayWebsocketProxyRequest) -> Value {
    {
        let response = ingress.handle(event).await.expect("handled");
        let text = match &response.body {
            Some(aws_lambda_events::encodings::Body::Text(text)) => text.clone(),
            other => panic!("a text reply, not {other:?}"),
        };
        testkit::contract::check(testkit::contract::Direction::Received, &text);
        serde_json::from_str(&text).expect("JSON")
    }
}

fn queued(answers: &[Value]) -> usize {
    answers.iter().filter(|a| a["type"] == "queued").count()
}

#[tokio::test]
async fn a_connection_past_its_quota_is_told_rate_limited_with_how_long_to_wait_and_nothing_is_queued() {
    let (ingress, queue) = ingress(Arc::new(MemoryQuotas::new(QuotaSettings::new(2, 0))));
    let answers = send(&ingress, "TWegAcC4EowCHnA=", None, 10).await;
    assert_eq!(queued(&answers), 4, "two seconds' burst of two a second");
    let refused = answers.iter().find(|a| a["type"] != "queued").expect("one refused");
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    assert_eq!(refused["ref"], "r");
    let wait = refused["error"]["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!((1..=500).contains(&wait), "one more fits within half a second at two a second: {wait}");
    assert_eq!(queue.stats().visible, 4, "the refused reached no queue");
    assert_eq!(
        queued(&send(&ingress, "OTHERcC4EowCHnA=", None, 3).await),
        3,
        "another connection is untouched"
    );
}

#[tokio::test]
async fn a_users_connections_share_the_users_quota_and_other_users_keep_theirs() {
    let (ingress, queue) = ingress(Arc::new(MemoryQuotas::new(QuotaSettings::new(100, 1))));
    let first = send(&ingress, "TWegAcC4EowCHnA=", Some("mallory"), 3).await;
    let second = send(&ingress, "OTHERcC4EowCHnA=", Some("mallory"), 3).await;
    assert_eq!(queued(&first) + queued(&second), 2, "one a second, two at once, across her connections");
    assert!(
        second.iter().any(|a| a["error"]["message"].as_str().is_some_and(|m| m.starts_with("this user's")))
    );
    assert_eq!(queued(&send(&ingress, "THIRDcC4EowCHnA=", Some("alice"), 2).await), 2);
    assert_eq!(queue.stats().visible, 4);
}

#[tokio::test]
async fn a_quota_store_that_fails_lets_every_message_through() {
    let (ingress, queue) = ingress(Arc::new(BrokenQuotas));
    assert_eq!(queued(&send(&ingress, "TWegAcC4EowCHnA=", Some("mallory"), 20).await), 20);
    assert_eq!(queue.stats().visible, 20, "failing open loses nothing");
}

#[tokio::test]
async fn a_namespace_with_quotas_of_its_own_is_counted_apart_from_the_stacks() {
    let file = "[cursor]\npublish_rate_per_connection = 30\n";
    let namespaces = shared::namespaces::parse("namespaces.toml", file, Default::default()).expect("valid");
    let (ingress, queue) = ingress_with(Arc::new(MemoryQuotas::new(QuotaSettings::new(1, 0))), namespaces);
    let publish = |channel: &str| {
        message(
            "TWegAcC4EowCHnA=",
            None,
            &format!(r#"{{"action":"publish","channel":"{channel}","data":1}}"#),
        )
    };
    let mut in_cursor = 0;
    for _ in 0..80 {
        if answer(&ingress, publish("cursor/doc")).await["type"] == "published" {
            in_cursor += 1;
        }
    }
    // Two seconds' burst of 30 a second, and what refilled while the test ran.
    assert!((60..=70).contains(&in_cursor), "the namespace's own quota: {in_cursor}");
    let mut elsewhere = 0;
    for _ in 0..5 {
        if answer(&ingress, publish("chat/room")).await["type"] == "published" {
            elsewhere += 1;
        }
    }
    assert_eq!(elsewhere, 2, "the stack's one a second, its own bucket");
    assert_eq!(queue.stats().visible, in_cursor + elsewhere);
}

/// An ingress whose fan-out ceiling is `per_minute` deliveries, counted in `usage`.
fn with_ceiling(usage: Arc<dyn shared::usage::Usage>, per_minute: u64) -> (Ingress, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    let ceiling = Some(shared::usage::Ceiling { usage, per_minute });
    let ports = Ports { ceiling, ..Ports::new(Arc::new(MemoryStore::default()), queue.clone()) };
    (Ingress::new(ports), queue)
}

#[tokio::test]
async fn a_sender_whose_messages_made_the_ceilings_deliveries_this_minute_is_refused_until_the_next() {
    let usage = Arc::new(shared::usage::MemoryUsage::default());
    let (ingress, queue) = with_ceiling(usage.clone(), 1_000);
    let event = broadcast("TWegAcC4EowCHnA=", Some("mallory"));
    let (minute, _) = shared::usage::minute_of(event.request_context.request_time_epoch);
    usage.add("user:mallory", minute, 999).await.expect("counted");
    assert_eq!(queued(&[answer(&ingress, event).await]), 1, "under the ceiling, however large its audience");
    usage.add("user:mallory", minute, 1).await.expect("counted");

    let refused = answer(&ingress, broadcast("OTHERcC4EowCHnA=", Some("mallory"))).await;

    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    assert!(refused["error"]["message"].as_str().is_some_and(|m| m.contains("1000 deliveries this minute")));
    let wait = refused["error"]["retryAfterMs"].as_u64().expect("retryAfterMs");
    assert!((1..=60_000).contains(&wait), "until the next minute: {wait}");
    assert_eq!(queue.stats().visible, 1, "the refused reached no queue");
    assert_eq!(
        queued(&send(&ingress, "THIRDcC4EowCHnA=", Some("alice"), 1).await),
        1,
        "another user's count"
    );
}

#[tokio::test]
async fn a_fanout_count_that_fails_lets_every_message_through() {
    let (ingress, queue) = with_ceiling(Arc::new(shared::testing::BrokenUsage), 1);
    assert_eq!(queued(&send(&ingress, "TWegAcC4EowCHnA=", Some("mallory"), 3).await), 3);
    assert_eq!(queue.stats().visible, 3, "failing open loses nothing");
}
