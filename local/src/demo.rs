//! Not an AWS API: what a developer opens in a browser. `GET /` without a WebSocket upgrade is the
//! demo page (`client/index.html`), which loads the browser client (`client/websocket-client.js`)
//! from `/_local/websocket-client.js`; `GET /_local/token?sub=alice` mints a development token when
//! the gateway verifies tokens with `--jwt-secret`. A handshake on `/` is a handshake as before.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::AppState;

/// The browser client's path on the gateway.
pub const CLIENT_PATH: &str = "/_local/websocket-client.js";
/// The development token endpoint's path.
pub const TOKEN_PATH: &str = "/_local/token";

const PAGE: &str = include_str!("../../client/index.html");
const CLIENT: &str = include_str!("../../client/websocket-client.js");

/// How long a development token from [`TOKEN_PATH`] lasts: a working day.
const TOKEN_TTL_SECS: u64 = 8 * 3600;

/// The longest `sub` [`TOKEN_PATH`] mints a token for.
const MAX_SUB_CHARS: usize = 128;

/// The secret development tokens are signed with, and the issuer and audience they name.
#[derive(Clone, Debug)]
pub struct DevTokens {
    pub secret: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// The demo page, its WebSocket URL pointing at this gateway's stage.
pub fn page(state: &AppState) -> Response {
    let page = PAGE.replace("__WS_PATH__", &format!("/{}", state.settings.api.stage));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

pub async fn client() -> Response {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], CLIENT).into_response()
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    sub: Option<String>,
}

pub async fn token(State(state): State<Arc<AppState>>, Query(query): Query<TokenQuery>) -> Response {
    let Some(dev) = &state.settings.dev_tokens else {
        return (
            StatusCode::NOT_FOUND,
            "this gateway verifies no development tokens: start it with --jwt-secret to use them",
        )
            .into_response();
    };
    let sub = query.sub.unwrap_or_default();
    let sub = sub.trim();
    if sub.is_empty() || sub.chars().count() > MAX_SUB_CHARS || sub.chars().any(char::is_control) {
        return (
            StatusCode::BAD_REQUEST,
            format!(
                "?sub= must name the user: 1 to {MAX_SUB_CHARS} characters, none of them control characters"
            ),
        )
            .into_response();
    }
    let now = shared::clock::epoch_ms() / 1000;
    let claims = authorizer::token::DevClaims {
        sub: sub.to_owned(),
        subscribe: None,
        publish: None,
        exp: u64::try_from(now).unwrap_or(0) + TOKEN_TTL_SECS,
        iss: dev.issuer.clone(),
        aud: dev.audience.clone(),
    };
    match authorizer::token::mint(dev.secret.as_bytes(), &claims) {
        Ok(token) => ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response(),
        Err(err) => {
            (StatusCode::INTERNAL_SERVER_ERROR, format!("could not mint a token: {err}")).into_response()
        }
    }
}
