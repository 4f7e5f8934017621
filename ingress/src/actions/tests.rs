//! Parsing every action: each malformed message has its own code, checked before anything is done.

use shared::limits::MAX_JSON_DEPTH;

use super::*;

fn parse(body: &str) -> Result<Box<dyn Action>, InputError> {
    read(body).action
}

/// The error code `body` is refused with, or `None` when it parses.
fn refused(body: &str) -> Option<&'static str> {
    parse(body).err().map(|err| err.code())
}

#[test]
fn plain_text_and_every_well_formed_action_parse() {
    for body in [
        "Hello",
        "  [1,2]",
        r#"{"action":"echo","data":"x"}"#,
        r#" {"action":"broadcast","data":{"b": 1.50, "a":[ ]}}"#,
        r#"{"action":"subscribe","channel":"chat/*"}"#,
        r#"{"action":"unsubscribe","channel":"chat/general"}"#,
        r#"{"action":"publish","channel":"chat/general","data":{"text":"hi"},"extra":1}"#,
    ] {
        assert_eq!(refused(body), None, "{body}");
    }
}

#[test]
fn a_ref_is_read_from_any_json_message_even_one_refused_for_something_else() {
    let reference = |body: &str| read(body).reference;
    assert_eq!(reference(r#"{"action":"echo","data":1,"ref":"a-1"}"#).as_deref(), Some("a-1"));
    assert_eq!(reference(r#"{"action":"shout","ref":"b"}"#).as_deref(), Some("b"));
    assert_eq!(reference(r#"{"action":"publish","channel":"x/*","data":1,"ref":"c"}"#).as_deref(), Some("c"));
    assert_eq!(
        reference(&format!(r#"{{"action":"echo","data":1,"ref":"{}"}}"#, "é".repeat(64)))
            .map(|r| r.chars().count()),
        Some(64)
    );
    assert_eq!(reference(r#"{"action":"echo","data":1,"ref":null}"#), None);
    assert_eq!(reference("ref"), None, "plain text has none");
    for bad in [r#"7"#, r#""""#, r#"{"a":1}"#, &format!(r#""{}""#, "r".repeat(65))] {
        let body = format!(r#"{{"action":"echo","data":1,"ref":{bad}}}"#);
        let request = read(&body);
        assert_eq!(request.reference, None, "{body}");
        assert_eq!(request.action.err().map(|err| err.code()), Some("invalid_ref"), "{body}");
    }
}

#[test]
fn every_malformed_message_has_its_own_code() {
    let long = "a".repeat(51);
    let cases = [
        ("", "empty_message"),
        ("   ", "empty_message"),
        ("{", "invalid_json"),
        (r#"{"action":"broadcast","data":"x"} trailing"#, "invalid_json"),
        (r#"{"data":"x"}"#, "missing_action"),
        (r#"{"action":null,"data":"x"}"#, "missing_action"),
        (r#"{"action":7,"data":"x"}"#, "invalid_action"),
        (r#"{"action":"shout","data":"x"}"#, "unknown_action"),
        (r#"{"action":"broadcast"}"#, "missing_data"),
        (r#"{"action":"broadcast","data":null}"#, "missing_data"),
        (r#"{"action":"echo","action":"echo","data":1}"#, "invalid_json"),
        (r#"{"action":"subscribe"}"#, "missing_channel"),
        (r#"{"action":"subscribe","channel":null}"#, "missing_channel"),
        (r#"{"action":"subscribe","channel":["a"]}"#, "invalid_channel"),
        (r#"{"action":"subscribe","channel":"a b"}"#, "invalid_channel"),
        (r#"{"action":"subscribe","channel":"*"}"#, "invalid_channel"),
        (r#"{"action":"subscribe","channel":"a/*/b"}"#, "invalid_channel"),
        (r#"{"action":"subscribe","channel":"a/b/c/d/e/*"}"#, "invalid_channel"),
        (r#"{"action":"unsubscribe","channel":""}"#, "invalid_channel"),
        (r#"{"action":"unsubscribe"}"#, "missing_channel"),
        (r#"{"action":"publish","data":1}"#, "missing_channel"),
        (r#"{"action":"publish","channel":"chat/*","data":1}"#, "invalid_channel"),
        (r#"{"action":"publish","channel":"a/b/c/d/e/f","data":1}"#, "invalid_channel"),
        (r#"{"action":"publish","channel":"chat"}"#, "missing_data"),
        (r#"{"action":"publish","channel":"chat","data":null}"#, "missing_data"),
        (r#"{"action":"publish","channel":"chat","channel":"x","data":1}"#, "invalid_json"),
    ];
    for (body, code) in cases {
        assert_eq!(refused(body), Some(code), "{body}");
    }
    assert_eq!(
        refused(&format!(r#"{{"action":"publish","channel":"{long}","data":1}}"#)),
        Some("invalid_channel")
    );
}

#[test]
fn an_unknown_action_is_named_before_anything_else_and_the_error_lists_every_action() {
    assert_eq!(refused(r#"{"action":"shout"}"#), Some("unknown_action"));
    assert_eq!(refused(r#"{"action":"broadcast"}"#), Some("missing_data"));
    assert_eq!(refused(r#"{"action":"echo"}"#), Some("missing_data"));
    let message = parse(r#"{"action":"shout"}"#).err().map(|err| err.to_string()).unwrap_or_default();
    for (name, _) in ACTIONS {
        assert!(message.contains(&format!("\"{name}\"")), "{message}");
    }
}

#[test]
fn a_publish_names_its_channel_before_its_data() {
    assert_eq!(refused(r#"{"action":"publish"}"#), Some("missing_channel"));
}

#[test]
fn deeply_nested_json_is_refused_with_its_own_code() {
    let nested = |depth: usize| {
        format!(r#"{{"action":"broadcast","data":{}{}}}"#, "[".repeat(depth), "]".repeat(depth))
    };
    assert_eq!(refused(&nested(MAX_JSON_DEPTH - 1)), None);
    assert_eq!(refused(&nested(MAX_JSON_DEPTH)), Some("too_deeply_nested"));
    assert_eq!(refused(&nested(10_000)), Some("too_deeply_nested"));
    // Brackets inside strings are text, not nesting.
    let quoted = format!(r#"{{"action":"broadcast","data":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100));
    assert_eq!(refused(&quoted), None);
}

#[test]
fn a_huge_action_name_is_truncated_in_the_error() {
    let body = format!(r#"{{"action":"{}","data":1}}"#, "x".repeat(10_000));
    let message = parse(&body).err().map(|err| err.to_string()).unwrap_or_default();
    assert!(message.len() < 300, "{message}");
}

#[test]
fn client_errors_are_json_with_a_code_and_a_message() {
    let (code, body) = Refusal::Input(InputError::MissingAction).render(None);
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!((code, &body["error"]["code"]), ("missing_action", &serde_json::json!("missing_action")));
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("action")));
    assert!(body.get("ref").is_none());
    let (code, body) = Refusal::Unavailable("send it again".into()).render(Some("r1"));
    let body: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(
        (code, body["error"]["message"].as_str(), body["ref"].as_str()),
        ("unavailable", Some("send it again"), Some("r1"))
    );
}
