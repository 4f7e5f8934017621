//! The local gateway end to end: real WebSocket clients, the real handlers, the real SDK poster.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::SinkExt;
use local::Settings;
use local::esm::EsmSettings;
use local::function::{Function, FunctionError};
use serde_json::{Value, json};
use shared::queue::QueueSettings;
use shared::{PostError, Poster};
use support::*;
use tokio_tungstenite::tungstenite::{self, Message};

fn envelope(text: &str) -> Value {
    let frame: Value = serde_json::from_str(text).expect("a JSON frame");
    assert_eq!(frame["type"], "broadcast", "{text}");
    frame
}

#[tokio::test]
async fn plain_text_is_echoed_to_the_sender_and_nobody_else() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut sender = gateway.connect().await;
    let mut other = gateway.connect().await;

    send_text(&mut sender, "Hello").await;
    assert_eq!(next_text(&mut sender).await, "Hello");
    let echo = r#"{"action":"echo","data":[1,2]}"#;
    send_text(&mut sender, echo).await;
    assert_eq!(next_text(&mut sender).await, echo);

    assert_silent(&mut other, Duration::from_millis(300)).await;
    assert!(gateway.queue.peek().is_empty());
}

#[tokio::test]
async fn a_broadcast_reaches_every_connection_once_with_its_id_sender_and_data() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(gateway.connect_with_id().await);
    }
    let senders = [0usize, 17, 39];
    let sender_ids: Vec<String> = senders.iter().map(|s| clients[*s].1.to_string()).collect();
    for (n, sender) in senders.iter().enumerate() {
        send_text(&mut clients[*sender].0, &json!({"action": "broadcast", "data": {"n": n}}).to_string())
            .await;
    }

    for (client, _) in &mut clients {
        let mut seen = HashMap::new();
        for _ in senders {
            let frame = envelope(&next_text(client).await);
            let n = frame["data"]["n"].as_u64().expect("n") as usize;
            assert!(seen.insert(frame["id"].as_str().expect("id").to_owned(), n).is_none(), "a duplicate");
            assert_eq!(frame["from"], sender_ids[n].as_str());
        }
        let mut ns: Vec<usize> = seen.into_values().collect();
        ns.sort_unstable();
        assert_eq!(ns, [0, 1, 2]);
    }
    for (client, _) in &mut clients {
        assert_silent(client, Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_envelope_names_the_sender() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut alice, alice_id) = gateway.connect_with_id().await;
    let (mut bob, _) = gateway.connect_with_id().await;

    send_text(&mut alice, r#"{"action":"broadcast","data":"hi"}"#).await;

    for client in [&mut alice, &mut bob] {
        let frame = envelope(&next_text(client).await);
        assert_eq!(frame["from"], alice_id.as_str());
        assert_eq!(frame["data"], "hi");
        assert!(frame["sentAt"].as_i64().is_some());
    }
}

#[tokio::test]
async fn a_malformed_message_gets_a_json_error_and_the_connection_stays_open() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut client = gateway.connect().await;

    send_invalid(&mut client, r#"{"action":"broadcast""#).await;
    let error: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
    assert_eq!(error["error"]["code"], "invalid_json");
    send_invalid(&mut client, r#"{"action":"shout","data":1}"#).await;
    let error: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
    assert_eq!(error["error"]["code"], "unknown_action");
    client.send(Message::binary(vec![1, 2, 3])).await.expect("send");
    let error: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
    assert_eq!(error["error"]["code"], "binary_not_supported");

    send_text(&mut client, "still here?").await;
    assert_eq!(next_text(&mut client).await, "still here?");
    assert!(gateway.queue.peek().is_empty());

    // The ingress's metrics, as its EMF lines carry them on AWS: events by route, errors by code.
    let stats = gateway.stats().await;
    assert_eq!(stats["ingress"]["events_by_route"], json!({"$connect": 1, "$default": 4}), "{stats}");
    assert_eq!(
        stats["ingress"]["errors_by_code"],
        json!({"binary_not_supported": 1, "invalid_json": 1, "unknown_action": 1}),
        "{stats}"
    );
}

#[tokio::test]
async fn a_message_over_128_kb_closes_the_connection_with_1009() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut client, id) = gateway.connect_with_id().await;

    send_fragmented(&mut client, "a".repeat(130 * 1024).as_bytes(), 32 * 1024).await;

    let close = next_close(&mut client).await;
    assert_eq!(u16::from(close.code), 1009);
    eventually("the $disconnect to remove the record", || gateway.store.get(&id).is_none()).await;
    assert!(gateway.queue.peek().is_empty());
}

#[tokio::test]
async fn a_frame_over_32_kb_closes_the_connection_with_1009() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut client = gateway.connect().await;

    send_text(&mut client, &"a".repeat(33 * 1024)).await;

    assert_eq!(u16::from(next_close(&mut client).await.code), 1009);
}

#[tokio::test]
async fn a_fragmented_message_within_both_limits_is_accepted() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut client = gateway.connect().await;

    send_fragmented(&mut client, "a".repeat(100 * 1024).as_bytes(), 32 * 1024).await;

    assert_eq!(next_text(&mut client).await.len(), 100 * 1024);
}

#[tokio::test]
async fn posting_to_an_unknown_connection_answers_410_gone_exception() {
    let gateway = TestGateway::start(Settings::default()).await;
    let http = reqwest::Client::new();

    for path in ["/@connections/AAAAAAAAAAAAAAAA", "/local/@connections/AAAAAAAAAAAAAAAA"] {
        let response = signed(http.post(format!("{}{path}", gateway.http_url)).body("hi")).await;
        assert_eq!(response.status(), 410, "{path}");
        assert_eq!(response.headers()["x-amzn-errortype"], "GoneException");
    }

    // And the AWS SDK reads that answer as GoneException.
    let poster = sdk_poster(&format!("{}/local", gateway.http_url));
    let unknown = shared::ConnectionId::parse("AAAAAAAAAAAAAAAA").expect("id");
    let outcome = poster.post(&unknown, bytes::Bytes::from_static(b"hi")).await;
    assert!(matches!(outcome, Err(PostError::Gone)), "{outcome:?}");
}

#[tokio::test]
async fn the_management_api_posts_describes_and_deletes_a_connection() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut client, id) = gateway.connect_with_id().await;
    let http = reqwest::Client::new();
    let url = format!("{}/local/@connections/{id}", gateway.http_url);

    let posted = signed(http.post(&url).body("from the backend")).await;
    assert_eq!(posted.status(), 200);
    assert_eq!(next_text(&mut client).await, "from the backend");

    let too_big = signed(http.post(&url).body(vec![b'a'; 128 * 1024 + 1])).await;
    assert_eq!(too_big.status(), 413);
    assert_eq!(too_big.headers()["x-amzn-errortype"], "PayloadTooLargeException");

    let described = signed(http.get(&url)).await.text().await.expect("body");
    let described: Value = serde_json::from_str(&described).expect("json");
    assert_eq!(described["identity"]["sourceIp"], "127.0.0.1");
    for field in ["connectedAt", "lastActiveAt"] {
        let at = described[field].as_str().expect(field);
        assert!(at.ends_with('Z') && at.contains('T'), "{field} is ISO-8601: {at}");
    }

    let deleted = signed(http.delete(&url)).await;
    assert_eq!(deleted.status(), 204);
    next_close(&mut client).await;
    eventually("the $disconnect after DELETE", || gateway.store.get(&id).is_none()).await;
    assert_eq!(signed(http.get(&url)).await.status(), 410);
}

#[tokio::test]
async fn a_connection_that_vanished_is_answered_410_and_pruned_by_the_worker() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut alice, alice_id) = gateway.connect_with_id().await;
    let (bob, bob_id) = gateway.connect_with_id().await;

    // Bob's network drops and his $disconnect is lost: the store still lists him.
    gateway.vanish(bob, &bob_id).await;
    let http = reqwest::Client::new();
    let status = signed(http.post(format!("{}/@connections/{bob_id}", gateway.http_url)).body("x")).await;
    assert_eq!(status.status(), 410);

    send_text(&mut alice, r#"{"action":"broadcast","data":"still there?"}"#).await;

    assert_eq!(envelope(&next_text(&mut alice).await)["data"], "still there?");
    eventually("the worker to prune bob", || gateway.store.get(&bob_id).is_none()).await;
    assert_eq!(gateway.store.ids(), [alice_id], "the sender is kept, the stale id pruned");
}

/// Rejects `$connect` when the query string says `deny=<status>`, and otherwise defers to the ingress.
struct Bouncer(Arc<dyn Function>);

#[async_trait]
impl Function for Bouncer {
    async fn invoke(
        &self,
        payload: Vec<u8>,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, FunctionError> {
        let event: Value = serde_json::from_slice(&payload).map_err(FunctionError::Deserialize)?;
        if let Some(status) = event["queryStringParameters"]["deny"].as_str() {
            let status: u16 = status.parse().expect("a status");
            return Ok(serde_json::to_vec(&json!({"statusCode": status, "body": "go away"})).expect("json"));
        }
        self.0.invoke(payload, deadline).await
    }
}

#[tokio::test]
async fn a_connect_route_answering_non_2xx_rejects_the_handshake_with_that_status() {
    let gateway = TestGateway::start_with(Settings::default(), |ingress| Arc::new(Bouncer(ingress))).await;

    for status in [401u16, 403, 429] {
        let url = format!("{}/local?deny={status}", gateway.ws_url);
        match tokio_tungstenite::connect_async(&url).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), status),
            other => panic!("expected a rejected handshake, got {:?}", other.map(|_| ())),
        }
    }
    assert!(gateway.store.is_empty());
    assert!(gateway.state.registry.is_empty());

    let mut welcome = gateway.connect().await;
    send_text(&mut welcome, "in").await;
    assert_eq!(next_text(&mut welcome).await, "in");
}

#[tokio::test]
async fn a_handshake_on_another_stage_is_forbidden() {
    let gateway = TestGateway::start(Settings::default()).await;
    match tokio_tungstenite::connect_async(format!("{}/prod", gateway.ws_url)).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 403),
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    let (_ok, _) =
        tokio_tungstenite::connect_async(format!("{}/local", gateway.ws_url)).await.expect("the stage path");
}

#[tokio::test]
async fn failed_batch_items_alone_are_redelivered_until_the_dead_letter_list() {
    // As on AWS, the visibility timeout must outlast the batching window plus the invocation, or
    // messages come back while they are still being processed.
    let settings = Settings {
        queue: QueueSettings {
            visibility_timeout: Duration::from_millis(400),
            max_receive_count: Some(3),
            ..QueueSettings::default()
        },
        esm: EsmSettings {
            batch_size: 10,
            batch_window: Duration::from_millis(100),
            function_timeout: Duration::from_millis(400),
            ..EsmSettings::default()
        },
        // The worker stops posting this long before its timeout (3 s by default, more than it has).
        worker: worker::WorkerSettings { deadline_reserve: Duration::from_millis(100), ..Default::default() },
        ..Settings::default()
    };
    let gateway = TestGateway::start(settings).await;
    let mut client = gateway.connect().await;

    // A poison message and a good one, in the same batch thanks to the batching window.
    gateway.queue.push("{\"not\":\"a job\"}".to_owned()).expect("room");
    send_text(&mut client, r#"{"action":"broadcast","data":"once"}"#).await;

    eventually("the poison message to reach the dead-letter list", || gateway.queue.stats().dead == 1).await;
    assert_eq!(envelope(&next_text(&mut client).await)["data"], "once");
    assert_silent(&mut client, Duration::from_millis(500)).await;
    assert_eq!(gateway.queue.dead_letters(), ["{\"not\":\"a job\"}"]);
    let stats = gateway.queue.stats();
    assert_eq!((stats.visible, stats.in_flight), (0, 0));
}

#[tokio::test]
async fn a_visibility_timeout_shorter_than_the_workers_timeout_is_refused_as_aws_refuses_it() {
    // Otherwise a message comes back to a second invocation while the first still posts it.
    let settings = Settings {
        queue: QueueSettings {
            visibility_timeout: Duration::from_secs(2),
            max_receive_count: Some(3),
            ..QueueSettings::default()
        },
        esm: EsmSettings { function_timeout: Duration::from_secs(30), ..EsmSettings::default() },
        ..Settings::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let Err(err) = local::Gateway::new(listener, settings) else { panic!("the gateway started") };
    assert!(
        err.to_string().contains("Queue visibility timeout: 2s is less than Function timeout: 30s"),
        "{err}"
    );
}

#[tokio::test]
async fn an_idle_connection_is_closed_with_1001() {
    let settings = Settings { idle_timeout: Duration::from_millis(300), ..Settings::default() };
    let gateway = TestGateway::start(settings).await;
    let (mut client, id) = gateway.connect_with_id().await;

    assert_eq!(u16::from(next_close(&mut client).await.code), 1001);
    eventually("the $disconnect", || gateway.store.get(&id).is_none()).await;
}

#[tokio::test]
async fn a_connection_past_its_maximum_duration_is_closed_with_1001_however_busy() {
    let settings = Settings {
        max_connection_duration: Duration::from_millis(600),
        idle_timeout: Duration::from_secs(60),
        ..Settings::default()
    };
    let gateway = TestGateway::start(settings).await;
    let mut client = gateway.connect().await;

    let code = loop {
        send_text(&mut client, "busy").await;
        match tokio::time::timeout(PATIENCE, futures::StreamExt::next(&mut client)).await.expect("an answer")
        {
            Some(Ok(Message::Text(_))) => tokio::time::sleep(Duration::from_millis(50)).await,
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(code, 1001);
}

#[tokio::test]
async fn shutting_down_closes_every_connection_and_runs_their_disconnects() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(gateway.connect().await);
    }
    let store = gateway.store.clone();
    assert_eq!(store.len(), 5);

    gateway.stop().await;

    for client in &mut clients {
        assert_eq!(u16::from(next_close(client).await.code), 1001);
    }
    assert!(store.is_empty(), "every $disconnect ran before the gateway stopped");
}

#[tokio::test]
async fn custom_routes_are_selected_by_the_route_selection_expression() {
    /// Answers with the route key it was invoked for.
    struct RouteEcho;
    #[async_trait]
    impl Function for RouteEcho {
        async fn invoke(
            &self,
            payload: Vec<u8>,
            _deadline: tokio::time::Instant,
        ) -> Result<Vec<u8>, FunctionError> {
            let event: Value = serde_json::from_slice(&payload).map_err(FunctionError::Deserialize)?;
            let route = event["requestContext"]["routeKey"].as_str().unwrap_or_default().to_owned();
            Ok(serde_json::to_vec(&json!({"statusCode": 200, "body": route})).expect("json"))
        }
    }
    let settings = Settings { routes: vec!["join".into()], ..Settings::default() };
    let gateway = TestGateway::start_with(settings, |_| Arc::new(RouteEcho)).await;
    let mut client = gateway.connect().await;

    let cases =
        [(r#"{"action":"join"}"#, "join"), (r#"{"action":"leave"}"#, "$default"), ("plain", "$default")];
    for (message, route) in cases {
        // A custom route's own action, outside this API's protocol.
        send_invalid(&mut client, message).await;
        assert_eq!(next_text(&mut client).await, route, "{message}");
    }
    let distinct: HashSet<&str> = cases.iter().map(|(_, r)| *r).collect();
    assert_eq!(distinct.len(), 2);
}

#[tokio::test]
async fn delayed_management_answers_slow_a_broadcast_down_but_lose_and_double_nothing() {
    let faults =
        local::Faults { post_delay_rate: 1.0, post_delay: Duration::from_millis(200), ..Default::default() };
    let gateway = TestGateway::start(Settings { faults, ..Settings::default() }).await;
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(gateway.connect().await);
    }

    send_text(&mut clients[0], r#"{"action":"broadcast","data":"slow"}"#).await;

    for client in &mut clients {
        assert_eq!(envelope(&next_text(client).await)["data"], "slow");
        assert_silent(client, Duration::from_millis(300)).await;
    }
    let stats = gateway.stats().await;
    assert_eq!(stats["faults_injected"]["delayed"], 5, "{stats}");
    assert_eq!(stats["connections"], 5, "{stats}");
    assert_eq!(stats["records"], 5, "{stats}");
    // The worker's own figures, as its EMF lines carry them on AWS: the delay is in its latency.
    let worker = &stats["worker"];
    assert_eq!((worker["Deliveries"].as_u64(), worker["Requeued"].as_u64()), (Some(5), Some(0)), "{stats}");
    assert!(worker["batches"].as_u64() >= Some(1), "{stats}");
    assert!(worker["post_latency_us"]["p50"].as_u64() >= Some(200_000), "{stats}");
}
