//! The gateway counts each client's messages as the deployed ingress does: a client sending as fast
//! as its socket allows is answered `rate_limited`, and a client beside it is not; one that goes on
//! is closed, and its user refused a new connection for a while.

mod support;

use std::sync::Arc;

use authorizer::token::{DevClaims, mint};
use authorizer::{Authorizer, Verifier};
use local::Settings;
use serde_json::json;
use shared::quota::QuotaSettings;
use support::*;
use tokio_tungstenite::tungstenite;

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

/// A token for `sub`, good for ten minutes.
fn token(sub: &str) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    mint(SECRET, &DevClaims { sub: sub.into(), exp: now + 600, ..DevClaims::default() }).expect("mint")
}

/// Sends `publish` 400 times without waiting, as a flood does, and returns the close frame's code.
async fn flood_until_closed(client: &mut Client) -> u16 {
    use futures::SinkExt;
    let publish = json!({"action":"publish","channel":"room/1","data":1}).to_string();
    for _ in 0..400 {
        if client.send(tungstenite::Message::text(publish.clone())).await.is_err() {
            break;
        }
    }
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(10), futures::StreamExt::next(client)).await
        {
            Ok(Some(Ok(tungstenite::Message::Close(frame)))) => {
                return frame.map_or(1005, |frame| u16::from(frame.code));
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("the flood was not closed: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_its_quota_is_rate_limited_and_the_client_beside_it_is_not() {
    let gateway = TestGateway::start(Settings {
        quotas: QuotaSettings::new(10, 0),
        stage_throttle: None,
        ..Settings::default()
    })
    .await;
    let mut flooder = gateway.connect().await;
    let mut neighbour = gateway.connect().await;
    let (mut queued, mut limited) = (0, 0);
    for n in 0..100 {
        let answer = request(&mut flooder, json!({"action":"publish","channel":"room/1","data":n})).await;
        match answer["type"].as_str() {
            Some("published") => queued += 1,
            _ => {
                assert_eq!(answer["error"]["code"], "rate_limited", "{answer}");
                assert!(answer["error"]["retryAfterMs"].as_u64().is_some_and(|ms| ms >= 1));
                limited += 1;
            }
        }
    }
    assert!((20..=30).contains(&queued), "a burst of 20 and what refilled meanwhile: {queued}");
    assert_eq!(queued + limited, 100);
    let answer = request(&mut neighbour, json!({"action":"publish","channel":"room/1","data":"hi"})).await;
    assert_eq!(answer["type"], "published", "{answer}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_goes_on_flooding_after_being_refused_is_closed_and_the_client_beside_it_is_not() {
    let gateway = TestGateway::start(Settings {
        quotas: QuotaSettings::new(10, 0),
        stage_throttle: None,
        ..Settings::default()
    })
    .await;
    let mut flooder = gateway.connect().await;
    let mut neighbour = gateway.connect().await;
    // Without waiting for answers, as a flood does: its burst of 20, then refusals until it has had
    // four times its quota of them.
    let code = flood_until_closed(&mut flooder).await;
    assert_eq!(code, 1000, "closed through @connections, as API Gateway closes (1005: no close frame)");
    let answer = request(&mut neighbour, json!({"action":"publish","channel":"room/1","data":"hi"})).await;
    assert_eq!(answer["type"], "published", "{answer}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_closed_for_flooding_is_refused_a_new_connection_and_another_user_is_not() {
    let verifier = Verifier::secret(SECRET, None, None).expect("secret");
    let gateway = TestGateway::start(Settings {
        quotas: QuotaSettings::new(10, 0),
        stage_throttle: None,
        authorizer: Some(Arc::new(Authorizer::new(verifier))),
        ..Settings::default()
    })
    .await;
    let connect =
        |sub: &str| tokio_tungstenite::connect_async(format!("{}/?token={}", gateway.ws_url, token(sub)));
    let (mut mallory, _) = connect("mallory").await.expect("mallory connects");

    assert_eq!(flood_until_closed(&mut mallory).await, 1000);

    match connect("mallory").await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("mallory came back at once: {:?}", other.map(|(_, response)| response.status())),
    }
    let (mut alice, _) = connect("alice").await.expect("another user connects");
    let answer = request(&mut alice, json!({"action":"publish","channel":"room/1","data":"hi"})).await;
    assert_eq!(answer["type"], "published", "{answer}");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_past_the_fanout_ceiling_is_refused_until_the_next_minute_and_others_are_not() {
    let gateway =
        TestGateway::start(Settings { fanout_per_minute: 50, stage_throttle: None, ..Settings::default() })
            .await;
    let mut subscribers = Vec::new();
    for _ in 0..30 {
        let mut client = gateway.connect().await;
        let answer = request(&mut client, json!({"action":"subscribe","channel":"room/1"})).await;
        assert_eq!(answer["type"], "subscribed");
        subscribers.push(client);
    }
    let mut sender = gateway.connect().await;
    // Each publish reaches 30: the second passes the ceiling of 50, and the worker counts it as it
    // posts, so one of the next few is refused.
    let mut accepted = 0;
    let refused = loop {
        assert!(accepted < 10, "never refused after {accepted} publishes of 30 deliveries");
        let answer =
            request(&mut sender, json!({"action":"publish","channel":"room/1","data":accepted})).await;
        if answer["type"] != "published" {
            break answer;
        }
        accepted += 1;
        for subscriber in &mut subscribers {
            let frame: serde_json::Value = serde_json::from_str(&next_text(subscriber).await).expect("JSON");
            assert_eq!(frame["data"], accepted - 1);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(accepted >= 2, "refused before its messages made 50 deliveries: {accepted}");
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    assert!(refused["error"]["retryAfterMs"].as_u64().is_some_and(|ms| (1..=60_000).contains(&ms)));
    let (subscriber, _) = subscribers.split_first_mut().expect("one");
    let answer = request(subscriber, json!({"action":"publish","channel":"room/1","data":"mine"})).await;
    assert_eq!(answer["type"], "published", "another sender's count: {answer}");
    gateway.stop().await;
}
