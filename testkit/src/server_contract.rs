//! The server API as a contract: `docs/openapi.yaml`'s schemas, against which the end-to-end tests
//! check every answer they get — a method's 200 answer, or the refusal every path shares — so the
//! document cannot drift from the code. Its history and presence answers are the WebSocket
//! protocol's frames (`./asyncapi.yaml#/…` in the document), resolved from `docs/asyncapi.yaml`.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::contract::{error_codes, load};
use jsonschema::Validator;
use serde_json::{Value, json};

const DOCUMENT: &str = include_str!("../../docs/openapi.yaml");
const ASYNCAPI: &str = include_str!("../../docs/asyncapi.yaml");
/// How the document names the AsyncAPI document's components, and where they are put beside its own.
const EXTERNAL: &str = "./asyncapi.yaml#/components/";
const EMBEDDED: &str = "#/asyncapi/";

/// The compiled schemas: each method's answer, and the refusal.
pub struct ServerContract {
    answers: HashMap<String, Validator>,
    refused: Validator,
    codes: Vec<String>,
}

impl std::fmt::Debug for ServerContract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerContract").field("methods", &self.answers.keys()).finish_non_exhaustive()
    }
}

/// The contract, compiled once per test process.
pub fn server_contract() -> &'static ServerContract {
    static CONTRACT: OnceLock<ServerContract> = OnceLock::new();
    CONTRACT
        .get_or_init(|| ServerContract::from_yaml(DOCUMENT, ASYNCAPI).expect("docs/openapi.yaml compiles"))
}

/// Panics, naming the answer and what the document says is wrong with it, unless `body` is what
/// the document says `method` answers with `status`.
pub fn check_answer(method: &str, status: u16, body: &Value) {
    if let Err(why) = server_contract().violations(method, status, body) {
        panic!(
            "an answer of {method} ({status}) that docs/openapi.yaml does not describe: {why}\n  answer: {body}"
        );
    }
}

/// `value` with every `$ref` that starts with `from` starting with `to` instead.
fn rebase(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(target) if key == "$ref" && target.starts_with(from) => {
                        *target = format!("{to}{}", &target[from.len()..]);
                    }
                    _ => rebase(child, from, to),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| rebase(item, from, to)),
        _ => {}
    }
}

impl ServerContract {
    /// Compiles `document` (OpenAPI 3.1, YAML) with `asyncapi`'s components beside it.
    pub fn from_yaml(document: &str, asyncapi: &str) -> Result<Self, String> {
        let mut document = load(document)?;
        rebase(&mut document, EXTERNAL, EMBEDDED);
        let mut frames = load(asyncapi)?["components"].clone();
        rebase(&mut frames, "#/components/", EMBEDDED);
        let components = document["components"].clone();
        let compile = |schema: &Value| {
            let root = json!({ "allOf": [schema], "components": components, "asyncapi": frames });
            jsonschema::validator_for(&root).map_err(|err| err.to_string())
        };
        let mut answers = HashMap::new();
        for (path, item) in document["paths"].as_object().ok_or("no paths")? {
            let method = path.strip_prefix("/api/").ok_or_else(|| format!("{path} is not under /api/"))?;
            let schema = &item["post"]["responses"]["200"]["content"]["application/json"]["schema"];
            answers.insert(method.to_owned(), compile(schema).map_err(|err| format!("{path}: {err}"))?);
        }
        let refused = compile(&json!({ "$ref": "#/components/schemas/Error" }))?;
        let codes = error_codes(&components)?;
        Ok(Self { answers, refused, codes })
    }

    /// The methods the document names, and its error codes.
    pub fn methods(&self) -> Vec<&str> {
        let mut methods: Vec<&str> = self.answers.keys().map(String::as_str).collect();
        methods.sort_unstable();
        methods
    }

    pub fn error_codes(&self) -> &[String] {
        &self.codes
    }

    /// Why the document does not describe `body` as `method`'s answer with `status`, if it does not.
    pub fn violations(&self, method: &str, status: u16, body: &Value) -> Result<(), String> {
        let validator = if status == 200 {
            self.answers.get(method).ok_or_else(|| format!("no path /api/{method}"))?
        } else {
            &self.refused
        };
        let errors: Vec<String> = validator.iter_errors(body).map(|err| err.to_string()).take(3).collect();
        if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_the_answers_it_shows_and_refuses_wrong_ones() {
        let contract = server_contract();
        let id = "7f8a2c1e-9b3d-4e5f-8a6b-1c2d3e4f5a6b";
        for (method, status, body) in [
            (
                "publish",
                200,
                json!({"published": [{"channel": "news", "id": id, "offset": 3, "epoch": "e1"}]}),
            ),
            ("publish", 200, json!({"published": [{"channel": "news", "id": id}]})),
            ("broadcast", 200, json!({"id": id})),
            (
                "history",
                200,
                json!({"type": "history", "channel": "news", "offset": 0, "epoch": "e1", "messages": [], "more": false}),
            ),
            (
                "presence",
                200,
                json!({"type": "presence", "channel": "news", "clients": 0, "users": 0, "members": []}),
            ),
            ("disconnect", 200, json!({"disconnected": 3})),
            ("unsubscribe", 200, json!({"unsubscribed": 0})),
            ("publish", 400, json!({"error": {"code": "invalid_field", "message": "invalid \"id\""}})),
            ("publish", 403, json!({"message": "Forbidden"})),
        ] {
            assert_eq!(contract.violations(method, status, &body), Ok(()), "{method} {body}");
        }
        for (method, status, body) in [
            ("publish", 200, json!({"published": [{"channel": "news", "id": id, "offset": "3"}]})),
            ("publish", 200, json!({"published": [{"channel": "news"}]})),
            ("disconnect", 200, json!({"disconnected": -1})),
            (
                "history",
                200,
                json!({"type": "history", "channel": "news", "messages": [{"type": "message"}], "more": false}),
            ),
            ("publish", 400, json!({"error": {"code": "no_such_code", "message": "x"}})),
            ("subscribe", 200, json!({})),
        ] {
            assert!(contract.violations(method, status, &body).is_err(), "{method} {body}");
        }
        assert_eq!(
            contract.methods(),
            ["broadcast", "disconnect", "history", "presence", "publish", "unsubscribe"]
        );
    }
}
