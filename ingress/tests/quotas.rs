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

mod events;
use events::context;

fn ingress(quotas: Arc<dyn Quotas>) -> (Ingress, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    let ports = Ports {
        store: Arc::new(MemoryStore::default()),
        queue: queue.clone(),
        history: None,
        presence: None,
        events: None,
        hooks: None,
        quotas,
        namespaces: Default::default(),
    };
    (Ingress::new(ports), queue)
}

/// A broadcast from `connection`, whose token's `sub` is `user` (`None`: anonymous).
fn broadcast(connection: &str, user: Option<&str>) -> ApiGatewayWebsocketProxyRequest {
    let mut context = context("$default", "MESSAGE");
    context["connectionId"] = json!(connection);
    if let Some(user) = user {
        context["authorizer"] = json!({ "principalId": user, "sub": user });
    }
    let event = json!({ "requestContext": context, "isBase64Encoded": false,
                        "body": r#"{"action":"broadcast","data":"hi","ref":"r"}"# });
    serde_json::from_value(event).expect("an event")
}

/// Sends `n` broadcasts and returns their answers, each held to the protocol's contract.
async fn send(ingress: &Ingress, connection: &str, user: Option<&str>, n: usize) -> Vec<Value> {
    let mut answers = Vec::new();
    for _ in 0..n {
        let response = ingress.handle(broadcast(connection, user)).await.expect("handled");
        let text = match &response.body {
            Some(aws_lambda_events::encodings::Body::Text(text)) => text.clone(),
            other => panic!("a text reply, not {other:?}"),
        };
        testkit::contract::check(testkit::contract::Direction::Received, &text);
        answers.push(serde_json::from_str(&text).expect("JSON"));
    }
    answers
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
