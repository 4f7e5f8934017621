//! The server API's authorizer: HTTP API Lambda authorizer events (payload format 2.0) answered
//! with simple responses — a token with the server scope allowed with `{"sub","server":true}`, any
//! other refused — and told apart from the WebSocket's `$connect` events.

use authorizer::server::{Answer, Event};
use authorizer::token::DevClaims;
use authorizer::{Authorizer, Verifier};
use serde_json::{Value, json};
use shared::identity::SERVER_SCOPE;
use testkit::events::http_authorizer_event;

const SECRET: &[u8] = b"server-secret-server-secret-server!!";

/// A token with `claims` on top of a `sub` and a future `exp`.
fn token(extra: Value) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let mut claims =
        serde_json::to_value(DevClaims { sub: "backend".into(), exp: now + 600, ..DevClaims::default() })
            .expect("claims");
    for (key, value) in extra.as_object().expect("an object") {
        claims[key] = value.clone();
    }
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
    .expect("a token")
}

async fn answer(authorization: &str) -> Value {
    let authorizer = Authorizer::new(Verifier::secret(SECRET, None, None).expect("secret"));
    let event: Event =
        serde_json::from_value(http_authorizer_event(authorization)).expect("an HTTP API authorizer event");
    assert!(matches!(event, Event::Server(_)), "told from a $connect event");
    let answer = authorizer.answer(event).await.expect("an answer");
    assert!(matches!(answer, Answer::Server(_)));
    serde_json::to_value(answer).expect("JSON")
}

#[tokio::test]
async fn a_client_token_verifies_but_is_refused_the_server_api_and_a_server_token_is_allowed() {
    let client = token(json!({}));
    assert_eq!(answer(&format!("Bearer {client}")).await, json!({"isAuthorized": false, "context": {}}));
    let server = token(json!({"scope": SERVER_SCOPE}));
    assert_eq!(
        answer(&format!("Bearer {server}")).await,
        json!({"isAuthorized": true, "context": {"sub": "backend", "server": true}})
    );
    for refused in [
        server.clone(),
        format!("Basic {server}"),
        "Bearer ".into(),
        "Bearer not.a.jwt".into(),
        String::new(),
    ] {
        assert_eq!(answer(&refused).await["isAuthorized"], false, "{refused:?}");
    }
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "backend", "scope": SERVER_SCOPE, "exp": 4_102_444_800_u64}),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-another-secret-another"),
    )
    .expect("a token");
    assert_eq!(answer(&format!("Bearer {forged}")).await["isAuthorized"], false, "signed with another key");
}

#[tokio::test]
async fn the_server_scope_is_read_from_scope_or_scp_and_nothing_else_grants_it() {
    for (claims, allowed) in [
        (json!({"scope": "openid realtime/server profile"}), true),
        (json!({"scp": ["profile", SERVER_SCOPE]}), true),
        (json!({"scope": [SERVER_SCOPE]}), true),
        (json!({"scope": "realtime/server2"}), false),
        (json!({"scope": "server"}), false),
        (json!({"scope": "realtime/Server"}), false),
        (json!({"scope": 7}), false),
        (json!({"server": true}), false),
        (json!({"scp": "profile"}), false),
    ] {
        let bearer = format!("Bearer {}", token(claims.clone()));
        assert_eq!(answer(&bearer).await["isAuthorized"], allowed, "{claims}");
    }
}
