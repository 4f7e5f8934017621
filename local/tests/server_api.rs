//! The server API end to end: a backend's calls to `/api/…` (a bearer token with the server scope,
//! run through the project's authorizer as API Gateway's Lambda authorizer) and `/iam/api/…`
//! (SigV4), through the ingress's HTTP API events, to the clients' sockets.

mod support;

use std::sync::Arc;
use std::time::Duration;

use authorizer::token::{DevClaims, mint};
use authorizer::{Authorizer, Verifier};
use futures::StreamExt;
use local::Settings;
use serde_json::{Value, json};
use support::*;

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

fn token(sub: &str, server: bool) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let claims = DevClaims {
        sub: sub.into(),
        scope: server.then(|| shared::identity::SERVER_SCOPE.to_owned()),
        exp: now + 600,
        ..DevClaims::default()
    };
    mint(SECRET, &claims).expect("mint")
}

async fn gateway() -> TestGateway {
    let verifier = Verifier::secret(SECRET, None, None).expect("secret");
    let settings = Settings {
        authorizer: Some(Arc::new(Authorizer::new(verifier))),
        stage_throttle: None,
        ..Settings::default()
    };
    TestGateway::start(settings).await
}

/// `POST /api/<method>` with a server token: the status and the JSON answer.
async fn call(gateway: &TestGateway, method: &str, body: &Value) -> (u16, Value) {
    call_raw(gateway, method, body.to_string(), Some(&token("backend", true))).await
}

async fn call_raw(gateway: &TestGateway, method: &str, body: String, bearer: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::Client::new().post(format!("{}/api/{method}", gateway.http_url)).body(body);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let answer: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("a JSON answer: {text}"));
    testkit::server_contract::check_answer(method, status, &answer);
    (status, answer)
}

async fn connect_as(gateway: &TestGateway, sub: &str) -> (Client, String) {
    let before = gateway.store.ids();
    let (client, _) =
        tokio_tungstenite::connect_async(format!("{}/?token={}", gateway.ws_url, token(sub, false)))
            .await
            .expect("allowed");
    let id = gateway.store.ids().into_iter().find(|id| !before.contains(id)).expect("a record");
    (client, id.to_string())
}

async fn subscribe(client: &mut Client, channel: &str) {
    let reply = request(client, json!({"action": "subscribe", "channel": channel})).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
}

async fn next_json(client: &mut Client) -> Value {
    serde_json::from_str(&next_text(client).await).expect("a JSON frame")
}

#[tokio::test]
async fn a_publish_is_answered_with_its_offset_and_a_retry_with_its_id_is_answered_the_same_and_delivered_once()
 {
    let gateway = gateway().await;
    let (mut alice, _) = connect_as(&gateway, "alice").await;
    subscribe(&mut alice, "chat/general").await;
    let id = "6f1c1d0e-4a8b-4f43-9a55-2b8d7c5e9f01";
    let body = json!({"channel": "chat/general", "data": {"text": "hi"}, "id": id});

    let (status, first) = call(&gateway, "publish", &body).await;
    assert_eq!(status, 200, "{first}");
    let published = &first["published"][0];
    assert_eq!((published["channel"].as_str(), published["id"].as_str()), (Some("chat/general"), Some(id)));
    assert_eq!(published["offset"], 1, "{first}");
    let frame = next_json(&mut alice).await;
    assert_eq!(
        (frame["type"].as_str(), frame["id"].as_str(), frame["offset"].as_u64()),
        (Some("message"), Some(id), Some(1))
    );
    assert!(frame.get("from").is_none() && frame.get("user").is_none(), "a backend's message: {frame}");

    let (status, again) = call(&gateway, "publish", &body).await;
    assert_eq!((status, &again), (200, &first), "the same answer");
    let (_, next) = call(&gateway, "publish", &json!({"channel": "chat/general", "data": 2})).await;
    assert_eq!(next["published"][0]["offset"], 2, "no offset taken by the retry: {next}");
    let frame = next_json(&mut alice).await;
    assert_eq!(frame["offset"], 2, "the retry was not delivered again: {frame}");
    assert_silent(&mut alice, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_signed_batch_publishes_each_message_to_each_of_its_channels_in_order() {
    let gateway = gateway().await;
    let (mut news, _) = connect_as(&gateway, "alice").await;
    subscribe(&mut news, "news").await;
    let (mut sports, _) = connect_as(&gateway, "bob").await;
    subscribe(&mut sports, "sports").await;
    let body = json!({"messages": [
        {"channels": ["news", "sports"], "data": "both"},
        {"channel": "news", "data": "news only"},
    ]});
    let request =
        reqwest::Client::new().post(format!("{}/iam/api/publish", gateway.http_url)).body(body.to_string());
    let response = signed(request).await;
    assert_eq!(response.status(), 200);
    let answer: Value = serde_json::from_str(&response.text().await.expect("a body")).expect("json");
    testkit::server_contract::check_answer("publish", 200, &answer);
    let published: Vec<(String, u64)> = answer["published"]
        .as_array()
        .expect("a list")
        .iter()
        .map(|p| {
            (p["channel"].as_str().unwrap_or_default().to_owned(), p["offset"].as_u64().unwrap_or_default())
        })
        .collect();
    assert_eq!(published, [("news".to_owned(), 1), ("sports".to_owned(), 1), ("news".to_owned(), 2)]);
    assert_eq!(next_json(&mut news).await["data"], "both");
    assert_eq!(next_json(&mut news).await["data"], "news only");
    assert_eq!(next_json(&mut sports).await["data"], "both");
    assert_silent(&mut sports, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn a_client_token_no_token_and_a_bad_or_missing_signature_are_refused_and_nothing_is_published() {
    let gateway = gateway().await;
    let (mut alice, _) = connect_as(&gateway, "alice").await;
    subscribe(&mut alice, "news").await;
    let body = json!({"channel": "news", "data": 1}).to_string();

    let (status, answer) = call_raw(&gateway, "publish", body.clone(), Some(&token("alice", false))).await;
    assert_eq!(
        (status, answer["message"].as_str()),
        (403, Some("Forbidden")),
        "a client's token is no server's"
    );
    let (status, answer) = call_raw(&gateway, "publish", body.clone(), None).await;
    assert_eq!((status, answer["message"].as_str()), (401, Some("Unauthorized")));
    let (status, _) = call_raw(&gateway, "publish", body.clone(), Some("not-a-jwt")).await;
    assert_eq!(status, 403);

    let url = format!("{}/iam/api/publish", gateway.http_url);
    let unsigned = reqwest::Client::new().post(&url).body(body.clone()).send().await.expect("an answer");
    assert_eq!(unsigned.status(), 403);
    let stranger = aws_credential_types::Credentials::new("local", "not-the-secret", None, None, "test");
    let forged = sign_with(
        reqwest::Client::new().post(&url).body(body.clone()).build().expect("request"),
        stranger,
        std::time::SystemTime::now(),
    );
    let forged = reqwest::Client::new().execute(forged).await.expect("an answer");
    assert_eq!(forged.status(), 403);
    assert_eq!(forged.headers()["x-amzn-errortype"], "InvalidSignatureException");
    // A client's bearer token on the SigV4 routes is no signature either.
    let bearer =
        reqwest::Client::new().post(&url).bearer_auth(token("backend", true)).body(body).send().await;
    assert_eq!(bearer.expect("an answer").status(), 403);

    assert_silent(&mut alice, Duration::from_millis(300)).await;
    let (_, history) = call(&gateway, "history", &json!({"channel": "news"})).await;
    assert_eq!(history["offset"], 0, "nothing was published: {history}");
}

#[tokio::test]
async fn every_bad_call_is_refused_with_its_status_and_code_and_publishes_nothing() {
    let gateway = gateway().await;
    let (mut alice, _) = connect_as(&gateway, "alice").await;
    subscribe(&mut alice, "news").await;
    let big = "x".repeat(130 * 1024);
    let batch = |n: usize| json!({"messages": (0..n).map(|i| json!({"channel": "news", "data": i})).collect::<Vec<_>>()});
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("publish", String::new(), 400, "empty_message"),
        ("publish", "[1]".into(), 400, "invalid_field"),
        ("publish", "{".into(), 400, "invalid_json"),
        ("publish", json!({"data": 1}).to_string(), 400, "missing_channel"),
        ("publish", json!({"channel": 7, "data": 1}).to_string(), 400, "invalid_channel"),
        ("publish", json!({"channel": "news/*", "data": 1}).to_string(), 400, "invalid_channel"),
        ("publish", json!({"channel": "news"}).to_string(), 400, "missing_data"),
        ("publish", json!({"channel": "news", "data": 1, "id": "seven"}).to_string(), 400, "invalid_field"),
        ("publish", json!({"channel": "news", "data": 1, "id": 7}).to_string(), 400, "invalid_field"),
        (
            "publish",
            json!({"channel": "news", "channels": ["a"], "data": 1}).to_string(),
            400,
            "invalid_field",
        ),
        ("publish", json!({"channels": "news", "data": 1}).to_string(), 400, "invalid_field"),
        ("publish", json!({"channels": [], "data": 1}).to_string(), 400, "invalid_field"),
        ("publish", json!({"channels": ["a", "a"], "data": 1}).to_string(), 400, "invalid_field"),
        ("publish", json!({"messages": "news"}).to_string(), 400, "invalid_field"),
        ("publish", json!({"messages": []}).to_string(), 400, "invalid_field"),
        ("publish", json!({"messages": [1]}).to_string(), 400, "invalid_field"),
        // The first message is good: a bad one later publishes nothing either.
        (
            "publish",
            json!({"messages": [{"channel": "news", "data": 1}, {"channel": "news"}]}).to_string(),
            400,
            "missing_data",
        ),
        ("publish", batch(101).to_string(), 400, "batch_too_large"),
        (
            "publish",
            json!({"channels": (0..101).map(|i| format!("c{i}")).collect::<Vec<_>>(), "data": 1}).to_string(),
            400,
            "batch_too_large",
        ),
        ("publish", json!({"channel": "news", "data": big}).to_string(), 413, "message_too_large"),
        (
            "publish",
            json!({"messages": (0..9).map(|_| json!({"channel": "news", "data": big})).collect::<Vec<_>>()})
                .to_string(),
            413,
            "body_too_large",
        ),
        ("broadcast", json!({}).to_string(), 400, "missing_data"),
        ("history", json!({"channel": "news", "limit": 0}).to_string(), 400, "invalid_limit"),
        ("history", json!({"channel": "news", "since": {"offset": "x"}}).to_string(), 400, "invalid_since"),
        (
            "history",
            json!({"channel": "news", "since": {"offset": 9, "epoch": "other"}}).to_string(),
            400,
            "unrecoverable_position",
        ),
        ("presence", json!({"channel": "news/*"}).to_string(), 400, "invalid_channel"),
        ("disconnect", json!({}).to_string(), 400, "invalid_field"),
        ("disconnect", json!({"user": 7}).to_string(), 400, "invalid_field"),
        ("disconnect", json!({"user": "a", "connection": "b"}).to_string(), 400, "invalid_field"),
        ("disconnect", json!({"connection": "not an id!"}).to_string(), 400, "invalid_field"),
        ("disconnect", json!({"user": "alice", "code": 1000}).to_string(), 400, "invalid_field"),
        ("disconnect", json!({"user": "alice", "code": "4000"}).to_string(), 400, "invalid_field"),
        ("disconnect", json!({"user": "alice", "reason": "r".repeat(124)}).to_string(), 400, "invalid_field"),
        ("disconnect", json!({"user": "alice", "reconnect": "no"}).to_string(), 400, "invalid_field"),
        ("unsubscribe", json!({"user": "alice"}).to_string(), 400, "missing_channel"),
        ("unsubscribe", json!({"user": "alice", "channel": "news/*/x"}).to_string(), 400, "invalid_channel"),
        ("unsubscribe", json!({"user": "alice", "channel": "user/alice"}).to_string(), 400, "invalid_field"),
        ("subscribe", json!({}).to_string(), 404, "unknown_method"),
    ];
    for (method, body, status, code) in cases {
        let shown = body.chars().take(80).collect::<String>();
        let (got, answer) = call_raw(&gateway, method, body, Some(&token("backend", true))).await;
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "{method} {shown}: {answer}"
        );
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{answer}");
    }
    let get = reqwest::get(format!("{}/api/publish", gateway.http_url)).await.expect("an answer");
    assert_eq!(get.status(), 404, "the routes are POST alone, as the HTTP API's");
    let huge =
        call_raw(&gateway, "publish", "x".repeat(11 * 1024 * 1024), Some(&token("backend", true))).await;
    assert_eq!(huge.0, 413, "past the HTTP API's 10 MB: {}", huge.1);

    assert_silent(&mut alice, Duration::from_millis(300)).await;
    let (_, history) = call(&gateway, "history", &json!({"channel": "news"})).await;
    assert_eq!(history["offset"], 0, "nothing was published: {history}");
}

#[tokio::test]
async fn history_and_presence_are_answered_as_the_clients_actions_are() {
    let gateway = gateway().await;
    let (mut alice, alice_id) = connect_as(&gateway, "alice").await;
    subscribe(&mut alice, "room/1").await;
    for n in 1..=3 {
        call(&gateway, "publish", &json!({"channel": "room/1", "data": n})).await;
        assert_eq!(next_json(&mut alice).await["data"], n);
    }
    let (status, history) = call(&gateway, "history", &json!({"channel": "room/1", "limit": 2})).await;
    assert_eq!(status, 200);
    let client = request(&mut alice, json!({"action": "history", "channel": "room/1", "limit": 2})).await;
    assert_eq!(history, client, "the client's answer");
    let data: Vec<&Value> =
        history["messages"].as_array().expect("messages").iter().map(|m| &m["data"]).collect();
    assert_eq!(data, [&json!(2), &json!(3)]);

    let (status, presence) = call(&gateway, "presence", &json!({"channel": "room/1"})).await;
    assert_eq!(status, 200);
    assert_eq!((presence["clients"].as_u64(), presence["users"].as_u64()), (Some(1), Some(1)), "{presence}");
    assert_eq!(presence["members"][0]["connection"], alice_id.as_str());
    assert_eq!(presence["members"][0]["user"], "alice");
}

#[tokio::test]
async fn disconnect_tells_every_connection_of_a_user_why_then_closes_them_and_their_leaves_follow() {
    let gateway = gateway().await;
    let (mut watcher, _) = connect_as(&gateway, "watcher").await;
    let reply =
        request(&mut watcher, json!({"action":"subscribe","channel":"room/1","joinLeave":true})).await;
    assert_eq!(reply["type"], "subscribed");
    let mut mallory = Vec::new();
    for _ in 0..3 {
        let (mut client, id) = connect_as(&gateway, "mallory").await;
        subscribe(&mut client, "room/1").await;
        mallory.push((client, id));
    }
    let (mut bob, _) = connect_as(&gateway, "bob").await;
    let mut joins = 0;
    while joins < 4 {
        if next_json(&mut watcher).await["type"] == "join" {
            joins += 1;
        }
    }

    let body = json!({"user": "mallory", "code": 4003, "reason": "banned", "reconnect": false});
    let (status, answer) = call(&gateway, "disconnect", &body).await;
    assert_eq!((status, answer["disconnected"].as_u64()), (200, Some(3)), "{answer}");
    for (client, _) in &mut mallory {
        let frame = next_json(client).await;
        assert_eq!(
            frame,
            json!({"type": "disconnect", "code": 4003, "reason": "banned", "reconnect": false})
        );
        next_close(client).await;
    }
    let mut left: Vec<String> = Vec::new();
    while left.len() < 3 {
        let frame = next_json(&mut watcher).await;
        if frame["type"] == "leave" {
            left.push(frame["connection"].as_str().unwrap_or_default().to_owned());
        }
    }
    left.sort();
    let mut ids: Vec<String> = mallory.iter().map(|(_, id)| id.clone()).collect();
    ids.sort();
    assert_eq!(left, ids, "each connection left once");
    assert_silent(&mut watcher, Duration::from_millis(300)).await;
    assert_eq!(request(&mut bob, json!({"action": "echo", "data": 1})).await["data"], 1, "bob stays");
    let (_, presence) = call(&gateway, "presence", &json!({"channel": "user/mallory"})).await;
    assert_eq!(presence["clients"], 0, "{presence}");

    let (status, again) = call(&gateway, "disconnect", &json!({"user": "mallory"})).await;
    assert_eq!((status, again["disconnected"].as_u64()), (200, Some(0)), "nobody left to close");
}

#[tokio::test]
async fn disconnect_closes_one_connection_by_its_id_and_no_other() {
    let gateway = gateway().await;
    let (mut first, first_id) = connect_as(&gateway, "alice").await;
    let (mut second, _) = connect_as(&gateway, "alice").await;
    let (status, answer) =
        call(&gateway, "disconnect", &json!({"connection": first_id, "reconnect": true})).await;
    assert_eq!((status, answer["disconnected"].as_u64()), (200, Some(1)), "{answer}");
    let frame = next_json(&mut first).await;
    assert_eq!((frame["code"].as_u64(), frame["reconnect"].as_bool()), (Some(4000), Some(true)), "{frame}");
    assert_eq!(frame["reason"], "disconnected by the server");
    next_close(&mut first).await;
    assert_eq!(request(&mut second, json!({"action": "echo", "data": 2})).await["data"], 2);
}

#[tokio::test]
async fn unsubscribe_takes_a_user_out_of_a_channel_on_every_connection_and_tells_each_one() {
    let gateway = gateway().await;
    let (mut watcher, _) = connect_as(&gateway, "watcher").await;
    let reply =
        request(&mut watcher, json!({"action":"subscribe","channel":"chat/general","joinLeave":true})).await;
    assert_eq!(reply["type"], "subscribed");
    let mut mallory = Vec::new();
    for _ in 0..2 {
        let (mut client, id) = connect_as(&gateway, "mallory").await;
        subscribe(&mut client, "chat/general").await;
        subscribe(&mut client, "chat/other").await;
        mallory.push((client, id));
    }
    let mut joins = 0;
    while joins < 3 {
        if next_json(&mut watcher).await["type"] == "join" {
            joins += 1;
        }
    }

    let body = json!({"user": "mallory", "channel": "chat/general", "reason": "muted"});
    let (status, answer) = call(&gateway, "unsubscribe", &body).await;
    assert_eq!((status, answer["unsubscribed"].as_u64()), (200, Some(2)), "{answer}");
    for (client, _) in &mut mallory {
        assert_eq!(
            next_json(client).await,
            json!({"type": "unsubscribed", "channel": "chat/general", "reason": "muted"})
        );
    }
    for _ in 0..2 {
        let frame = next_json(&mut watcher).await;
        assert_eq!(frame["type"], "leave", "{frame}");
    }
    call(&gateway, "publish", &json!({"channel": "chat/general", "data": "after"})).await;
    call(&gateway, "publish", &json!({"channel": "chat/other", "data": "still"})).await;
    assert_eq!(next_json(&mut watcher).await["data"], "after");
    for (client, _) in &mut mallory {
        assert_eq!(next_json(client).await["data"], "still", "the other subscription stays");
        assert_silent(client, Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_gateway_that_verifies_no_tokens_refuses_every_bearer_call_and_serves_signed_ones() {
    let gateway = TestGateway::start(Settings { stage_throttle: None, ..Settings::default() }).await;
    let body = json!({"channel": "news", "data": 1}).to_string();
    let (status, answer) = call_raw(&gateway, "publish", body.clone(), Some(&token("backend", true))).await;
    assert_eq!((status, answer["message"].as_str()), (401, Some("Unauthorized")), "no authorizer to ask");
    let request = reqwest::Client::new().post(format!("{}/iam/api/publish", gateway.http_url)).body(body);
    let response = signed(request).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn frames_posted_just_before_a_delete_arrive_before_the_close() {
    let gateway = gateway().await;
    let http = reqwest::Client::new();
    let (mut client, id) = connect_as(&gateway, "alice").await;
    let url = format!("{}/@connections/{id}", gateway.http_url);
    // Ten of 64 KB: the writer is still sending when the DELETE comes.
    let frames: Vec<Value> = (0..10)
        .map(|n| json!({"type": "disconnect", "code": 4000 + n, "reason": "r", "reconnect": false, "pad": "x".repeat(64 * 1024)}))
        .collect();
    for frame in &frames {
        assert_eq!(signed(http.post(&url).body(frame.to_string())).await.status(), 200);
    }
    assert_eq!(signed(http.delete(&url)).await.status(), 204);
    for frame in &frames {
        let got: Value = match tokio::time::timeout(PATIENCE, client.next()).await.expect("a frame in time") {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Text(text))) => {
                serde_json::from_str(&text).expect("json")
            }
            other => panic!("{} frames posted with 200 were not delivered before {other:?}", frames.len()),
        };
        assert_eq!(got["code"], frame["code"], "in the order posted");
    }
    next_close(&mut client).await;
}
