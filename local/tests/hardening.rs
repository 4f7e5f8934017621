//! The attack table (RELIABILITY.md), end to end: clients that never read, slow or silent sockets,
//! unsigned `@connections` calls, connection floods and protocol violations, each against a gateway
//! on a free loopback port. Each test failed on the gateway before it was hardened.

mod support;

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use local::{Bucket, Settings};
use serde_json::Value;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KB: usize = 1024;

/// Reads `stream` until the peer closes it (or resets it), throwing the bytes away.
async fn until_closed(stream: &mut TcpStream) {
    let mut sink = vec![0u8; 64 * KB];
    let closed = tokio::time::timeout(PATIENCE, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the gateway kept the socket open");
}

fn gone(gateway: &TestGateway, id: &shared::ConnectionId) -> bool {
    gateway.state.registry.get(id).is_none() && gateway.store.get(id).is_none()
}

#[tokio::test]
async fn a_client_that_never_reads_holds_a_bounded_buffer_and_is_answered_429_past_it() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (_stuck, id) = stuck_client(&gateway).await;

    let accepted = fill(&gateway.http_url, &id, 100 * KB, 200).await;

    // 1 MiB of outbox, one message in the writer, and what the kernel's socket buffers hold.
    assert!((10..=60).contains(&accepted), "{accepted} posts of 100 KB accepted");
    let queued = gateway.state.registry.get(&id).expect("still connected").outbox.queued_bytes();
    assert!(queued <= Settings::default().outbound_buffer_bytes, "{queued} bytes queued");
}

#[tokio::test]
async fn a_client_that_never_reads_is_still_closed_by_delete() {
    let (gateway, recorder) = DisconnectRecorder::gateway(Settings::default()).await;
    let (stuck, id) = stuck_client(&gateway).await;
    fill(&gateway.http_url, &id, 100 * KB, 200).await;
    let url = format!("{}/local/@connections/{id}", gateway.http_url);
    let http = reqwest::Client::new();

    assert_eq!(signed(http.delete(&url)).await.status(), 204);

    eventually("the connection to be closed and its $disconnect run", || gone(&gateway, &id)).await;
    assert_eq!(signed(http.get(&url)).await.status(), 410);
    let seen = recorder.seen();
    assert_eq!(seen, [(id.to_string(), 1000, "Connection deleted through @connections".to_owned())]);
    until_closed(&mut stuck.into_inner()).await;
}

/// Fills the buffer of a client that never reads, on a gateway with `settings`, and waits for `what`
/// to close it: the connection gone, its `$disconnect` run, its socket closed.
async fn a_stuck_client_is_closed_by(settings: Settings, what: &str) {
    let gateway = TestGateway::start(settings).await;
    let (stuck, id) = stuck_client(&gateway).await;
    fill(&gateway.http_url, &id, 100 * KB, 200).await;

    eventually(what, || gone(&gateway, &id)).await;
    until_closed(&mut stuck.into_inner()).await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_still_closed_when_it_goes_idle() {
    let settings = Settings { idle_timeout: Duration::from_secs(1), ..Settings::default() };
    a_stuck_client_is_closed_by(settings, "the idle timeout").await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_still_closed_at_its_maximum_duration() {
    let settings = Settings { max_connection_duration: Duration::from_secs(2), ..Settings::default() };
    a_stuck_client_is_closed_by(settings, "the 2-hour limit (here 2 s)").await;
}

#[tokio::test]
async fn shutdown_is_not_held_up_by_a_client_that_never_reads() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (_stuck, id) = stuck_client(&gateway).await;
    fill(&gateway.http_url, &id, 100 * KB, 200).await;
    let (mut fine, _) = gateway.connect_with_id().await;
    let store = gateway.store.clone();

    gateway.stop().await;

    assert_eq!(next_close(&mut fine).await.code, 1001.into());
    assert!(store.is_empty(), "both $disconnects ran");
}

#[tokio::test]
async fn a_half_sent_request_is_closed_after_the_request_timeout_and_does_not_hold_up_shutdown() {
    let settings = Settings { request_timeout: Duration::from_secs(1), ..Settings::default() };
    let gateway = TestGateway::start(settings).await;
    let addr = gateway.http_url.trim_start_matches("http://").to_owned();

    // A slowloris: one byte of a request head, and nothing more.
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    slow.write_all(b"G").await.expect("write");
    // A socket that never sends anything.
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    until_closed(&mut slow).await;
    until_closed(&mut silent).await;

    // And a socket in the middle of its head when shutdown begins.
    let mut held = TcpStream::connect(&addr).await.expect("connect");
    held.write_all(b"GET /local HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.expect("write");
    gateway.stop().await;
    until_closed(&mut held).await;
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_answered_408_after_the_request_timeout() {
    let settings = Settings { request_timeout: Duration::from_secs(1), ..Settings::default() };
    let gateway = TestGateway::start(settings).await;
    let addr = gateway.http_url.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    stream
        .write_all(b"POST /@connections/AAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\nonly ten..")
        .await
        .expect("write");

    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("an answer").ok();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("x-amzn-errortype: RequestTimeoutException"), "{answer}");
}

#[tokio::test]
async fn management_calls_must_be_signed_with_the_gateways_credentials() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut client, id) = gateway.connect_with_id().await;
    let http = reqwest::Client::new();
    let url = format!("{}/local/@connections/{id}", gateway.http_url);
    let other_secret = aws_credential_types::Credentials::new("local", "not-the-secret", None, None, "t");
    let unknown_key = aws_credential_types::Credentials::new("someone", "local", None, None, "t");
    let stale = SystemTime::now() - Duration::from_secs(600);
    let with = |credentials: aws_credential_types::Credentials, at: SystemTime| {
        let request = http.post(&url).body("sneaky").build().expect("request");
        sign_with(request, credentials, at)
    };

    let cases = [
        (http.post(&url).body("sneaky").build().expect("request"), "MissingAuthenticationTokenException"),
        (http.get(&url).build().expect("request"), "MissingAuthenticationTokenException"),
        (http.delete(&url).build().expect("request"), "MissingAuthenticationTokenException"),
        (with(other_secret, SystemTime::now()), "InvalidSignatureException"),
        (with(unknown_key, SystemTime::now()), "UnrecognizedClientException"),
        (with(credentials(), stale), "InvalidSignatureException"),
    ];
    let mut messages = Vec::new();
    for (request, error_type) in cases {
        let response = http.execute(request).await.expect("an answer");
        assert_eq!(response.status(), 403, "{error_type}");
        assert_eq!(response.headers()["x-amzn-errortype"], error_type);
        let body: Value = serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
        messages.push(body["message"].as_str().expect("a message").to_owned());
    }
    assert_eq!(messages[0], "Missing Authentication Token");
    assert!(
        messages[3].contains("The Canonical String for this request should have been"),
        "{}",
        messages[3]
    );
    assert!(messages[3].contains("/local/%40connections/"), "{}", messages[3]);
    assert!(messages[5].starts_with("Signature expired"), "{}", messages[5]);

    // A body changed after signing no longer matches.
    let mut tampered = sign(http.post(&url).body("signed").build().expect("request"));
    *tampered.body_mut() = Some("tampered".into());
    assert_eq!(http.execute(tampered).await.expect("an answer").status(), 403);

    assert_silent(&mut client, Duration::from_millis(300)).await;
    assert!(gateway.state.registry.get(&id).is_some(), "nothing was deleted");
    assert_eq!(signed(http.post(&url).body("signed")).await.status(), 200);
    assert_eq!(next_text(&mut client).await, "signed");
    let stats = reqwest::get(format!("{}{}", gateway.http_url, local::STATS_PATH)).await.expect("stats");
    assert_eq!(stats.status(), 200, "/_local/stats needs no signature");
}

#[tokio::test]
async fn the_aws_sdk_signs_every_management_call_the_way_the_gateway_checks_it() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (mut client, id) = gateway.connect_with_id().await;
    let sdk = shared::poster::ApiGatewayPoster::for_local_endpoint(
        &format!("{}/local", gateway.http_url),
        "us-east-1",
        credentials(),
    );
    shared::Poster::post(&sdk, &id, bytes::Bytes::from_static(b"via the SDK")).await.expect("posted");
    assert_eq!(next_text(&mut client).await, "via the SDK");

    let wrong_region = shared::poster::ApiGatewayPoster::for_local_endpoint(
        &format!("{}/local", gateway.http_url),
        "eu-west-1",
        credentials(),
    );
    let refused = shared::Poster::post(&wrong_region, &id, bytes::Bytes::from_static(b"x")).await;
    assert!(matches!(refused, Err(shared::PostError::Other(_))), "{refused:?}");
}

#[tokio::test]
async fn handshakes_past_the_connection_rate_are_refused_with_429_before_connect_runs() {
    let settings = Settings { connect_rate: Some(Bucket { rate: 1, burst: 3 }), ..Settings::default() };
    let gateway = TestGateway::start(settings).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(gateway.connect().await);
    }
    match tokio_tungstenite::connect_async(&gateway.ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }
    assert_eq!(gateway.store.len(), 3, "no $connect ran for the refused handshake");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    clients.push(gateway.connect().await);
}

/// A client frame: FIN, `opcode`, masked with `mask` unless it is `None`.
fn raw_frame(opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut frame = vec![0x80 | opcode];
    let len = u8::try_from(payload.len()).expect("a short payload");
    match mask {
        Some(key) => {
            frame.push(0x80 | len);
            frame.extend_from_slice(&key);
            frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => {
            frame.push(len);
            frame.extend_from_slice(payload);
        }
    }
    frame
}

#[tokio::test]
async fn protocol_violations_close_with_the_rfcs_code_and_disconnect_is_told() {
    let (gateway, recorder) = DisconnectRecorder::gateway(Settings::default()).await;
    let cases: [(&str, Vec<u8>, u16); 3] = [
        ("text that is not UTF-8", raw_frame(0x1, &[0xff, 0xfe, 0xfd], Some([1, 2, 3, 4])), 1007),
        ("a reserved opcode", raw_frame(0x3, b"?", Some([1, 2, 3, 4])), 1002),
        ("an unmasked frame", raw_frame(0x1, b"hello", None), 1002),
    ];
    for (what, frame, code) in cases {
        let (mut client, id) = gateway.connect_with_id().await;
        let tokio_tungstenite::MaybeTlsStream::Plain(socket) = client.get_mut() else {
            panic!("a plain socket");
        };
        socket.write_all(&frame).await.expect("write");
        let close = match tokio::time::timeout(PATIENCE, client.next()).await.expect("an answer in time") {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(close)))) => close,
            other => panic!("{what}: expected a close frame, got {other:?}"),
        };
        assert_eq!(u16::from(close.code), code, "{what}");
        eventually("its $disconnect", || gateway.store.get(&id).is_none()).await;
        let seen = recorder.seen();
        let (_, disconnect_code, _) = seen.iter().find(|(c, _, _)| *c == id.to_string()).expect("recorded");
        assert_eq!(*disconnect_code, i64::from(code), "{what}");
    }
}

#[tokio::test]
async fn a_client_that_ends_tcp_without_a_close_frame_gets_1006_in_its_disconnect_whether_fin_or_reset() {
    let (gateway, recorder) = DisconnectRecorder::gateway(Settings::default()).await;
    for reset in [false, true] {
        let what = if reset { "a reset" } else { "a FIN" };
        let (client, id) = gateway.connect_with_id().await;
        let tokio_tungstenite::MaybeTlsStream::Plain(mut socket) = client.into_inner() else {
            panic!("a plain socket");
        };
        if reset {
            // A linger of zero turns the close into an RST, as a killed process's kernel may send.
            socket2::SockRef::from(&socket).set_linger(Some(Duration::ZERO)).expect("linger");
        } else {
            socket.shutdown().await.expect("FIN");
        }
        drop(socket);
        eventually("its $disconnect", || gateway.store.get(&id).is_none()).await;
        let seen = recorder.seen();
        let (_, code, reason) = seen.iter().find(|(c, _, _)| *c == id.to_string()).expect("recorded");
        assert_eq!((*code, reason.as_str()), (1006, "Connection closed abnormally"), "{what}");
    }
}

#[tokio::test]
async fn a_management_body_of_any_size_past_128_kb_gets_an_aws_shaped_413() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (_client, id) = gateway.connect_with_id().await;
    for size in [128 * KB + 1, 3 * 1024 * KB] {
        // Only the head: the answer must not wait for a body that large.
        let mut stream =
            TcpStream::connect(gateway.http_url.trim_start_matches("http://")).await.expect("connect");
        let head =
            format!("POST /@connections/{id} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {size}\r\n\r\n");
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("an answer").ok();
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 413"), "{size} bytes: {answer}");
        assert!(answer.contains("x-amzn-errortype: PayloadTooLargeException"), "{answer}");
        let body: Value =
            serde_json::from_str(answer.split("\r\n\r\n").nth(1).expect("a body")).expect("JSON");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(&size.to_string())), "{body}");
    }
}

#[tokio::test]
async fn an_http2_preface_is_not_served() {
    let gateway = TestGateway::start(Settings::default()).await;
    let mut stream =
        TcpStream::connect(gateway.http_url.trim_start_matches("http://")).await.expect("connect");
    // The prior-knowledge preface and an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("closed in time").ok();
    // An HTTP/2 server would answer with a SETTINGS frame; an HTTP/1.1 one refuses, or just closes.
    assert!(answer.is_empty() || answer.starts_with(b"HTTP/1.1 "), "{answer:?}");
}

#[tokio::test]
async fn the_gateways_own_worker_signs_its_posts_with_the_configured_credentials() {
    let credentials = local::Credentials { access_key_id: "team".into(), secret_access_key: "s3cr3t".into() };
    let gateway = TestGateway::start(Settings { credentials, ..Settings::default() }).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(gateway.connect().await);
    }
    send_text(&mut clients[0], r#"{"action":"broadcast","data":"signed by the worker"}"#).await;
    for client in &mut clients {
        let frame: Value = serde_json::from_str(&next_text(client).await).expect("JSON");
        assert_eq!(frame["data"], "signed by the worker");
    }
}

/// One call a page reached through DNS rebinding could make: signed (for `service`) over whatever
/// `Host` it names, with the well-known `local`/`local` keys, as a script on the page could.
struct Call<'a> {
    what: &'a str,
    method: reqwest::Method,
    url: String,
    service: Option<&'a str>,
    headers: &'a [(&'a str, &'a str)],
    body: &'a str,
    /// To the SQS endpoint's port rather than the gateway's.
    sqs: bool,
}

impl Call<'_> {
    async fn as_host(&self, http: &reqwest::Client, host: &str) -> (u16, String) {
        let mut request =
            http.request(self.method.clone(), &self.url).header("host", host).body(self.body.to_owned());
        for (name, value) in self.headers {
            request = request.header(*name, *value);
        }
        let mut request = request.build().expect("request");
        if let Some(service) = self.service {
            request = sign_for(request, service, credentials(), SystemTime::now());
        }
        let response = http.execute(request).await.expect("an answer");
        (response.status().as_u16(), response.text().await.expect("body"))
    }
}

#[tokio::test]
async fn a_page_reaching_the_gateway_through_dns_rebinding_is_refused_on_every_endpoint() {
    let gateway = TestGateway::start_with_sqs(Settings::default()).await;
    let (mut client, id) = gateway.connect_with_id().await;
    send_text(&mut client, r#"{"action":"subscribe","channel":"news"}"#).await;
    next_text(&mut client).await;
    let http = reqwest::Client::new();
    let port = gateway.http_url.rsplit(':').next().expect("a port").to_owned();
    let queue_url = gateway.queue_url.clone().expect("the SQS endpoint");
    let sqs_port =
        queue_url.split(':').nth(2).and_then(|rest| rest.split('/').next()).expect("port").to_owned();
    let connection = format!("{}/local/@connections/{}", gateway.http_url, id.as_str());
    let publish = serde_json::json!({
        "QueueUrl": queue_url,
        "MessageBody": r#"{"action":"publish","channel":"news","data":"injected"}"#,
    })
    .to_string();
    let sqs_headers =
        [("x-amz-target", "AmazonSQS.SendMessage"), ("content-type", "application/x-amz-json-1.0")];
    let call = |what, method, url: String, service| Call {
        what,
        method,
        url,
        service,
        headers: &[],
        body: "",
        sqs: false,
    };
    let get = reqwest::Method::GET;
    let calls = [
        call("/_local/events", get.clone(), format!("{}/_local/events", gateway.http_url), None),
        call("/_local/stats", get.clone(), format!("{}{}", gateway.http_url, local::STATS_PATH), None),
        call("the demo page", get.clone(), format!("{}/", gateway.http_url), None),
        call("GET @connections", get.clone(), connection.clone(), Some("execute-api")),
        Call {
            body: "posted",
            ..call("POST @connections", reqwest::Method::POST, connection.clone(), Some("execute-api"))
        },
        Call {
            headers: &sqs_headers,
            body: &publish,
            sqs: true,
            ..call("SQS SendMessage", reqwest::Method::POST, queue_url.clone(), Some("sqs"))
        },
        call("DELETE @connections", reqwest::Method::DELETE, connection.clone(), Some("execute-api")),
    ];
    for call in &calls {
        let own_port = if call.sqs { &sqs_port } else { &port };
        let (status, answer) = call.as_host(&http, &format!("evil.example:{own_port}")).await;
        assert_eq!(status, 403, "{}: {answer}", call.what);
        assert!(answer.contains("Forbidden") && !answer.contains(id.as_str()), "{}: {answer}", call.what);
    }
    let handshake = format!(
        "GET /local HTTP/1.1\r\nHost: evil.example:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    let mut socket =
        TcpStream::connect(gateway.http_url.trim_start_matches("http://")).await.expect("connect");
    socket.write_all(handshake.as_bytes()).await.expect("write");
    let mut head = vec![0u8; 64];
    let read = tokio::time::timeout(PATIENCE, socket.read(&mut head)).await.expect("in time").expect("read");
    assert!(
        String::from_utf8_lossy(&head[..read]).starts_with("HTTP/1.1 403"),
        "the WebSocket handshake too"
    );
    assert_silent(&mut client, Duration::from_millis(300)).await;
    assert!(gateway.state.registry.get(&id).is_some(), "not closed");

    // The very same calls addressed to the gateway by its own address are served: the Host alone
    // made the difference.
    for call in &calls {
        if call.what == "DELETE @connections" {
            assert_eq!(next_text(&mut client).await, "posted");
            let delivered: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
            assert_eq!(delivered["data"], "injected");
        }
        let own_port = if call.sqs { &sqs_port } else { &port };
        let (status, answer) = call.as_host(&http, &format!("127.0.0.1:{own_port}")).await;
        assert!(status == 200 || status == 204, "{}: {status} {answer}", call.what);
    }
    let closed = next_close(&mut client).await;
    assert_eq!(u16::from(closed.code), 1000, "closed by the DELETE");
}
