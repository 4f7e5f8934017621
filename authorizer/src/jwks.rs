//! Where an issuer's public keys come from: its JWKS URL on AWS, a file locally.
//!
//! Keys are fetched on first use, not at cold start (which stays a few milliseconds), and kept. A
//! token whose `kid` is not among them fetches the set again — issuers rotate keys — but at most once
//! a minute, so a flood of tokens with made-up `kid`s cannot turn into a flood of fetches.

use std::time::Duration;

use async_trait::async_trait;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long after a fetch an unknown `kid` may fetch the set again.
pub const REFETCH_AFTER: Duration = Duration::from_secs(60);

/// Reads a JWKS document.
#[async_trait]
pub trait JwksSource: Send + Sync + std::fmt::Debug {
    async fn fetch(&self) -> Result<JwkSet, String>;
}

/// A JWKS document at an HTTPS URL (`https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json`).
#[derive(Debug)]
pub struct HttpJwks {
    url: String,
    /// Built on the first fetch: setting up TLS (the system's roots) is milliseconds a cold start
    /// need not spend before its first event.
    client: tokio::sync::OnceCell<reqwest::Client>,
}

impl HttpJwks {
    pub fn new(url: impl Into<String>) -> Self {
        Self { url: url.into(), client: tokio::sync::OnceCell::new() }
    }
}

#[async_trait]
impl JwksSource for HttpJwks {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let client = self
            .client
            .get_or_try_init(|| async { reqwest::Client::builder().timeout(Duration::from_secs(3)).build() })
            .await
            .map_err(|err| format!("building the HTTPS client: {err}"))?;
        let response = client.get(&self.url).send().await.map_err(|err| err.to_string())?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("{} answered {status}", self.url));
        }
        let body = response.bytes().await.map_err(|err| err.to_string())?;
        serde_json::from_slice(&body).map_err(|err| format!("{} is not a JWKS: {err}", self.url))
    }
}

/// A JWKS document in a file, read on each fetch: edit it and the next unknown `kid` sees it.
#[derive(Debug)]
pub struct FileJwks(pub std::path::PathBuf);

#[async_trait]
impl JwksSource for FileJwks {
    async fn fetch(&self) -> Result<JwkSet, String> {
        let text = tokio::fs::read(&self.0).await.map_err(|err| format!("{}: {err}", self.0.display()))?;
        serde_json::from_slice(&text).map_err(|err| format!("{} is not a JWKS: {err}", self.0.display()))
    }
}

/// The outcome of looking a key up.
#[derive(Debug)]
pub enum KeyLookup {
    Found(DecodingKey),
    Unknown,
    Unavailable(String),
}

/// The keys of one JWKS, fetched lazily and cached.
#[derive(Debug)]
pub struct Keys {
    source: Box<dyn JwksSource>,
    cache: Mutex<Option<(Instant, JwkSet)>>,
}

impl Keys {
    pub fn new(source: Box<dyn JwksSource>) -> Self {
        Self { source, cache: Mutex::new(None) }
    }

    /// The key for `kid` usable with `alg`: an RSA key for RS256, a P-256 key for ES256, whatever
    /// the token claims. A set with a single key may be used without a `kid`.
    pub async fn find(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup {
        let mut cache = self.cache.lock().await;
        let stale = cache
            .as_ref()
            .is_none_or(|(at, set)| pick(set, kid, alg).is_none() && at.elapsed() >= REFETCH_AFTER);
        if stale {
            match self.source.fetch().await {
                Ok(set) => *cache = Some((Instant::now(), set)),
                // Keys fetched before are still good for the tokens they sign.
                Err(err) if cache.is_none() => return KeyLookup::Unavailable(err),
                Err(err) => {
                    tracing::warn!(error = %err, "refreshing the JWKS failed; keeping the keys we have")
                }
            }
        }
        match cache.as_ref().and_then(|(_, set)| pick(set, kid, alg)) {
            Some(key) => KeyLookup::Found(key),
            None => KeyLookup::Unknown,
        }
    }
}

fn pick(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<DecodingKey> {
    let fits = |jwk: &&jsonwebtoken::jwk::Jwk| match (&jwk.algorithm, alg) {
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256) => {
            ec.curve == jsonwebtoken::jwk::EllipticCurve::P256
        }
        _ => false,
    };
    let candidates: Vec<&jsonwebtoken::jwk::Jwk> = match kid {
        Some(kid) => set.keys.iter().filter(|jwk| jwk.common.key_id.as_deref() == Some(kid)).collect(),
        None if set.keys.len() == 1 => set.keys.iter().collect(),
        None => Vec::new(),
    };
    candidates.into_iter().find(fits).and_then(|jwk| DecodingKey::from_jwk(jwk).ok())
}
