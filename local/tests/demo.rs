//! What the gateway serves a browser: the demo page at `/` (a handshake there is still a handshake),
//! the browser client it loads, and development tokens when it verifies them with a secret.

mod support;

use std::sync::Arc;

use authorizer::{Authorizer, Verifier};
use local::Settings;
use local::settings::DevTokens;
use serde_json::Value;
use support::*;

const SECRET: &str = "demo-secret-demo-secret-demo-secret!";

/// Development tokens signed with [`SECRET`], on loopback only.
fn dev_tokens() -> DevTokens {
    DevTokens { secret: SECRET.to_owned(), issuer: None, audience: None, exposed: false }
}

async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.expect("an answer");
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or("").to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), kind, response.text().await.expect("a body"))
}

#[tokio::test]
async fn a_browser_gets_the_demo_page_at_the_root_and_the_client_it_loads_while_handshakes_still_connect() {
    let gateway = TestGateway::start(Settings::default()).await;

    let (status, kind, page) = get(&format!("{}/", gateway.http_url)).await;
    assert_eq!((status, kind.as_str()), (200, "text/html; charset=utf-8"));
    assert!(page.contains(r#"<meta name="ws-path" content="/local">"#), "the page connects to the stage");
    let (status, _, script) =
        get(&format!("{}{}", gateway.http_url, local::devtools::DEMO_SCRIPT_PATH)).await;
    assert_eq!(status, 200);
    assert!(
        script.contains(r#"from "./websocket-client.js""#),
        "the page's script loads the client beside it"
    );
    let (status, kind, client) = get(&format!("{}{}", gateway.http_url, local::devtools::CLIENT_PATH)).await;
    assert_eq!((status, kind.as_str()), (200, "text/javascript; charset=utf-8"));
    assert!(client.contains("export class WebSocketClient"));

    let mut connection = gateway.connect().await;
    send_text(&mut connection, "still a WebSocket").await;
    assert_eq!(next_text(&mut connection).await, "still a WebSocket");
}

#[tokio::test]
async fn a_gateway_with_a_secret_mints_development_tokens_its_authorizer_accepts() {
    let settings = Settings {
        authorizer: Some(Arc::new(Authorizer::new(
            Verifier::secret(SECRET.as_bytes(), None, None).expect("a secret"),
        ))),
        dev_tokens: Some(dev_tokens()),
        ..Settings::default()
    };
    let gateway = TestGateway::start(settings).await;
    let token_url = format!("{}{}", gateway.http_url, local::devtools::TOKEN_PATH);

    let (status, _, token) = get(&format!("{token_url}?sub=alice")).await;
    assert_eq!(status, 200, "{token}");
    let (mut client, _) = tokio_tungstenite::connect_async(format!("{}/local?token={token}", gateway.ws_url))
        .await
        .expect("the token is accepted");
    send_text(&mut client, r#"{"action":"subscribe","channel":"user/alice","ref":"mine"}"#).await;
    let answer: Value = serde_json::from_str(&next_text(&mut client).await).expect("json");
    assert_eq!(
        (answer["type"].as_str(), answer["ref"].as_str()),
        (Some("subscribed"), Some("mine")),
        "{answer}"
    );

    for bad in ["", "?sub=", "?sub=%20", &format!("?sub={}", "a".repeat(129)), "?sub=a%0Ab"] {
        let (status, _, why) = get(&format!("{token_url}{bad}")).await;
        assert_eq!(status, 400, "{bad}: {why}");
        assert!(why.contains("?sub= must name the user"), "{why}");
    }
}

#[tokio::test]
async fn a_gateway_without_a_secret_says_how_to_get_tokens() {
    let gateway = TestGateway::start(Settings::default()).await;
    let (status, _, why) =
        get(&format!("{}{}?sub=alice", gateway.http_url, local::devtools::TOKEN_PATH)).await;
    assert_eq!(status, 404);
    assert!(why.contains("--jwt-secret"), "{why}");
}

/// `GET path` with this `Host` header, over a raw socket (an HTTP client would set its own): the
/// status, the headers and the body.
async fn get_as(http_url: &str, path: &str, host: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket =
        tokio::net::TcpStream::connect(http_url.trim_start_matches("http://")).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.expect("write");
    let mut answer = String::new();
    tokio::time::timeout(PATIENCE, socket.read_to_string(&mut answer)).await.expect("in time").expect("read");
    let status = answer.split(' ').nth(1).and_then(|code| code.parse().ok()).expect("a status line");
    (status, answer)
}

#[tokio::test]
async fn development_tokens_go_only_to_requests_addressed_to_the_gateways_own_loopback_address() {
    let settings = Settings { dev_tokens: Some(dev_tokens()), ..Settings::default() };
    let gateway = TestGateway::start(settings).await;
    let port = gateway.http_url.rsplit(':').next().expect("a port").to_owned();
    let path = format!("{}?sub=bob", local::devtools::TOKEN_PATH);
    for own in [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("[::1]:{port}")] {
        let (status, answer) = get_as(&gateway.http_url, &path, &own).await;
        assert_eq!(status, 200, "{own}: {answer}");
    }
    // What a page on another site sends after DNS rebinding, or a request meant for another port.
    for foreign in
        ["evil.example", &format!("evil.example:{port}"), &format!("127.0.0.1:{}", 1), "10.0.0.5:1"]
    {
        let (status, answer) = get_as(&gateway.http_url, &path, foreign).await;
        assert_eq!(status, 403, "{foreign}: {answer}");
        assert!(
            answer.contains(r#"{"message":"Forbidden"#) && !answer.contains("eyJ"),
            "{foreign}: {answer}"
        );
    }
}

#[test]
fn beyond_loopback_the_token_endpoint_is_off_unless_exposed_and_then_serves_ip_addresses_only() {
    use local::devtools::token_host;
    let lan: std::net::SocketAddr = "192.168.1.20:3001".parse().expect("addr");
    let any: std::net::SocketAddr = "0.0.0.0:3001".parse().expect("addr");
    for local in [lan, any] {
        let why = token_host(Some("192.168.1.20:3001"), local, false).expect("off");
        assert!(why.contains("--expose-dev-tokens"), "{why}");
        assert_eq!(token_host(Some("192.168.1.20:3001"), local, true), None);
        assert_eq!(token_host(Some("127.0.0.1:3001"), local, true), None);
        assert!(token_host(Some("evil.example:3001"), local, true).is_some(), "a DNS name: rebinding");
        assert!(token_host(Some("192.168.1.20:80"), local, true).is_some(), "another port");
        assert!(token_host(None, local, true).is_some());
    }
    let loopback: std::net::SocketAddr = "127.0.0.1:3001".parse().expect("addr");
    assert_eq!(token_host(Some("LOCALHOST:3001"), loopback, false), None);
    assert!(token_host(Some("192.168.1.20:3001"), loopback, true).is_some(), "loopback serves loopback");
}

#[tokio::test]
async fn the_demo_page_its_script_style_and_client_come_with_a_policy_of_their_own_origin_and_no_framing() {
    let gateway = TestGateway::start(Settings::default()).await;
    let modules = local::devtools::CLIENT_MODULES.map(|(path, _)| path);
    for path in
        ["/", local::devtools::DEMO_SCRIPT_PATH, local::devtools::DEMO_STYLE_PATH].into_iter().chain(modules)
    {
        let response = reqwest::get(format!("{}{path}", gateway.http_url)).await.expect("an answer");
        assert_eq!(response.status(), 200, "{path}");
        let header =
            |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let policy = header("content-security-policy");
        for directive in
            ["script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "connect-src 'self' ws: wss:"]
        {
            assert!(policy.contains(directive), "{path}: {directive} in {policy:?}");
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(
            (header("x-content-type-options"), header("x-frame-options")),
            ("nosniff".into(), "DENY".into()),
            "{path}"
        );
    }
    let page =
        reqwest::get(format!("{}/", gateway.http_url)).await.expect("page").text().await.expect("text");
    assert!(
        !page.contains("<script>") && !page.contains("<style>") && !page.contains("onclick="),
        "nothing inline"
    );
    assert!(page.contains(r#"<script type="module" src="./_local/demo.js">"#), "{page}");
}
