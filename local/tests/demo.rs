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
    assert!(page.contains(r#"from "./_local/websocket-client.js""#));
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
        dev_tokens: Some(DevTokens { secret: SECRET.to_owned(), issuer: None, audience: None }),
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
