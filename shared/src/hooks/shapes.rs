//! What a hook receives and how its answer is read: AppSync Events' direct Lambda integration.
//!
//! The request is AppSync's context — `identity`, `info.channel` (`path` with its leading `/`,
//! `segments`), `info.channelNamespace.name`, `info.operation` (`SUBSCRIBE` or `PUBLISH`), `events`
//! (`[{id, payload}]` for a publish, `null` for a subscribe), and the fields AppSync sends empty
//! (`result`, `request`, `error`, `prev`, `stash`, `outErrors`) — plus one object of this project's
//! own, `websocket`: the caller's `connectionId`, `user` and `info`, and the client's `action`
//! (`subscribe`, `history` and `presence` all ask a subscribe hook, as one `SUBSCRIBE`). The
//! `identity` is a token's, as AppSync gives an OIDC caller's: `sub` and `claims` (the token's
//! `sub`, its `subscribe` and `publish` patterns and its `info`, as the authorizer passed them on);
//! `null` for an anonymous connection, as for an API key.
//!
//! The answer, as Powertools' resolver writes it:
//! - a subscribe is allowed by `null` (or any object without `error`), refused by `{"error": …}`
//!   or by raising `UnauthorizedException`;
//! - a publish by `{"events": [{"id", "payload"}]}`: the event with the message's id is forwarded
//!   with that payload (changed or not); none with it, or its payload `null`, drops the message;
//!   `{"id", "error"}` for it,
//!   `{"error": …}` for the whole request or `UnauthorizedException` refuses it. Events with ids it
//!   was not asked about are ignored.
//!
//! Anything else — another exception, an answer that is not JSON or not of these shapes — is no
//! decision: a [`HookFailure`], which the namespace's `on_failure` turns into a refusal or a pass.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::port::{HookError, Invoked};
use crate::channel::{Channel, ChannelPattern};
use crate::domain::{ConnectionId, Envelope, MessageId};
use crate::identity::{Grant, Identity};

/// The exception Powertools' resolver raises to refuse a request.
pub const UNAUTHORIZED: &str = "UnauthorizedException";

/// The most of a hook's refusal a client is shown: its message, in one line.
pub const MAX_REFUSAL_CHARS: usize = 200;

/// Who asks.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub connection: &'a ConnectionId,
    pub identity: &'a Identity,
}

/// What a hook is asked about.
#[derive(Clone, Copy, Debug)]
pub enum Asked<'a> {
    /// A `subscribe` to a channel or a pattern, or a `history` or `presence` read of a channel
    /// (`action` says which).
    Subscribe { pattern: &'a ChannelPattern, action: &'a str },
    /// A client's `publish` of one message.
    Publish { channel: &'a Channel, id: &'a MessageId, data: &'a RawValue },
}

/// A subscribe hook's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubscribeVerdict {
    Allow,
    /// Refused, with the hook's message (one line, at most [`MAX_REFUSAL_CHARS`]).
    Refuse(String),
}

/// A publish hook's decision.
#[derive(Debug)]
pub enum PublishVerdict {
    /// Published with this payload (the client's, or the hook's change of it).
    Forward(Box<RawValue>),
    /// Dropped: published to no one, and the publisher told so.
    Drop,
    /// Refused, with the hook's message.
    Refuse(String),
}

/// A hook that decided nothing.
#[derive(Debug, thiserror::Error)]
pub enum HookFailure {
    #[error(transparent)]
    Invoke(#[from] HookError),
    #[error("the function raised {error_type}: {message}")]
    Raised { error_type: String, message: String },
    #[error("its answer is not what AppSync Events expects: {0}")]
    Malformed(String),
}

/// The request `asked` sends, as JSON.
pub fn request(caller: Caller<'_>, asked: Asked<'_>) -> Vec<u8> {
    let (path, operation, action, events) = match asked {
        Asked::Subscribe { pattern, action } => (pattern.as_str(), "SUBSCRIBE", action, Value::Null),
        Asked::Publish { channel, id, data } => {
            let payload: Value = serde_json::from_str(data.get()).unwrap_or(Value::Null);
            (channel.as_str(), "PUBLISH", "publish", json!([{ "id": id.to_string(), "payload": payload }]))
        }
    };
    let info = caller.identity.info().and_then(|info| serde_json::from_str::<Value>(info.as_str()).ok());
    let websocket = json!({
        "connectionId": caller.connection.to_string(),
        "user": caller.identity.user(),
        "info": info,
        "action": action,
    });
    context(path, operation, identity(caller.identity), events, websocket)
}

/// The request an event hook is handed for a message published to `channel`: AppSync Events'
/// `PUBLISH` context with the one event, as its `EVENT` invocations send it, and in `websocket` the
/// message's place — `offset` and `epoch` (absent when the channel keeps no history), `sentAt` —
/// and its sender: `connectionId` and `action` `publish` for a client's, `null` and `backend` for
/// the backend's. The `identity` carries the sender's `sub` alone: the token's other claims stayed
/// with the connection.
pub fn event_request(channel: &Channel, envelope: &Envelope) -> Vec<u8> {
    let payload: Value =
        envelope.data.as_ref().and_then(|data| serde_json::from_str(data.get()).ok()).unwrap_or(Value::Null);
    let identity = match &envelope.user {
        Some(sub) => json!({ "sub": sub, "claims": { "sub": sub } }),
        None => Value::Null,
    };
    let websocket = json!({
        "connectionId": envelope.from.as_ref().map(ToString::to_string),
        "user": envelope.user,
        "action": if envelope.from.is_some() { "publish" } else { "backend" },
        "offset": envelope.offset,
        "epoch": envelope.epoch.as_ref().map(|epoch| epoch.as_str()),
        "sentAt": envelope.sent_at,
    });
    let events = json!([{ "id": envelope.id.to_string(), "payload": payload }]);
    context(channel.as_str(), "PUBLISH", identity, events, websocket)
}

/// AppSync Events' context for `path` (a channel or a pattern, without its leading `/`), with the
/// fields AppSync sends empty, and this project's `websocket` object.
fn context(path: &str, operation: &str, identity: Value, events: Value, websocket: Value) -> Vec<u8> {
    let segments: Vec<&str> = path.split('/').collect();
    json!({
        "identity": identity,
        "result": null,
        "request": { "headers": {}, "domainName": null },
        "info": {
            "channel": { "path": format!("/{path}"), "segments": segments },
            "channelNamespace": { "name": segments.first().copied().unwrap_or_default() },
            "operation": operation,
        },
        "error": null,
        "prev": null,
        "stash": {},
        "outErrors": [],
        "events": events,
        "websocket": websocket,
    })
    .to_string()
    .into_bytes()
}

fn identity(identity: &Identity) -> Value {
    match identity {
        Identity::Anonymous => Value::Null,
        Identity::User { sub, subscribe, publish, info } => {
            let grant =
                |grant: &Grant| grant.to_context().and_then(|text| serde_json::from_str::<Value>(&text).ok());
            let mut claims = json!({ "sub": sub });
            if let Some(patterns) = grant(subscribe) {
                claims["subscribe"] = patterns;
            }
            if let Some(patterns) = grant(publish) {
                claims["publish"] = patterns;
            }
            if let Some(info) =
                info.as_ref().and_then(|info| serde_json::from_str::<Value>(info.as_str()).ok())
            {
                claims["info"] = info;
            }
            json!({ "sub": sub, "claims": claims })
        }
    }
}

/// Reads a subscribe hook's answer.
pub fn subscribe_verdict(invoked: Result<Invoked, HookError>) -> Result<SubscribeVerdict, HookFailure> {
    let answer = match decided(invoked)? {
        Decided::Unauthorized(message) => return Ok(SubscribeVerdict::Refuse(message)),
        Decided::Answer(answer) => answer,
    };
    match answer {
        Value::Null => Ok(SubscribeVerdict::Allow),
        Value::Object(object) => match object.get("error") {
            None | Some(Value::Null) => Ok(SubscribeVerdict::Allow),
            Some(error) => Ok(SubscribeVerdict::Refuse(refusal(error))),
        },
        other => Err(HookFailure::Malformed(format!(
            "a subscribe is answered null or an object, not {}",
            kind(&other)
        ))),
    }
}

#[derive(Deserialize)]
struct PublishAnswer {
    #[serde(default)]
    events: Option<Vec<Box<RawValue>>>,
    #[serde(default)]
    error: Option<Value>,
}

/// Reads a publish hook's answer about message `id`.
pub fn publish_verdict(
    invoked: Result<Invoked, HookError>,
    id: &MessageId,
) -> Result<PublishVerdict, HookFailure> {
    let bytes = match invoked? {
        Invoked::Raised { error_type, message } if error_type == UNAUTHORIZED => {
            return Ok(PublishVerdict::Refuse(one_line(&message)));
        }
        Invoked::Raised { error_type, message } => return Err(HookFailure::Raised { error_type, message }),
        Invoked::Answer(bytes) => bytes,
    };
    let answer: PublishAnswer = serde_json::from_slice(&bytes).map_err(|err| {
        HookFailure::Malformed(format!("a publish is answered {{\"events\":[…]}} or {{\"error\":…}}: {err}"))
    })?;
    if let Some(error) = answer.error.filter(|error| !error.is_null()) {
        return Ok(PublishVerdict::Refuse(refusal(&error)));
    }
    let events = answer
        .events
        .ok_or_else(|| HookFailure::Malformed("a publish is answered with its \"events\"".into()))?;
    let id = id.to_string();
    let mut unasked = 0;
    for event in events {
        // Field by field as raw JSON: a `payload` of `null` is not one left out.
        let mut event: std::collections::BTreeMap<String, Box<RawValue>> = serde_json::from_str(event.get())
            .map_err(|err| {
                HookFailure::Malformed(format!("an answered event is {{\"id\",\"payload\"}}: {err}"))
            })?;
        let asked = event.get("id").and_then(|raw| serde_json::from_str::<String>(raw.get()).ok());
        if asked.as_deref() != Some(id.as_str()) {
            unasked += 1;
            continue;
        }
        if unasked > 0 {
            tracing::warn!(unasked, "a publish hook answered events it was not asked about; ignored");
        }
        let error = event.get("error").and_then(|raw| serde_json::from_str::<Value>(raw.get()).ok());
        if let Some(error) = error.filter(|error| !error.is_null()) {
            return Ok(PublishVerdict::Refuse(refusal(&error)));
        }
        return match event.remove("payload") {
            // Powertools' handler returning None: nothing to publish (a message is never null).
            Some(payload) if payload.get() == "null" => Ok(PublishVerdict::Drop),
            Some(payload) => Ok(PublishVerdict::Forward(payload)),
            None => Err(HookFailure::Malformed("the message's event has no payload (and no error)".into())),
        };
    }
    if unasked > 0 {
        tracing::warn!(
            unasked,
            "a publish hook answered only events it was not asked about; the message is dropped"
        );
    }
    Ok(PublishVerdict::Drop)
}

enum Decided {
    Unauthorized(String),
    Answer(Value),
}

fn decided(invoked: Result<Invoked, HookError>) -> Result<Decided, HookFailure> {
    match invoked? {
        Invoked::Raised { error_type, message } if error_type == UNAUTHORIZED => {
            Ok(Decided::Unauthorized(one_line(&message)))
        }
        Invoked::Raised { error_type, message } => Err(HookFailure::Raised { error_type, message }),
        Invoked::Answer(bytes) => serde_json::from_slice(&bytes)
            .map(Decided::Answer)
            .map_err(|err| HookFailure::Malformed(format!("not JSON: {err}"))),
    }
}

/// A refusal's `error` as the client is shown it.
fn refusal(error: &Value) -> String {
    match error {
        Value::String(text) => one_line(text),
        other => one_line(&other.to_string()),
    }
}

/// One line of at most [`MAX_REFUSAL_CHARS`], control characters as spaces: what a hook says is
/// shown to a client, and goes in logs.
pub fn one_line(text: &str) -> String {
    let cleaned: String =
        text.chars().map(|c| if c.is_control() { ' ' } else { c }).take(MAX_REFUSAL_CHARS).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() { "refused by the channel's hook".to_owned() } else { cleaned.to_owned() }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(json: &str) -> Result<Invoked, HookError> {
        Ok(Invoked::Answer(json.as_bytes().to_vec()))
    }

    fn raised(error_type: &str, message: &str) -> Result<Invoked, HookError> {
        Ok(Invoked::Raised { error_type: error_type.into(), message: message.into() })
    }

    #[test]
    fn a_subscribe_is_allowed_by_null_or_an_object_and_refused_by_an_error_or_unauthorized() {
        assert_eq!(subscribe_verdict(answer("null")).ok(), Some(SubscribeVerdict::Allow));
        assert_eq!(subscribe_verdict(answer("{}")).ok(), Some(SubscribeVerdict::Allow));
        assert_eq!(subscribe_verdict(answer(r#"{"error":null}"#)).ok(), Some(SubscribeVerdict::Allow));
        let refused = |text: &str| Some(SubscribeVerdict::Refuse(text.into()));
        assert_eq!(subscribe_verdict(answer(r#"{"error":"closed"}"#)).ok(), refused("closed"));
        assert_eq!(subscribe_verdict(raised(UNAUTHORIZED, "members only")).ok(), refused("members only"));
        assert_eq!(
            subscribe_verdict(raised(UNAUTHORIZED, "")).ok(),
            refused("refused by the channel's hook")
        );
        for failure in [answer("[]"), answer("true"), answer("<html>"), raised("KeyError", "'room'")] {
            assert!(subscribe_verdict(failure).is_err());
        }
        let timeout = Err(HookError::Timeout(std::time::Duration::from_millis(5)));
        assert!(matches!(subscribe_verdict(timeout), Err(HookFailure::Invoke(HookError::Timeout(_)))));
    }

    #[test]
    fn a_publish_is_forwarded_changed_dropped_or_refused_by_what_its_event_says() {
        let id = MessageId::random();
        let verdict = |json: String| publish_verdict(answer(&json), &id);
        let forwarded = verdict(format!(r#"{{"events":[{{"id":"{id}","payload":{{"a":2}}}}]}}"#));
        assert!(matches!(forwarded, Ok(PublishVerdict::Forward(p)) if p.get() == r#"{"a":2}"#));
        let unasked = verdict(r#"{"events":[{"id":"other","payload":1}]}"#.into());
        assert!(matches!(unasked, Ok(PublishVerdict::Drop)), "events not asked about are ignored");
        assert!(matches!(verdict(r#"{"events":[]}"#.into()), Ok(PublishVerdict::Drop)));
        let null = verdict(format!(r#"{{"events":[{{"id":"{id}","payload":null}}]}}"#));
        assert!(matches!(null, Ok(PublishVerdict::Drop)), "Powertools' None");
        let refused = verdict(format!(r#"{{"events":[{{"id":"{id}","error":"ValueError - no"}}]}}"#));
        assert!(matches!(refused, Ok(PublishVerdict::Refuse(m)) if m == "ValueError - no"));
        assert!(
            matches!(verdict(r#"{"error":"down"}"#.into()), Ok(PublishVerdict::Refuse(m)) if m == "down")
        );
        let unauthorized = publish_verdict(raised(UNAUTHORIZED, "muted"), &id);
        assert!(matches!(unauthorized, Ok(PublishVerdict::Refuse(m)) if m == "muted"));
        for malformed in ["null", "{}", "[1]", "not json", r#"{"events":[{"id":"x"}],"#] {
            assert!(verdict(malformed.into()).is_err(), "{malformed}");
        }
        assert!(verdict(format!(r#"{{"events":[{{"id":"{id}"}}]}}"#)).is_err(), "neither payload nor error");
        assert!(publish_verdict(raised("Exception", "boom"), &id).is_err());
    }

    #[test]
    fn what_a_hook_says_reaches_a_client_as_one_bounded_line() {
        assert_eq!(one_line("no\r\nentry\u{7}"), "no  entry");
        assert_eq!(one_line(&"x".repeat(1000)).chars().count(), MAX_REFUSAL_CHARS);
        assert_eq!(one_line(" \n "), "refused by the channel's hook");
        assert_eq!(refusal(&serde_json::json!({"reason": "x"})), r#"{"reason":"x"}"#);
    }
}
