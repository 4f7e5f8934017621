//! The bad-input catalogue (RELIABILITY.md), end to end through the local gateway: each input gets a
//! clear error with a documented code, nothing is queued, nobody else hears of it, and the connection
//! stays open unless API Gateway itself would close it.

mod support;

use std::time::Duration;

use futures::SinkExt;
use local::{Bucket, Settings};
use serde_json::Value;
use support::{TestGateway, assert_silent, next_text, send_fragmented, send_text, signed};
use tokio_tungstenite::tungstenite::Message;

/// Sends `input`, expects the error `code` back, and checks that the connection still echoes, that
/// nothing reached the queue and that a bystander heard nothing.
async fn refused(input: Message, code: &str) {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut client = gateway.connect().await;
    let mut bystander = gateway.connect().await;

    client.send(input).await.expect("send");
    let answer: Value = serde_json::from_str(&next_text(&mut client).await).expect("a JSON error");

    assert_eq!(answer["error"]["code"], code, "{answer}");
    assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    send_text(&mut client, "still open?").await;
    assert_eq!(next_text(&mut client).await, "still open?");
    assert!(gateway.queue.peek().is_empty(), "nothing may be queued");
    assert_eq!(gateway.queue.stats().in_flight, 0);
    assert_silent(&mut bystander, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_binary_frame_is_refused_as_binary_not_supported() {
    refused(Message::binary(vec![0x7b, 0x00, 0xff]), "binary_not_supported").await;
}

#[tokio::test]
async fn text_that_starts_like_json_but_is_not_is_refused_as_invalid_json() {
    refused(Message::text(r#"{"action":"broadcast","data":"#), "invalid_json").await;
}

#[tokio::test]
async fn a_json_object_without_an_action_is_refused_as_missing_action() {
    refused(Message::text(r#"{"data":{"text":"hi"}}"#), "missing_action").await;
}

#[tokio::test]
async fn an_unknown_action_is_refused_as_unknown_action() {
    refused(Message::text(r#"{"action":"shout","data":"hi"}"#), "unknown_action").await;
}

#[tokio::test]
async fn an_action_that_is_not_a_string_is_refused_as_invalid_action() {
    refused(Message::text(r#"{"action":["broadcast"],"data":"hi"}"#), "invalid_action").await;
}

#[tokio::test]
async fn a_broadcast_without_data_is_refused_as_missing_data() {
    refused(Message::text(r#"{"action":"broadcast"}"#), "missing_data").await;
}

#[tokio::test]
async fn an_empty_message_is_refused_as_empty_message() {
    refused(Message::text(""), "empty_message").await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_as_too_deeply_nested() {
    let nested = format!(r#"{{"action":"broadcast","data":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    refused(Message::text(nested), "too_deeply_nested").await;
}

/// A message within API Gateway's 128 KB whose envelope (id, sender, time) would not be: refused when
/// sent rather than failing at every `@connections` call later.
#[tokio::test]
async fn a_broadcast_whose_envelope_would_pass_128_kb_is_refused_as_message_too_large() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut client = gateway.connect().await;
    let prefix = r#"{"action":"broadcast","data":""#;
    let text = format!("{prefix}{}\"}}", "x".repeat(128 * 1024 - prefix.len() - 2));
    assert_eq!(text.len(), 128 * 1024, "exactly API Gateway's limit");
    // API Gateway's frames are at most 32 KB: a larger message arrives in fragments.
    send_fragmented(&mut client, text.as_bytes(), 32 * 1024).await;

    let answer: Value = serde_json::from_str(&next_text(&mut client).await).expect("a JSON error");

    assert_eq!(answer["error"]["code"], "message_too_large", "{answer}");
    send_text(&mut client, "still open?").await;
    assert_eq!(next_text(&mut client).await, "still open?");
    assert!(gateway.queue.peek().is_empty());
}

#[tokio::test]
async fn a_client_flooding_past_the_stage_throttle_is_told_too_many_requests_and_stays_connected() {
    let throttle = Bucket { rate: 1, burst: 5 };
    let gateway =
        TestGateway::start(Settings { stage_throttle: Some(throttle), ..Settings::default() }).await;
    let (mut client, id) = gateway.connect_with_id().await;

    for n in 0..20 {
        send_text(&mut client, &format!("echo {n}")).await;
    }
    let mut echoed = 0;
    let mut throttled = 0;
    for _ in 0..20 {
        let answer = next_text(&mut client).await;
        if answer.starts_with("echo ") {
            echoed += 1;
        } else {
            let error: Value = serde_json::from_str(&answer).expect("a JSON error");
            assert_eq!(error["message"], "Too Many Requests", "{error}");
            assert_eq!(error["connectionId"], id.as_str(), "{error}");
            throttled += 1;
        }
    }

    // The burst passes; beyond it only what the rate refills while the flood lasts.
    assert!(echoed >= 5, "the burst of 5 must pass: {echoed} echoed");
    assert!(echoed <= 10 && throttled >= 10, "{echoed} echoed, {throttled} throttled");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    send_text(&mut client, "after the flood").await;
    assert_eq!(next_text(&mut client).await, "after the flood", "the bucket refills");
}

#[tokio::test]
async fn throttled_broadcasts_are_not_queued() {
    let throttle = Bucket { rate: 1, burst: 3 };
    let gateway =
        TestGateway::start(Settings { stage_throttle: Some(throttle), ..Settings::default() }).await;
    let mut client = gateway.connect().await;

    for n in 0..10 {
        send_text(&mut client, &format!(r#"{{"action":"broadcast","data":{n}}}"#)).await;
    }
    let mut throttled = 0;
    let mut received = 0;
    // Each broadcast that passes comes back to its sender too; each throttled one is answered.
    while throttled + received < 10 {
        let answer: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
        if answer["message"] == "Too Many Requests" {
            throttled += 1;
        } else {
            assert_eq!(answer["type"], "broadcast", "{answer}");
            received += 1;
        }
    }
    assert!(throttled >= 5, "{throttled} throttled");
    assert_eq!(received, 10 - throttled, "every broadcast that passed, and only those, went out");
}

#[tokio::test]
async fn a_handshake_on_an_unknown_path_is_refused_with_403() {
    let gateway = TestGateway::start(Settings::default()).await;
    for path in ["/local/extra", "/a/b/c", "/prod"] {
        match tokio_tungstenite::connect_async(format!("{}{path}", gateway.ws_url)).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{path}")
            }
            other => panic!("{path}: expected 403, got {:?}", other.map(|_| ())),
        }
    }
    assert!(gateway.store.is_empty(), "no $connect ran");
}

#[tokio::test]
async fn malformed_management_requests_get_aws_errors_and_deliver_nothing() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut client, id) = gateway.connect_with_id().await;
    let http = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", gateway.http_url);

    let cases = [
        (
            http.post(url(&format!("/@connections/{}", "A".repeat(300)))).body("hi"),
            400,
            "BadRequestException",
        ),
        (http.post(url("/@connections/bad%20id%21")).body("hi"), 400, "BadRequestException"),
        (
            http.post(url(&format!("/@connections/{id}"))).body(vec![b'x'; 128 * 1024 + 1]),
            413,
            "PayloadTooLargeException",
        ),
        (http.post(url(&format!("/prod/@connections/{id}"))).body("hi"), 403, "ForbiddenException"),
        (http.put(url(&format!("/@connections/{id}"))).body("hi"), 403, "ForbiddenException"),
        (http.patch(url(&format!("/local/@connections/{id}"))).body("hi"), 403, "ForbiddenException"),
    ];
    for (request, status, error_type) in cases {
        let response = signed(request).await;
        assert_eq!(response.status(), status);
        assert_eq!(response.headers()["x-amzn-errortype"], error_type);
        let body: Value = serde_json::from_str(&response.text().await.expect("a body")).expect("JSON");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }

    assert_silent(&mut client, Duration::from_millis(300)).await;
    send_text(&mut client, "still open?").await;
    assert_eq!(next_text(&mut client).await, "still open?");
}

#[tokio::test]
async fn calls_past_the_accounts_request_throttle_are_refused_with_429_and_deliver_nothing() {
    // A bucket of 3 calls refilled at 1 a second: the fourth call in a row is past it.
    let settings = Settings { account_rate: Some(Bucket { rate: 1, burst: 3 }), ..Settings::default() };
    let gateway = TestGateway::start(settings).await;
    let (mut client, id) = gateway.connect_with_id().await;
    let http = reqwest::Client::new();
    let url = format!("{}/@connections/{id}", gateway.http_url);

    // GET, DELETE and POST all take a token; the POST is the one past the bucket.
    assert_eq!(signed(http.get(&url)).await.status(), 200);
    assert_eq!(signed(http.get(&url)).await.status(), 200);
    assert_eq!(signed(http.get(&url)).await.status(), 200);
    let response = signed(http.post(&url).body("past the bucket")).await;

    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["x-amzn-errortype"], "LimitExceededException");
    let body: Value = serde_json::from_str(&response.text().await.expect("a body")).expect("JSON");
    assert_eq!(body["message"], "Too Many Requests", "the throttle's message, not a full buffer's");
    assert_eq!(signed(http.delete(&url)).await.status(), 429, "a DELETE is refused too");
    assert_silent(&mut client, Duration::from_millis(300)).await;
    send_text(&mut client, "still open?").await;
    assert_eq!(next_text(&mut client).await, "still open?");
    let stats = gateway.stats().await;
    assert_eq!(stats["calls_refused_account_throttle"], 2, "{stats}");
}
