//! Stage 3: a new message on a channel whose namespace has an event hook is handed to it once, with
//! its offset, before anyone receives it; one Lambda will not take is left to SQS's redelivery.

use std::sync::Mutex;

use shared::hooks::{HookError, Hooks, Invoked};
use shared::namespaces::{self, ChannelOptions};

use super::*;

/// Takes every `Event` invocation, or refuses each with the error `fail` makes.
#[derive(Default)]
struct RecordingHooks {
    handed: Mutex<Vec<(String, Value)>>,
    fail: Option<fn() -> HookError>,
}

#[async_trait]
impl Hooks for RecordingHooks {
    async fn invoke(&self, function: &str, _: Vec<u8>, _: Duration) -> Result<Invoked, HookError> {
        panic!("the worker asks no hook, yet {function} was invoked synchronously")
    }

    async fn notify(&self, function: &str, request: Vec<u8>) -> Result<(), HookError> {
        if let Some(fail) = self.fail {
            return Err(fail());
        }
        let request = serde_json::from_slice(&request).expect("the request is JSON");
        self.handed.lock().expect("lock").push((function.to_owned(), request));
        Ok(())
    }
}

const FILE: &str = "[chat]\nevent_hook = { function = \"archive\" }\n";

fn hooked(store: Arc<ObservedStore>, poster: Arc<ScriptedPoster>, hooks: Arc<RecordingHooks>) -> Worker {
    let namespaces = namespaces::parse(namespaces::FILE, FILE, ChannelOptions::default()).expect("valid");
    let stack = StackPorts {
        history: Some(Arc::new(shared::history::MemoryHistory::of(namespaces.clone()))),
        hooks: Some(hooks),
        namespaces,
        ..StackPorts::new(store, Arc::new(MemoryQueue::default()))
    };
    Worker::new(Ports::new(stack, poster), settings())
}

#[tokio::test]
async fn each_new_message_of_a_hooked_namespace_is_handed_to_its_event_hook_once_with_its_offset() {
    let store = with_connections(1, 10).await;
    subscribe(&store, 0, "chat/room").await;
    subscribe(&store, 0, "news").await;
    let hooks = Arc::new(RecordingHooks::default());
    let poster = Arc::new(ScriptedPoster::default());
    let worker = hooked(store, poster.clone(), hooks.clone());
    let bodies = [
        r#"{"action":"publish","channel":"chat/room","data":{"text":"from the backend"}}"#.to_owned(),
        publish_body("chat/room", r#""from a client""#),
        r#"{"action":"publish","channel":"news","data":3}"#.to_owned(),
        retry_job(vec![old(0)], 1).1,
    ];
    let report = worker.process(sqs_event(&bodies), deadline(30.0)).await;
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(poster.calls(), 4, "every message delivered");

    let handed = hooks.handed.lock().expect("lock").clone();
    assert_eq!(handed.len(), 2, "the two chat messages, and nothing of news or of the retry job: {handed:?}");
    let mut offsets = Vec::new();
    for (function, request) in &handed {
        assert_eq!(function, "archive");
        assert_eq!(request["info"]["operation"], "PUBLISH");
        assert_eq!(request["info"]["channel"]["path"], "/chat/room");
        assert_eq!(request["info"]["channelNamespace"]["name"], "chat");
        assert_eq!(request["events"].as_array().map(Vec::len), Some(1));
        offsets.push(request["websocket"]["offset"].as_u64().expect("an offset"));
    }
    offsets.sort_unstable();
    assert_eq!(offsets, [1, 2], "handed after numbering");
    let backend = handed.iter().find(|(_, r)| r["websocket"]["action"] == "backend").expect("the backend's");
    assert_eq!(backend.1["events"][0]["payload"], json!({"text": "from the backend"}));
    assert_eq!(backend.1["websocket"]["connectionId"], Value::Null);
    let client = handed.iter().find(|(_, r)| r["websocket"]["action"] == "publish").expect("the client's");
    assert_eq!(client.1["websocket"]["connectionId"], id(0).to_string());
    assert_eq!(client.1["events"][0]["payload"], "from a client");
}

#[tokio::test]
async fn a_message_its_event_hook_will_not_take_is_redelivered_before_anyone_receives_it() {
    let store = with_connections(1, 10).await;
    subscribe(&store, 0, "chat/room").await;
    subscribe(&store, 0, "news").await;
    let throttled = Arc::new(RecordingHooks {
        fail: Some(|| HookError::Unavailable("TooManyRequestsException".into())),
        ..RecordingHooks::default()
    });
    let poster = Arc::new(ScriptedPoster::default());
    let worker = hooked(store.clone(), poster.clone(), throttled);
    let bodies =
        [publish_body("chat/room", "1"), r#"{"action":"publish","channel":"news","data":2}"#.to_owned()];
    let report = worker.process(sqs_event(&bodies), deadline(30.0)).await;
    assert_eq!(report.failed, [message_id(0)], "the hooked message only");
    assert_eq!(poster.calls(), 1, "news went; the chat message reached no one");

    let missing = Arc::new(RecordingHooks {
        fail: Some(|| HookError::Refused("ResourceNotFoundException: Function not found".into())),
        ..RecordingHooks::default()
    });
    let poster = Arc::new(ScriptedPoster::default());
    let report = hooked(store, poster.clone(), missing).process(sqs_event(&bodies), deadline(30.0)).await;
    assert!(report.failed.is_empty(), "a hook that cannot be invoked does not stop its channel");
    assert_eq!(poster.calls(), 2);
}
