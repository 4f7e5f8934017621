//! The server API as API Gateway's HTTP API serves it: `POST /api/{method}` behind the Lambda
//! authorizer (a bearer token with the server scope), `POST /iam/api/{method}` behind IAM (SigV4
//! for `execute-api`, checked as for `@connections`). Both hand the ingress the same payload format
//! 2.0 event AWS would (`integration::HttpRequest`), and answer with what it returns; what API
//! Gateway refuses itself is refused here the same way, before the function: 401 without a token,
//! 403 for a token the authorizer does not allow or a bad signature, 413 past 10 MB. The
//! authorizer's answer is cached by token for the template's `AuthorizerResultTtlInSeconds`, as API
//! Gateway caches it: a token's answer stands for five minutes, whatever happens to the token.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::exchange::{Unread, aws_error, closing, read_body};
use crate::function;
use crate::integration::HttpRequest;
use crate::state::AppState;

/// The routes, as the template declares them.
pub const TOKEN_ROUTE: &str = "/api/{method}";
pub const IAM_ROUTE: &str = "/iam/api/{method}";

/// An HTTP API's largest request payload.
const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
/// The ingress function's `Timeout` in template.yaml.
const INGRESS_TIMEOUT: Duration = Duration::from_secs(10);
/// The authorizer function's.
const AUTHORIZER_TIMEOUT: Duration = Duration::from_secs(5);

fn message(status: StatusCode, text: &str) -> Response {
    let mut response = (status, json!({ "message": text }).to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// An HTTP API's answer to a request no route matches: the server API's routes are POST alone.
pub async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

/// `POST /api/{method}`, with `Authorization: Bearer <token>`.
pub async fn with_token(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(method): Path<String>,
    request: Request,
) -> Response {
    serve(&state, peer, &method, request, false).await
}

/// `POST /iam/api/{method}`, SigV4-signed.
pub async fn with_iam(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(method): Path<String>,
    request: Request,
) -> Response {
    serve(&state, peer, &method, request, true).await
}

async fn serve(state: &AppState, peer: SocketAddr, method: &str, request: Request, iam: bool) -> Response {
    let (parts, body) = request.into_parts();
    let body = match read_body(body, MAX_PAYLOAD_BYTES, MAX_PAYLOAD_BYTES, state.settings.request_timeout)
        .await
    {
        Ok(body) => body,
        Err(Unread::TooLong { .. }) => {
            return closing(message(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large"));
        }
        Err(Unread::Failed(err)) => {
            return closing(message(StatusCode::BAD_REQUEST, &format!("the body could not be read: {err}")));
        }
        Err(Unread::TimedOut) => return closing(message(StatusCode::REQUEST_TIMEOUT, "Request Timeout")),
    };
    let now_ms = shared::clock::epoch_ms();
    let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let source_ip = peer.ip().to_string();
    let request = HttpRequest {
        route_key: if iam { "POST /iam/api/{method}" } else { "POST /api/{method}" },
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or_default(),
        headers: &parts.headers,
        source_ip: &source_ip,
        domain_name: host.as_deref().unwrap_or("127.0.0.1"),
        path_parameters: json!({ "method": method }),
        account: crate::settings::ACCOUNT,
    };
    let api = &state.settings.api;
    let authorized = if iam {
        signed(state, &parts, &body)
    } else {
        let identity =
            parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
        bearer(state, &request, identity, now_ms).await
    };
    let authorizer = match authorized {
        Ok(authorizer) => authorizer,
        Err(refused) => return *refused,
    };
    let event = request.event(api, authorizer, &body, now_ms);
    let answer = match function::call::<_, Value>(state.ingress.as_ref(), &event, INGRESS_TIMEOUT).await {
        Ok(answer) => answer,
        Err(err) => {
            tracing::error!(error = %err, "the ingress failed a server API call");
            return message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    respond(&answer)
}

/// The `requestContext.authorizer` of a call whose SigV4 signature verifies: the gateway's own
/// key pair's identity, as IAM authorization puts it; or API Gateway's refusal.
fn signed(state: &AppState, parts: &axum::http::request::Parts, body: &[u8]) -> Result<Value, Box<Response>> {
    if let Err(denied) = state.signatures.verify(parts, body, time::OffsetDateTime::now_utc()) {
        tracing::debug!(error = denied.error_type(), path = %parts.uri.path(), "server API call refused");
        return Err(Box::new(aws_error(StatusCode::FORBIDDEN, denied.error_type(), &denied.message())));
    }
    let key = state.settings.credentials.access_key_id.clone();
    Ok(json!({ "iam": {
        "accessKey": key,
        "accountId": crate::settings::ACCOUNT,
        "callerId": key,
        "principalOrgId": null,
        "userArn": format!("arn:aws:iam::{}:user/local", crate::settings::ACCOUNT),
        "userId": key,
    } }))
}

/// The `requestContext.authorizer` of a call whose `Authorization` header (`identity`) the
/// authorizer allows, asked once per token and [`AUTHORIZER_CACHE_TTL`](crate::authorizations::AUTHORIZER_CACHE_TTL);
/// or API Gateway's refusal: 401 without a header, 403 for a token refused, 500 for an authorizer
/// that failed (not cached: the next call asks again).
async fn bearer(
    state: &AppState,
    request: &HttpRequest<'_>,
    identity: &str,
    now_ms: i64,
) -> Result<Value, Box<Response>> {
    if identity.trim().is_empty() {
        return Err(Box::new(message(StatusCode::UNAUTHORIZED, "Unauthorized")));
    }
    let Some(authorizer) = &state.authorizer else {
        tracing::warn!(
            "a server API call with a bearer token, but the gateway verifies no tokens: start it with \
             --jwt-secret (or --jwks-url), or sign the call with SigV4 at /iam/api/…"
        );
        return Err(Box::new(message(StatusCode::UNAUTHORIZED, "Unauthorized")));
    };
    let allowed = if let Some(answer) = state.server_authorizations.get(identity) {
        answer
    } else {
        let event = request.authorizer_event(&state.settings.api, identity, now_ms);
        let answer = match function::call::<_, Value>(authorizer.as_ref(), &event, AUTHORIZER_TIMEOUT).await {
            Ok(answer) if answer["isAuthorized"] == json!(true) => {
                Some(answer.get("context").cloned().unwrap_or_else(|| json!({})))
            }
            Ok(answer) if answer["isAuthorized"] == json!(false) => None,
            Ok(_) | Err(_) => {
                tracing::error!(
                    "the server API's authorizer failed, or answered what API Gateway cannot use"
                );
                return Err(Box::new(message(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")));
            }
        };
        state.server_authorizations.put(identity, answer.clone());
        answer
    };
    allowed
        .map(|context| json!({ "lambda": context }))
        .ok_or_else(|| Box::new(message(StatusCode::FORBIDDEN, "Forbidden")))
}

/// The integration's answer as API Gateway returns it.
fn respond(answer: &Value) -> Response {
    let status = answer["statusCode"]
        .as_u64()
        .and_then(|code| u16::try_from(code).ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let text = answer["body"].as_str().unwrap_or_default();
    let body = if answer["isBase64Encoded"] == json!(true) {
        base64::engine::general_purpose::STANDARD.decode(text).unwrap_or_default()
    } else {
        text.as_bytes().to_vec()
    };
    let mut response = (status, body).into_response();
    if let Some(headers) = answer["headers"].as_object() {
        for (name, value) in headers {
            if let (Ok(name), Some(Ok(value))) =
                (HeaderName::from_bytes(name.as_bytes()), value.as_str().map(HeaderValue::from_str))
            {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}
