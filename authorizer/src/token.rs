//! Development tokens: HS256 JWTs signed with the local gateway's `--jwt-secret`, so that wscat and
//! the browser have something to connect with before a real identity provider is wired in.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde::Serialize;

/// What a development token says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DevClaims {
    pub sub: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<String>>,
    /// What the connection shows the members of its channels (a JSON object of at most 1 KB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<serde_json::Value>,
    /// OAuth 2.0 scopes, space-separated: [`shared::identity::SERVER_SCOPE`] makes a server token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Epoch seconds.
    pub exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
}

/// Signs `claims` with `secret` (HS256).
pub fn mint(secret: &[u8], claims: &DevClaims) -> Result<String, jsonwebtoken::errors::Error> {
    encode(&Header::default(), claims, &EncodingKey::from_secret(secret))
}
