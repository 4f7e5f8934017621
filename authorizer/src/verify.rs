//! Verifying a token: its signature, its algorithm, its times, its issuer and audience, and its claims.
//!
//! The algorithms a token may use are fixed by how the verifier was configured, never by the token:
//! HS256 for a secret, RS256 or ES256 for a JWKS, each key used only with its own algorithm. So
//! `alg: none` and algorithm confusion (an HS256 token "signed" with a public RSA key) are refused.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use shared::identity::{Grant, Info, SERVER_SCOPE};
use shared::{Channel, ChannelPattern};

use crate::jwks::{KeyLookup, Keys};

/// The largest result API Gateway takes from a WebSocket API's Lambda authorizer ("AWS Lambda
/// authorizer result size", 8 KB, in its quotas for WebSocket APIs): a token whose claims would make
/// a larger one is denied here, rather than failing at API Gateway — and its context, which rides on
/// every event of the connection, stays small.
pub const MAX_RESULT_BYTES: usize = 8 * 1024;

/// Seconds of clock skew allowed on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;

/// The shortest HS256 secret accepted: the hash's size (RFC 7518 §3.2).
pub const MIN_SECRET_BYTES: usize = 32;

/// Longest `sub` accepted: it is repeated in every message a user sends.
pub const MAX_SUB_CHARS: usize = 128;

/// Patterns one `subscribe` or `publish` claim may list: as many as a connection may hold
/// subscriptions. Every subscribe and publish is checked against them, and they ride on every event
/// of the connection.
pub const MAX_GRANT_PATTERNS: usize = shared::channel::MAX_SUBSCRIPTIONS;

/// Why a token was refused. Each is a Deny but [`Refused::KeysUnavailable`], which is the
/// authorizer's failure, not the token's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no token")]
    Missing,
    #[error("the token is malformed or its signature does not verify: {0}")]
    Invalid(String),
    #[error("the token's algorithm {0:?} is not accepted here")]
    Algorithm(String),
    #[error("no key with the token's kid {0:?}")]
    UnknownKey(String),
    #[error("the token is expired or not yet valid")]
    Time,
    #[error("the token's issuer or audience is not the expected one")]
    Issuer,
    #[error("the token has no usable sub: {0}")]
    Subject(&'static str),
    #[error("the token's {claim} claim is not a list of channel patterns")]
    Grants { claim: &'static str },
    #[error("the token's {claim} claim lists {count} patterns, more than {MAX_GRANT_PATTERNS}")]
    TooManyPatterns { claim: &'static str, count: usize },
    #[error(
        "the token's claims make an authorizer result of {bytes} bytes, past API Gateway's {} byte limit",
        MAX_RESULT_BYTES
    )]
    TooLarge { bytes: usize },
    #[error(transparent)]
    Info(#[from] shared::identity::InfoError),
    #[error("the signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

/// A verified token's claims, as the ingress will use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: String,
    pub subscribe: Grant,
    pub publish: Grant,
    /// What the connection shows the members of its channels: an object of at most 1 KB.
    pub info: Option<Info>,
    /// Whether its scopes grant the server API ([`shared::identity::SERVER_SCOPE`]).
    pub server: bool,
}

/// The claims read from a token; `exp` and `nbf` are checked by the library.
#[derive(Deserialize)]
struct Wire {
    sub: Option<serde_json::Value>,
    subscribe: Option<serde_json::Value>,
    publish: Option<serde_json::Value>,
    info: Option<serde_json::Value>,
    /// OAuth 2.0's space-separated scopes (RFC 8693 §4.2; Cognito, Auth0), or a list of them.
    scope: Option<serde_json::Value>,
    /// Okta's and Entra ID's name for the same.
    scp: Option<serde_json::Value>,
}

/// How tokens are checked.
#[derive(Debug)]
pub enum Verifier {
    /// Development: one shared secret, HS256 only.
    Secret { key: DecodingKey, issuer: Option<String>, audience: Option<String> },
    /// An OIDC issuer's public keys (Cognito user pools, Auth0, …): RS256 and ES256.
    Jwks { keys: Keys, issuer: Option<String>, audience: Option<String> },
}

/// Keys that cannot verify anything.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "an HS256 secret needs at least {MIN_SECRET_BYTES} bytes (RFC 7518 §3.2); make one with `openssl rand -hex 32`"
    )]
    SecretTooShort,
}

impl Verifier {
    pub fn secret(secret: &[u8], issuer: Option<String>, audience: Option<String>) -> Result<Self, KeyError> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(KeyError::SecretTooShort);
        }
        Ok(Self::Secret { key: DecodingKey::from_secret(secret), issuer, audience })
    }

    pub fn jwks(keys: Keys, issuer: Option<String>, audience: Option<String>) -> Self {
        Self::Jwks { keys, issuer, audience }
    }

    /// Verifies `token` and reads its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, Refused> {
        if token.is_empty() {
            return Err(Refused::Missing);
        }
        let header = decode_header(token).map_err(|err| Refused::Invalid(err.to_string()))?;
        let (key, algorithm, issuer, audience) = match self {
            Self::Secret { key, issuer, audience } => {
                if header.alg != Algorithm::HS256 {
                    return Err(Refused::Algorithm(format!("{:?}", header.alg)));
                }
                (std::borrow::Cow::Borrowed(key), Algorithm::HS256, issuer, audience)
            }
            Self::Jwks { keys, issuer, audience } => {
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(Refused::Algorithm(format!("{:?}", header.alg)));
                }
                match keys.find(header.kid.as_deref(), header.alg).await {
                    KeyLookup::Found(key) => (std::borrow::Cow::Owned(key), header.alg, issuer, audience),
                    KeyLookup::Unknown => return Err(Refused::UnknownKey(header.kid.unwrap_or_default())),
                    KeyLookup::Unavailable(detail) => return Err(Refused::KeysUnavailable(detail)),
                }
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        // Configured, they are required: a token without them would otherwise pass unchecked.
        match audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                validation.required_spec_claims.insert("aud".into());
            }
            None => validation.validate_aud = false,
        }
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            validation.required_spec_claims.insert("iss".into());
        }
        let data = decode::<Wire>(token, &key, &validation).map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => Refused::Time,
                ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => Refused::Issuer,
                ErrorKind::InvalidAlgorithm => Refused::Algorithm(format!("{algorithm:?}")),
                _ => Refused::Invalid(err.to_string()),
            }
        })?;
        claims(data.claims)
    }
}

fn claims(wire: Wire) -> Result<Claims, Refused> {
    let sub = match wire.sub {
        Some(serde_json::Value::String(sub)) => sub,
        Some(_) => return Err(Refused::Subject("it is not a string")),
        None => return Err(Refused::Subject("there is none")),
    };
    if sub.is_empty() || sub.chars().count() > MAX_SUB_CHARS || sub.chars().any(char::is_control) {
        return Err(Refused::Subject("it is empty, too long, or has control characters"));
    }
    Ok(Claims {
        subscribe: grant(wire.subscribe, "subscribe")?,
        publish: grant(wire.publish, "publish")?,
        // Present but wrong refuses the token, as a malformed grant does: shown to others, it
        // must be what its issuer meant.
        info: wire.info.filter(|info| !info.is_null()).map(|info| Info::from_value(&info)).transpose()?,
        server: [&wire.scope, &wire.scp].into_iter().flatten().any(grants_server),
        sub,
    })
}

/// Whether a `scope` or `scp` claim holds the server API's scope; anything else in it grants
/// nothing.
fn grants_server(scopes: &serde_json::Value) -> bool {
    match scopes {
        serde_json::Value::String(text) => text.split_ascii_whitespace().any(|scope| scope == SERVER_SCOPE),
        serde_json::Value::Array(list) => list.iter().any(|scope| scope.as_str() == Some(SERVER_SCOPE)),
        _ => false,
    }
}

/// A claim listing channel patterns; absent means every channel. A malformed list refuses the
/// token rather than granting more or less than its issuer meant.
fn grant(value: Option<serde_json::Value>, claim: &'static str) -> Result<Grant, Refused> {
    let Some(value) = value else { return Ok(Grant::Any) };
    let patterns: Vec<String> = serde_json::from_value(value).map_err(|_| Refused::Grants { claim })?;
    if patterns.len() > MAX_GRANT_PATTERNS {
        return Err(Refused::TooManyPatterns { claim, count: patterns.len() });
    }
    let patterns = patterns
        .iter()
        .map(|p| ChannelPattern::parse(p).or_else(|_| Channel::parse(p).map(ChannelPattern::from)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| Refused::Grants { claim })?;
    Ok(Grant::Only(patterns))
}
