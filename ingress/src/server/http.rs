//! The server API's requests and answers as API Gateway's HTTP API hands them over (payload format
//! 2.0): who called (`requestContext.authorizer`: `iam` for SigV4, `lambda` for a token the
//! authorizer found to carry the server scope), which method the path names, the body (decoded when
//! API Gateway base64-encoded it) within [`MAX_BODY_BYTES`]; and the JSON answer.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use base64::Engine;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use shared::identity::{SERVER_KEY, SERVER_SCOPE, SUB_KEY};

use super::contract::Caller;
use super::error::ServerError;

/// The largest body the server API reads: a batch of [`super::publish::MAX_PUBLISHES`] small
/// messages, or a few large ones. Lambda takes 6 MB a synchronous invocation and API Gateway's
/// HTTP API 10 MB; a message is at most 128 KB either way.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The path prefixes of the two route sets: a token's, and SigV4's.
pub const TOKEN_PREFIX: &str = "/api/";
pub const IAM_PREFIX: &str = "/iam/api/";

/// A request, read.
#[derive(Debug)]
pub struct Request {
    pub caller: Caller,
    pub body: String,
    pub received_at_ms: i64,
}

/// The method the path names (what follows `/api/`), or the path itself when it names none.
pub fn method_of(event: &ApiGatewayV2httpRequest) -> Result<String, String> {
    let path = event.raw_path.as_deref().or(event.request_context.http.path.as_deref()).unwrap_or("/");
    path.strip_prefix(IAM_PREFIX)
        .or_else(|| path.strip_prefix(TOKEN_PREFIX))
        .map(str::to_owned)
        .ok_or_else(|| path.to_owned())
}

/// Who called, when API Gateway let a server in.
fn caller_of(event: &ApiGatewayV2httpRequest) -> Result<Caller, ServerError> {
    let refused = ServerError::NotServer { scope: SERVER_SCOPE };
    let Some(authorizer) = &event.request_context.authorizer else { return Err(refused) };
    if let Some(iam) = &authorizer.iam {
        let arn = iam.user_arn.clone().or_else(|| iam.caller_id.clone()).unwrap_or_default();
        return Ok(Caller::Iam { arn });
    }
    let server = match authorizer.fields.get(SERVER_KEY) {
        Some(serde_json::Value::Bool(on)) => *on,
        Some(serde_json::Value::String(text)) => text == "true",
        _ => false,
    };
    match authorizer.fields.get(SUB_KEY).and_then(serde_json::Value::as_str) {
        Some(sub) if server => Ok(Caller::Token { sub: sub.to_owned() }),
        _ => Err(refused),
    }
}

/// The request: by a server (checked first, as API Gateway's authorizer runs before anything),
/// POST, with a body within [`MAX_BODY_BYTES`].
pub fn read(event: &ApiGatewayV2httpRequest) -> Result<Request, ServerError> {
    let caller = caller_of(event)?;
    let verb = event.request_context.http.method.as_str();
    if verb != "POST" {
        return Err(ServerError::MethodNotAllowed(verb.to_owned()));
    }
    let raw = event.body.as_deref().unwrap_or_default();
    let body = if event.is_base64_encoded {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|_| ServerError::field("body", "is not the base64 API Gateway sends"))?;
        String::from_utf8(bytes).map_err(|_| ServerError::field("body", "is not UTF-8 text"))?
    } else {
        raw.to_owned()
    };
    if body.len() > MAX_BODY_BYTES {
        return Err(ServerError::BodyTooLarge { bytes: body.len(), limit: MAX_BODY_BYTES });
    }
    Ok(Request { caller, body, received_at_ms: event.request_context.time_epoch })
}

/// A JSON answer with `status`.
pub fn answer(status: u16, body: &serde_json::Value) -> ApiGatewayV2httpResponse {
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.body = Some(Body::Text(body.to_string()));
    response
}
