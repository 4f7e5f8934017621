//! The client vocabulary: every action a JSON message may name, one file each, dispatched from one
//! table.
//!
//! A message that does not start with `{` is plain text and is echoed. A JSON message is an object with
//! a string `action`, looked up in [`ACTIONS`]; the row's parser reads the [`Fields`] it needs and
//! returns the [`Action`] that the route then applies. Adding an action is a file here and a row in
//! the table: the unknown-action error lists the table's names by itself.
//!
//! Any JSON message may carry a `ref`, a string of the client's choosing, which every answer to it
//! repeats (acknowledgement or error): with it, a client matches answers to requests however they
//! interleave. A broadcast, otherwise unanswered, is answered `{"type":"queued","id":…,"ref":…}`.
//! [`contract`] is what every action is held to and may use; [`fields`] reads what an action needs
//! of the message; [`reply`] is what goes back; [`hooks`] asks a channel's hooks, [`quota`] counts a client's messages. This file is the table
//! and [`read`], nothing else.

mod broadcast;
mod contract;
mod echo;
mod fields;
pub(crate) mod history;
mod hooks;
pub(crate) mod presence;
mod publish;
mod quota;
mod reply;
mod subscribe;
mod unsubscribe;

use shared::InputError;
use shared::limits::{MAX_JSON_DEPTH, MAX_MESSAGE_BYTES};

pub use self::contract::{Action, Context, Parse};
pub(crate) use self::fields::{Fields, json_type};
pub(crate) use self::publish::unkept;
pub use self::reply::{Refusal, Reply};

/// Every action, by the name a client gives it.
pub const ACTIONS: &[(&str, Parse)] = &[
    ("echo", echo::parse),
    ("broadcast", broadcast::parse),
    ("subscribe", subscribe::parse),
    ("unsubscribe", unsubscribe::parse),
    ("publish", publish::parse),
    ("history", history::parse),
    ("presence", presence::parse),
];

/// The longest `ref` a client may give, in characters.
pub const MAX_REF_CHARS: usize = 64;

/// A client's message, read: the `ref` every answer repeats (when it gave a valid one), and the
/// action, or why there is none.
pub struct Request {
    pub reference: Option<String>,
    pub action: Result<Box<dyn Action>, InputError>,
}

/// Reads a text message into its `ref` and its action. Text that does not start with `{` (after
/// white space) is plain text, which is echoed; text that does must be a JSON object naming a known
/// string `action`, and a `ref`, if any, of 1 to [`MAX_REF_CHARS`] characters.
pub fn read(body: &str) -> Request {
    let unreferenced = |action| Request { reference: None, action };
    if body.len() > MAX_MESSAGE_BYTES {
        return unreferenced(Err(InputError::TooLarge { limit: MAX_MESSAGE_BYTES }));
    }
    let trimmed = body.trim_start();
    if trimmed.is_empty() {
        return unreferenced(Err(InputError::Empty));
    }
    if !trimmed.starts_with('{') {
        return unreferenced(Ok(Box::new(echo::Echo)));
    }
    let mut fields: Fields = match serde_json::from_str(body) {
        Ok(fields) => fields,
        Err(err) => return unreferenced(Err(InputError::from_json(err))),
    };
    if json_depth(body) > MAX_JSON_DEPTH {
        return unreferenced(Err(InputError::TooDeeplyNested { limit: MAX_JSON_DEPTH }));
    }
    let reference = match fields.reference.take() {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(text)) if (1..=MAX_REF_CHARS).contains(&text.chars().count()) => {
            Some(text)
        }
        Some(other) => {
            let found = match &other {
                serde_json::Value::String(text) if text.is_empty() => "an empty string".to_owned(),
                serde_json::Value::String(_) => "a longer string".to_owned(),
                other => json_type(other).to_owned(),
            };
            return unreferenced(Err(InputError::InvalidRef { found, max: MAX_REF_CHARS }));
        }
    };
    Request { reference, action: action_of(fields) }
}

fn action_of(fields: Fields) -> Result<Box<dyn Action>, InputError> {
    let action = match &fields.action {
        None | Some(serde_json::Value::Null) => return Err(InputError::MissingAction),
        Some(serde_json::Value::String(action)) => action,
        Some(other) => return Err(InputError::InvalidAction { found: json_type(other) }),
    };
    // An unknown action is the first thing to tell its sender, whatever else is missing.
    let Some((_, parse)) = ACTIONS.iter().find(|(name, _)| name == action) else {
        return Err(InputError::UnknownAction { action: truncate(action, 64), known: known_actions() });
    };
    parse(fields)
}

fn known_actions() -> String {
    let names: Vec<String> = ACTIONS.iter().map(|(name, _)| format!("\"{name}\"")).collect();
    match names.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The deepest nesting of arrays and objects in a document already known to be valid JSON.
pub(crate) fn json_depth(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for byte in json.bytes() {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Keeps error messages short when a client sends a huge action name.
fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
