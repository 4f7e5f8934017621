//! Stage 2: a backend's publish gets its channel's next offset once, whatever SQS redelivers; a
//! client's, numbered by the ingress, passes untouched.

use shared::history::{HistorySettings, MemoryHistory};
use shared::namespaces::{self, ChannelOptions, Namespaces};
use shared::testing::BrokenHistory;
use shared::{History, Position};

use super::*;

fn with_history(store: Arc<ObservedStore>, poster: Arc<ScriptedPoster>, history: Arc<dyn History>) -> Worker {
    with_namespaces(store, poster, history, Namespaces::default())
}

fn with_namespaces(
    store: Arc<ObservedStore>,
    poster: Arc<ScriptedPoster>,
    history: Arc<dyn History>,
    namespaces: Namespaces,
) -> Worker {
    let queue = Arc::new(MemoryQueue::default());
    let stack = StackPorts { history: Some(history), namespaces, ..StackPorts::new(store, queue) };
    let ports = Ports::new(stack, poster);
    Worker::new(ports, settings())
}

/// The offsets of the frames `poster` delivered, in the order posted.
fn offsets(poster: &ScriptedPoster) -> Vec<u64> {
    poster
        .delivered()
        .iter()
        .map(|(_, frame)| {
            serde_json::from_slice::<Value>(frame).expect("json")["offset"].as_u64().expect("an offset")
        })
        .collect()
}

#[tokio::test]
async fn a_backend_publish_gets_the_next_offset_once_and_its_redelivery_the_same_one() {
    let store = with_connections(1, 10).await;
    subscribe(&store, 0, "news").await;
    let history: Arc<dyn History> = Arc::new(MemoryHistory::new(HistorySettings::default()));
    let poster = Arc::new(ScriptedPoster::default());
    let worker = with_history(store.clone(), poster.clone(), history.clone());
    let backend = |data: &str| format!(r#"{{"action":"publish","channel":"news","data":{data}}}"#);

    let first = sqs_event(&[backend("1"), backend("2")]);
    let report = worker.process(first, deadline(30.0)).await;
    assert!(report.failed.is_empty());
    let mut seen = offsets(&poster);
    seen.sort_unstable();
    assert_eq!(seen, [1, 2]);

    let poster_again = Arc::new(ScriptedPoster::default());
    let worker = with_history(store.clone(), poster_again.clone(), history.clone());
    worker.process(sqs_event(&[backend("1"), backend("2")]), deadline(30.0)).await;
    let mut again = offsets(&poster_again);
    again.sort_unstable();
    assert_eq!(again, [1, 2], "SQS's redelivery: same message ids, same offsets");
    let ids = |poster: &ScriptedPoster| -> Vec<Value> {
        let mut ids: Vec<Value> = poster
            .delivered()
            .iter()
            .map(|(_, f)| serde_json::from_slice::<Value>(f).expect("json")["id"].clone())
            .collect();
        ids.sort_by_key(Value::to_string);
        ids
    };
    assert_eq!(ids(&poster), ids(&poster_again));

    let channel = Channel::parse("news").expect("channel");
    let stream = history.stream(&channel).await.expect("stream");
    assert_eq!(stream.offset, 2, "no offset taken twice");
    let client = {
        let mut envelope: Job = Job::parse(&publish_body("news", "3")).expect("job");
        envelope.envelope.place(Position { offset: 41, epoch: stream.epoch.clone() });
        envelope.to_body()
    };
    let poster = Arc::new(ScriptedPoster::default());
    let worker = with_history(store, poster.clone(), history.clone());
    worker.process(sqs_event(&[client]), deadline(30.0)).await;
    assert_eq!(offsets(&poster), [41], "a client's publish keeps the offset the ingress gave it");
    assert_eq!(history.stream(&channel).await.expect("stream").offset, 2);
}

#[tokio::test]
async fn a_backend_publish_that_cannot_be_numbered_is_left_to_redelivery_before_anyone_receives_it() {
    let store = with_connections(1, 10).await;
    subscribe(&store, 0, "news").await;
    let poster = Arc::new(ScriptedPoster::default());
    let worker = with_history(store, poster.clone(), Arc::new(BrokenHistory));
    let bodies = [r#"{"action":"publish","channel":"news","data":1}"#.to_owned(), broadcast_body(0, "2")];
    let report = worker.process(sqs_event(&bodies), deadline(30.0)).await;
    assert_eq!(report.failed, [message_id(0)], "the publish only");
    assert_eq!(poster.calls(), 1, "the broadcast went; the publish reached no one");
}

#[tokio::test]
async fn a_backend_publish_is_numbered_only_where_its_namespace_keeps_history() {
    let store = with_connections(1, 10).await;
    subscribe(&store, 0, "news").await;
    subscribe(&store, 0, "cursor/doc").await;
    let namespaces =
        namespaces::parse(namespaces::FILE, "[cursor]\nhistory_size = 0\n", ChannelOptions::default())
            .expect("valid");
    let history = Arc::new(shared::history::MemoryHistory::of(namespaces.clone()));
    let poster = Arc::new(ScriptedPoster::default());
    let worker = with_namespaces(store, poster.clone(), history.clone(), namespaces);
    let bodies = [
        r#"{"action":"publish","channel":"cursor/doc","data":1}"#.to_owned(),
        r#"{"action":"publish","channel":"news","data":2}"#.to_owned(),
    ];
    let report = worker.process(sqs_event(&bodies), deadline(30.0)).await;
    assert!(report.failed.is_empty());
    let frames: Vec<Value> =
        poster.delivered().iter().map(|(_, f)| serde_json::from_slice(f).expect("json")).collect();
    let offset_of = |channel: &str| {
        frames.iter().find(|f| f["channel"] == channel).map(|f| f["offset"].clone()).expect("delivered")
    };
    assert_eq!(offset_of("cursor/doc"), Value::Null, "cursor keeps no history");
    assert_eq!(offset_of("news"), 1);
    assert_eq!(history.channels(), 1, "only news has a stream");
}
