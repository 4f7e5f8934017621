//! The ingress as Lambda runs it: its real bootstrap (`src/main.rs`, what `sam build` deploys)
//! started as a process under a local Lambda Runtime API, with the variables template.yaml sets it,
//! DynamoDB and SQS at moto_server through the SDK's standard `AWS_ENDPOINT_URL`, and API Gateway's
//! events in the shapes AWS sends them. `scripts/test` starts moto and passes it in `MOTO_ENDPOINT`;
//! without it these tests fail rather than skip.

use std::time::Duration;

use futures::TryStreamExt;
use serde_json::{Value, json};
use shared::aws::provision::{ensure_queue, ensure_table, sdk_for_endpoint};
use shared::queue::SqsQueue;
use shared::store::DynamoStore;
use shared::{ConnectionId, ConnectionStore, Job, QueueSource};
use testkit::{Bootstrap, Invocation, RuntimeApi, lambda_env, moto_endpoint, unique_name};

mod events;
use events::{ID, context};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_ingress");

fn connect() -> Value {
    json!({
        "headers": {
            "Host": "abcd1234.execute-api.us-east-1.amazonaws.com",
            "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
            "X-Amzn-Trace-Id": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700",
            "X-Forwarded-For": "192.0.2.1",
            "X-Forwarded-Port": "443",
            "X-Forwarded-Proto": "https"
        },
        "multiValueHeaders": { "Host": ["abcd1234.execute-api.us-east-1.amazonaws.com"] },
        "requestContext": context("$connect", "CONNECT"),
        "isBase64Encoded": false
    })
}

fn message(body: &str) -> Value {
    json!({ "requestContext": context("$default", "MESSAGE"), "body": body, "isBase64Encoded": false })
}

fn disconnect() -> Value {
    let mut context = context("$disconnect", "DISCONNECT");
    context["disconnectStatusCode"] = json!(1001);
    context["disconnectReason"] = json!("Going away");
    json!({
        "headers": { "Host": "abcd1234.execute-api.us-east-1.amazonaws.com", "x-api-key": "", "X-Forwarded-For": "", "x-restapi": "" },
        "multiValueHeaders": { "Host": ["abcd1234.execute-api.us-east-1.amazonaws.com"] },
        "requestContext": context,
        "isBase64Encoded": false
    })
}

/// A server API call as the HTTP API hands it over (payload format 2.0), by a server or not.
fn server_call(body: &str, server: bool) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "POST /api/{method}",
        "rawPath": "/api/publish",
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api1234567",
            "authorizer": {"lambda": {"sub": "backend", "server": server}},
            "http": {"method": "POST", "path": "/api/publish", "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "POST /api/{method}",
            "stage": "$default",
            "timeEpoch": 1_796_601_600_000_i64
        },
        "pathParameters": {"method": "publish"},
        "body": body,
        "isBase64Encoded": false
    })
}

/// The route response: its status and its body as JSON (`Null` when it has none).
fn answer(invocation: Invocation) -> (i64, Value) {
    let Invocation::Response(response) = invocation else { panic!("the invocation failed: {invocation:?}") };
    let body =
        response["body"].as_str().map_or(Value::Null, |b| serde_json::from_str(b).expect("a JSON body"));
    (response["statusCode"].as_i64().expect("a statusCode"), body)
}

async fn stored_ids(store: &DynamoStore) -> Vec<ConnectionId> {
    let pages: Vec<Vec<shared::ConnectionRef>> = store.scan().try_collect().await.expect("scan");
    pages.into_iter().flatten().map(|c| c.id).collect()
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn the_bootstrap_stores_answers_queues_and_forgets_as_the_template_configures_it() {
    let sdk = sdk_for_endpoint(&moto_endpoint()).await;
    let table = unique_name("bootstrap-connections");
    ensure_table(&sdk, &table).await.expect("a table");
    let (queue_url, _dlq) = ensure_queue(&sdk, &unique_name("bootstrap-jobs"), Duration::from_secs(180), 5)
        .await
        .expect("a queue");
    let api = RuntimeApi::start().await;
    let mut env = lambda_env(api.addr, "ws-ingress");
    env.extend([
        ("CONNECTIONS_TABLE".to_owned(), table.clone()),
        ("QUEUE_URL".to_owned(), queue_url.clone()),
        // Where a flooding connection would be closed: nothing floods here.
        ("CONNECTIONS_ENDPOINT".to_owned(), "http://127.0.0.1:9/Prod".to_owned()),
        ("AWS_ENDPOINT_URL".to_owned(), moto_endpoint()),
    ]);
    let bootstrap = Bootstrap::start(BOOTSTRAP, env);
    let store = DynamoStore::from_sdk(&sdk, table);
    let id = ConnectionId::parse(ID).expect("an id");

    assert_eq!(answer(api.invoke(connect()).await), (200, Value::Null));
    assert_eq!(stored_ids(&store).await, std::slice::from_ref(&id));

    let subscribed =
        answer(api.invoke(message(r#"{"action":"subscribe","channel":"chat/*","ref":"1"}"#)).await);
    assert_eq!(subscribed, (200, json!({"type": "subscribed", "channel": "chat/*", "ref": "1"})));
    let (status, queued) =
        answer(api.invoke(message(r#"{"action":"broadcast","data":{"n":1},"ref":"2"}"#)).await);
    assert_eq!((status, queued["type"].as_str()), (200, Some("queued")), "{queued}");
    let (status, refused) = answer(api.invoke(message(r#"{"action":"broadcast""#)).await);
    assert_eq!((status, refused["error"]["code"].as_str()), (400, Some("invalid_json")));

    let received = SqsQueue::from_sdk(&sdk, queue_url.clone())
        .receive(10, Duration::from_secs(1))
        .await
        .expect("receive");
    assert_eq!(received.len(), 1, "the broadcast alone is queued");
    let job = Job::parse(&received[0].body).expect("a job");
    assert_eq!(
        (job.envelope.id.to_string(), job.envelope.from),
        (queued["id"].as_str().expect("id").to_owned(), Some(id.clone()))
    );
    assert_eq!(job.envelope.data.as_ref().map(|d| d.get()).unwrap_or_default(), r#"{"n":1}"#);

    assert_eq!(answer(api.invoke(disconnect()).await), (200, Value::Null));
    assert!(stored_ids(&store).await.is_empty(), "forgotten on $disconnect");

    // The server API's HTTP API events, through the same function: numbered in DynamoDB, queued in SQS.
    let published = answer(api.invoke(server_call(r#"{"channel":"news","data":1}"#, true)).await);
    assert_eq!(
        (published.0, published.1["published"][0]["offset"].as_u64()),
        (200, Some(1)),
        "{}",
        published.1
    );
    let refused = answer(api.invoke(server_call(r#"{"channel":"news","data":1}"#, false)).await);
    assert_eq!((refused.0, refused.1["error"]["code"].as_str()), (403, Some("forbidden")));
    let received = SqsQueue::from_sdk(&sdk, queue_url.clone())
        .receive(10, Duration::from_secs(1))
        .await
        .expect("receive");
    assert_eq!(received.len(), 1, "the server's publish alone is queued");
    assert_eq!(Job::parse(&received[0].body).expect("a job").envelope.offset, Some(1));

    // Lambda reports a failed invocation by what went wrong.
    let mut no_id = message("hi");
    no_id["requestContext"]["connectionId"] = Value::Null;
    match api.invoke(no_id).await {
        Invocation::Error { body, .. } => assert_eq!(body["errorType"], "MissingConnectionId", "{body}"),
        other => panic!("answered {other:?}"),
    }

    // And the metrics: an EMF line per event, by route and error code.
    let line = bootstrap.emf_line(Duration::from_secs(5), |l| l["Code"] == "invalid_json").await;
    assert_eq!(
        (&line["Function"], &line["Route"], &line["Errors"]),
        (&json!("ws-ingress"), &json!("$default"), &json!(1))
    );
    bootstrap.emf_line(Duration::from_secs(5), |l| l["Route"] == "$disconnect").await;
}

#[tokio::test]
async fn a_bootstrap_missing_its_variables_reports_invalid_configuration_and_exits() {
    let api = RuntimeApi::start().await;
    let mut bootstrap = Bootstrap::start(BOOTSTRAP, lambda_env(api.addr, "ws-ingress"));
    let (header, body) = api.init_error(Duration::from_secs(20)).await.expect("an init error");
    assert_eq!(
        (header.as_str(), &body["errorType"]),
        ("InvalidConfiguration", &json!("InvalidConfiguration"))
    );
    let message = body["errorMessage"].as_str().expect("a message");
    assert!(
        ["CONNECTIONS_TABLE", "QUEUE_URL", "CONNECTIONS_ENDPOINT"].iter().all(|name| message.contains(name)),
        "{message}"
    );
    let status = bootstrap.exited(Duration::from_secs(10)).await.expect("it exits");
    assert!(!status.success());
}
