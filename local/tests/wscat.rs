//! The walkthrough from the README, driven with the real `wscat` and `curl`: echo, broadcast, and the
//! backend reaching a connection through signed `@connections` calls.
//!
//! wscat exits silently with status 0 when its stdin closes, so each one is fed through a pipe that
//! stays open, and the assertions are on what it prints. `scripts/test` installs wscat into
//! `tools/node_modules` and runs these; set `WSCAT` to use another copy.

mod support;

use std::path::PathBuf;
use std::process::Stdio;

use local::Settings;
use support::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

fn wscat_path() -> PathBuf {
    if let Some(path) = std::env::var_os("WSCAT") {
        return PathBuf::from(path);
    }
    let installed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/node_modules/.bin/wscat");
    assert!(installed.exists(), "wscat is not installed: run scripts/test, or set WSCAT to its path");
    installed
}

struct Wscat {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Wscat {
    async fn connect(url: &str) -> Self {
        let mut child = Command::new(wscat_path())
            .args(["-c", url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("wscat starts");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self { child, stdin, lines }
    }

    /// Types `line`, a frame `docs/asyncapi.yaml` describes (the test fails if it does not).
    async fn type_line(&mut self, line: &str) {
        testkit::contract::check(testkit::contract::Direction::Sent, line);
        self.type_invalid(line).await;
    }

    /// Types `line` as it is: a mistake the walkthrough makes on purpose.
    async fn type_invalid(&mut self, line: &str) {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await.expect("type into wscat");
        self.stdin.flush().await.expect("flush");
    }

    /// The next line wscat prints that carries a message, without its `> ` / `< ` prompt: a frame
    /// `docs/asyncapi.yaml` describes.
    async fn next_message(&mut self) -> String {
        loop {
            let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
                .await
                .expect("wscat prints in time")
                .expect("wscat's stdout")
                .expect("wscat is still running");
            let message = line.trim_start_matches(['>', '<', ' ']).trim_end();
            if !message.is_empty() && !message.starts_with("Connected") {
                testkit::contract::check(testkit::contract::Direction::Received, message);
                return message.to_owned();
            }
        }
    }

    /// wscat exits, with its stdin still open, once the server has closed the connection.
    async fn closed_by_the_server(mut self) {
        let ended = tokio::time::timeout(PATIENCE, async {
            while let Ok(Some(_)) = self.lines.next_line().await {}
            self.child.wait().await
        })
        .await;
        assert!(ended.is_ok(), "wscat still connected");
    }

    async fn quit(mut self) {
        drop(self.stdin);
        let _ = tokio::time::timeout(PATIENCE, self.child.wait()).await;
    }
}

#[tokio::test]
#[ignore = "drives the real wscat: run through scripts/test, which installs it"]
async fn wscat_gets_its_hello_echoed_back() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut wscat = Wscat::connect(&gateway.ws_url).await;
    eventually("wscat to connect", || gateway.state.registry.len() == 1).await;

    wscat.type_line("Hello").await;

    assert_eq!(wscat.next_message().await, "Hello");
    wscat.quit().await;
}

#[tokio::test]
#[ignore = "drives the real wscat: run through scripts/test, which installs it"]
async fn a_second_wscat_sees_every_broadcast() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut listener = Wscat::connect(&gateway.ws_url).await;
    let mut speaker = Wscat::connect(&format!("{}/local", gateway.ws_url)).await;
    eventually("both to connect", || gateway.state.registry.len() == 2).await;

    for data in ["hi", "there"] {
        speaker.type_line(&format!(r#"{{"action":"broadcast","data":"{data}"}}"#)).await;
        for wscat in [&mut listener, &mut speaker] {
            let frame: serde_json::Value =
                serde_json::from_str(&wscat.next_message().await).expect("a JSON envelope");
            assert_eq!(frame["type"], "broadcast");
            assert_eq!(frame["data"], data);
        }
    }

    speaker.type_invalid(r#"{"action":"broadcast"}"#).await;
    let error: serde_json::Value = serde_json::from_str(&speaker.next_message().await).expect("json");
    assert_eq!(error["error"]["code"], "missing_data");

    listener.quit().await;
    speaker.quit().await;
}

/// Runs `curl` with the README's SigV4 options (`--aws-sigv4`, the gateway's default key pair) and
/// returns what it printed.
async fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .args([
            "--silent",
            "--show-error",
            "--aws-sigv4",
            "aws:amz:us-east-1:execute-api",
            "--user",
            "local:local",
        ])
        .args(args)
        .output()
        .await
        .expect("curl runs");
    assert!(output.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
#[ignore = "drives the real wscat: run through scripts/test, which installs it"]
async fn the_readmes_signed_curl_commands_post_to_describe_and_close_a_wscat_connection() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut wscat = Wscat::connect(&gateway.ws_url).await;
    eventually("wscat to connect", || gateway.state.registry.len() == 1).await;
    wscat.type_line(r#"{"action":"broadcast","data":"who am I?"}"#).await;
    let own: serde_json::Value = serde_json::from_str(&wscat.next_message().await).expect("json");
    let url = format!("{}/@connections/{}", gateway.http_url, own["from"].as_str().expect("from"));

    curl(&["-X", "POST", &url, "-d", "hello from the backend"]).await;
    assert_eq!(wscat.next_message().await, "hello from the backend");

    let described: serde_json::Value = serde_json::from_str(&curl(&[&url]).await).expect("json");
    assert_eq!(described["identity"]["sourceIp"], "127.0.0.1");

    curl(&["-X", "DELETE", &url]).await;
    wscat.closed_by_the_server().await;
    eventually("the $disconnect", || gateway.store.is_empty()).await;
}
