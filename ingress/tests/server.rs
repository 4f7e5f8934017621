//! The server API on in-memory ports, fed the HTTP API's payload format 2.0 events as API Gateway
//! sends them: who may call, and what a refused call leaves undone.

use std::sync::Arc;

use ingress::server::ServerError;
use ingress::{Event, Ingress, Ports, Response};
use serde_json::{Value, json};
use shared::History;
use shared::history::{HistorySettings, MemoryHistory};
use shared::queue::MemoryQueue;
use shared::stack::StackPorts;
use shared::store::MemoryStore;
use shared::testing::BrokenHistory;

/// An HTTP API request to `path` with `body`, let in as `authorizer` says.
fn event(verb: &str, path: &str, body: &str, authorizer: Option<Value>) -> Event {
    let mut context = json!({
        "accountId": "123456789012",
        "apiId": "api1234567",
        "domainName": "api1234567.execute-api.us-east-1.amazonaws.com",
        "http": {"method": verb, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1", "userAgent": "curl/8.5.0"},
        "requestId": "JKJaXmPLvHcESHA=",
        "routeKey": "POST /api/{method}",
        "stage": "$default",
        "time": "07/Dec/2026:00:00:00 +0000",
        "timeEpoch": 1_796_601_600_000_i64,
    });
    if let Some(authorizer) = authorizer {
        context["authorizer"] = authorizer;
    }
    let event = json!({
        "version": "2.0",
        "routeKey": "POST /api/{method}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": context,
        "pathParameters": {"method": path.rsplit('/').next()},
        "body": body,
        "isBase64Encoded": false,
    });
    serde_json::from_value(event).expect("an HTTP API event")
}

fn server() -> Option<Value> {
    Some(json!({"lambda": {"sub": "backend", "server": true}}))
}

fn ports(history: Arc<dyn History>) -> (Ports, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    let ports = StackPorts {
        history: Some(history),
        ..StackPorts::new(Arc::new(MemoryStore::default()), queue.clone())
    };
    (ports, queue)
}

async fn answer(ingress: &Ingress, event: Event) -> (i64, Value) {
    let handled = ingress.run(event).await;
    let Ok(Response::Http(response)) = handled.result else { panic!("an HTTP answer: {:?}", handled.result) };
    let body = match response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => text,
        other => panic!("a text body: {other:?}"),
    };
    assert_eq!(response.headers["content-type"], "application/json");
    (response.status_code, serde_json::from_str(&body).expect("a JSON answer"))
}

#[tokio::test]
async fn a_call_without_a_servers_authorization_is_refused_before_its_method_is_read() {
    let (ports, queue) = ports(Arc::new(MemoryHistory::new(HistorySettings::default())));
    let ingress = Ingress::new(ports);
    let publish = r#"{"channel":"news","data":1}"#;
    for authorizer in [
        None,
        Some(json!({"lambda": {"sub": "alice"}})),
        Some(json!({"lambda": {"sub": "alice", "server": false}})),
        Some(json!({"lambda": {"sub": "alice", "server": "yes"}})),
        Some(json!({"lambda": {"server": true}})),
        Some(json!({"jwt": {"claims": {"sub": "alice"}, "scopes": ["realtime/server"]}})),
    ] {
        for path in ["/api/publish", "/api/unknown"] {
            let (status, body) = answer(&ingress, event("POST", path, publish, authorizer.clone())).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (403, Some("forbidden")),
                "{authorizer:?} {path}"
            );
        }
    }
    assert_eq!(queue.peek().len(), 0, "nothing queued");

    let (status, _) = answer(&ingress, event("POST", "/api/publish", publish, server())).await;
    assert_eq!(status, 200, "a server's token");
    let iam = Some(
        json!({"iam": {"accessKey": "AKIA", "accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:role/backend"}}),
    );
    let (status, _) = answer(&ingress, event("POST", "/iam/api/publish", publish, iam.clone())).await;
    assert_eq!(status, 200, "a SigV4 signer");
    let (status, body) = answer(&ingress, event("GET", "/iam/api/publish", "", iam)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")));
    assert_eq!(queue.peek().len(), 2);
}

#[tokio::test]
async fn bodies_that_are_not_json_objects_are_refused_with_their_codes() {
    let (ports, queue) = ports(Arc::new(MemoryHistory::new(HistorySettings::default())));
    let ingress = Ingress::new(ports);
    let deep = format!("{{\"channel\":\"news\",\"data\":{}1{}}}", "[".repeat(70), "]".repeat(70));
    for (body, code) in [
        ("", "empty_message"),
        ("  ", "empty_message"),
        ("\"news\"", "invalid_field"),
        ("[{\"channel\":\"news\",\"data\":1}]", "invalid_field"),
        ("{\"channel\":\"news\",\"data\":1", "invalid_json"),
        ("{\"channel\":\"news\",\"channel\":\"b\",\"data\":1}", "invalid_json"),
        (deep.as_str(), "too_deeply_nested"),
    ] {
        let (status, answer) = answer(&ingress, event("POST", "/api/publish", body, server())).await;
        assert_eq!((status, answer["error"]["code"].as_str()), (400, Some(code)), "{body}: {answer}");
    }
    assert_eq!(queue.peek().len(), 0);
}

#[tokio::test]
async fn a_publish_whose_history_fails_is_unavailable_and_queues_nothing() {
    let (ports, queue) = ports(Arc::new(BrokenHistory));
    let ingress = Ingress::new(ports);
    let body = r#"{"channel":"news","data":1,"id":"6f1c1d0e-4a8b-4f43-9a55-2b8d7c5e9f01"}"#;
    let (status, answer) = answer(&ingress, event("POST", "/api/publish", body, server())).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (503, Some("unavailable")), "{answer}");
    assert_eq!(queue.peek().len(), 0);
}

#[tokio::test]
async fn the_documents_error_table_lists_every_code_the_server_api_answers_with() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/server-api.md"))
        .expect("the doc");
    let table: Vec<&str> = doc
        .lines()
        .skip_while(|line| !line.starts_with("## Errors"))
        .skip(1)
        .take_while(|line| !line.starts_with("## "))
        .filter_map(|line| line.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(table, ServerError::CODES, "docs/server-api.md's table, in its order");
    let mut methods: Vec<&str> = ingress::server::METHODS.iter().map(|(name, _)| *name).collect();
    for method in &methods {
        assert!(doc.contains(&format!("### `{method}`")), "docs/server-api.md has no section for {method}");
    }
    // docs/openapi.yaml: a path for every method, its own codes first, then the protocol's it shares.
    let contract = testkit::server_contract::server_contract();
    methods.sort_unstable();
    assert_eq!(contract.methods(), methods, "docs/openapi.yaml's paths");
    let codes = contract.error_codes();
    assert_eq!(
        codes[..ServerError::CODES.len()],
        ServerError::CODES.map(str::to_owned),
        "docs/openapi.yaml's ErrorCode"
    );
    let shared: Vec<&str> = doc
        .lines()
        .skip_while(|line| !line.starts_with("and, as the WebSocket protocol's:"))
        .take_while(|line| !line.starts_with("[protocol.md]") && !line.is_empty())
        .flat_map(|line| line.split('`').skip(1).step_by(2))
        .filter(|word| word.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    assert_eq!(
        codes[ServerError::CODES.len()..],
        shared.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>(),
        "the codes shared with the protocol"
    );
    for code in &shared {
        assert!(
            shared::error::ErrorCode::ALL.iter().any(|known| known.as_str() == *code),
            "{code} is no protocol code"
        );
    }
}
