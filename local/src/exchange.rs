//! What every HTTP endpoint of the gateway shares: AWS's error answers, closing the connection after
//! an answer, and reading a request's body within a size and a time — a leaf every endpoint uses and
//! that uses none of them.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::json;

/// An error answer in the shape the AWS SDK reads from API Gateway: `x-amzn-errortype` and a JSON
/// `message`.
pub fn aws_error(status: StatusCode, error_type: &str, message: &str) -> Response {
    let mut response = (status, json!({ "message": message }).to_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(value) = HeaderValue::from_str(error_type) {
        headers.insert("x-amzn-errortype", value);
    }
    response
}

/// API Gateway's answer to a path, stage or method it has no route for.
pub fn forbidden() -> Response {
    aws_error(StatusCode::FORBIDDEN, "ForbiddenException", "Forbidden")
}

/// `response`, after which the connection is closed: the rest of a body that was not read (too large,
/// too slow) must not be taken for the next request, nor a refused handshake's connection kept.
pub fn closing(mut response: Response) -> Response {
    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Why a request's body was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum Unread {
    /// Longer than what is kept; read to its end (`drained`) and thrown away, so that its sender is
    /// still there to read the error, or not, past what is drained.
    TooLong { drained: bool },
    /// The connection failed while the body came.
    Failed(String),
    /// The body did not arrive whole in time.
    TimedOut,
}

/// The body, when it is at most `keep` bytes and arrives within `timeout`. A longer one is read on
/// and thrown away up to `drain` bytes (`drain` no more than `keep` stops at once).
pub async fn read_body(
    mut body: axum::body::Body,
    keep: usize,
    drain: usize,
    timeout: Duration,
) -> Result<Bytes, Unread> {
    let read = async {
        let (mut kept, mut seen) = (BytesMut::new(), 0usize);
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|err| Unread::Failed(err.to_string()))?;
            let Ok(data) = frame.into_data() else { continue };
            seen += data.len();
            if seen > keep.max(drain) {
                return Err(Unread::TooLong { drained: false });
            }
            if seen <= keep {
                kept.extend_from_slice(&data);
            } else {
                kept = BytesMut::new();
            }
        }
        if seen > keep { Err(Unread::TooLong { drained: true }) } else { Ok(kept.freeze()) }
    };
    tokio::time::timeout(timeout, read).await.unwrap_or(Err(Unread::TimedOut))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_is_kept_within_its_limit_drained_past_it_and_cut_past_the_drain() {
        let body = |bytes: usize| axum::body::Body::from(vec![b'x'; bytes]);
        let second = Duration::from_secs(1);
        assert_eq!(read_body(body(10), 10, 100, second).await.map(|b| b.len()), Ok(10));
        assert_eq!(read_body(body(11), 10, 100, second).await, Err(Unread::TooLong { drained: true }));
        assert_eq!(read_body(body(101), 10, 100, second).await, Err(Unread::TooLong { drained: false }));
        assert_eq!(read_body(body(11), 10, 10, second).await, Err(Unread::TooLong { drained: false }));
    }
}
