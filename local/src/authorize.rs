//! The `$connect` route's REQUEST authorizer, run the way API Gateway runs it.
//!
//! A handshake without the identity source (`?token=`, empty counts as missing) is answered 401
//! without invoking the authorizer. Otherwise the authorizer gets the REQUEST event; its policy must
//! allow `execute-api:Invoke` on the route's ARN, or the handshake is answered 403; a failing
//! authorizer, or an answer API Gateway could not use, 500. On Allow, `principalId` and the context
//! become `requestContext.authorizer` on every event of the connection.

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::function::{self, Function, FunctionError};
use crate::integration::{self, Connection};
use crate::state::AppState;

/// The identity source: `route.request.querystring.token`.
pub const IDENTITY_SOURCE: &str = "token";

/// The authorizer function's `Timeout` in template.yaml.
const AUTHORIZER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, json!({ "message": message }).to_string()).into_response()
}

/// Runs the authorizer for a handshake: the `requestContext.authorizer` of an allowed connection, or
/// the response that refuses it.
pub async fn run(
    state: &AppState,
    authorizer: &dyn Function,
    info: &Connection,
    headers: &HeaderMap,
    query: Option<&str>,
    now_ms: i64,
) -> Result<Map<String, Value>, Response> {
    let has_token = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .any(|(key, value)| key == IDENTITY_SOURCE && !value.is_empty());
    if !has_token {
        tracing::info!(connection = %info.id, "handshake without ?token= refused before the authorizer");
        return Err(refuse(StatusCode::UNAUTHORIZED, "Unauthorized"));
    }
    let api = &state.settings.api;
    let event = integration::authorizer_request(api, info, headers, query, state.local_addr.port(), now_ms);
    let answer = match function::call::<_, Value>(authorizer, &event, AUTHORIZER_TIMEOUT).await {
        Ok(answer) => answer,
        Err(FunctionError::Handler(message)) if message == "Unauthorized" => {
            return Err(refuse(StatusCode::UNAUTHORIZED, "Unauthorized"));
        }
        Err(err) => {
            tracing::error!(connection = %info.id, error = %err, "the authorizer failed");
            return Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"));
        }
    };
    match decide(&answer, &integration::connect_arn(api)) {
        Ok(Some(context)) => Ok(context),
        Ok(None) => {
            tracing::info!(connection = %info.id, "the authorizer denied the handshake");
            Err(refuse(StatusCode::FORBIDDEN, "Forbidden"))
        }
        Err(why) => {
            tracing::error!(connection = %info.id, why, "the authorizer's answer is not usable");
            Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"))
        }
    }
}

/// Evaluates an authorizer's answer for `arn`: the authorizer context on Allow, `None` on Deny (an
/// explicit Deny, or no Allow that covers the ARN), an error for an answer API Gateway rejects.
pub fn decide(answer: &Value, arn: &str) -> Result<Option<Map<String, Value>>, &'static str> {
    let principal = answer["principalId"].as_str().ok_or("no principalId")?;
    let statements = match &answer["policyDocument"]["Statement"] {
        Value::Array(statements) => statements.clone(),
        statement @ Value::Object(_) => vec![statement.clone()],
        _ => return Err("no policyDocument.Statement"),
    };
    let (mut allowed, mut denied) = (false, false);
    for statement in &statements {
        let actions = strings(&statement["Action"]);
        if !actions.iter().any(|action| glob(action, "execute-api:Invoke")) {
            continue;
        }
        if !strings(&statement["Resource"]).iter().any(|resource| glob(resource, arn)) {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Allow") => allowed = true,
            Some("Deny") => denied = true,
            _ => return Err("a statement's Effect is neither Allow nor Deny"),
        }
    }
    if denied || !allowed {
        return Ok(None);
    }
    let mut context = match &answer["context"] {
        Value::Null => Map::new(),
        Value::Object(context) => context.clone(),
        _ => return Err("context is not an object"),
    };
    if context.values().any(|value| value.is_object() || value.is_array()) {
        return Err("context values must be strings, numbers or booleans");
    }
    context.insert("principalId".into(), Value::from(principal));
    Ok(Some(context))
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// IAM's wildcard match: `*` is any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:execute-api:us-east-1:000000000000:local/local/$connect";

    fn answer(effect: &str, resource: Value) -> Value {
        json!({
            "principalId": "alice",
            "policyDocument": { "Version": "2012-10-17", "Statement": [
                { "Action": "execute-api:Invoke", "Effect": effect, "Resource": resource }
            ]},
            "context": { "sub": "alice", "n": 1, "ok": true }
        })
    }

    #[test]
    fn an_allow_covering_the_route_passes_principal_and_context_on() {
        let context = decide(&answer("Allow", json!(ARN)), ARN).expect("usable").expect("allowed");
        assert_eq!(context["principalId"], "alice");
        assert_eq!(context["sub"], "alice");
        for resource in [json!("arn:aws:execute-api:us-east-1:000000000000:local/*"), json!(["x", "*"])] {
            assert!(decide(&answer("Allow", resource.clone()), ARN).expect("usable").is_some(), "{resource}");
        }
    }

    #[test]
    fn a_deny_or_an_allow_for_another_resource_denies() {
        assert_eq!(decide(&answer("Deny", json!(ARN)), ARN), Ok(None));
        assert_eq!(
            decide(&answer("Allow", json!("arn:aws:execute-api:us-east-1:000000000000:other/*")), ARN),
            Ok(None)
        );
        let mut both = answer("Allow", json!("*"));
        both["policyDocument"]["Statement"]
            .as_array_mut()
            .expect("statements")
            .push(json!({ "Action": "execute-api:Invoke", "Effect": "Deny", "Resource": ARN }));
        assert_eq!(decide(&both, ARN), Ok(None), "an explicit Deny wins");
    }

    #[test]
    fn an_answer_api_gateway_cannot_use_is_an_error() {
        assert!(decide(&json!({}), ARN).is_err());
        assert!(decide(&json!({"principalId": "a"}), ARN).is_err());
        let mut nested = answer("Allow", json!(ARN));
        nested["context"]["list"] = json!(["a"]);
        assert!(decide(&nested, ARN).is_err());
    }

    #[test]
    fn globs_match_like_iam() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("*", ""));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a*c", "abd"));
        assert!(!glob("abc", "abcd"));
    }
}
