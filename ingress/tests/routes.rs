//! The ingress handler on in-memory ports, fed events in the exact JSON shape API Gateway sends.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use ingress::{Ingress, Ports};
use serde_json::{Value, json};
use shared::events::RecentEvents;
use shared::history::{HistorySettings, MemoryHistory};
use shared::presence::MemoryPresence;
use shared::queue::MemoryQueue;
use shared::store::MemoryStore;
use shared::testing::BrokenHistory;
use shared::{Audience, Channel, ChannelPattern, ConnectionId, Job, Queue, QueueError};

mod events;
use events::{ID, REQUEST_EPOCH_MS, context};

fn connect_event() -> ApiGatewayWebsocketProxyRequest {
    serde_json::from_value(json!({
        "headers": {
            "Host": "abcd1234.execute-api.us-east-1.amazonaws.com",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "X-Forwarded-For": "192.0.2.1",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https"
        },
        "multiValueHeaders": { "Host": ["abcd1234.execute-api.us-east-1.amazonaws.com"] },
        "queryStringParameters": { "room": "lobby" },
        "multiValueQueryStringParameters": { "room": ["lobby"] },
        "requestContext": context("$connect", "CONNECT"),
        "isBase64Encoded": false
    }))
    .expect("a $connect event")
}

fn disconnect_event() -> ApiGatewayWebsocketProxyRequest {
    let mut context = context("$disconnect", "DISCONNECT");
    context["disconnectStatusCode"] = json!(1005);
    context["disconnectReason"] = json!("Client-side close frame status not set");
    serde_json::from_value(json!({
        "headers": { "Host": "abcd1234.execute-api.us-east-1.amazonaws.com" },
        "multiValueHeaders": { "Host": ["abcd1234.execute-api.us-east-1.amazonaws.com"] },
        "requestContext": context,
        "isBase64Encoded": false
    }))
    .expect("a $disconnect event")
}

fn message_event(body: &str) -> ApiGatewayWebsocketProxyRequest {
    let mut context = context("$default", "MESSAGE");
    context["messageId"] = json!("TWeglfW9EowCFlA=");
    serde_json::from_value(json!({ "requestContext": context, "body": body, "isBase64Encoded": false }))
        .expect("a MESSAGE event")
}

/// The event as API Gateway sends it once an authorizer allowed the connection with this context.
fn as_user(
    mut event: ApiGatewayWebsocketProxyRequest,
    context: Value,
) -> ApiGatewayProxyRequestWithAuthorizer {
    let mut json = serde_json::to_value(&event).expect("json");
    json["requestContext"]["authorizer"] = context;
    event = serde_json::from_value(json).expect("an event with an authorizer");
    event
}

type ApiGatewayProxyRequestWithAuthorizer = ApiGatewayWebsocketProxyRequest;

fn alice() -> Value {
    json!({ "principalId": "alice", "sub": "alice", "publish": "[\"chat/*\"]", "subscribe": "[\"chat/*\",\"news\"]" })
}

fn pattern(raw: &str) -> ChannelPattern {
    ChannelPattern::parse(raw).expect(raw)
}

/// Sends `body` and returns the status and the reply as JSON: a reply `docs/asyncapi.yaml` describes,
/// since it is what the client receives.
async fn send(f: &Fixture, event: ApiGatewayWebsocketProxyRequest) -> (i64, Value) {
    let response = f.ingress.handle(event).await.expect("handled");
    if let Some(body) = body_of(&response) {
        testkit::contract::check(testkit::contract::Direction::Received, body);
    }
    let reply = body_of(&response).map_or(Value::Null, |b| serde_json::from_str(b).expect("a JSON reply"));
    (response.status_code, reply)
}

struct Fixture {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    history: Arc<MemoryHistory>,
    presence: Arc<MemoryPresence>,
    events: Arc<RecentEvents>,
    ingress: Ingress,
}

/// The ingress over in-memory ports, history and presence on with their defaults (as deployed),
/// lifecycle events kept.
fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let history = Arc::new(MemoryHistory::new(HistorySettings::default()));
    let presence = Arc::new(MemoryPresence::new());
    let events = Arc::new(RecentEvents::new(1000, "000000000000", "us-east-1"));
    let ports = Ports {
        history: Some(history.clone()),
        presence: Some(presence.clone()),
        events: Some(events.clone()),
        ..Ports::new(store.clone(), queue.clone())
    };
    Fixture { store, queue, history, presence, events, ingress: Ingress::new(ports) }
}

/// The ingress over a fresh in-memory store and queue with these history and presence ports, and no
/// lifecycle events; `history` is the one the fixture inspects.
fn fixture_with(
    history: Arc<MemoryHistory>,
    history_port: Option<Arc<dyn shared::History>>,
    presence: Option<Arc<dyn shared::Presence>>,
) -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let ports = Ports { history: history_port, presence, ..Ports::new(store.clone(), queue.clone()) };
    let events = Arc::new(RecentEvents::new(1, "000000000000", "us-east-1"));
    Fixture { store, queue, history, presence: Default::default(), events, ingress: Ingress::new(ports) }
}

fn body_of(response: &ApiGatewayProxyResponse) -> Option<&str> {
    match &response.body {
        Some(Body::Text(text)) => Some(text),
        None | Some(Body::Empty) => None,
        Some(other) => panic!("unexpected body {other:?}"),
    }
}

fn id() -> ConnectionId {
    ConnectionId::parse(ID).expect("id")
}

#[tokio::test]
async fn connect_stores_the_connection_with_a_ttl_past_api_gateways_two_hour_limit() {
    let f = fixture();
    let response = f.ingress.handle(connect_event()).await.expect("handled");
    assert_eq!(response.status_code, 200);
    let record = f.store.get(&id()).expect("stored");
    assert_eq!(record.connected_at_ms, REQUEST_EPOCH_MS - 5_000);
    assert_eq!(record.source_ip.as_deref(), Some("192.0.2.1"));
    let two_hours = 2 * 60 * 60;
    assert!(record.expires_at_s > REQUEST_EPOCH_MS / 1000 + two_hours, "{record:?}");
    assert!(record.expires_at_s < REQUEST_EPOCH_MS / 1000 + two_hours + 3600, "{record:?}");
}

#[tokio::test]
async fn disconnect_deletes_the_record() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let response = f.ingress.handle(disconnect_event()).await.expect("disconnect");
    assert_eq!(response.status_code, 200);
    assert!(f.store.is_empty());
}

#[tokio::test]
async fn plain_text_is_echoed_to_the_sender_unchanged_and_nothing_is_queued() {
    let f = fixture();
    for text in ["Hello", "  hello with spaces ", "[1, 2]", "ünïcödé ✓"] {
        let response = f.ingress.handle(message_event(text)).await.expect("handled");
        assert_eq!(response.status_code, 200);
        assert_eq!(body_of(&response), Some(text));
    }
    assert!(f.queue.peek().is_empty());
}

#[tokio::test]
async fn an_echo_action_is_echoed_unchanged() {
    let f = fixture();
    let text = r#"{"action":"echo","data":{"n":1}}"#;
    let response = f.ingress.handle(message_event(text)).await.expect("handled");
    assert_eq!(body_of(&response), Some(text));
    assert!(f.queue.peek().is_empty());
}

#[tokio::test]
async fn a_broadcast_is_queued_once_with_an_id_the_sender_and_the_data() {
    let f = fixture();
    let response =
        f.ingress.handle(message_event(r#"{"action":"broadcast","data":"hi"}"#)).await.expect("handled");
    assert_eq!(response.status_code, 200);
    assert_eq!(body_of(&response), None, "the sender hears the broadcast like everyone else");
    let queued = f.queue.peek();
    assert_eq!(queued.len(), 1);
    let job = Job::parse(&queued[0]).expect("a job");
    assert_eq!(job.envelope.from, Some(id()));
    assert_eq!(job.envelope.data.as_ref().map(|d| d.get()), Some(r#""hi""#));
    assert_eq!(job.envelope.sent_at, REQUEST_EPOCH_MS);
}

#[tokio::test]
async fn every_answer_repeats_the_messages_ref_and_a_broadcast_with_one_is_answered_queued() {
    let f = fixture();
    send(&f, connect_event()).await;
    let (status, reply) =
        send(&f, message_event(r#"{"action":"subscribe","channel":"chat/*","ref":"1"}"#)).await;
    assert_eq!((status, reply), (200, json!({"type": "subscribed", "channel": "chat/*", "ref": "1"})));
    let (_, reply) =
        send(&f, message_event(r#"{"ref":"2","action":"publish","channel":"chat/a","data":1}"#)).await;
    assert_eq!((reply["type"].as_str(), reply["ref"].as_str()), (Some("published"), Some("2")));

    let (status, reply) = send(&f, message_event(r#"{"action":"broadcast","data":"hi","ref":"3"}"#)).await;
    let queued = f.queue.peek();
    let job = Job::parse(queued.last().expect("queued")).expect("a job");
    assert_eq!(
        (status, reply),
        (200, json!({"type": "queued", "id": job.envelope.id.to_string(), "ref": "3"})),
        "the id the broadcast's receivers will see"
    );

    // Errors too, once the ref could be read; a ref that is not one is refused on its own.
    let (status, reply) = send(&f, message_event(r#"{"action":"subscribe","ref":"4"}"#)).await;
    assert_eq!(
        (status, reply["error"]["code"].as_str(), reply["ref"].as_str()),
        (400, Some("missing_channel"), Some("4"))
    );
    let long = "r".repeat(65);
    for bad in [json!(4), json!(""), json!(long), json!(["r"])] {
        let body = json!({"action": "broadcast", "data": 1, "ref": bad}).to_string();
        let (status, reply) = send(&f, message_event(&body)).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (400, Some("invalid_ref")), "{body}");
        assert!(reply.get("ref").is_none(), "{reply}");
    }
    assert_eq!(f.queue.peek().len(), 2, "the publish and the broadcast with a valid ref alone");
}

#[tokio::test]
async fn every_malformed_message_gets_a_json_error_and_nothing_is_queued() {
    let f = fixture();
    let big = format!(r#"{{"action":"broadcast","data":"{}"}}"#, "x".repeat(131_000));
    let cases = [
        ("", "empty_message"),
        ("{not json", "invalid_json"),
        (r#"{"data":"hi"}"#, "missing_action"),
        (r#"{"action":["broadcast"],"data":"hi"}"#, "invalid_action"),
        (r#"{"action":"dance","data":"hi"}"#, "unknown_action"),
        (r#"{"action":"broadcast"}"#, "missing_data"),
        (big.as_str(), "message_too_large"),
    ];
    for (body, code) in cases {
        let response = f.ingress.handle(message_event(body)).await.expect("handled");
        assert_eq!(response.status_code, 400, "{code}");
        let error: Value = serde_json::from_str(body_of(&response).expect("a body")).expect("json");
        assert_eq!(error["error"]["code"], code);
        assert!(error["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    assert!(f.queue.peek().is_empty());
}

#[tokio::test]
async fn a_binary_message_is_refused() {
    let f = fixture();
    let mut event = message_event("AAEC");
    event.is_base64_encoded = true;
    let response = f.ingress.handle(event).await.expect("handled");
    assert_eq!(response.status_code, 400);
    assert!(body_of(&response).is_some_and(|b| b.contains("binary_not_supported")));
}

struct BrokenQueue;

#[async_trait]
impl Queue for BrokenQueue {
    async fn send(&self, _job: &Job) -> Result<(), QueueError> {
        Err(QueueError::Unavailable("SQS is down".into()))
    }

    async fn send_batch(&self, jobs: &[Job], _delay: std::time::Duration) -> Vec<Result<(), QueueError>> {
        jobs.iter().map(|_| Err(QueueError::Unavailable("SQS is down".into()))).collect()
    }
}

#[tokio::test]
async fn a_queue_outage_tells_the_sender_to_try_again() {
    let ingress = Ingress::new(Ports::new(Arc::new(MemoryStore::default()), Arc::new(BrokenQueue)));
    let response =
        ingress.handle(message_event(r#"{"action":"broadcast","data":"hi"}"#)).await.expect("handled");
    assert_eq!(response.status_code, 503);
    assert!(body_of(&response).is_some_and(|b| b.contains("\"unavailable\"")));
}

#[tokio::test]
async fn an_event_without_a_connection_id_is_an_error() {
    let f = fixture();
    let mut event = message_event("Hello");
    event.request_context.connection_id = None;
    let err = f.ingress.handle(event).await.expect_err("no connection to answer");
    assert_eq!(err.error_type(), "MissingConnectionId", "what Lambda reports as errorType");
}

#[test]
fn each_failure_is_reported_to_lambda_by_what_went_wrong() {
    use ingress::IngressError;
    use shared::{StoreError, SubscribeError};
    let cases = [
        (IngressError::UnknownEventType(Some("PING".into())), "UnknownEventType"),
        (IngressError::Store(StoreError::Unavailable("throttled".into())), "StoreUnavailable"),
        (IngressError::Store(StoreError::Rejected("no such table".into())), "StoreRejected"),
        (IngressError::OwnChannel(SubscribeError::NotConnected), "OwnChannelSubscriptionFailed"),
    ];
    for (err, error_type) in cases {
        assert_eq!(err.error_type(), error_type, "{err}");
    }
}

#[tokio::test]
async fn subscribe_and_unsubscribe_are_stored_and_answered_even_when_there_was_nothing_to_end() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let response = f
        .ingress
        .handle(message_event(r#"{"action":"subscribe","channel":"chat/*"}"#))
        .await
        .expect("handled");
    assert_eq!(response.status_code, 200);
    assert_eq!(
        body_of(&response),
        Some(r#"{"type":"subscribed","channel":"chat/*"}"#),
        "type first, as documented"
    );
    assert_eq!(f.store.subscriptions_of(&id()), [pattern("chat/*")]);

    for _ in 0..2 {
        let (status, reply) = send(&f, message_event(r#"{"action":"unsubscribe","channel":"chat/*"}"#)).await;
        assert_eq!((status, reply), (200, json!({"type":"unsubscribed","channel":"chat/*"})));
    }
    assert!(f.store.subscriptions_of(&id()).is_empty());
    assert!(f.queue.peek().is_empty());
}

#[tokio::test]
async fn a_publish_is_queued_for_its_channel_and_answered_with_the_id_subscribers_will_see() {
    let f = fixture();
    let (status, reply) =
        send(&f, message_event(r#"{"action":"publish","channel":"chat/general","data":{"text":"hi"}}"#))
            .await;
    assert_eq!(status, 200);
    assert_eq!(
        (reply["type"].as_str(), reply["channel"].as_str()),
        (Some("published"), Some("chat/general"))
    );
    let job = Job::parse(&f.queue.peek()[0]).expect("a job");
    assert_eq!(job.audience, Audience::Channel(Channel::parse("chat/general").expect("channel")));
    assert_eq!(reply["id"].as_str(), Some(job.envelope.id.to_string().as_str()));
    let frame: Value = serde_json::from_slice(&job.envelope.frame()).expect("json");
    assert_eq!(frame["type"], "message");
    assert_eq!(frame["from"], ID);
    assert!(frame.get("user").is_none(), "anonymous: no user");
    assert_eq!(frame["data"], json!({"text":"hi"}));
}

#[tokio::test]
async fn the_hundred_and_first_subscription_is_refused_and_not_stored() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    for n in 0..100 {
        let (status, _) =
            send(&f, message_event(&format!(r#"{{"action":"subscribe","channel":"room/{n}"}}"#))).await;
        assert_eq!(status, 200, "subscription {n}");
    }
    let (status, reply) = send(&f, message_event(r#"{"action":"subscribe","channel":"room/100"}"#)).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (400, Some("too_many_subscriptions")));
    let (status, _) = send(&f, message_event(r#"{"action":"subscribe","channel":"room/7"}"#)).await;
    assert_eq!(status, 200, "subscribing again to one already held is fine");
    assert_eq!(f.store.subscriptions_of(&id()).len(), 100);
}

#[tokio::test]
async fn user_channels_and_patterns_outside_the_tokens_claims_are_forbidden() {
    let f = fixture();
    f.ingress.handle(as_user(connect_event(), alice())).await.expect("connect");
    let anonymous_cases = [
        r#"{"action":"subscribe","channel":"user/alice"}"#,
        r#"{"action":"subscribe","channel":"user/*"}"#,
        r#"{"action":"publish","channel":"user/alice","data":1}"#,
    ];
    for body in anonymous_cases {
        let (status, reply) = send(&f, message_event(body)).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (400, Some("forbidden_channel")), "{body}");
    }
    let alice_cases = [
        r#"{"action":"subscribe","channel":"user/bob"}"#,
        r#"{"action":"subscribe","channel":"user/*"}"#,
        r#"{"action":"subscribe","channel":"sports"}"#,
        r#"{"action":"publish","channel":"user/alice","data":1}"#,
        r#"{"action":"publish","channel":"news","data":1}"#,
    ];
    for body in alice_cases {
        let (status, reply) = send(&f, as_user(message_event(body), alice())).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (400, Some("forbidden_channel")), "{body}");
    }
    assert!(f.queue.peek().is_empty(), "nothing queued");
    assert_eq!(f.store.subscriptions_of(&id()), [pattern("user/alice")], "only the own channel");

    let allowed = [
        r#"{"action":"subscribe","channel":"chat/eu/*"}"#,
        r#"{"action":"subscribe","channel":"news"}"#,
        r#"{"action":"subscribe","channel":"user/alice"}"#,
        r#"{"action":"publish","channel":"chat/general","data":1}"#,
    ];
    for body in allowed {
        let (status, reply) = send(&f, as_user(message_event(body), alice())).await;
        assert_eq!(status, 200, "{body}: {reply}");
    }
    let job = Job::parse(&f.queue.peek()[0]).expect("a job");
    assert_eq!(job.envelope.user.as_deref(), Some("alice"));
}

#[tokio::test]
async fn an_authenticated_connection_is_subscribed_to_its_own_channel_and_disconnect_removes_everything() {
    let f = fixture();
    f.ingress.handle(as_user(connect_event(), alice())).await.expect("connect");
    send(&f, as_user(message_event(r#"{"action":"subscribe","channel":"chat/*"}"#), alice())).await;
    assert_eq!(f.store.subscription_count(), 2);
    f.ingress.handle(as_user(disconnect_event(), alice())).await.expect("disconnect");
    assert!(f.store.is_empty());
    assert_eq!(f.store.subscription_count(), 0);
}

#[tokio::test]
async fn a_subscribe_from_a_connection_no_longer_stored_is_told_to_reconnect() {
    let f = fixture();
    let (status, reply) = send(&f, message_event(r#"{"action":"subscribe","channel":"news"}"#)).await;
    assert_eq!((status, reply["error"]["code"].as_str()), (503, Some("unavailable")));
    assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains("reconnect")), "{reply}");
    assert_eq!(f.store.subscription_count(), 0);
}

/// Sends `body` as a message of the connection `ID` and returns the reply.
async fn say(f: &Fixture, body: &str) -> Value {
    let (status, reply) = send(f, message_event(body)).await;
    assert_eq!(status, 200, "{body}: {reply}");
    reply
}

/// The queued jobs, oldest first, emptying the queue.
fn take_jobs(f: &Fixture) -> Vec<Job> {
    let jobs = f.queue.peek().iter().map(|body| Job::parse(body).expect("a job")).collect();
    for message in f.queue.receive_message(usize::MAX) {
        f.queue.delete_message(&message.receipt_handle);
    }
    jobs
}

/// Connects `ID`, subscribes it to `news` and publishes `count` messages there (data 1, 2, …),
/// emptying the queue: the channel's epoch.
async fn news_with(f: &Fixture, count: u64) -> Value {
    f.ingress.handle(connect_event()).await.expect("connect");
    let epoch = say(f, r#"{"action":"subscribe","channel":"news"}"#).await["epoch"].clone();
    for n in 1..=count {
        say(f, &format!(r#"{{"action":"publish","channel":"news","data":{n}}}"#)).await;
    }
    take_jobs(f);
    epoch
}

/// `{"offset":…,"epoch":…}` as a `since`.
fn since(offset: u64, epoch: &Value) -> String {
    json!({ "offset": offset, "epoch": epoch }).to_string()
}

#[tokio::test]
async fn each_publish_takes_its_channels_next_offset_and_a_subscribe_answers_the_latest() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let subscribed = say(&f, r#"{"action":"subscribe","channel":"news"}"#).await;
    assert_eq!(subscribed["offset"], 0, "nothing published yet: {subscribed}");
    let epoch = subscribed["epoch"].clone();
    assert!(epoch.as_str().is_some_and(|e| !e.is_empty()), "{subscribed}");
    for n in 1..=3 {
        let published = say(&f, &format!(r#"{{"action":"publish","channel":"news","data":{n}}}"#)).await;
        assert_eq!((published["offset"].as_u64(), &published["epoch"]), (Some(n), &epoch), "{published}");
    }
    let frames: Vec<Value> = take_jobs(&f)
        .iter()
        .map(|job| serde_json::from_slice(&job.envelope.frame()).expect("json"))
        .collect();
    let offsets: Vec<u64> = frames.iter().map(|frame| frame["offset"].as_u64().expect("offset")).collect();
    assert_eq!(offsets, [1, 2, 3], "each frame carries its offset");
    assert!(frames.iter().all(|frame| frame["epoch"] == epoch), "and its channel's epoch");
    let again = say(&f, r#"{"action":"subscribe","channel":"news"}"#).await;
    assert_eq!((again["offset"].as_u64(), &again["epoch"]), (Some(3), &epoch));
    let other = say(&f, r#"{"action":"subscribe","channel":"sports"}"#).await;
    assert_eq!(other["offset"], 0, "offsets are per channel");
}

#[tokio::test]
async fn a_subscribe_since_a_kept_position_queues_what_was_missed_for_that_connection_alone() {
    let f = fixture();
    let epoch = news_with(&f, 5).await;
    let body = format!(r#"{{"action":"subscribe","channel":"news","since":{}}}"#, since(2, &epoch));
    let answer = say(&f, &body).await;
    assert_eq!(answer["recovered"], true, "{answer}");
    assert_eq!(answer["offset"], 5);
    let jobs = take_jobs(&f);
    let offsets: Vec<Option<u64>> = jobs.iter().map(|job| job.envelope.offset).collect();
    assert_eq!(offsets, [Some(3), Some(4), Some(5)], "the missed messages, in order");
    for job in &jobs {
        match &job.audience {
            Audience::Connections(targets) => {
                assert_eq!(targets.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), [id()]);
            }
            other => panic!("a replay goes to the subscriber alone, not {other:?}"),
        }
    }

    let answer =
        say(&f, &format!(r#"{{"action":"subscribe","channel":"news","since":{}}}"#, since(5, &epoch))).await;
    assert_eq!(answer["recovered"], true, "nothing missed is recovered too: {answer}");
    assert!(take_jobs(&f).is_empty());
}

#[tokio::test]
async fn a_position_given_on_an_empty_channel_recovers_every_message_published_after_it() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let first = say(&f, r#"{"action":"subscribe","channel":"news"}"#).await;
    for n in 1..=2 {
        say(&f, &format!(r#"{{"action":"publish","channel":"news","data":{n}}}"#)).await;
    }
    take_jobs(&f);
    let body = format!(r#"{{"action":"subscribe","channel":"news","since":{}}}"#, since(0, &first["epoch"]));
    assert_eq!(say(&f, &body).await["recovered"], true);
    assert_eq!(take_jobs(&f).len(), 2);
}

#[tokio::test]
async fn a_position_in_another_epoch_from_the_future_or_no_longer_kept_is_not_recovered() {
    let small = HistorySettings { size: 3, ..HistorySettings::default() };
    let history = Arc::new(MemoryHistory::new(small));
    let f = fixture_with(history.clone(), Some(history), None);
    let epoch = news_with(&f, 6).await;
    let cases = [
        (since(4, &json!("another0epoch")), "another epoch"),
        (since(9, &epoch), "a position from the future"),
        (since(1, &epoch), "older than the three kept (4, 5, 6)"),
    ];
    for (position, case) in cases {
        let answer =
            say(&f, &format!(r#"{{"action":"subscribe","channel":"news","since":{position}}}"#)).await;
        assert_eq!(answer["recovered"], false, "{case}: {answer}");
        assert_eq!(
            (answer["offset"].as_u64(), &answer["epoch"]),
            (Some(6), &epoch),
            "{case}: where to go on from"
        );
        assert!(take_jobs(&f).is_empty(), "{case}: nothing replayed");
    }
    assert_eq!(f.store.subscriptions_of(&id()), [pattern("news")], "the subscription stands");
    let kept =
        say(&f, &format!(r#"{{"action":"subscribe","channel":"news","since":{}}}"#, since(3, &epoch))).await;
    assert_eq!(kept["recovered"], true, "4, 5 and 6 are kept: {kept}");
    assert_eq!(f.history.settings().size, 3);
}

#[tokio::test]
async fn a_wildcard_since_is_answered_not_recovered_and_a_bad_since_or_limit_is_refused() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let epoch = say(&f, r#"{"action":"subscribe","channel":"news"}"#).await["epoch"].clone();
    let wildcard = format!(r#"{{"action":"subscribe","channel":"chat/*","since":{}}}"#, since(0, &epoch));
    let answer = say(&f, &wildcard).await;
    assert_eq!(answer["recovered"], false, "{answer}");
    assert!(answer.get("offset").is_none(), "a pattern has no one stream: {answer}");

    let refused = [
        (r#"{"action":"subscribe","channel":"news","since":41}"#, "invalid_since"),
        (r#"{"action":"subscribe","channel":"news","since":{"offset":-1,"epoch":"e"}}"#, "invalid_since"),
        (r#"{"action":"subscribe","channel":"news","since":{"offset":1.5,"epoch":"e"}}"#, "invalid_since"),
        (r#"{"action":"subscribe","channel":"news","since":{"offset":1}}"#, "invalid_since"),
        (r#"{"action":"subscribe","channel":"news","since":{"offset":1,"epoch":"a b"}}"#, "invalid_since"),
        (r#"{"action":"history","channel":"news","since":"yesterday"}"#, "invalid_since"),
        (r#"{"action":"history","channel":"news","limit":0}"#, "invalid_limit"),
        (r#"{"action":"history","channel":"news","limit":101}"#, "invalid_limit"),
        (r#"{"action":"history","channel":"news","limit":"10"}"#, "invalid_limit"),
        (r#"{"action":"history","channel":"chat/*"}"#, "invalid_channel"),
        (r#"{"action":"history"}"#, "missing_channel"),
    ];
    for (body, code) in refused {
        let (status, reply) = send(&f, message_event(body)).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (400, Some(code)), "{body}: {reply}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    assert_eq!(f.store.subscriptions_of(&id()).len(), 2, "news and chat/*; nothing refused was stored");
    assert!(take_jobs(&f).is_empty());
}

#[tokio::test]
async fn history_answers_the_newest_messages_oldest_first_or_those_after_a_position() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    for n in 1..=7 {
        say(&f, &format!(r#"{{"action":"publish","channel":"news","data":{n}}}"#)).await;
    }
    let newest = say(&f, r#"{"action":"history","channel":"news","limit":3,"ref":"h1"}"#).await;
    let data = |answer: &Value| -> Vec<Value> {
        answer["messages"].as_array().expect("messages").iter().map(|m| m["data"].clone()).collect()
    };
    assert_eq!(data(&newest), [json!(5), json!(6), json!(7)], "{newest}");
    assert_eq!((newest["offset"].as_u64(), &newest["ref"]), (Some(7), &json!("h1")));
    assert_eq!(newest["messages"][0]["type"], "message", "each as delivered");
    assert_eq!(newest["messages"][0]["offset"], 5);

    let body = format!(
        r#"{{"action":"history","channel":"news","since":{},"limit":2}}"#,
        since(2, &newest["epoch"])
    );
    let after = say(&f, &body).await;
    assert_eq!((data(&after), &after["more"]), (vec![json!(3), json!(4)], &json!(true)), "{after}");
    let all = say(&f, r#"{"action":"history","channel":"news"}"#).await;
    assert_eq!((data(&all).len(), &all["more"]), (7, &json!(false)), "default limit 50");
    let empty = say(&f, r#"{"action":"history","channel":"quiet"}"#).await;
    assert_eq!((empty["offset"].as_u64(), empty["messages"].as_array().map(Vec::len)), (Some(0), Some(0)));
}

#[tokio::test]
async fn a_history_answer_stays_within_api_gateways_128_kb_by_leaving_messages_out() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let data = "x".repeat(2_000);
    for _ in 0..100 {
        say(&f, &format!(r#"{{"action":"publish","channel":"news","data":"{data}"}}"#)).await;
    }
    let response = f
        .ingress
        .handle(message_event(r#"{"action":"history","channel":"news","limit":100}"#))
        .await
        .expect("handled");
    let body = body_of(&response).expect("an answer");
    assert!(body.len() <= shared::limits::MAX_MESSAGE_BYTES, "{} bytes", body.len());
    let answer: Value = serde_json::from_str(body).expect("json");
    let offsets: Vec<u64> = answer["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["offset"].as_u64().expect("offset"))
        .collect();
    assert!(offsets.len() > 40 && offsets.len() < 100, "{} messages", offsets.len());
    assert_eq!(offsets.last(), Some(&100), "the newest are the ones asked for");
    assert_eq!(answer["more"], true);
}

#[tokio::test]
async fn history_needs_the_permission_a_subscribe_would() {
    let f = fixture();
    f.ingress.handle(as_user(connect_event(), alice())).await.expect("connect");
    for channel in ["sports", "user/bob"] {
        let body = format!(r#"{{"action":"history","channel":"{channel}"}}"#);
        let (status, reply) = send(&f, as_user(message_event(&body), alice())).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (400, Some("forbidden_channel")), "{channel}");
    }
    for channel in ["news", "chat/general", "user/alice"] {
        let body = format!(r#"{{"action":"history","channel":"{channel}"}}"#);
        let (status, reply) = send(&f, as_user(message_event(&body), alice())).await;
        assert_eq!((status, reply["type"].as_str()), (200, Some("history")), "{channel}: {reply}");
    }
}

#[tokio::test]
async fn when_history_cannot_be_read_a_subscribe_still_stands_unrecovered_and_a_publish_is_refused_unqueued()
{
    let f = fixture_with(Arc::default(), Some(Arc::new(BrokenHistory)), None);
    f.ingress.handle(connect_event()).await.expect("connect");
    let body = r#"{"action":"subscribe","channel":"news","since":{"offset":3,"epoch":"e1"}}"#;
    let answer = say(&f, body).await;
    assert_eq!(answer["recovered"], false, "{answer}");
    assert_eq!(f.store.subscriptions_of(&id()), [pattern("news")]);
    let plain = say(&f, r#"{"action":"subscribe","channel":"sports"}"#).await;
    assert!(plain.get("offset").is_none(), "no position to give: {plain}");
    for body in
        [r#"{"action":"publish","channel":"news","data":1}"#, r#"{"action":"history","channel":"news"}"#]
    {
        let (status, reply) = send(&f, message_event(body)).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (503, Some("unavailable")), "{body}: {reply}");
    }
    assert!(f.queue.peek().is_empty(), "an unnumbered publish is not queued");
}

#[tokio::test]
async fn with_history_off_nothing_carries_an_offset_and_history_answers_empty() {
    let f = fixture_with(Arc::default(), None, None);
    f.ingress.handle(connect_event()).await.expect("connect");
    assert_eq!(
        say(&f, r#"{"action":"subscribe","channel":"news"}"#).await,
        json!({"type":"subscribed","channel":"news"})
    );
    let published = say(&f, r#"{"action":"publish","channel":"news","data":1}"#).await;
    assert!(published.get("offset").is_none(), "{published}");
    let job = &take_jobs(&f)[0];
    assert_eq!(job.envelope.offset, None);
    assert_eq!(
        say(&f, r#"{"action":"history","channel":"news"}"#).await,
        json!({"type":"history","channel":"news","messages":[],"more":false})
    );
}

/// `event` as it comes from connection `id` instead of `ID`.
fn from(id: &str, event: ApiGatewayWebsocketProxyRequest) -> ApiGatewayWebsocketProxyRequest {
    let mut json = serde_json::to_value(&event).expect("json");
    json["requestContext"]["connectionId"] = json!(id);
    serde_json::from_value(json).expect("an event")
}

/// Connects `id` as the user of `context` (anonymous when it is `Value::Null`).
async fn connect_as(f: &Fixture, id: &str, context: &Value) {
    let event = from(id, connect_event());
    let event = if context.is_null() { event } else { as_user(event, context.clone()) };
    assert_eq!(f.ingress.handle(event).await.expect("connect").status_code, 200);
}

/// Sends `body` from connection `id` as the user of `context`; the reply.
async fn say_as(f: &Fixture, id: &str, context: &Value, body: &str) -> Value {
    let event = from(id, message_event(body));
    let event = if context.is_null() { event } else { as_user(event, context.clone()) };
    send(f, event).await.1
}

/// The kinds of the lifecycle events kept so far, with their channel, oldest first.
fn lifecycle(f: &Fixture) -> Vec<(String, String)> {
    f.events
        .recent()
        .iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap_or("").to_owned(),
                e["detail"]["channel"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

fn bob() -> Value {
    json!({ "principalId": "bob", "sub": "bob", "info": "{\"name\":\"Bob\"}" })
}

#[tokio::test]
async fn a_subscriber_to_a_channel_is_a_member_that_presence_lists_and_an_unsubscribe_ends() {
    let f = fixture();
    connect_as(&f, "bob1", &bob()).await;
    connect_as(&f, "bob2", &bob()).await;
    connect_as(&f, "anon", &Value::Null).await;
    for id in ["bob1", "bob2"] {
        let reply = say_as(&f, id, &bob(), r#"{"action":"subscribe","channel":"room/1"}"#).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
    }
    say_as(&f, "anon", &Value::Null, r#"{"action":"subscribe","channel":"room/1"}"#).await;
    say_as(&f, "anon", &Value::Null, r#"{"action":"subscribe","channel":"room/*"}"#).await;

    let reply =
        say_as(&f, "anon", &Value::Null, r#"{"action":"presence","channel":"room/1","ref":"p"}"#).await;
    assert_eq!((reply["type"].as_str(), reply["channel"].as_str()), (Some("presence"), Some("room/1")));
    assert_eq!((reply["clients"].as_u64(), reply["users"].as_u64()), (Some(3), Some(1)), "{reply}");
    assert_eq!(reply["ref"], "p");
    assert!(reply.get("truncated").is_none());
    let members = reply["members"].as_array().expect("members");
    let bob1 = members.iter().find(|m| m["connection"] == "bob1").expect("bob1 listed");
    assert_eq!(bob1["user"], "bob");
    assert_eq!(bob1["info"], json!({"name": "Bob"}));
    assert_eq!(bob1["since"], REQUEST_EPOCH_MS);
    let anon = members.iter().find(|m| m["connection"] == "anon").expect("anon listed");
    assert!(anon.get("user").is_none() && anon.get("info").is_none(), "{anon}");

    // A wildcard makes no one a member of the channels below it.
    let reply = say_as(&f, "anon", &Value::Null, r#"{"action":"presence","channel":"room/2"}"#).await;
    assert_eq!((reply["clients"].as_u64(), reply["members"].as_array().map(Vec::len)), (Some(0), Some(0)));

    for id in ["bob1", "bob2", "anon"] {
        say_as(&f, id, &Value::Null, r#"{"action":"unsubscribe","channel":"room/1"}"#).await;
    }
    let reply = say_as(&f, "anon", &Value::Null, r#"{"action":"presence","channel":"room/1"}"#).await;
    assert_eq!((reply["clients"].as_u64(), reply["users"].as_u64()), (Some(0), Some(0)));
    let room: Vec<String> =
        lifecycle(&f).into_iter().filter(|(_, channel)| channel == "room/1").map(|(kind, _)| kind).collect();
    assert_eq!(
        room,
        [
            "ChannelOccupied",
            "MemberJoined",
            "MemberJoined",
            "MemberJoined",
            "MemberLeft",
            "MemberLeft",
            "MemberLeft",
            "ChannelVacated"
        ]
    );
    let seqs: Vec<u64> = f
        .events
        .recent()
        .iter()
        .filter(|e| e["detail"]["channel"] == "room/1")
        .filter_map(|e| e["detail"]["seq"].as_u64())
        .collect();
    assert_eq!(seqs, [1, 1, 2, 3, 4, 5, 6, 6], "the occupied and vacated events share their change's seq");
}

#[tokio::test]
async fn join_and_leave_frames_are_queued_for_the_channels_watchers_only_when_it_has_some() {
    let f = fixture();
    for id in ["w1", "m1"] {
        connect_as(&f, id, &Value::Null).await;
    }
    say_as(&f, "m1", &Value::Null, r#"{"action":"subscribe","channel":"room/1"}"#).await;
    assert!(take_jobs(&f).is_empty(), "nobody watches: no frame queued");
    say_as(&f, "w1", &Value::Null, r#"{"action":"subscribe","channel":"room/1","joinLeave":true}"#).await;
    let jobs = take_jobs(&f);
    assert_eq!(jobs.len(), 1, "its own join, for the watcher it now is");
    assert_eq!(jobs[0].audience, Audience::Watchers(Channel::parse("room/1").expect("channel")));
    let frame: Value = serde_json::from_slice(&jobs[0].envelope.frame()).expect("json");
    assert_eq!((frame["type"].as_str(), frame["connection"].as_str()), (Some("join"), Some("w1")));
    assert_eq!(frame["sentAt"], REQUEST_EPOCH_MS);

    say_as(&f, "m1", &Value::Null, r#"{"action":"unsubscribe","channel":"room/1"}"#).await;
    let jobs = take_jobs(&f);
    let frame: Value = serde_json::from_slice(&jobs[0].envelope.frame()).expect("json");
    assert_eq!((frame["type"].as_str(), frame["connection"].as_str()), (Some("leave"), Some("m1")));
    // Subscribing again changes joinLeave without a second join.
    say_as(&f, "w1", &Value::Null, r#"{"action":"subscribe","channel":"room/1"}"#).await;
    assert!(take_jobs(&f).is_empty());
    say_as(&f, "m1", &Value::Null, r#"{"action":"subscribe","channel":"room/1"}"#).await;
    assert!(take_jobs(&f).is_empty(), "w1 no longer watches");
}

#[tokio::test]
async fn a_user_is_a_member_of_its_own_channel_and_a_disconnect_leaves_every_channel() {
    let f = fixture();
    connect_as(&f, "bob1", &bob()).await;
    say_as(&f, "bob1", &bob(), r#"{"action":"subscribe","channel":"room/1"}"#).await;
    say_as(&f, "bob1", &bob(), r#"{"action":"subscribe","channel":"room/*"}"#).await;
    let reply = say_as(&f, "bob1", &bob(), r#"{"action":"presence","channel":"user/bob"}"#).await;
    assert_eq!(reply["clients"], 1, "{reply}");
    f.ingress.handle(as_user(from("bob1", disconnect_event()), bob())).await.expect("disconnect");
    for channel in ["user/bob", "room/1"] {
        let roster =
            shared::Presence::members(f.presence.as_ref(), &Channel::parse(channel).expect("c"), 0).await;
        assert!(roster.expect("members").members.is_empty(), "{channel}");
    }
    let vacated: Vec<String> =
        lifecycle(&f).into_iter().filter(|(kind, _)| kind == "ChannelVacated").map(|(_, c)| c).collect();
    assert_eq!(vacated.len(), 2, "{vacated:?}");
}

#[tokio::test]
async fn presence_is_refused_for_a_pattern_a_forbidden_channel_or_when_off_and_a_bad_join_leave_is_refused() {
    let f = fixture();
    connect_as(&f, ID, &alice()).await;
    let code = |reply: Value| reply["error"]["code"].as_str().map(str::to_owned);
    let refused = [
        (r#"{"action":"presence","channel":"chat/*"}"#, "invalid_channel"),
        (r#"{"action":"presence"}"#, "missing_channel"),
        (r#"{"action":"presence","channel":"secret/1"}"#, "forbidden_channel"),
        (r#"{"action":"presence","channel":"user/bob"}"#, "forbidden_channel"),
        (r#"{"action":"subscribe","channel":"chat/a","joinLeave":"yes"}"#, "invalid_join_leave"),
        (r#"{"action":"subscribe","channel":"chat/*","joinLeave":true}"#, "invalid_join_leave"),
    ];
    for (body, expected) in refused {
        let reply = say_as(&f, ID, &alice(), body).await;
        assert_eq!(code(reply.clone()).as_deref(), Some(expected), "{body}: {reply}");
    }
    assert_eq!(f.store.subscription_count(), 1, "only alice's own channel");
    let reply =
        say_as(&f, ID, &alice(), r#"{"action":"subscribe","channel":"chat/*","joinLeave":false}"#).await;
    assert_eq!(reply["type"], "subscribed");

    let off = fixture_with(Arc::default(), None, None);
    connect_as(&off, ID, &alice()).await;
    let reply = say_as(&off, ID, &alice(), r#"{"action":"presence","channel":"chat/a"}"#).await;
    assert_eq!(code(reply).as_deref(), Some("presence_off"));
}

#[tokio::test]
async fn a_presence_answer_lists_at_most_a_thousand_members_within_128_kb_and_counts_them_all() {
    use shared::Presence;
    let f = fixture();
    let room = Channel::parse("room/big").expect("channel");
    let info = shared::identity::Info::parse(&json!({ "bio": "x".repeat(900) }).to_string()).expect("info");
    for n in 0..1_100 {
        let mut member = shared::presence::Member::new(
            shared::ConnectionRef {
                id: ConnectionId::parse(&format!("c{n:05}")).expect("id"),
                connected_at_ms: REQUEST_EPOCH_MS,
            },
            &shared::Identity::Anonymous,
            REQUEST_EPOCH_MS + n,
            false,
        );
        member.user = Some(format!("user{}", n % 700));
        member.info = (n % 2 == 0).then(|| info.clone());
        f.presence.join(&room, &member).await.expect("join");
    }
    let reply = say_as(&f, ID, &Value::Null, r#"{"action":"presence","channel":"room/big"}"#).await;
    let text = reply.to_string();
    assert!(text.len() <= shared::limits::MAX_MESSAGE_BYTES, "{} bytes", text.len());
    assert_eq!((reply["clients"].as_u64(), reply["users"].as_u64()), (Some(1_100), Some(700)));
    assert_eq!(reply["truncated"], true);
    let members = reply["members"].as_array().expect("members");
    assert!(members.len() > 100 && members.len() < 1_000, "{}", members.len());
    assert_eq!(members[0]["connection"], "c00000", "the longest-standing first");

    // Small members: a thousand fit, the rest are left out.
    let small = Channel::parse("room/small").expect("channel");
    for n in 0..1_001 {
        let id = ConnectionId::parse(&format!("s{n:05}")).expect("id");
        let member = shared::presence::Member::new(
            shared::ConnectionRef { id, connected_at_ms: REQUEST_EPOCH_MS },
            &shared::Identity::Anonymous,
            REQUEST_EPOCH_MS,
            false,
        );
        f.presence.join(&small, &member).await.expect("join");
    }
    let reply = say_as(&f, ID, &Value::Null, r#"{"action":"presence","channel":"room/small"}"#).await;
    assert_eq!(
        (reply["members"].as_array().map(Vec::len), reply["truncated"].as_bool()),
        (Some(1_000), Some(true))
    );
    assert_eq!(reply["clients"], 1_001);
}

#[tokio::test]
async fn a_member_whose_connection_expired_is_not_counted_and_leaves_when_someone_looks() {
    use shared::Presence;
    let f = fixture();
    let room = Channel::parse("room/1").expect("channel");
    let ghost = shared::presence::Member::new(
        shared::ConnectionRef {
            id: ConnectionId::parse("ghost").expect("id"),
            connected_at_ms: REQUEST_EPOCH_MS - 3 * 3_600_000,
        },
        &shared::Identity::Anonymous,
        REQUEST_EPOCH_MS - 3 * 3_600_000,
        false,
    );
    f.presence.join(&room, &ghost).await.expect("join");
    let reply = say_as(&f, ID, &Value::Null, r#"{"action":"presence","channel":"room/1"}"#).await;
    assert_eq!(reply["clients"], 0, "{reply}");
    assert_eq!(
        lifecycle(&f),
        [("MemberLeft".into(), "room/1".into()), ("ChannelVacated".into(), "room/1".into())]
    );
    assert!(f.presence.members(&room, 0).await.expect("members").expired.is_empty(), "it left");
}

#[tokio::test]
async fn when_members_cannot_be_written_or_read_the_client_is_told_to_send_again_and_a_disconnect_fails() {
    let f = fixture_with(Arc::default(), None, Some(Arc::new(shared::testing::BrokenPresence)));
    connect_as(&f, ID, &Value::Null).await;
    for body in [
        r#"{"action":"subscribe","channel":"room/1"}"#,
        r#"{"action":"unsubscribe","channel":"room/1"}"#,
        r#"{"action":"presence","channel":"room/1"}"#,
    ] {
        let (status, reply) = send(&f, message_event(body)).await;
        assert_eq!((status, reply["error"]["code"].as_str()), (503, Some("unavailable")), "{body}: {reply}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains("send it again")), "{reply}");
    }
    // A pattern makes no member: its subscription needs no presence at all.
    let (status, reply) = send(&f, message_event(r#"{"action":"subscribe","channel":"room/*"}"#)).await;
    assert_eq!((status, reply["type"].as_str()), (200, Some("subscribed")));
    f.ingress.handle(message_event(r#"{"action":"subscribe","channel":"room/2"}"#)).await.expect("handled");
    let failed = f.ingress.handle(disconnect_event()).await.expect_err("the memberships could not be ended");
    assert_eq!(failed.error_type(), "StoreUnavailable");
    assert!(f.store.is_empty(), "the connection itself is forgotten all the same");
}

#[tokio::test]
async fn history_after_the_largest_offset_is_refused_and_never_wraps_round_to_every_message() {
    let f = fixture();
    let epoch = news_with(&f, 3).await;
    for offset in [u64::MAX, u64::MAX - 1, 4] {
        let body = format!(r#"{{"action":"history","channel":"news","since":{}}}"#, since(offset, &epoch));
        let (status, reply) = send(&f, message_event(&body)).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (400, Some("unrecoverable_position")),
            "{offset}: {reply}"
        );
        assert!(reply.get("messages").is_none(), "{offset}: no message of any stream");
    }
    let latest =
        say(&f, &format!(r#"{{"action":"history","channel":"news","since":{}}}"#, since(3, &epoch))).await;
    assert_eq!((latest["messages"].as_array().map(Vec::len), &latest["more"]), (Some(0), &json!(false)));
}

#[tokio::test]
async fn history_since_a_position_in_another_epoch_is_refused_as_a_subscribe_would_not_recover_it() {
    let f = fixture();
    let epoch = news_with(&f, 3).await;
    for other in ["deadbeef0000", "another0epoch"] {
        let body = format!(
            r#"{{"action":"history","channel":"news","since":{},"ref":"r"}}"#,
            since(1, &json!(other))
        );
        let (status, reply) = send(&f, message_event(&body)).await;
        assert_eq!(
            (status, reply["error"]["code"].as_str()),
            (400, Some("unrecoverable_position")),
            "{reply}"
        );
        let message = reply["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(epoch.as_str().expect("epoch")) && message.contains("offset 3"),
            "{message}"
        );
        assert_eq!(reply["ref"], "r");
        let subscribe =
            format!(r#"{{"action":"subscribe","channel":"news","since":{}}}"#, since(1, &json!(other)));
        assert_eq!(
            say(&f, &subscribe).await["recovered"],
            false,
            "the subscribe's answer for the same since"
        );
    }
    let same =
        say(&f, &format!(r#"{{"action":"history","channel":"news","since":{}}}"#, since(1, &epoch))).await;
    assert_eq!(same["messages"].as_array().map(Vec::len), Some(2), "its own epoch: 2 and 3");
}

#[tokio::test]
async fn a_history_limit_that_leaves_older_kept_messages_out_says_more() {
    let f = fixture();
    news_with(&f, 3).await;
    for (limit, more) in [(1, true), (2, true), (3, false), (50, false)] {
        let answer = say(&f, &format!(r#"{{"action":"history","channel":"news","limit":{limit}}}"#)).await;
        assert_eq!(answer["messages"].as_array().map(Vec::len), Some(limit.min(3)), "{answer}");
        assert_eq!(answer["more"], more, "limit {limit}: {answer}");
    }
}

#[tokio::test]
async fn the_largest_message_a_publish_accepts_is_read_back_by_history_newest_and_since_alike() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let epoch = say(&f, r#"{"action":"subscribe","channel":"news"}"#).await["epoch"].clone();
    say(&f, r#"{"action":"publish","channel":"news","data":"small"}"#).await;
    // The most data a publish takes: one byte more is refused.
    let publish =
        |chars: usize| format!(r#"{{"action":"publish","channel":"news","data":"{}"}}"#, "x".repeat(chars));
    let mut largest = 0;
    let (mut lo, mut hi) = (1, shared::limits::MAX_MESSAGE_BYTES);
    while lo <= hi {
        let mid = (lo + hi) / 2;
        let envelope = shared::Envelope::message(
            Channel::parse("news").expect("channel"),
            shared::Sender { connection: Some(id()), user: None },
            REQUEST_EPOCH_MS,
            serde_json::value::RawValue::from_string(format!("\"{}\"", "x".repeat(mid))).expect("raw"),
        );
        if envelope.is_ok() {
            largest = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    let (status, refused) = send(&f, message_event(&publish(largest + 1))).await;
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("message_too_large")), "{refused}");
    let published = say(&f, &publish(largest)).await;
    assert_eq!(published["offset"], 2, "{published}");
    say(&f, r#"{"action":"publish","channel":"news","data":"after"}"#).await;

    let history = |body: String| {
        let f = &f;
        async move {
            let response = f.ingress.handle(message_event(&body)).await.expect("handled");
            let text = body_of(&response).expect("an answer").to_owned();
            assert!(text.len() <= shared::limits::MAX_MESSAGE_BYTES, "{} bytes", text.len());
            let answer: Value = serde_json::from_str(&text).expect("json");
            let offsets: Vec<u64> = answer["messages"]
                .as_array()
                .expect("messages")
                .iter()
                .filter_map(|m| m["offset"].as_u64())
                .collect();
            (offsets, answer["more"].clone())
        }
    };
    // A client paging with `since` from the start gets every message, the largest alone in its page.
    let mut seen = Vec::new();
    let mut at = 0;
    for _ in 0..5 {
        let (offsets, more) = history(format!(
            r#"{{"action":"history","channel":"news","since":{},"limit":100,"ref":"{}"}}"#,
            since(at, &epoch),
            "\\u0001".repeat(64)
        ))
        .await;
        assert!(!offsets.is_empty(), "a page after {at} holds a message");
        at = *offsets.last().expect("last");
        seen.extend(offsets);
        if more != true {
            break;
        }
    }
    assert_eq!(seen, [1, 2, 3]);
    let (newest, more) = history(r#"{"action":"history","channel":"news","limit":2}"#.into()).await;
    assert_eq!((newest, more), (vec![3], json!(true)), "the largest does not fit beside 3: left out, more");
    let (alone, _) =
        history(format!(r#"{{"action":"history","channel":"news","since":{},"limit":1}}"#, since(1, &epoch)))
            .await;
    assert_eq!(alone, [2]);
}

#[tokio::test]
async fn a_recovery_larger_than_one_history_answer_is_not_replayed_and_is_read_from_history_by_pages() {
    let f = fixture();
    f.ingress.handle(connect_event()).await.expect("connect");
    let epoch = say(&f, r#"{"action":"subscribe","channel":"news"}"#).await["epoch"].clone();
    let data = "x".repeat(100_000);
    for _ in 0..100 {
        say(&f, &format!(r#"{{"action":"publish","channel":"news","data":"{data}"}}"#)).await;
    }
    take_jobs(&f);
    // Ten subscribes of about 110 bytes each asked for 10 MB of replay.
    for _ in 0..10 {
        let body = format!(r#"{{"action":"subscribe","channel":"news","since":{}}}"#, since(0, &epoch));
        let answer = say(&f, &body).await;
        assert_eq!(
            (answer["recovered"].as_bool(), answer["offset"].as_u64()),
            (Some(false), Some(100)),
            "{answer}"
        );
    }
    assert!(take_jobs(&f).is_empty(), "nothing queued");
    let one =
        say(&f, &format!(r#"{{"action":"subscribe","channel":"news","since":{}}}"#, since(99, &epoch))).await;
    assert_eq!(one["recovered"], true, "one message fits: {one}");
    assert_eq!(take_jobs(&f).len(), 1);
    // What was missed is still all there for a client reading history from its position.
    let mut at = 0;
    let mut pages = 0;
    loop {
        let page = say(
            &f,
            &format!(r#"{{"action":"history","channel":"news","since":{},"limit":100}}"#, since(at, &epoch)),
        )
        .await;
        let offsets: Vec<u64> = page["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .filter_map(|m| m["offset"].as_u64())
            .collect();
        assert_eq!(offsets.first(), Some(&(at + 1)), "page after {at}");
        at = *offsets.last().expect("a message");
        pages += 1;
        if page["more"] != true {
            break;
        }
    }
    assert_eq!((at, pages), (100, 100), "every message, one 100 KB message a page");
}

/// The ingress as deployed (history, presence and events on by default) with `namespaces.toml`
/// holding `text`.
fn fixture_in(text: &str) -> Fixture {
    let namespaces = shared::namespaces::parse(
        shared::namespaces::FILE,
        text,
        shared::namespaces::ChannelOptions::default(),
    )
    .expect("a valid namespace file");
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let history = Arc::new(MemoryHistory::of(namespaces.clone()));
    let presence = Arc::new(MemoryPresence::new());
    let events = Arc::new(RecentEvents::new(1000, "000000000000", "us-east-1"));
    let ports = Ports {
        history: Some(history.clone()),
        presence: Some(presence.clone()),
        events: Some(events.clone()),
        namespaces,
        ..Ports::new(store.clone(), queue.clone())
    };
    Fixture { store, queue, history, presence, events, ingress: Ingress::new(ports) }
}

const NAMESPACES: &str = r#"
[cursor]
history_size = 0
presence = false

[calm]
join_leave = false

[news]
history_size = 2
publish = "backend"
"#;

#[tokio::test]
async fn a_namespace_without_history_or_presence_numbers_nothing_and_keeps_no_member() {
    let f = fixture_in(NAMESPACES);
    connect_as(&f, ID, &Value::Null).await;
    let subscribed = say_as(&f, ID, &Value::Null, r#"{"action":"subscribe","channel":"cursor/doc"}"#).await;
    assert_eq!(subscribed, json!({"type":"subscribed","channel":"cursor/doc"}), "no position");
    let published =
        say_as(&f, ID, &Value::Null, r#"{"action":"publish","channel":"cursor/doc","data":1}"#).await;
    assert_eq!(published["type"], "published");
    assert!(published.get("offset").is_none(), "{published}");
    assert_eq!(take_jobs(&f)[0].envelope.offset, None);
    assert_eq!(f.history.channels(), 0, "nothing kept for cursor/doc");
    assert_eq!(
        say_as(&f, ID, &Value::Null, r#"{"action":"history","channel":"cursor/doc"}"#).await,
        json!({"type":"history","channel":"cursor/doc","messages":[],"more":false})
    );
    let reply = say_as(&f, ID, &Value::Null, r#"{"action":"presence","channel":"cursor/doc"}"#).await;
    assert_eq!(reply["error"]["code"], "presence_off", "{reply}");
    assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains("cursor/doc")), "{reply}");
    let reply =
        say_as(&f, ID, &Value::Null, r#"{"action":"subscribe","channel":"cursor/other","joinLeave":true}"#)
            .await;
    assert_eq!(reply["error"]["code"], "invalid_join_leave", "{reply}");
    assert!(lifecycle(&f).is_empty(), "no member, so no event: {:?}", lifecycle(&f));

    // Any other channel keeps what the defaults keep.
    say_as(&f, ID, &Value::Null, r#"{"action":"subscribe","channel":"room/1","joinLeave":true}"#).await;
    let published = say_as(&f, ID, &Value::Null, r#"{"action":"publish","channel":"room/1","data":1}"#).await;
    assert_eq!(published["offset"], 1, "{published}");
    let presence = say_as(&f, ID, &Value::Null, r#"{"action":"presence","channel":"room/1"}"#).await;
    assert_eq!(presence["clients"], 1, "{presence}");
}

#[tokio::test]
async fn a_namespace_without_join_and_leave_refuses_to_send_them_but_keeps_its_members() {
    let f = fixture_in(NAMESPACES);
    connect_as(&f, ID, &Value::Null).await;
    for body in [
        r#"{"action":"subscribe","channel":"calm/1","joinLeave":true}"#,
        r#"{"action":"subscribe","channel":"calm/*","joinLeave":true}"#,
    ] {
        let reply = say_as(&f, ID, &Value::Null, body).await;
        assert_eq!(reply["error"]["code"], "invalid_join_leave", "{body}: {reply}");
    }
    assert_eq!(f.store.subscription_count(), 0, "a refused subscribe is not stored");
    let reply = say_as(&f, ID, &Value::Null, r#"{"action":"subscribe","channel":"calm/1"}"#).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let presence = say_as(&f, ID, &Value::Null, r#"{"action":"presence","channel":"calm/1"}"#).await;
    assert_eq!(presence["clients"], 1, "{presence}");
}

#[tokio::test]
async fn a_namespace_only_the_backend_publishes_to_refuses_a_clients_publish_and_numbers_nothing() {
    let f = fixture_in(NAMESPACES);
    connect_as(&f, ID, &alice()).await;
    let epoch =
        say_as(&f, ID, &Value::Null, r#"{"action":"subscribe","channel":"news"}"#).await["epoch"].clone();
    let reply = say_as(&f, ID, &Value::Null, r#"{"action":"publish","channel":"news","data":1}"#).await;
    assert_eq!(reply["error"]["code"], "forbidden_channel", "{reply}");
    assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains("backend")), "{reply}");
    assert!(f.queue.peek().is_empty(), "nothing queued");
    let history = say_as(&f, ID, &Value::Null, r#"{"action":"history","channel":"news"}"#).await;
    assert_eq!(history["offset"], 0, "nothing numbered: {history}");
    assert_eq!(history["epoch"], epoch);
    // Its history keeps two, as the file says, when the backend publishes (the worker numbers those).
    let mut envelope = shared::Envelope::message(
        Channel::parse("news").expect("a channel"),
        shared::Sender::default(),
        0,
        serde_json::value::RawValue::from_string("1".into()).expect("json"),
    )
    .expect("an envelope");
    for _ in 0..3 {
        envelope.id = shared::MessageId::random();
        shared::History::append(f.history.as_ref(), &mut envelope).await.expect("kept");
    }
    let history = say_as(&f, ID, &Value::Null, r#"{"action":"history","channel":"news"}"#).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2), "{history}");
}
