//! The `local` binary as users run it: started as a process, stopped with a signal.

mod support;

use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

struct Running {
    child: Child,
    ws_url: String,
    http_url: String,
    stdout: Vec<String>,
    stderr: tokio::task::JoinHandle<String>,
}

/// Starts the gateway on a free port and reads its URLs from stdout.
async fn start(args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(["--port", "0", "--sqs-port", "0"])
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the local binary starts");
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stdout = Vec::new();
    let ws_url = loop {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("the gateway prints its URL in time")
            .expect("stdout")
            .expect("the URL before stdout closes");
        stdout.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("WebSocket:") {
            break url.trim().to_owned();
        }
    };
    // The rest of the banner.
    while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_millis(200), lines.next_line()).await {
        stdout.push(line);
    }
    let http_url = ws_url.replacen("ws://", "http://", 1);
    Running { child, ws_url, http_url, stdout, stderr }
}

fn terminate(child: &Child) {
    let pid = child.id().expect("running").to_string();
    let status = std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
    assert!(status.success());
}

/// The `stopped` line's `name=value` field.
fn field(log: &str, name: &str) -> Option<u64> {
    let line = log.lines().find(|line| line.contains("stopped"))?;
    let value = line.split_whitespace().find_map(|word| word.strip_prefix(&format!("{name}=")))?;
    value.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_every_client_with_1001_runs_every_disconnect_and_exits() {
    let Running { mut child, ws_url, http_url, stdout, stderr } = start(&[]).await;
    let mut clients = Vec::new();
    for _ in 0..40 {
        clients.push(tokio_tungstenite::connect_async(&ws_url).await.expect("connect").0);
    }
    // One client that learns its id from its own broadcast, then stops reading and is filled up.
    let mut stuck = small_window_client(&ws_url).await;
    send_text(&mut stuck, r#"{"action":"broadcast","data":"me"}"#).await;
    let own: Value = serde_json::from_str(&next_text(&mut stuck).await).expect("JSON");
    let stuck_id = shared::ConnectionId::parse(own["from"].as_str().expect("from")).expect("an id");
    for client in &mut clients {
        next_text(client).await;
    }
    fill(&http_url, &stuck_id, 100 * 1024, 200).await;
    // Broadcasts in flight when the signal comes.
    for client in clients.iter_mut().take(5) {
        send_text(client, r#"{"action":"broadcast","data":"in flight"}"#).await;
    }

    terminate(&child);

    for client in &mut clients {
        loop {
            match tokio::time::timeout(PATIENCE, client.next()).await.expect("a close in time") {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(close)))) => {
                    assert_eq!(u16::from(close.code), 1001);
                    break;
                }
                Some(Ok(_)) => {}
                other => panic!("expected close 1001, got {other:?}"),
            }
        }
    }
    let status = tokio::time::timeout(PATIENCE, child.wait()).await.expect("exits in time").expect("status");
    assert!(status.success(), "{status}");
    let log = tokio::time::timeout(PATIENCE, stderr).await.expect("stderr closes").expect("read");
    assert_eq!(field(&log, "closed"), Some(41), "{log}");
    assert_eq!(field(&log, "disconnects"), Some(41), "every $disconnect ran: {log}");
    assert_eq!(field(&log, "records_left"), Some(0), "{log}");
    assert!(field(&log, "elapsed_ms").is_some_and(|ms| ms < 5_000), "{log}");

    // Logs on stderr without colour codes (this is not a terminal); stdout only the banner.
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log that is not a terminal");
    assert!(log.contains("INFO") && log.contains("shutting down"), "{log}");
    assert!(stdout.iter().all(|line| !line.contains("INFO")), "{stdout:?}");
    assert!(stdout.iter().any(|line| line.contains("access key \"local\"")), "{stdout:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_beyond_loopback_warns_what_becomes_reachable() {
    let secret = "0123456789abcdef0123456789abcdef";
    let Running { child, stderr, .. } = start(&["--host", "0.0.0.0", "--jwt-secret", secret]).await;
    terminate(&child);
    let log = tokio::time::timeout(PATIENCE, stderr).await.expect("stderr closes").expect("read");
    assert!(log.contains("WARN") && log.contains("not loopback"), "{log}");
    for endpoint in
        ["WebSocket", "/@connections", "the server API", "/_local/stats", "(SQS)", "/_local/token stays off"]
    {
        assert!(log.contains(endpoint), "{endpoint}: {log}");
    }
}

/// Runs the `local` binary with `args` to completion and returns its stdout.
async fn run(args: &[&str], env: &[(&str, &str)]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_local"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("the local binary runs");
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_flow_tokens_from_the_token_command_and_a_publish_from_the_publish_command() {
    let secret = "0123456789abcdef0123456789abcdef";
    let Running { child, ws_url, stdout, .. } = start(&["--jwt-secret", secret]).await;
    assert!(stdout.iter().any(|line| line.trim().starts_with("server API:")), "{stdout:?}");
    let env = [("JWT_SECRET", secret)];
    let alice = run(&["token", "--sub", "alice", "--subscribe", "chat/*", "--publish", "chat/*"], &env).await;
    let bob = run(&["token", "--sub", "bob", "--subscribe", "chat/*", "--publish", "chat/*"], &env).await;

    let connect = |token: String| {
        let url = format!("{ws_url}/?token={token}");
        async move { tokio_tungstenite::connect_async(url).await.expect("a token lets it in").0 }
    };
    let mut alice = connect(alice).await;
    let mut bob = connect(bob).await;
    assert!(
        matches!(tokio_tungstenite::connect_async(&ws_url).await, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 401),
        "no token, no connection"
    );
    send_text(&mut alice, r#"{"action":"subscribe","channel":"chat/general"}"#).await;
    next_text(&mut alice).await;
    send_text(&mut bob, r#"{"action":"publish","channel":"chat/general","data":"hi alice"}"#).await;
    assert_eq!(serde_json::from_str::<Value>(&next_text(&mut bob).await).expect("json")["type"], "published");
    let frame: Value = serde_json::from_str(&next_text(&mut alice).await).expect("json");
    assert_eq!((frame["user"].as_str(), frame["data"].as_str()), (Some("bob"), Some("hi alice")));
    assert_silent(&mut bob, Duration::from_millis(300)).await;

    let http_url = ws_url.replacen("ws://", "http://", 1);
    let printed = run(
        &[
            "publish",
            "--url",
            &http_url,
            "--channel",
            "user/alice",
            "--data",
            r#"{"text":"your order shipped"}"#,
        ],
        &[],
    )
    .await;
    let answer: Value = serde_json::from_str(&printed).expect("the answer, as JSON");
    assert_eq!(
        (answer["channel"].as_str(), answer["offset"].as_u64()),
        (Some("user/alice"), Some(1)),
        "{printed}"
    );
    let frame: Value = serde_json::from_str(&next_text(&mut alice).await).expect("json");
    assert_eq!(
        (frame["channel"].as_str(), frame["data"]["text"].as_str()),
        (Some("user/alice"), Some("your order shipped"))
    );
    assert_silent(&mut bob, Duration::from_millis(300)).await;
    terminate(&child);
}

#[tokio::test]
async fn a_jwks_file_that_is_missing_empty_or_not_a_jwks_stops_the_gateway_at_start() {
    let dir = std::env::temp_dir().join(format!("local-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let not_json = dir.join("not-json.json");
    std::fs::write(&not_json, "certainly not JSON").expect("write");
    let empty = dir.join("empty.json");
    std::fs::write(&empty, r#"{"keys":[]}"#).expect("write");
    let missing = dir.join("missing.json");
    for (path, says) in [(&missing, "No such file"), (&not_json, "is not a JWKS"), (&empty, "holds no keys")]
    {
        let output = tokio::time::timeout(
            PATIENCE,
            Command::new(env!("CARGO_BIN_EXE_local"))
                .args(["--port", "0", "--sqs-port", "0", "--jwks"])
                .arg(path)
                .output(),
        )
        .await
        .expect("it stops at once rather than serving")
        .expect("the local binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: {stderr}", path.display());
        assert!(stderr.contains("--jwks") && stderr.contains(says), "{}: {stderr}", path.display());
        assert!(output.stdout.is_empty(), "no banner: nothing is served");
    }
    std::fs::remove_dir_all(&dir).expect("clean up");
}

#[tokio::test]
async fn a_publish_to_something_that_is_not_a_url_is_refused_before_anything_is_sent() {
    for (url, says) in [
        ("sqs)", "is not a URL"),
        ("local-broadcasts", "is not a URL"),
        ("ftp://127.0.0.1/", "not an http(s) URL"),
    ] {
        let output = tokio::time::timeout(
            PATIENCE,
            Command::new(env!("CARGO_BIN_EXE_local"))
                .args(["publish", "--channel", "news", "--data", "1", "--url", url])
                // Were the SDK asked, it would look for instance metadata here first.
                .env("AWS_EC2_METADATA_DISABLED", "false")
                .env("RUST_BACKTRACE", "1")
                .output(),
        )
        .await
        .expect("refused at once, without waiting on a credential chain")
        .expect("the local binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url}: {stderr}");
        assert!(stderr.contains(says) && stderr.contains(url), "{url}: {stderr}");
        for noise in ["backtrace", "DispatchFailure", "SdkError", "credentials"] {
            assert!(!stderr.contains(noise), "{url}: {noise} in {stderr}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_file_applies_from_the_start_and_one_that_is_wrong_stops_the_gateway_naming_its_line() {
    let dir = std::env::temp_dir().join(format!("local-namespaces-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let wrong = dir.join("wrong.toml");
    std::fs::write(&wrong, "[chat]\nhistory_size = 10\n\n[cursor]\nhistroy_size = 0\n").expect("write");
    let twice = dir.join("twice.toml");
    std::fs::write(&twice, "[chat]\npresence = false\n\n[chat]\npresence = true\n").expect("write");
    let missing = dir.join("missing.toml");
    let cases = [
        (&wrong, "wrong.toml:5: unknown field `histroy_size`"),
        (&twice, "twice.toml:4:"),
        (&missing, "could not read"),
    ];
    for (path, says) in cases {
        let output = tokio::time::timeout(
            PATIENCE,
            Command::new(env!("CARGO_BIN_EXE_local"))
                .args(["--port", "0", "--sqs-port", "0", "--namespaces"])
                .arg(path)
                .output(),
        )
        .await
        .expect("it stops at once rather than serving")
        .expect("the local binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{}: {stderr}", path.display());
        assert!(stderr.contains(says), "{}: {stderr}", path.display());
        assert!(output.stdout.is_empty(), "no banner: nothing is served");
    }

    let good = dir.join("namespaces.toml");
    std::fs::write(&good, "[cursor]\nhistory_size = 0\npresence = false\n\n[news]\npublish = \"backend\"\n")
        .expect("write");
    let Running { child, ws_url, stdout, .. } = start(&["--namespaces", good.to_str().expect("utf-8")]).await;
    let listed = stdout.iter().find(|line| line.contains("namespaces:")).expect("the banner names them");
    assert!(listed.contains("cursor, news"), "{listed}");
    let (mut client, _) = tokio_tungstenite::connect_async(&ws_url).await.expect("connect");
    let reply = request(&mut client, serde_json::json!({"action":"publish","channel":"news","data":1})).await;
    assert_eq!(reply["error"]["code"], "forbidden_channel", "{reply}");
    let reply = request(&mut client, serde_json::json!({"action":"presence","channel":"cursor/1"})).await;
    assert_eq!(reply["error"]["code"], "presence_off", "{reply}");
    let reply =
        request(&mut client, serde_json::json!({"action":"publish","channel":"room/1","data":1})).await;
    assert_eq!(reply["offset"], 1, "any other channel keeps history: {reply}");
    terminate(&child);
    std::fs::remove_dir_all(&dir).expect("clean up");
}
