//! A namespace's subscribe and publish hooks, invoked through a real Invoke API (the SDK's Lambda
//! client against testkit's), in AppSync Events' shapes: what they are asked, how their answers
//! decide, and what a hook that decides nothing does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::apigw::ApiGatewayWebsocketProxyRequest;
use ingress::{Ingress, Ports};
use serde_json::{Value, json};
use shared::history::MemoryHistory;
use shared::hooks::LambdaHooks;
use shared::namespaces::{self, ChannelOptions};
use shared::presence::MemoryPresence;
use shared::queue::MemoryQueue;
use shared::store::MemoryStore;
use shared::{Channel, History, Job};
use testkit::{InvokeApi, Outcome};

mod events;
use events::{ID, context};

struct Fixture {
    api: InvokeApi,
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    history: Arc<MemoryHistory>,
    ingress: Ingress,
}

/// The ingress with `namespaces.toml` holding `text`, its hooks served by a fresh Invoke API.
async fn fixture(text: &str) -> Fixture {
    let api = InvokeApi::start().await;
    let namespaces = namespaces::parse(namespaces::FILE, text, ChannelOptions::default()).expect("valid");
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let history = Arc::new(MemoryHistory::of(namespaces.clone()));
    let hooks = LambdaHooks::for_endpoint(&api.endpoint(), "us-east-1", "local", "local");
    let ports = Ports {
        history: Some(history.clone()),
        presence: Some(Arc::new(MemoryPresence::new())),
        hooks: Some(Arc::new(hooks)),
        namespaces,
        ..Ports::new(store.clone(), queue.clone())
    };
    Fixture { api, store, queue, history, ingress: Ingress::new(ports) }
}

fn event(
    route: &str,
    event_type: &str,
    body: Option<&str>,
    authorizer: Option<Value>,
) -> ApiGatewayWebsocketProxyRequest {
    let mut context = context(route, event_type);
    if let Some(authorizer) = authorizer {
        context["authorizer"] = authorizer;
    }
    let mut event = json!({ "requestContext": context, "isBase64Encoded": false });
    if let Some(body) = body {
        event["body"] = json!(body);
    }
    serde_json::from_value(event).expect("an event")
}

fn alice() -> Value {
    json!({ "principalId": "alice", "sub": "alice", "subscribe": "[\"chat/*\",\"doc/*\"]", "info": "{\"name\":\"Alice\"}" })
}

async fn connect(f: &Fixture) {
    let response =
        f.ingress.handle(event("$connect", "CONNECT", None, Some(alice()))).await.expect("connect");
    assert_eq!(response.status_code, 200);
}

/// Sends `body` as Alice and returns the reply, checked against the protocol's contract.
async fn say(f: &Fixture, body: &str) -> Value {
    say_as(f, Some(alice()), body).await
}

/// Sends `body` from a connection whose authorizer said `authorizer` (`None`: anonymous).
async fn say_as(f: &Fixture, authorizer: Option<Value>, body: &str) -> Value {
    let response =
        f.ingress.handle(event("$default", "MESSAGE", Some(body), authorizer)).await.expect("handled");
    let text = match &response.body {
        Some(aws_lambda_events::encodings::Body::Text(text)) => text.clone(),
        other => panic!("a text reply, not {other:?}"),
    };
    testkit::contract::check(testkit::contract::Direction::Received, &text);
    serde_json::from_str(&text).expect("JSON")
}

fn refused(message: &str) -> Outcome {
    Outcome::Raises { error_type: "UnauthorizedException".into(), message: message.into() }
}

#[tokio::test]
async fn a_subscribe_hook_is_asked_in_appsync_events_shape_and_its_refusal_reaches_the_client() {
    let f = fixture("[chat]\nsubscribe_hook = { function = \"rooms\" }\n").await;
    f.api.function("rooms", |event| {
        if event["info"]["channel"]["segments"][1] == "secret" {
            refused("you are not in this room")
        } else {
            Outcome::Returns(Value::Null)
        }
    });
    connect(&f).await;
    let own_channel = f.store.subscription_count();
    assert_eq!(say(&f, r#"{"action":"subscribe","channel":"chat/general"}"#).await["type"], "subscribed");
    let reply = say(&f, r#"{"action":"subscribe","channel":"chat/secret"}"#).await;
    assert_eq!(reply["error"]["code"], "forbidden_channel", "{reply}");
    assert_eq!(
        reply["error"]["message"],
        "not allowed to subscribe to \"chat/secret\": you are not in this room"
    );
    assert_eq!(f.store.subscription_count(), own_channel + 1, "the refused subscribe is not stored");

    let (function, asked) = f.api.received().into_iter().next().expect("the hook was asked");
    assert_eq!(function, "rooms");
    assert_eq!(asked["info"]["channel"], json!({ "path": "/chat/general", "segments": ["chat", "general"] }));
    assert_eq!(asked["info"]["channelNamespace"], json!({ "name": "chat" }));
    assert_eq!(asked["info"]["operation"], "SUBSCRIBE");
    assert_eq!(asked["events"], Value::Null);
    assert_eq!(asked["identity"]["sub"], "alice");
    assert_eq!(asked["identity"]["claims"]["subscribe"], json!(["chat/*", "doc/*"]));
    assert_eq!(asked["identity"]["claims"]["info"], json!({ "name": "Alice" }));
    assert_eq!(
        asked["websocket"],
        json!({ "connectionId": ID, "user": "alice", "info": { "name": "Alice" }, "action": "subscribe" })
    );
    for empty in ["result", "error", "prev"] {
        assert_eq!(asked[empty], Value::Null, "{empty}");
    }
    assert_eq!((asked["stash"].clone(), asked["outErrors"].clone()), (json!({}), json!([])));

    // Other namespaces ask no one; a token's refusal comes before any hook's.
    assert_eq!(say(&f, r#"{"action":"subscribe","channel":"doc/1"}"#).await["type"], "subscribed");
    let reply = say(&f, r#"{"action":"subscribe","channel":"news"}"#).await;
    assert_eq!(reply["error"]["code"], "forbidden_channel");
    assert_eq!(f.api.received().len(), 2, "doc/1 and news asked nothing");
}

#[tokio::test]
async fn history_presence_a_resubscribe_and_a_wildcard_each_ask_the_subscribe_hook() {
    let f = fixture("[chat]\nsubscribe_hook = { function = \"rooms\" }\n").await;
    f.api.function("rooms", |event| {
        if event["websocket"]["action"] == "presence" {
            Outcome::Returns(json!({ "error": "members are private\nhere" }))
        } else {
            Outcome::Returns(Value::Null)
        }
    });
    connect(&f).await;
    let epoch = say(&f, r#"{"action":"subscribe","channel":"chat/a"}"#).await["epoch"].clone();
    let since =
        json!({ "action": "subscribe", "channel": "chat/a", "since": { "offset": 0, "epoch": epoch } });
    assert_eq!(say(&f, &since.to_string()).await["recovered"], true);
    assert_eq!(say(&f, r#"{"action":"history","channel":"chat/a"}"#).await["type"], "history");
    let reply = say(&f, r#"{"action":"presence","channel":"chat/a"}"#).await;
    assert_eq!(
        reply["error"]["message"],
        "not allowed to read the presence of \"chat/a\": members are private here"
    );
    assert_eq!(say(&f, r#"{"action":"subscribe","channel":"chat/*"}"#).await["type"], "subscribed");
    let asked: Vec<(String, String)> = f
        .api
        .received()
        .iter()
        .map(|(_, e)| {
            (
                e["websocket"]["action"].as_str().unwrap_or("").to_owned(),
                e["info"]["channel"]["path"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let expected = [
        ("subscribe", "/chat/a"),
        ("subscribe", "/chat/a"),
        ("history", "/chat/a"),
        ("presence", "/chat/a"),
        ("subscribe", "/chat/*"),
    ];
    assert_eq!(asked, expected.map(|(a, p)| (a.to_owned(), p.to_owned())));
}

#[tokio::test]
async fn a_hook_that_decides_nothing_is_refused_unavailable_or_let_through_as_its_namespace_says() {
    let f = fixture(
        "[slow]\nsubscribe_hook = { function = \"slow\", timeout_ms = 200 }\n\n\
         [broken]\nsubscribe_hook = { function = \"broken\" }\n\n\
         [garbled]\nsubscribe_hook = { function = \"garbled\" }\n\n\
         [missing]\nsubscribe_hook = { function = \"nobody\" }\n\n\
         [lenient]\nsubscribe_hook = { function = \"slow\", timeout_ms = 200, on_failure = \"allow\" }\n",
    )
    .await;
    f.api.function("slow", |_| {
        Outcome::After(Duration::from_secs(10), Box::new(Outcome::Returns(Value::Null)))
    });
    f.api.function("broken", |_| Outcome::Raises { error_type: "KeyError".into(), message: "'room'".into() });
    f.api.function("garbled", |_| Outcome::ReturnsText("<html>not json</html>".into()));
    let anonymous = f.ingress.handle(event("$connect", "CONNECT", None, None)).await.expect("connect");
    assert_eq!(anonymous.status_code, 200);
    let alice_channels = f.store.subscription_count();
    for (channel, why) in [
        ("slow/1", "it took too long"),
        ("broken/1", "it failed"),
        ("garbled/1", "its answer could not be read"),
        ("missing/1", "it could not be invoked"),
    ] {
        let started = Instant::now();
        let reply = say_as(&f, None, &json!({ "action": "subscribe", "channel": channel }).to_string()).await;
        assert_eq!(reply["error"]["code"], "unavailable", "{channel}: {reply}");
        assert!(reply["error"]["message"].as_str().is_some_and(|m| m.contains(why)), "{channel}: {reply}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{channel}: answered without waiting for the hook"
        );
    }
    assert_eq!(f.store.subscription_count(), alice_channels, "nothing stored");
    let reply = say_as(&f, None, r#"{"action":"subscribe","channel":"lenient/1"}"#).await;
    assert_eq!(reply["type"], "subscribed", "on_failure = \"allow\": {reply}");
}

fn publish_hook(event: &Value) -> Outcome {
    let id = event["events"][0]["id"].clone();
    let text = event["events"][0]["payload"]["text"].as_str().unwrap_or_default().to_owned();
    let answer = if text.contains("darn") {
        json!({ "events": [{ "id": id, "error": "ValueError - banned word" }] })
    } else if text == "drop me" {
        json!({ "events": [{ "id": "someone-else", "payload": { "text": "not asked" } }] })
    } else if text == "huge" {
        json!({ "events": [{ "id": id, "payload": { "text": "x".repeat(130 * 1024) } }] })
    } else {
        json!({ "events": [{ "id": id, "payload": { "text": text, "name": event["identity"]["claims"]["info"]["name"] } }] })
    };
    Outcome::Returns(answer)
}

fn jobs(f: &Fixture) -> Vec<Job> {
    f.queue.peek().iter().map(|body| Job::parse(body).expect("a job")).collect()
}

#[tokio::test]
async fn a_publish_hook_changes_refuses_or_drops_a_message_before_it_takes_an_offset() {
    let f = fixture("[chat]\npublish_hook = { function = \"moderate\" }\n").await;
    f.api.function("moderate", publish_hook);
    connect(&f).await;
    let reply = say(&f, r#"{"action":"publish","channel":"chat/a","data":{"text":"hello"}}"#).await;
    assert_eq!((reply["type"].clone(), reply["offset"].clone()), (json!("published"), json!(1)), "{reply}");
    let (_, asked) = f.api.received().pop().expect("asked");
    assert_eq!(asked["info"]["operation"], "PUBLISH");
    assert_eq!(asked["events"], json!([{ "id": reply["id"], "payload": { "text": "hello" } }]));
    let job = &jobs(&f)[0];
    let delivered: Value =
        serde_json::from_str(job.envelope.data.as_ref().expect("data").get()).expect("json");
    assert_eq!(
        delivered,
        json!({ "text": "hello", "name": "Alice" }),
        "the hook's change is what is delivered"
    );
    let channel = Channel::parse("chat/a").expect("a channel");
    let kept = f.history.read(&channel, shared::history::Range::Newest(10), usize::MAX).await.expect("read");
    assert!(kept.messages[0].frame.contains(r#""name":"Alice""#), "history keeps what is delivered");

    let reply = say(&f, r#"{"action":"publish","channel":"chat/a","data":{"text":"darn it"}}"#).await;
    assert_eq!(reply["error"]["code"], "forbidden_channel");
    assert_eq!(reply["error"]["message"], "not allowed to publish to \"chat/a\": ValueError - banned word");
    let reply = say(&f, r#"{"action":"publish","channel":"chat/a","data":{"text":"huge"}}"#).await;
    assert_eq!(reply["error"]["code"], "message_too_large", "{reply}");
    let reply = say(&f, r#"{"action":"publish","channel":"chat/a","data":{"text":"drop me"}}"#).await;
    assert_eq!(reply["dropped"], true, "{reply}");
    assert!(reply.get("offset").is_none(), "{reply}");
    assert_eq!(jobs(&f).len(), 1, "only the first reached the queue");
    assert_eq!(f.history.stream(&channel).await.expect("stream").offset, 1, "no other took an offset");

    // A channel in no hooked namespace is published as before.
    let reply = say(&f, r#"{"action":"publish","channel":"doc/a","data":{"text":"darn"}}"#).await;
    assert_eq!(reply["type"], "published");
}
