//! The worker as Lambda runs it: its real bootstrap (`src/main.rs`, what `sam build` deploys)
//! started as a process under a local Lambda Runtime API, with the variables template.yaml sets it,
//! DynamoDB and SQS at moto_server through the SDK's standard `AWS_ENDPOINT_URL`, `@connections` at
//! a recording endpoint, and an SQS event in the shape the event source mapping sends it.
//! `scripts/test` starts moto and passes it in `MOTO_ENDPOINT`; without it this test fails.

use std::time::Duration;

use futures::TryStreamExt;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use shared::aws::provision::{ensure_queue, ensure_table, sdk_for_endpoint};
use shared::store::DynamoStore;
use shared::{ConnectionId, ConnectionRecord, ConnectionStore, Envelope, Job};
use testkit::{
    Bootstrap, Invocation, RecordingConnections, RuntimeApi, lambda_env, moto_endpoint, unique_name,
};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_worker");

/// One record of an SQS event, with every attribute the event source mapping sends.
fn record(message_id: &str, body: &str) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "AWSTraceHeader": "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1",
            "SentTimestamp": "1795708288148",
            "SenderId": "AROAEXAMPLE:ws-ingress",
            "ApproximateFirstReceiveTimestamp": "1795708288160"
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:ws-broadcasts",
        "awsRegion": "us-east-1"
    })
}

fn connection(id: &ConnectionId) -> ConnectionRecord {
    // Connected long ago: a 410 for it is a connection gone, not a handshake still completing.
    ConnectionRecord {
        id: id.clone(),
        connected_at_ms: 1_700_000_000_000,
        source_ip: None,
        expires_at_s: 4_000_000_000,
    }
}

#[tokio::test]
#[ignore = "needs moto_server: run scripts/test"]
async fn the_bootstrap_posts_a_batch_signed_prunes_the_gone_and_reports_the_poison() {
    let sdk = sdk_for_endpoint(&moto_endpoint()).await;
    let table = unique_name("bootstrap-worker");
    ensure_table(&sdk, &table).await.expect("a table");
    let (queue_url, _dlq) =
        ensure_queue(&sdk, &unique_name("bootstrap-worker-jobs"), Duration::from_secs(180), 5)
            .await
            .expect("a queue");
    let store = DynamoStore::from_sdk(&sdk, table.clone());
    let (live, gone) = (
        ConnectionId::parse("LiveConnAAAAAA=").expect("id"),
        ConnectionId::parse("GoneConnAAAAAA=").expect("id"),
    );
    for id in [&live, &gone] {
        store.put(&connection(id)).await.expect("stored");
    }
    let endpoint = RecordingConnections::start().await;
    endpoint.gone(gone.as_str());

    let api = RuntimeApi::start().await;
    let mut env = lambda_env(api.addr, "ws-worker");
    // template.yaml's defaults.
    env.extend(
        [
            ("CONNECTIONS_TABLE", table.as_str()),
            ("CONNECTIONS_ENDPOINT", endpoint.endpoint("Prod").as_str()),
            ("QUEUE_URL", queue_url.as_str()),
            ("POST_CONCURRENCY", "128"),
            ("ACCOUNT_POST_RATE", "10000"),
            ("WORKER_MAX_CONCURRENCY", "5"),
            ("FANOUT_SHARD_SIZE", "2000"),
            ("AWS_ENDPOINT_URL", moto_endpoint().as_str()),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let bootstrap = Bootstrap::start(BOOTSTRAP, env);

    let data = RawValue::from_string(r#"{"n":1}"#.to_owned()).expect("raw");
    let job = Job::broadcast(Envelope::broadcast(live.clone(), 1_795_708_288_148, data).expect("fits"));
    let event =
        json!({ "Records": [record("m-good", &job.to_body()), record("m-poison", "{\"not\":\"a job\"}")] });
    let Invocation::Response(response) = api.invoke(event).await else { panic!("the invocation failed") };
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "m-poison"}]}),
        "the poison alone comes back"
    );

    let calls = endpoint.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    for call in &calls {
        assert_eq!(call.method, "POST");
        let authorization = call.header("authorization").unwrap_or_default();
        assert!(
            authorization.starts_with("AWS4-HMAC-SHA256 Credential=AKIDLOCALTEST/")
                && authorization.contains("/us-east-1/execute-api/aws4_request"),
            "signed with the function's credentials for execute-api: {authorization}"
        );
        assert_eq!(call.header("x-amz-security-token"), Some("local-session-token"));
        // lambda_runtime puts the invocation's trace header in _X_AMZN_TRACE_ID and the SDK sends it
        // on: with Tracing=Active the posts (and the ingress's SendMessage, which SQS turns into the
        // message's AWSTraceHeader) join the invocation's X-Ray trace.
        assert_eq!(call.header("x-amzn-trace-id"), Some(testkit::TRACE_ID), "the invocation's trace header");
    }
    let to_live = calls
        .iter()
        .find(|c| c.path.starts_with("/Prod/@connections/LiveConn"))
        .expect("a post to the live one");
    let delivered: Value = serde_json::from_slice(&to_live.body).expect("a JSON frame");
    assert_eq!((&delivered["type"], &delivered["data"]), (&json!("broadcast"), &json!({"n": 1})));

    let pages: Vec<Vec<shared::ConnectionRef>> = store.scan().try_collect().await.expect("scan");
    let left: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
    assert_eq!(left, [live], "the gone connection is pruned");

    let line = bootstrap.emf_line(Duration::from_secs(5), |l| l["Function"] == "ws-worker").await;
    assert_eq!(
        (&line["Messages"], &line["Deliveries"], &line["Pruned"], &line["Redelivered"]),
        (&json!(2), &json!(1), &json!(1), &json!(1)),
        "{line}"
    );
}

#[tokio::test]
async fn a_bootstrap_with_an_unparsable_variable_reports_invalid_configuration_naming_it() {
    let api = RuntimeApi::start().await;
    let mut env = lambda_env(api.addr, "ws-worker");
    env.extend(
        [
            ("CONNECTIONS_TABLE", "t"),
            ("CONNECTIONS_ENDPOINT", "http://127.0.0.1:9/Prod"),
            ("QUEUE_URL", "http://127.0.0.1:9/q"),
            ("POST_CONCURRENCY", "many"),
        ]
        .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    let _bootstrap = Bootstrap::start(BOOTSTRAP, env);
    let (header, body) = api.init_error(Duration::from_secs(20)).await.expect("an init error");
    assert_eq!(header, "InvalidConfiguration");
    assert!(body["errorMessage"].as_str().is_some_and(|m| m.contains("POST_CONCURRENCY")), "{body}");
}
