//! SQS's `SendMessage` and `SendMessageBatch` for the in-process queue, on a port of their own, so
//! that backend code written against SQS publishes to the local gateway unchanged: point the SDK at
//! it with `AWS_ENDPOINT_URL_SQS` and use the queue URL the gateway prints.
//!
//! It speaks the JSON protocol current SDKs use (`X-Amz-Target: AmazonSQS.SendMessage`, body
//! `{"QueueUrl":…,"MessageBody":…}`), checks SigV4 for service `sqs` with the gateway's credentials,
//! and answers as SQS does, `MD5OfMessageBody` included, which SDKs verify. `GetQueueUrl` is there
//! too, for code that looks its queue up by name. Message attributes are accepted and dropped: the
//! worker reads none.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use md5::{Digest, Md5};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::queue::MemoryQueue;
use shared::queue::SQS_MAX_MESSAGE_BYTES;
use time::OffsetDateTime;

use crate::exchange::{Unread, closing, read_body};
use crate::host::AllowedHosts;
use crate::sigv4::{Denied, Signatures};

/// The service SigV4 signatures are scoped to.
pub const SERVICE: &str = "sqs";

/// Entries in one `SendMessageBatch`.
const BATCH_MAX: usize = 10;

/// The longest `DelaySeconds`: 15 minutes.
const MAX_DELAY_SECS: u64 = 900;

/// Bodies read from a request at most: a full batch, JSON-escaped.
const MAX_REQUEST_BYTES: usize = 4 * SQS_MAX_MESSAGE_BYTES;

/// How much of a body past [`MAX_REQUEST_BYTES`] is read and thrown away so that its sender gets its
/// error answer: an HTTP/1.1 client still sending when the server closes gets a reset instead, and
/// loses the answer. Past this the connection is closed all the same.
const MAX_DRAINED_BYTES: usize = 64 * 1024 * 1024;

/// The endpoint's queue and how it checks callers.
#[derive(Debug)]
pub struct SqsEndpoint {
    pub queue: Arc<MemoryQueue>,
    pub queue_name: String,
    pub queue_url: String,
    pub signatures: Signatures,
    /// How long a request's body may take to arrive.
    pub request_timeout: Duration,
    /// The `Host` names it answers, as the gateway's own endpoints.
    pub allowed_hosts: AllowedHosts,
}

pub fn router(endpoint: Arc<SqsEndpoint>) -> Router {
    let guard = axum::middleware::from_fn_with_state(endpoint.allowed_hosts.clone(), crate::host::guard);
    Router::new().fallback(handle).layer(guard).with_state(endpoint)
}

/// An SQS error: its `__type` and message, status 400 unless it is about the caller.
struct SqsError {
    status: StatusCode,
    kind: &'static str,
    message: String,
}

impl SqsError {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, kind, message: message.into() }
    }
}

impl IntoResponse for SqsError {
    fn into_response(self) -> Response {
        let body = json!({ "__type": self.kind, "message": self.message }).to_string();
        let mut response = (self.status, body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
        response
    }
}

fn json_response(value: &Value) -> Response {
    let mut response = (StatusCode::OK, value.to_string()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-amz-json-1.0"));
    response
}

async fn handle(State(endpoint): State<Arc<SqsEndpoint>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let target = parts.headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body = match read_body(body, MAX_REQUEST_BYTES, MAX_DRAINED_BYTES, endpoint.request_timeout).await {
        Ok(body) => body,
        Err(Unread::TimedOut) => {
            let mut answer = SqsError::new(
                "com.amazonaws.sqs#RequestTimeout",
                format!("the body did not arrive within {} s", endpoint.request_timeout.as_secs()),
            );
            answer.status = StatusCode::REQUEST_TIMEOUT;
            return closing(answer.into_response());
        }
        Err(unread) => return unread_answer(&unread, target),
    };
    if let Err(denied) = endpoint.signatures.verify(&parts, &body, OffsetDateTime::now_utc()) {
        return refused(&denied).into_response();
    }
    let outcome = match target {
        "AmazonSQS.SendMessage" => send_message(&endpoint, &body),
        "AmazonSQS.SendMessageBatch" => send_message_batch(&endpoint, &body),
        "AmazonSQS.GetQueueUrl" => get_queue_url(&endpoint, &body),
        "" => Err(SqsError::new(
            "com.amazonaws.sqs#UnsupportedOperation",
            "the local SQS endpoint speaks the JSON protocol: X-Amz-Target: AmazonSQS.SendMessage",
        )),
        other => Err(SqsError::new(
            "com.amazonaws.sqs#UnsupportedOperation",
            format!(
                "{other} is not served here; the local queue takes SendMessage, SendMessageBatch and GetQueueUrl"
            ),
        )),
    };
    outcome.unwrap_or_else(IntoResponse::into_response)
}

/// SQS's answer to a body that was not read: too long, or broken off.
fn unread_answer(unread: &Unread, target: &str) -> Response {
    let error = match unread {
        Unread::TooLong { .. } if target == "AmazonSQS.SendMessageBatch" => SqsError::new(
            "com.amazonaws.sqs#BatchRequestTooLong",
            format!("Batch requests cannot be longer than {SQS_MAX_MESSAGE_BYTES} bytes."),
        ),
        Unread::TooLong { .. } => SqsError::new(
            "com.amazonaws.sqs#InvalidParameterValue",
            format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {SQS_MAX_MESSAGE_BYTES} bytes."
            ),
        ),
        Unread::Failed(err) => SqsError::new(
            "com.amazonaws.sqs#InvalidParameterValue",
            format!("the body could not be read: {err}"),
        ),
        Unread::TimedOut => {
            SqsError::new("com.amazonaws.sqs#RequestTimeout", "the body did not arrive in time")
        }
    };
    match unread {
        Unread::TooLong { drained: true } => error.into_response(),
        _ => closing(error.into_response()),
    }
}

fn refused(denied: &Denied) -> SqsError {
    SqsError {
        status: StatusCode::FORBIDDEN,
        kind: match denied {
            Denied::Missing => "com.amazon.coral.service#MissingAuthenticationTokenException",
            Denied::Incomplete(_) => "com.amazon.coral.service#IncompleteSignatureException",
            Denied::UnknownAccessKey => "com.amazon.coral.service#UnrecognizedClientException",
            Denied::Invalid(_) | Denied::Mismatch { .. } => {
                "com.amazon.coral.service#InvalidSignatureException"
            }
        },
        message: denied.message(),
    }
}

fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, SqsError> {
    serde_json::from_slice(body).map_err(|err| {
        // A lone surrogate (`"\ud800"`) or bytes that are not UTF-8 cannot be a message's
        // characters: SQS calls that invalid contents, not an invalid request.
        let detail = err.to_string();
        if ["surrogate", "invalid unicode code point", "unexpected end of hex escape"]
            .iter()
            .any(|what| detail.contains(what))
        {
            return invalid_contents();
        }
        SqsError::new("com.amazonaws.sqs#InvalidParameterValue", format!("invalid request: {detail}"))
    })
}

fn invalid_contents() -> SqsError {
    SqsError::new(
        "com.amazonaws.sqs#InvalidMessageContents",
        "Invalid characters found. Valid unicode characters are #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF",
    )
}

/// Whether `url` names this endpoint's queue: its path, on a host that is this endpoint — its own
/// address, or a loopback name for it (SDKs may say `localhost` for `127.0.0.1`) with its port.
/// Another host is another queue, which does not exist here.
fn check_queue(endpoint: &SqsEndpoint, url: &str) -> Result<(), SqsError> {
    let (host, path) = split_url(url);
    let (own_host, own_path) = split_url(&endpoint.queue_url);
    let port = |authority: &str| {
        authority.parse::<axum::http::uri::Authority>().ok().map(|a| (a.host().to_owned(), a.port_u16()))
    };
    let same_host = match (port(host), port(own_host)) {
        (Some((name, port)), Some((own_name, own_port))) => {
            let loopback = name.eq_ignore_ascii_case("localhost")
                || name.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
            port == own_port && (name == own_name || loopback)
        }
        _ => false,
    };
    if same_host && path == own_path {
        return Ok(());
    }
    Err(SqsError::new(
        "com.amazonaws.sqs#QueueDoesNotExist",
        format!("The specified queue does not exist. This endpoint serves {}", endpoint.queue_url),
    ))
}

/// A queue URL's authority and path: `http://127.0.0.1:9324/000000000000/q` →
/// (`127.0.0.1:9324`, `000000000000/q`).
fn split_url(url: &str) -> (&str, &str) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.split_once('/').unwrap_or((rest, ""))
}

/// SQS's rules for a message body, `None` when it is acceptable.
fn invalid_body(body: &str) -> Option<SqsError> {
    if body.is_empty() {
        return Some(SqsError::new(
            "com.amazonaws.sqs#InvalidParameterValue",
            "The request must contain the parameter MessageBody.",
        ));
    }
    if body.len() > SQS_MAX_MESSAGE_BYTES {
        return Some(SqsError::new(
            "com.amazonaws.sqs#InvalidParameterValue",
            format!(
                "One or more parameters are invalid. Reason: Message must be shorter than {SQS_MAX_MESSAGE_BYTES} bytes."
            ),
        ));
    }
    let allowed = |c: char| matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..);
    if !body.chars().all(allowed) {
        return Some(invalid_contents());
    }
    None
}

fn delay(seconds: Option<u64>) -> Result<Duration, SqsError> {
    match seconds.unwrap_or(0) {
        s if s <= MAX_DELAY_SECS => Ok(Duration::from_secs(s)),
        s => Err(SqsError::new(
            "com.amazonaws.sqs#InvalidParameterValue",
            format!(
                "Value {s} for parameter DelaySeconds is invalid. Reason: must be between 0 and 900, if provided."
            ),
        )),
    }
}

fn md5_hex(body: &str) -> String {
    hex::encode(Md5::digest(body.as_bytes()))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessage {
    queue_url: String,
    #[serde(default)]
    message_body: String,
    delay_seconds: Option<u64>,
}

fn send_message(endpoint: &SqsEndpoint, body: &[u8]) -> Result<Response, SqsError> {
    let request: SendMessage = parse(body)?;
    check_queue(endpoint, &request.queue_url)?;
    let (id, md5) = enqueue(endpoint, request.message_body, request.delay_seconds)?;
    tracing::debug!(message = %id, "SendMessage");
    Ok(json_response(&json!({ "MessageId": id, "MD5OfMessageBody": md5 })))
}

/// Checks one message as SQS does and queues it: its message id and the body's MD5.
fn enqueue(
    endpoint: &SqsEndpoint,
    body: String,
    delay_seconds: Option<u64>,
) -> Result<(String, String), SqsError> {
    if let Some(err) = invalid_body(&body) {
        return Err(err);
    }
    let delay = delay(delay_seconds)?;
    let md5 = md5_hex(&body);
    let id = endpoint.queue.push_delayed(body, delay).map_err(|full| {
        SqsError::new(
            "com.amazonaws.sqs#OverLimit",
            format!("{full}; try again once the worker has drained it"),
        )
    })?;
    Ok((id, md5))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendMessageBatch {
    queue_url: String,
    #[serde(default)]
    entries: Vec<BatchEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct BatchEntry {
    id: String,
    #[serde(default)]
    message_body: String,
    delay_seconds: Option<u64>,
}

fn send_message_batch(endpoint: &SqsEndpoint, body: &[u8]) -> Result<Response, SqsError> {
    let request: SendMessageBatch = parse(body)?;
    check_queue(endpoint, &request.queue_url)?;
    if request.entries.is_empty() {
        return Err(SqsError::new(
            "com.amazonaws.sqs#EmptyBatchRequest",
            "There should be at least one SendMessageBatchRequestEntry in the request.",
        ));
    }
    if request.entries.len() > BATCH_MAX {
        return Err(SqsError::new(
            "com.amazonaws.sqs#TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are {BATCH_MAX}. You have sent {}.",
                request.entries.len()
            ),
        ));
    }
    let total: usize = request.entries.iter().map(|e| e.message_body.len()).sum();
    if total > SQS_MAX_MESSAGE_BYTES {
        return Err(SqsError::new(
            "com.amazonaws.sqs#BatchRequestTooLong",
            format!(
                "Batch requests cannot be longer than {SQS_MAX_MESSAGE_BYTES} bytes. You have sent {total} bytes."
            ),
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for entry in &request.entries {
        let valid = !entry.id.is_empty()
            && entry.id.len() <= 80
            && entry.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(SqsError::new(
                "com.amazonaws.sqs#InvalidBatchEntryId",
                format!(
                    "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long. Got {:?}.",
                    entry.id
                ),
            ));
        }
        if !ids.insert(entry.id.as_str()) {
            return Err(SqsError::new(
                "com.amazonaws.sqs#BatchEntryIdsNotDistinct",
                format!("Id {} repeated.", entry.id),
            ));
        }
    }
    // Like SQS, one entry's problem fails that entry alone.
    let (mut successful, mut failed) = (Vec::new(), Vec::new());
    for entry in request.entries {
        match enqueue(endpoint, entry.message_body, entry.delay_seconds) {
            Ok((id, md5)) => successful.push(json!({ "Id": entry.id, "MessageId": id, "MD5OfMessageBody": md5 })),
            Err(err) => failed.push(json!({ "Id": entry.id, "SenderFault": true, "Code": err.kind.rsplit('#').next().unwrap_or(err.kind), "Message": err.message })),
        }
    }
    Ok(json_response(&json!({ "Successful": successful, "Failed": failed })))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetQueueUrl {
    queue_name: String,
}

fn get_queue_url(endpoint: &SqsEndpoint, body: &[u8]) -> Result<Response, SqsError> {
    let request: GetQueueUrl = parse(body)?;
    if request.queue_name != endpoint.queue_name {
        return Err(SqsError::new(
            "com.amazonaws.sqs#QueueDoesNotExist",
            format!("The specified queue does not exist. This endpoint serves {}", endpoint.queue_name),
        ));
    }
    Ok(json_response(&json!({ "QueueUrl": endpoint.queue_url })))
}
