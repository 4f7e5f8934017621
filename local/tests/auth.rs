//! Authorization end to end: the gateway runs the project's authorizer before `$connect` as API
//! Gateway does, and the ingress enforces each token's claims on every later message.

mod support;

use std::sync::Arc;
use std::time::Duration;

use authorizer::jwks::{FileJwks, Keys};
use authorizer::token::{DevClaims, mint};
use authorizer::{Authorizer, Verifier};
use local::Settings;
use serde_json::{Value, json};
use shared::{Channel, Envelope, Job, Sender};
use support::*;
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};

const SECRET: &[u8] = b"test-secret-test-secret-test-secret!";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs()
}

fn token(sub: &str, subscribe: &[&str], publish: &[&str]) -> String {
    let listed = |p: &[&str]| (!p.is_empty()).then(|| p.iter().map(|s| (*s).to_owned()).collect());
    let claims = DevClaims {
        sub: sub.into(),
        subscribe: listed(subscribe),
        publish: listed(publish),
        exp: now() + 600,
        ..DevClaims::default()
    };
    mint(SECRET, &claims).expect("mint")
}

async fn gateway_with(verifier: Verifier) -> TestGateway {
    let settings = Settings {
        authorizer: Some(Arc::new(Authorizer::new(verifier))),
        stage_throttle: None,
        ..Settings::default()
    };
    TestGateway::start(settings).await
}

async fn gateway() -> TestGateway {
    gateway_with(Verifier::secret(SECRET, None, None).expect("secret")).await
}

async fn connect_as(gateway: &TestGateway, token: &str) -> Client {
    let (client, _) = tokio_tungstenite::connect_async(format!("{}/?token={token}", gateway.ws_url))
        .await
        .expect("allowed");
    client
}

/// The status a refused handshake was answered with.
async fn refused(request: impl IntoClientRequest + Unpin) -> u16 {
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("refused otherwise: {other}"),
        Ok(_) => panic!("the handshake was accepted"),
    }
}

#[tokio::test]
async fn handshakes_without_a_good_token_are_refused_with_api_gateways_status_and_nothing_is_stored() {
    let gateway = gateway().await;
    let url = &gateway.ws_url;
    assert_eq!(refused(url.as_str()).await, 401, "no token");
    assert_eq!(refused(format!("{url}/?token=")).await, 401, "an empty token");
    let mut in_header = url.as_str().into_client_request().expect("request");
    in_header
        .headers_mut()
        .insert("Authorization", format!("Bearer {}", token("a", &[], &[])).parse().expect("header"));
    assert_eq!(refused(in_header).await, 401, "a token in a header only");

    let expired =
        mint(SECRET, &DevClaims { sub: "a".into(), exp: now() - 600, ..DevClaims::default() }).expect("mint");
    let other_key = mint(
        b"another-secret-another-secret-another!",
        &DevClaims { sub: "a".into(), exp: now() + 600, ..DevClaims::default() },
    )
    .expect("mint");
    let no_sub = mint(SECRET, &DevClaims { sub: String::new(), exp: now() + 600, ..DevClaims::default() })
        .expect("mint");
    for (what, bad) in
        [("expired", expired), ("another key", other_key), ("no sub", no_sub), ("garbage", "x.y.z".into())]
    {
        assert_eq!(refused(format!("{url}/?token={bad}")).await, 403, "{what}");
    }
    assert!(gateway.store.is_empty(), "no $connect ran");
    assert_eq!(gateway.store.subscription_count(), 0);
}

#[tokio::test]
async fn an_authorizer_that_cannot_get_its_keys_fails_the_handshake_with_500() {
    let verifier = Verifier::jwks(Keys::new(Box::new(FileJwks("/nonexistent/jwks.json".into()))), None, None);
    let gateway = gateway_with(verifier).await;
    let header = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ";
    let body = "eyJzdWIiOiJhIiwiZXhwIjo0MTAyNDQ0ODAwfQ";
    assert_eq!(refused(format!("{}/?token={header}.{body}.c2ln", gateway.ws_url)).await, 500);
    assert!(gateway.store.is_empty());
}

#[tokio::test]
async fn users_publish_within_their_claims_and_messages_name_their_user() {
    let gateway = gateway().await;
    let mut alice = connect_as(&gateway, &token("alice", &["chat/*"], &["chat/*"])).await;
    let mut bob = connect_as(&gateway, &token("bob", &["chat/*"], &[])).await;
    assert_eq!(
        request(&mut bob, json!({"action": "subscribe", "channel": "chat/general"})).await["type"],
        "subscribed"
    );

    let forbidden = [
        json!({"action": "subscribe", "channel": "news"}),
        json!({"action": "subscribe", "channel": "user/bob"}),
        json!({"action": "publish", "channel": "news", "data": 1}),
        json!({"action": "publish", "channel": "user/bob", "data": 1}),
    ];
    for body in forbidden {
        assert_eq!(request(&mut alice, body.clone()).await["error"]["code"], "forbidden_channel", "{body}");
    }
    let reply =
        request(&mut alice, json!({"action": "publish", "channel": "chat/general", "data": "hi"})).await;
    assert_eq!(reply["type"], "published");

    let frame: Value = serde_json::from_str(&next_text(&mut bob).await).expect("json");
    assert_eq!((frame["user"].as_str(), frame["data"].as_str()), (Some("alice"), Some("hi")));
    assert_silent(&mut alice, Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_backends_publish_to_a_users_channel_reaches_all_their_devices_and_no_one_else() {
    let gateway = gateway().await;
    let mut phone = connect_as(&gateway, &token("alice", &[], &[])).await;
    let mut laptop = connect_as(&gateway, &token("alice", &[], &[])).await;
    let mut bob = connect_as(&gateway, &token("bob", &[], &[])).await;
    assert_eq!(gateway.store.subscription_count(), 3, "each connection on its user's channel");

    // What a backend's SendMessage puts on the queue.
    let data =
        serde_json::value::RawValue::from_string(r#"{"text":"your order shipped"}"#.into()).expect("raw");
    let channel = Channel::parse("user/alice").expect("channel");
    let envelope = Envelope::message(channel, Sender::default(), 1, data).expect("fits");
    gateway.queue.push(Job::publish(envelope).to_body()).expect("room");

    for device in [&mut phone, &mut laptop] {
        let frame: Value = serde_json::from_str(&next_text(device).await).expect("json");
        assert_eq!(frame["channel"], "user/alice");
        assert_eq!(frame["data"]["text"], "your order shipped");
        assert!(frame.get("from").is_none(), "a backend is not a connection: {frame}");
    }
    assert_silent(&mut bob, Duration::from_millis(300)).await;

    phone.close(None).await.expect("close");
    laptop.close(None).await.expect("close");
    eventually("both $disconnects", || gateway.store.len() == 1).await;
    assert_eq!(gateway.store.subscription_count(), 1, "alice's subscriptions went with her connections");
}

#[tokio::test]
async fn a_token_whose_claims_pass_the_authorizers_limits_is_refused_and_its_connection_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let gateway = gateway().await;
    // 5,000 publish patterns: a 60 KB token, what an attack run held 300 connections open with.
    let patterns: Vec<String> = (0..5_000).map(|n| format!("p{n:04}")).collect();
    let patterns: Vec<&str> = patterns.iter().map(String::as_str).collect();
    let big = token("mallory", &[], &patterns);
    let address = gateway.http_url.trim_start_matches("http://").to_owned();
    let mut socket = tokio::net::TcpStream::connect(&address).await.expect("connect");
    let request = format!(
        "GET /local?token={big} HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    // Read to the end: the gateway closes a refused handshake's connection rather than keep its buffer.
    tokio::time::timeout(PATIENCE, socket.read_to_end(&mut answer))
        .await
        .expect("closed in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(gateway.store.is_empty(), "nothing stored");
}
