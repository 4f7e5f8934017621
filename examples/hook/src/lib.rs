//! Example hooks, each a Lambda function of this crate (`src/bin/`), in the shapes of AppSync
//! Events' direct Lambda integration (see `docs/namespaces.md`):
//!
//! - `rooms`, a subscribe hook: a user may subscribe to (and read the history and presence of) the
//!   rooms they are a member of, [`MEMBERS`]; anyone else is refused with a reason.
//! - `moderate`, a publish hook: a message with a [`BANNED`] word is refused; any other gets its
//!   sender's name added, from the token's `info.name` (else its `sub`).
//! - `archive`, an event hook: keeps every message it is handed, in memory, once per channel and
//!   offset — Lambda's asynchronous invocations are at least once — and lists a channel's when
//!   invoked with `{"list": "<channel>"}`.
//!
//! Run them beside the local gateway with `cargo lambda watch -p hook-example` (the Invoke API on
//! port 9000) and `--hooks-endpoint http://127.0.0.1:9000`; `examples/hook/namespaces.toml` names them.

use serde_json::{Value, json};

/// Who is a member of which room: `room/<name>` channels.
pub const MEMBERS: &[(&str, &[&str])] = &[("alice", &["lobby", "design"]), ("bob", &["lobby"])];

/// Words a message may not contain.
pub const BANNED: &[&str] = &["spam"];

/// The subscribe hook's answer: `null` allows, `{"error"}` refuses.
pub fn rooms(request: &Value) -> Value {
    let path = request["info"]["channel"]["path"].as_str().unwrap_or_default();
    let room = path.strip_prefix("/room/").unwrap_or_default();
    let Some(user) = request["identity"]["sub"].as_str() else {
        return json!({ "error": "sign in to join a room" });
    };
    let member = MEMBERS.iter().any(|(who, rooms)| *who == user && rooms.contains(&room));
    if member { Value::Null } else { json!({ "error": format!("{user} is not a member of {room}") }) }
}

/// The publish hook's answer: each event refused (`{"id","error"}`) or forwarded with its sender's
/// name added.
pub fn moderate(request: &Value) -> Value {
    let identity = &request["identity"];
    let name = identity["claims"]["info"]["name"].as_str().or(identity["sub"].as_str()).unwrap_or("someone");
    let events: Vec<Value> = request["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|event| {
            let text = event["payload"].to_string().to_lowercase();
            match BANNED.iter().find(|word| text.contains(*word)) {
                Some(word) => {
                    json!({ "id": event["id"], "error": format!("\"{word}\" is not allowed here") })
                }
                None => {
                    json!({ "id": event["id"], "payload": { "from": name, "message": event["payload"] } })
                }
            }
        })
        .collect();
    json!({ "events": events })
}

/// What the archive keeps: each message once, by channel and offset (or id, where the channel
/// keeps no history).
#[derive(Debug, Default)]
pub struct Archive {
    kept: Vec<Value>,
}

impl Archive {
    /// Keeps the request's message unless it has it already; lists a channel's on `{"list"}`.
    pub fn handle(&mut self, request: &Value) -> Value {
        if let Some(channel) = request["list"].as_str() {
            let listed: Vec<&Value> = self.kept.iter().filter(|kept| kept["channel"] == channel).collect();
            return json!({ "messages": listed });
        }
        let channel = request["info"]["channel"]["path"].as_str().unwrap_or_default().trim_start_matches('/');
        for event in request["events"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let kept = json!({
                "channel": channel,
                "id": event["id"],
                "offset": request["websocket"]["offset"],
                "payload": event["payload"],
            });
            let same = |other: &&Value| other["channel"] == kept["channel"] && other["id"] == kept["id"];
            if !self.kept.iter().any(|other| same(&other)) {
                self.kept.push(kept);
            }
        }
        Value::Null
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(path: &str, sub: Option<&str>) -> Value {
        let identity = sub.map_or(Value::Null, |sub| json!({ "sub": sub, "claims": { "sub": sub } }));
        json!({ "identity": identity, "info": { "channel": { "path": path } } })
    }

    #[test]
    fn a_member_may_subscribe_to_their_rooms_and_no_one_else_may() {
        assert_eq!(rooms(&asked("/room/design", Some("alice"))), Value::Null);
        assert_eq!(rooms(&asked("/room/design", Some("bob")))["error"], "bob is not a member of design");
        assert_eq!(rooms(&asked("/room/lobby", None))["error"], "sign in to join a room");
    }

    #[test]
    fn a_banned_word_is_refused_and_anything_else_signed_with_its_senders_name() {
        let request = json!({
            "identity": { "sub": "alice", "claims": { "info": { "name": "Alice" } } },
            "events": [{ "id": "1", "payload": "hello" }, { "id": "2", "payload": "buy SPAM now" }],
        });
        let answer = moderate(&request);
        assert_eq!(
            answer["events"][0],
            json!({ "id": "1", "payload": { "from": "Alice", "message": "hello" } })
        );
        assert_eq!(answer["events"][1]["error"], "\"spam\" is not allowed here");
    }

    #[test]
    fn the_archive_keeps_each_message_once_however_often_it_is_handed() {
        let mut archive = Archive::default();
        let event = json!({
            "info": { "channel": { "path": "/room/lobby" } },
            "events": [{ "id": "m1", "payload": "hi" }],
            "websocket": { "offset": 7 },
        });
        archive.handle(&event);
        archive.handle(&event);
        let listed = archive.handle(&json!({ "list": "room/lobby" }));
        assert_eq!(listed["messages"].as_array().map(Vec::len), Some(1));
        assert_eq!(listed["messages"][0]["offset"], 7);
    }
}
