//! The protocol as a contract: `docs/asyncapi.yaml`'s schemas, against which the end-to-end tests
//! check every frame they send (`ClientFrame`) and every frame they receive (`ServerFrame`). A frame
//! the document does not describe fails the test that saw it, naming the frame and why, so the
//! document cannot drift from the code.
//!
//! A frame is its text: JSON when it starts with `{` (after white space), plain text otherwise (a
//! JSON string to the schemas).

use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::{Map, Number, Value};
use yaml_rust2::{Yaml, YamlLoader};

/// The document, as the build found it.
const DOCUMENT: &str = include_str!("../../docs/asyncapi.yaml");

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From a client: one of the `send` operation's messages.
    Sent,
    /// To a client: one of the `receive` operation's messages.
    Received,
}

/// The compiled schemas.
pub struct Contract {
    client: Validator,
    server: Validator,
    /// Each object frame's own schema, by the kind it names (`type`, `action`, `error`,
    /// `message`): what a frame that matches no branch is told it got wrong.
    kinds: Vec<(String, Validator)>,
    codes: Vec<String>,
}

impl std::fmt::Debug for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contract").field("codes", &self.codes).finish_non_exhaustive()
    }
}

/// The contract, compiled once per test process.
pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| Contract::from_yaml(DOCUMENT).expect("docs/asyncapi.yaml compiles"))
}

/// Panics, naming the frame and what the document says is wrong with it, unless `frame` is one the
/// document describes going `direction`.
pub fn check(direction: Direction, frame: &str) {
    if let Err(why) = contract().violations(direction, frame) {
        panic!("a frame {direction:?} that docs/asyncapi.yaml does not describe: {why}\n  frame: {frame}");
    }
}

impl Contract {
    /// Compiles `document` (AsyncAPI, YAML): its `ClientFrame` and `ServerFrame` schemas, and its
    /// list of error codes.
    pub fn from_yaml(document: &str) -> Result<Self, String> {
        let document = load(document)?;
        let components = document.get("components").cloned().ok_or("no components")?;
        let compile = |name: &str| {
            let root = serde_json::json!({ "$ref": format!("#/components/schemas/{name}"), "components": components });
            jsonschema::validator_for(&root).map_err(|err| format!("{name}: {err}"))
        };
        let mut kinds = Vec::new();
        for side in ["ClientFrame", "ServerFrame"] {
            for branch in components["schemas"][side]["oneOf"].as_array().ok_or("no oneOf")? {
                let Some(name) = branch["$ref"].as_str().and_then(|r| r.rsplit('/').next()) else { continue };
                if let Some(kind) = kind_of_schema(&components["schemas"][name]) {
                    kinds.push((kind, compile(name)?));
                }
            }
        }
        let codes = error_codes(&components)?;
        Ok(Self { client: compile("ClientFrame")?, server: compile("ServerFrame")?, kinds, codes })
    }

    /// Every error code the document lists, in its order.
    pub fn error_codes(&self) -> &[String] {
        &self.codes
    }

    /// Why the document does not describe `frame` going `direction`, if it does not.
    pub fn violations(&self, direction: Direction, frame: &str) -> Result<(), String> {
        let value = if frame.trim_start().starts_with('{') {
            serde_json::from_str(frame).map_err(|err| format!("starts with {{ but is not JSON: {err}"))?
        } else {
            Value::String(frame.to_owned())
        };
        let validator = match direction {
            Direction::Sent => &self.client,
            Direction::Received => &self.server,
        };
        if validator.is_valid(&value) {
            return Ok(());
        }
        // `oneOf` says only that no branch matched: ask the branch the frame meant, by its kind.
        let meant = kind_of_frame(&value).and_then(|kind| self.kinds.iter().find(|(k, _)| *k == kind));
        let (validator, kind) = match meant {
            Some((kind, validator)) => (validator, kind.as_str()),
            None => (validator, "no kind the document knows"),
        };
        let errors: Vec<String> = validator.iter_errors(&value).map(|err| err.to_string()).take(3).collect();
        Err(format!("as {kind}: {}", errors.join("; ")))
    }
}

/// The kind an object frame's schema names: its `type` or `action` constant, or the one field it
/// requires (`error`, `message`).
fn kind_of_schema(schema: &Value) -> Option<String> {
    let properties = &schema["properties"];
    for field in ["type", "action"] {
        if let Some(kind) = properties[field]["const"].as_str() {
            return Some(format!("{field}:{kind}"));
        }
    }
    let required = schema["required"].as_array()?;
    (required.len() == 1).then(|| required[0].as_str().map(|field| format!("{field}:")))?
}

/// The kind a frame names, as [`kind_of_schema`] spells it.
fn kind_of_frame(frame: &Value) -> Option<String> {
    for field in ["type", "action"] {
        if let Some(kind) = frame[field].as_str() {
            return Some(format!("{field}:{kind}"));
        }
    }
    ["error", "message"].iter().find(|field| frame.get(**field).is_some()).map(|field| format!("{field}:"))
}

/// The first YAML document in `text`, as the JSON it stands for.
pub(crate) fn load(text: &str) -> Result<Value, String> {
    let yaml = YamlLoader::load_from_str(text).map_err(|err| err.to_string())?;
    yaml.first().map(to_json).ok_or_else(|| "an empty document".to_owned())
}

/// The codes of a document's `ErrorCode` enum, in its order: the AsyncAPI document's and the
/// OpenAPI document's alike.
pub(crate) fn error_codes(components: &Value) -> Result<Vec<String>, String> {
    let codes = components["schemas"]["ErrorCode"]["enum"].as_array().ok_or("no ErrorCode enum")?;
    Ok(codes.iter().filter_map(|code| code.as_str().map(str::to_owned)).collect())
}

/// A YAML document as the JSON it stands for.
fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Hash(hash) => Value::Object(
            hash.iter()
                .map(|(key, value)| {
                    (key.as_str().map_or_else(|| format!("{key:?}"), str::to_owned), to_json(value))
                })
                .collect::<Map<_, _>>(),
        ),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::String(text) => Value::String(text.clone()),
        Yaml::Integer(n) => Value::Number((*n).into()),
        Yaml::Real(text) => {
            text.parse::<f64>().ok().and_then(Number::from_f64).map_or(Value::Null, Value::Number)
        }
        Yaml::Boolean(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_the_frames_it_shows_and_refuses_wrong_ones() {
        let contract = contract();
        let id = "7f8a2c1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b";
        for frame in [
            "Hello".to_owned(),
            r#"{"action":"subscribe","channel":"chat/*","ref":"7"}"#.to_owned(),
            r#"{"action":"publish","channel":"chat/general","data":{"text":"hi"},"extra":1}"#.to_owned(),
            r#"{"action":"history","channel":"news","since":{"offset":41,"epoch":"e1"},"limit":50}"#
                .to_owned(),
        ] {
            assert_eq!(contract.violations(Direction::Sent, &frame), Ok(()), "{frame}");
        }
        for frame in [
            format!(
                r#"{{"type":"message","channel":"news","id":"{id}","offset":1,"epoch":"e1","sentAt":1,"data":1}}"#
            ),
            r#"{"type":"subscribed","channel":"news","offset":0,"epoch":"e1","recovered":true,"ref":"r"}"#
                .to_owned(),
            r#"{"error":{"code":"missing_action","message":"the message has no action"}}"#.to_owned(),
            r#"{"message":"Too Many Requests","connectionId":"abc=","requestId":"x"}"#.to_owned(),
        ] {
            assert_eq!(contract.violations(Direction::Received, &frame), Ok(()), "{frame}");
        }
        for (frame, what) in [
            (
                format!(r#"{{"type":"message","channel":"news","id":"{id}","sentAt":"1","data":1}}"#),
                "a wrong field type",
            ),
            (
                format!(r#"{{"type":"mesage","channel":"news","id":"{id}","sentAt":1,"data":1}}"#),
                "an unknown type",
            ),
            (r#"{"type":"message","channel":"news","sentAt":1,"data":1}"#.to_owned(), "a missing id"),
            (
                format!(r#"{{"type":"message","channel":"news","id":"{id}","sentAt":1,"data":1,"extra":2}}"#),
                "a field it does not name",
            ),
            (r#"{"error":{"code":"no_such_code","message":"x"}}"#.to_owned(), "an unknown error code"),
        ] {
            assert!(contract.violations(Direction::Received, &frame).is_err(), "{what}: {frame}");
        }
        assert!(
            contract
                .violations(Direction::Sent, r#"{"action":"publish","channel":"chat/*","data":1}"#)
                .is_err()
        );
        assert!(contract.violations(Direction::Sent, r#"{"action":"subscribe"}"#).is_err(), "no channel");
    }
}
