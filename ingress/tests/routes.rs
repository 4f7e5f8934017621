//! The ingress handler on in-memory ports, fed events in the exact JSON shape API Gateway sends.

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayWebsocketProxyRequest};
use aws_lambda_events::encodings::Body;
use ingress::Ingress;
use serde_json::{Value, json};
use shared::memory::{MemoryQueue, MemoryStore};
use shared::{ConnectionId, Job, Queue, QueueError};

const ID: &str = "TWegAcC4EowCHnA=";
const REQUEST_EPOCH_MS: i64 = 1_764_167_186_000;

fn context(route: &str, event_type: &str) -> Value {
    json!({
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": "TWegAcC4EowCHnA=",
        "requestTime": "26/Nov/2025:14:26:26 +0000",
        "messageDirection": "IN",
        "stage": "Prod",
        "connectedAt": REQUEST_EPOCH_MS - 5_000,
        "requestTimeEpoch": REQUEST_EPOCH_MS,
        "identity": { "sourceIp": "192.0.2.1", "userAgent": "wscat" },
        "requestId": "TWegAcC4EowCHnA=",
        "domainName": "abcd1234.execute-api.us-east-1.amazonaws.com",
        "connectionId": ID,
        "apiId": "abcd1234"
    })
}

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

struct Fixture {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    ingress: Ingress,
}

fn fixture() -> Fixture {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let ingress = Ingress::new(store.clone(), queue.clone());
    Fixture { store, queue, ingress }
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
    assert_eq!(job.envelope.from, id());
    assert_eq!(job.envelope.data.get(), r#""hi""#);
    assert_eq!(job.envelope.sent_at, REQUEST_EPOCH_MS);
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
    let ingress = Ingress::new(Arc::new(MemoryStore::default()), Arc::new(BrokenQueue));
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
    assert!(f.ingress.handle(event).await.is_err());
}
