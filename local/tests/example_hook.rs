//! The example hooks (`examples/hook`) under `cargo lambda watch`, driving the gateway end to end
//! as the walk-through in `docs/namespaces.md` does: the real Invoke API a user runs, the real
//! functions, `examples/hook/namespaces.toml`, and clients with tokens.

mod support;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authorizer::token::{DevClaims, mint};
use authorizer::{Authorizer, Verifier};
use local::Settings;
use local::settings::NamespaceFile;
use serde_json::{Value, json};
use shared::hooks::{Hooks, Invoked, LambdaHooks};
use support::*;

const SECRET: &[u8] = b"example-secret-example-secret-example!";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn token(sub: &str, name: &str) -> String {
    let exp =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() + 600;
    let claims = DevClaims {
        sub: sub.into(),
        subscribe: Some(vec!["room/*".into()]),
        publish: Some(vec!["room/*".into()]),
        info: Some(json!({ "name": name })),
        exp,
        ..DevClaims::default()
    };
    mint(SECRET, &claims).expect("mint")
}

/// `cargo lambda watch -p hook-example` on a free loopback port, and its Invoke API's URL, once
/// each function answers (the first invocation builds the crate).
async fn cargo_lambda_watch() -> (tokio::process::Child, String) {
    let cargo_lambda = root().join("tools/.venv/bin/cargo-lambda");
    assert!(cargo_lambda.exists(), "tools/.venv is not installed: run scripts/test");
    let port =
        std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
    let child = tokio::process::Command::new(cargo_lambda)
        .args(["lambda", "watch", "-p", "hook-example", "--invoke-address", "127.0.0.1"])
        .args(["--invoke-port", &port.to_string(), "--ignore-changes"])
        .current_dir(root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cargo lambda watch starts");
    let endpoint = format!("http://127.0.0.1:{port}");
    let api = LambdaHooks::for_endpoint(&endpoint, "us-east-1", "local", "local");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    for function in ["rooms", "moderate", "archive"] {
        loop {
            let warm = api.invoke(function, br#"{"list":"none"}"#.to_vec(), Duration::from_secs(600)).await;
            if matches!(warm, Ok(Invoked::Answer(_))) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{function} never answered under cargo lambda watch: {warm:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    (child, endpoint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_hooks_under_cargo_lambda_watch_decide_change_and_archive_a_rooms_traffic() {
    let (_watch, endpoint) = cargo_lambda_watch().await;
    let file =
        std::fs::read_to_string(root().join("examples/hook/namespaces.toml")).expect("the example's file");
    let gateway = TestGateway::start(Settings {
        authorizer: Some(Arc::new(Authorizer::new(Verifier::secret(SECRET, None, None).expect("secret")))),
        namespaces: Some(NamespaceFile { name: "examples/hook/namespaces.toml".into(), text: file }),
        hooks_endpoint: Some(endpoint.clone()),
        stage_throttle: None,
        ..Settings::default()
    })
    .await;
    let connect = |sub: &str, name: &str| {
        let url = format!("{}/?token={}", gateway.ws_url, token(sub, name));
        async move { tokio_tungstenite::connect_async(url).await.expect("allowed").0 }
    };
    let mut alice = connect("alice", "Alice").await;
    let mut bob = connect("bob", "Bob").await;

    // rooms: Bob is no member of design; both are of the lobby.
    let refused = request(&mut bob, json!({"action":"subscribe","channel":"room/design"})).await;
    assert_eq!(refused["error"]["code"], "forbidden_channel", "{refused}");
    assert_eq!(
        refused["error"]["message"],
        "not allowed to subscribe to \"room/design\": bob is not a member of design"
    );
    for client in [&mut alice, &mut bob] {
        assert_eq!(
            request(client, json!({"action":"subscribe","channel":"room/lobby"})).await["type"],
            "subscribed"
        );
    }

    // moderate: a banned word refused, anything else signed with the sender's name.
    let spam = request(&mut bob, json!({"action":"publish","channel":"room/lobby","data":"buy spam"})).await;
    assert_eq!(spam["error"]["code"], "forbidden_channel", "{spam}");
    assert!(
        spam["error"]["message"].as_str().is_some_and(|m| m.ends_with("\"spam\" is not allowed here")),
        "{spam}"
    );
    let published =
        request(&mut bob, json!({"action":"publish","channel":"room/lobby","data":"hello"})).await;
    assert_eq!(published["type"], "published", "{published}");
    let delivered: Value = serde_json::from_str(&next_text(&mut alice).await).expect("json");
    assert_eq!(delivered["data"], json!({"from": "Bob", "message": "hello"}));
    assert_eq!(delivered["offset"], published["offset"], "the refused publish took no offset");

    // archive: handed the message with its offset, once.
    let api = LambdaHooks::for_endpoint(&endpoint, "us-east-1", "local", "local");
    let mut archived = Value::Null;
    for _ in 0..100 {
        let listed =
            api.invoke("archive", br#"{"list":"room/lobby"}"#.to_vec(), Duration::from_secs(10)).await;
        if let Ok(Invoked::Answer(body)) = listed {
            archived = serde_json::from_slice(&body).expect("json");
            if archived["messages"].as_array().is_some_and(|messages| !messages.is_empty()) {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let messages = archived["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages.len(), 1, "the one message that went through: {archived}");
    assert_eq!(messages[0]["id"], published["id"]);
    assert_eq!(messages[0]["offset"], published["offset"]);
    assert_eq!(messages[0]["payload"], json!({"from": "Bob", "message": "hello"}), "what subscribers got");
    gateway.stop().await;
}
