//! The `@connections` management API: `POST`, `GET` and `DELETE /@connections/{id}`.
//!
//! Every call must be SigV4-signed ([`crate::sigv4`]) and its body must arrive whole within the
//! request timeout and within 128 KB. Errors use the restJson1 shape the AWS SDK parses
//! (`x-amzn-errortype` and a JSON `message`), at every size and for every refusal, so the worker's
//! `aws-sdk-apigatewaymanagement` client maps them to `GoneException` and friends exactly as it does
//! against AWS.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use shared::ConnectionId;
use shared::limits::MAX_MESSAGE_BYTES;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::exchange::{Unread, aws_error, closing, forbidden, read_body};
use crate::faults::PostFault;
use crate::registry::SendFailure;
use crate::sigv4::Verified;
use crate::state::AppState;

/// A management call whose body arrived whole and whose SigV4 signature checks out.
#[derive(Debug)]
pub struct Signed(pub Bytes);

impl FromRequest<Arc<AppState>> for Signed {
    type Rejection = Response;

    async fn from_request(request: Request, state: &Arc<AppState>) -> Result<Self, Response> {
        let (parts, body) = request.into_parts();
        let declared = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if let Some(size) = declared.filter(|size| *size > MAX_MESSAGE_BYTES) {
            return Err(closing(ApiError::PayloadTooLarge(Some(size)).into_response()));
        }
        let body = match read_body(body, MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES, state.settings.request_timeout)
            .await
        {
            Ok(body) => body,
            Err(Unread::TooLong { .. }) => {
                return Err(closing(ApiError::PayloadTooLarge(None).into_response()));
            }
            Err(Unread::Failed(err)) => {
                return Err(closing(
                    ApiError::BadRequest(format!("the body could not be read: {err}")).into_response(),
                ));
            }
            Err(Unread::TimedOut) => {
                let timeout = state.settings.request_timeout.as_secs();
                let message = format!("the body did not arrive within {timeout} s");
                return Err(closing(aws_error(
                    StatusCode::REQUEST_TIMEOUT,
                    "RequestTimeoutException",
                    &message,
                )));
            }
        };
        match state.signatures.verify(&parts, &body, time::OffsetDateTime::now_utc()) {
            Ok(Verified::Signed) => Ok(Self(body)),
            Ok(Verified::UnencodedPath { expected_canonical_uri }) => {
                tracing::warn!(
                    path = %parts.uri.path(),
                    expected = %expected_canonical_uri,
                    "accepted a signature over the unencoded path, as older curl releases make it: API Gateway \
                     refuses it with 403 InvalidSignatureException (the canonical URI is the path encoded once more)"
                );
                Ok(Self(body))
            }
            Err(denied) => {
                tracing::debug!(error = denied.error_type(), path = %parts.uri.path(), "@connections call refused");
                Err(aws_error(StatusCode::FORBIDDEN, denied.error_type(), &denied.message()))
            }
        }
    }
}

/// The management API's errors, each with the status and type AWS answers with.
#[derive(Debug)]
enum ApiError {
    Gone,
    Forbidden,
    BadRequest(String),
    /// The declared size, when there was one.
    PayloadTooLarge(Option<usize>),
    /// The client's buffer is full.
    LimitExceeded,
    /// The account's request throttle: the same type, with API Gateway's throttling message.
    Throttled,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Gone => aws_error(StatusCode::GONE, "GoneException", "The connection is gone"),
            Self::Forbidden => forbidden(),
            Self::BadRequest(why) => aws_error(StatusCode::BAD_REQUEST, "BadRequestException", &why),
            Self::PayloadTooLarge(size) => aws_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PayloadTooLargeException",
                &match size {
                    Some(size) => format!("Message too long: {size} bytes, the limit is {MAX_MESSAGE_BYTES}"),
                    None => format!("Message too long: the limit is {MAX_MESSAGE_BYTES} bytes"),
                },
            ),
            Self::LimitExceeded => aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "LimitExceededException",
                "The client's buffer is full",
            ),
            Self::Throttled => {
                aws_error(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException", "Too Many Requests")
            }
        }
    }
}

/// Takes a token from the account's bucket, as every `@connections` call does on AWS.
fn admitted(state: &AppState) -> Result<(), ApiError> {
    if state.account_rate.as_ref().is_some_and(|bucket| bucket.check().is_err()) {
        state.account_throttled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(ApiError::Throttled);
    }
    Ok(())
}

/// Parses the id and checks the stage.
fn target(state: &AppState, stage: Option<&str>, id: &str) -> Result<ConnectionId, ApiError> {
    if stage.is_some_and(|stage| stage != state.settings.api.stage) {
        return Err(ApiError::Forbidden);
    }
    ConnectionId::parse(id).map_err(|err| ApiError::BadRequest(err.to_string()))
}

fn post(state: &AppState, stage: Option<&str>, id: &str, body: Bytes) -> Result<StatusCode, ApiError> {
    let id = target(state, stage, id)?;
    state.registry.send(&id, body).map_err(|failure| match failure {
        SendFailure::Gone => ApiError::Gone,
        SendFailure::Full => {
            state.buffer_full.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            ApiError::LimitExceeded
        }
    })?;
    Ok(StatusCode::OK)
}

fn iso(epoch_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn get(state: &AppState, stage: Option<&str>, id: &str) -> Result<Response, ApiError> {
    let id = target(state, stage, id)?;
    let live = state.registry.get(&id).ok_or(ApiError::Gone)?;
    let body = json!({
        "connectedAt": iso(live.info.connected_at_ms),
        "identity": { "sourceIp": live.info.source_ip, "userAgent": live.info.user_agent },
        "lastActiveAt": iso(live.last_active_ms()),
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response())
}

fn delete(state: &AppState, stage: Option<&str>, id: &str) -> Result<StatusCode, ApiError> {
    let id = target(state, stage, id)?;
    let live = state.registry.get(&id).ok_or(ApiError::Gone)?;
    live.deleted.cancel();
    Ok(StatusCode::NO_CONTENT)
}

/// The path's `{stage}` (absent on the root form) and `{id}`.
type Params = Path<HashMap<String, String>>;

fn params(params: &HashMap<String, String>) -> (Option<&str>, &str) {
    (params.get("stage").map(String::as_str), params.get("id").map_or("", String::as_str))
}

/// `POST [/{stage}]/@connections/{id}`: delivers the body to the connection.
pub async fn post_to_connection(
    State(state): State<Arc<AppState>>,
    Path(path): Params,
    Signed(body): Signed,
) -> Response {
    let (stage, id) = params(&path);
    if let Err(throttled) = admitted(&state) {
        return throttled.into_response();
    }
    let faults = state.settings.faults;
    if let Some(delay) = faults.delay() {
        state.injected.delayed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::time::sleep(delay).await;
    }
    let fault = faults.draw();
    if let Some(fault @ (PostFault::Throttle | PostFault::Error)) = fault {
        state.injected.count(fault);
    }
    match fault {
        None => post(&state, stage, id, body).into_response(),
        Some(PostFault::Throttle) => ApiError::LimitExceeded.into_response(),
        Some(PostFault::Error) => {
            aws_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerErrorException", "Injected fault")
        }
        Some(PostFault::DropConnection) => {
            if let Ok(id) = ConnectionId::parse(id)
                && let Some(live) = state.registry.remove(&id)
            {
                state.injected.count(PostFault::DropConnection);
                live.lost.cancel();
            }
            ApiError::Gone.into_response()
        }
    }
}

/// `GET [/{stage}]/@connections/{id}`: describes the connection.
pub async fn get_connection(State(state): State<Arc<AppState>>, Path(path): Params, _: Signed) -> Response {
    let (stage, id) = params(&path);
    admitted(&state).and_then(|()| get(&state, stage, id)).into_response()
}

/// `DELETE [/{stage}]/@connections/{id}`: closes the connection.
pub async fn delete_connection(
    State(state): State<Arc<AppState>>,
    Path(path): Params,
    _: Signed,
) -> Response {
    let (stage, id) = params(&path);
    admitted(&state).and_then(|()| delete(&state, stage, id)).into_response()
}
