//! The authorizer as Lambda runs it: its real bootstrap (`src/main.rs`, what `sam build` deploys)
//! started as a process under a local Lambda Runtime API, with the variables template.yaml sets it
//! (`JWT_SECRET` chosen, the others empty), answering REQUEST authorizer events in the shape API
//! Gateway sends them for a WebSocket `$connect`.

use std::time::Duration;

use authorizer::token::{DevClaims, mint};
use serde_json::{Value, json};
use testkit::events::http_authorizer_event;
use testkit::{Bootstrap, Invocation, RuntimeApi, lambda_env};

const BOOTSTRAP: &str = env!("CARGO_BIN_EXE_authorizer");
const SECRET: &str = "bootstrap-secret-bootstrap-secret!!";

fn request(token: &str) -> Value {
    json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:us-east-1:123456789012:abcd1234/Prod/$connect",
        "headers": {
            "Host": "abcd1234.execute-api.us-east-1.amazonaws.com",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13"
        },
        "multiValueHeaders": { "Host": ["abcd1234.execute-api.us-east-1.amazonaws.com"] },
        "queryStringParameters": { "token": token },
        "multiValueQueryStringParameters": { "token": [token] },
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "extendedRequestId": "TWegAFhCoAMFTuA=",
            "requestTime": "28/Nov/2026:14:26:26 +0000",
            "messageDirection": "IN",
            "stage": "Prod",
            "connectedAt": 1_795_708_288_148_i64,
            "requestTimeEpoch": 1_795_708_288_148_i64,
            "identity": { "sourceIp": "192.0.2.1" },
            "requestId": "TWegAFhCoAMFTuA=",
            "domainName": "abcd1234.execute-api.us-east-1.amazonaws.com",
            "connectionId": "TWegAcC4EowCHnA=",
            "apiId": "abcd1234"
        }
    })
}

fn env(api: std::net::SocketAddr, jwks_url: &str) -> Vec<(String, String)> {
    let mut env = lambda_env(api, "ws-authorizer");
    // As the template sets them when JwtSecret is chosen: every variable, the unchosen ones empty.
    env.extend(
        [("JWKS_URL", jwks_url), ("JWT_ISSUER", ""), ("JWT_AUDIENCE", ""), ("JWT_SECRET", SECRET)]
            .map(|(name, value)| (name.to_owned(), value.to_owned())),
    );
    env
}

fn effect(invocation: Invocation) -> (String, Value) {
    let Invocation::Response(policy) = invocation else { panic!("the invocation failed: {invocation:?}") };
    let effect = policy["policyDocument"]["Statement"][0]["Effect"].as_str().expect("an effect").to_owned();
    (effect, policy["context"].clone())
}

#[tokio::test]
async fn the_bootstrap_allows_a_valid_token_with_its_claims_and_denies_any_other() {
    let api = RuntimeApi::start().await;
    let _bootstrap = Bootstrap::start(BOOTSTRAP, env(api.addr, ""));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let claims = DevClaims { sub: "alice".into(), exp: now + 600, ..DevClaims::default() };
    let token = mint(SECRET.as_bytes(), &claims).expect("a token");

    let (allowed, context) = effect(api.invoke(request(&token)).await);
    assert_eq!((allowed.as_str(), &context["sub"]), ("Allow", &json!("alice")));
    let forged = mint(b"another-secret-another-secret-another", &claims).expect("a token");
    for token in [forged.as_str(), "", "not.a.jwt"] {
        assert_eq!(effect(api.invoke(request(token)).await).0, "Deny", "{token:?}");
    }
}

#[tokio::test]
async fn a_bootstrap_given_both_kinds_of_keys_reports_invalid_configuration() {
    let api = RuntimeApi::start().await;
    let _bootstrap = Bootstrap::start(BOOTSTRAP, env(api.addr, "https://issuer.example/jwks.json"));
    let (header, body) = api.init_error(Duration::from_secs(20)).await.expect("an init error");
    assert_eq!(header, "InvalidConfiguration");
    assert!(body["errorMessage"].as_str().is_some_and(|m| m.contains("JWT_SECRET")), "{body}");
}

#[tokio::test]
async fn the_bootstrap_answers_the_server_apis_http_authorizer_events_too() {
    let api = RuntimeApi::start().await;
    let _bootstrap = Bootstrap::start(BOOTSTRAP, env(api.addr, ""));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs();
    let event = |token: &str| http_authorizer_event(&format!("Bearer {token}"));
    let server = DevClaims {
        sub: "backend".into(),
        scope: Some(shared::identity::SERVER_SCOPE.into()),
        exp: now + 600,
        ..DevClaims::default()
    };
    let Invocation::Response(allowed) =
        api.invoke(event(&mint(SECRET.as_bytes(), &server).expect("a token"))).await
    else {
        panic!("the invocation failed")
    };
    assert_eq!(allowed, json!({"isAuthorized": true, "context": {"sub": "backend", "server": true}}));
    let client = DevClaims { scope: None, ..server };
    let Invocation::Response(refused) =
        api.invoke(event(&mint(SECRET.as_bytes(), &client).expect("a token"))).await
    else {
        panic!("the invocation failed")
    };
    assert_eq!(refused["isAuthorized"], false, "a client's token: {refused}");
}
