//! The `@connections` management API: `POST`, `GET` and `DELETE /@connections/{id}`.
//!
//! Errors use the restJson1 shape the AWS SDK parses (`x-amzn-errortype` and a JSON `message`), so the
//! worker's `aws-sdk-apigatewaymanagement` client maps them to `GoneException` and friends exactly as
//! it does against AWS.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::json;
use shared::ConnectionId;
use shared::limits::MAX_MESSAGE_BYTES;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::AppState;
use crate::registry::SendFailure;

/// An error answer in the shape the AWS SDK reads.
pub fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut response = (status, json!({ "message": message }).to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(error_type) {
        headers.insert("x-amzn-errortype", value);
    }
    response
}

fn gone() -> Response {
    aws_error(StatusCode::GONE, "GoneException", "The connection is gone")
}

/// Parses the id and checks the stage; `Err` is the answer to send.
fn target(state: &AppState, stage: Option<&str>, id: &str) -> Result<ConnectionId, Response> {
    if stage.is_some_and(|stage| stage != state.settings.api.stage) {
        return Err(aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden"));
    }
    ConnectionId::parse(id).map_err(|err| aws_error(StatusCode::BAD_REQUEST, "BadRequestException", &err.to_string()))
}

async fn post(state: &AppState, stage: Option<&str>, id: &str, body: Bytes) -> Response {
    let id = match target(state, stage, id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    if body.len() > MAX_MESSAGE_BYTES {
        return aws_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLargeException",
            &format!("Message too long: {} bytes, the limit is {MAX_MESSAGE_BYTES}", body.len()),
        );
    }
    match state.registry.send(&id, body) {
        Ok(()) => StatusCode::OK.into_response(),
        Err(SendFailure::Gone) => gone(),
        Err(SendFailure::Full) => {
            aws_error(StatusCode::TOO_MANY_REQUESTS, "LimitExceededException", "The client's buffer is full")
        }
    }
}

fn iso(epoch_ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(epoch_ms) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_default()
}

async fn get(state: &AppState, stage: Option<&str>, id: &str) -> Response {
    let id = match target(state, stage, id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let Some(live) = state.registry.get(&id) else { return gone() };
    let body = json!({
        "connectedAt": iso(live.info.connected_at_ms),
        "identity": { "sourceIp": live.info.source_ip, "userAgent": live.info.user_agent },
        "lastActiveAt": iso(live.last_active_ms()),
    });
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

async fn delete(state: &AppState, stage: Option<&str>, id: &str) -> Response {
    let id = match target(state, stage, id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match state.registry.get(&id) {
        Some(live) => {
            live.deleted.cancel();
            StatusCode::NO_CONTENT.into_response()
        }
        None => gone(),
    }
}

pub async fn post_root(State(state): State<Arc<AppState>>, Path(id): Path<String>, body: Bytes) -> Response {
    post(&state, None, &id, body).await
}

pub async fn post_staged(
    State(state): State<Arc<AppState>>,
    Path((stage, id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    post(&state, Some(&stage), &id, body).await
}

pub async fn get_root(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    get(&state, None, &id).await
}

pub async fn get_staged(State(state): State<Arc<AppState>>, Path((stage, id)): Path<(String, String)>) -> Response {
    get(&state, Some(&stage), &id).await
}

pub async fn delete_root(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    delete(&state, None, &id).await
}

pub async fn delete_staged(State(state): State<Arc<AppState>>, Path((stage, id)): Path<(String, String)>) -> Response {
    delete(&state, Some(&stage), &id).await
}
