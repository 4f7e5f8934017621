//! The local gateway invoking a namespace's hooks through the Lambda Invoke API it is pointed at
//! (`--hooks-endpoint`), as `cargo lambda watch` serves it: the same handler code and the same
//! shapes as on AWS, end to end from a WebSocket client.

mod support;

use std::time::Duration;

use local::settings::NamespaceFile;
use local::{Gateway, Settings, StartError};
use serde_json::{Value, json};
use support::*;
use testkit::{InvokeApi, Outcome};

const NAMESPACES: &str =
    "[chat]\nsubscribe_hook = { function = \"rooms\" }\npublish_hook = { function = \"moderate\" }\n";

fn settings(endpoint: Option<String>) -> Settings {
    Settings {
        namespaces: Some(NamespaceFile { name: "namespaces.toml".into(), text: NAMESPACES.into() }),
        hooks_endpoint: endpoint,
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_asks_a_namespaces_hooks_through_the_invoke_api_and_delivers_what_they_decide() {
    let api = InvokeApi::start().await;
    api.function("rooms", |event| {
        if event["info"]["channel"]["path"] == "/chat/vip" {
            Outcome::Raises { error_type: "UnauthorizedException".into(), message: "members only".into() }
        } else {
            Outcome::Returns(Value::Null)
        }
    });
    api.function("moderate", |event| {
        let id = event["events"][0]["id"].clone();
        let text = event["events"][0]["payload"].as_str().unwrap_or_default().to_uppercase();
        Outcome::Returns(json!({ "events": [{ "id": id, "payload": text }] }))
    });
    let gateway = TestGateway::start(settings(Some(api.endpoint()))).await;
    let mut alice = gateway.connect().await;
    let mut bob = gateway.connect().await;
    let reply = request(&mut alice, json!({"action":"subscribe","channel":"chat/vip"})).await;
    assert_eq!(
        reply["error"]["message"], "not allowed to subscribe to \"chat/vip\": members only",
        "{reply}"
    );
    assert_eq!(
        request(&mut alice, json!({"action":"subscribe","channel":"chat/lobby"})).await["type"],
        "subscribed"
    );
    let published =
        request(&mut bob, json!({"action":"publish","channel":"chat/lobby","data":"hello"})).await;
    assert_eq!(published["offset"], 1, "{published}");
    let delivered: Value = serde_json::from_str(&next_text(&mut alice).await).expect("json");
    assert_eq!(delivered["data"], "HELLO", "the hook's change is what subscribers get");
    assert_eq!(delivered["id"], published["id"]);
    assert_eq!(api.received().len(), 3, "two subscribes and a publish asked");
    assert_silent(&mut bob, Duration::from_millis(200)).await;
    gateway.stop().await;
}

#[tokio::test]
async fn a_namespace_file_naming_hooks_needs_an_endpoint_to_invoke_them() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let err = Gateway::new(listener, settings(None)).expect_err("no endpoint");
    assert!(matches!(err, StartError::HooksWithoutEndpoint(_)), "{err}");
    let message = err.to_string();
    assert!(message.contains("moderate, rooms") && message.contains("--hooks-endpoint"), "{message}");
}

/// `tests/hooks/invoke_api.py` serving `tests/hooks/powertools_hook.py` as the function `hook`,
/// with the Python that `scripts/test` installs Powertools into; its URL.
async fn powertools_invoke_api() -> (tokio::process::Child, String) {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join("tools/.venv/bin/python");
    assert!(python.exists(), "tools/.venv is not installed: run scripts/test");
    let mut child = tokio::process::Command::new(python)
        .arg(root.join("tests/hooks/invoke_api.py"))
        .arg("hook=powertools_hook:handler")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the Invoke API starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    let url = tokio::time::timeout(PATIENCE, lines.next_line())
        .await
        .expect("it prints its URL in time")
        .expect("stdout")
        .expect("a URL (is aws-lambda-powertools installed in tools/.venv? run scripts/test)");
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hook_written_with_powertools_appsync_events_resolver_works_unchanged() {
    let (_python, endpoint) = powertools_invoke_api().await;
    let text = "[chat]\nsubscribe_hook = { function = \"hook\" }\npublish_hook = { function = \"hook\" }\n";
    let settings = Settings {
        namespaces: Some(NamespaceFile { name: "namespaces.toml".into(), text: text.into() }),
        hooks_endpoint: Some(endpoint),
        ..Settings::default()
    };
    let gateway = TestGateway::start(settings).await;
    let mut alice = gateway.connect().await;
    let reply = request(&mut alice, json!({"action":"subscribe","channel":"chat/vip"})).await;
    assert_eq!(reply["error"]["code"], "forbidden_channel", "UnauthorizedException raised: {reply}");
    assert_eq!(reply["error"]["message"], "not allowed to subscribe to \"chat/vip\": members only");
    assert_eq!(
        request(&mut alice, json!({"action":"subscribe","channel":"chat/lobby"})).await["type"],
        "subscribed"
    );
    let reply =
        request(&mut alice, json!({"action":"publish","channel":"chat/lobby","data":{"text":"darn"}})).await;
    assert_eq!(
        reply["error"]["message"],
        "not allowed to publish to \"chat/lobby\": ValueError - banned word"
    );
    let published =
        request(&mut alice, json!({"action":"publish","channel":"chat/lobby","data":{"text":"hi"}})).await;
    assert_eq!(published["offset"], 1, "the refused publish took no offset: {published}");
    let delivered: Value = serde_json::from_str(&next_text(&mut alice).await).expect("json");
    assert_eq!(delivered["data"], json!({ "text": "hi", "checked": true }));
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_hook_gets_every_message_with_its_offset_and_a_failed_run_is_tried_again_as_lambda_does() {
    let api = InvokeApi::start().await;
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    // Its first two runs fail, as a function deployed with a bug and then fixed, or a runner
    // restarting: the gateway's stand-in for Lambda's async queue tries a third time.
    api.function("archive", move |_| {
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2 {
            Outcome::Raises { error_type: "RuntimeError".into(), message: "the database is down".into() }
        } else {
            Outcome::Returns(Value::Null)
        }
    });
    let file = "[log]\nevent_hook = { function = \"archive\" }\n";
    let gateway = TestGateway::start(Settings {
        namespaces: Some(NamespaceFile { name: "namespaces.toml".into(), text: file.into() }),
        hooks_endpoint: Some(api.endpoint()),
        ..Settings::default()
    })
    .await;
    let mut alice = gateway.connect().await;
    assert_eq!(
        request(&mut alice, json!({"action":"subscribe","channel":"log/app"})).await["type"],
        "subscribed"
    );
    let published =
        request(&mut alice, json!({"action":"publish","channel":"log/app","data":"started"})).await;
    let delivered: Value = serde_json::from_str(&next_text(&mut alice).await).expect("json");
    assert_eq!(delivered["id"], published["id"], "delivered while the hook's runs fail");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while runs.load(std::sync::atomic::Ordering::SeqCst) < 3 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let received = api.received();
    assert_eq!(received.len(), 3, "one run and two retries: {received:?}");
    for (function, event) in &received {
        assert_eq!(function, "archive");
        assert_eq!(event["events"][0]["id"], published["id"]);
        assert_eq!(event["events"][0]["payload"], "started");
        assert_eq!(event["websocket"]["offset"], published["offset"]);
        assert_eq!(event["websocket"]["epoch"], published["epoch"]);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(api.received().len(), 3, "a run that succeeded is not tried again");
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_hook_that_cannot_start_is_tried_until_it_can_and_runs_once() {
    let api = InvokeApi::start().await;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    // Throttled five times, as Lambda's queue meets a function with no concurrency left or a
    // runner that is restarting: not a failed run, so not one of the two retries.
    api.function("archive", move |_| {
        if counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 5 {
            Outcome::Throttled
        } else {
            Outcome::Returns(Value::Null)
        }
    });
    let file = "[log]\nevent_hook = { function = \"archive\" }\n";
    let gateway = TestGateway::start(Settings {
        namespaces: Some(NamespaceFile { name: "namespaces.toml".into(), text: file.into() }),
        hooks_endpoint: Some(api.endpoint()),
        ..Settings::default()
    })
    .await;
    let mut alice = gateway.connect().await;
    let published = request(&mut alice, json!({"action":"publish","channel":"log/app","data":1})).await;
    assert_eq!(published["type"], "published");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while calls.load(std::sync::atomic::Ordering::SeqCst) < 6 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        6,
        "five throttled, then one run, and no more"
    );
    gateway.stop().await;
}
