//! A join or leave frame's audience, the channel's watchers, listed from presence; and stage 8's
//! pruning ending a gone connection's memberships as its `$disconnect` would have.

use shared::Presence;
use shared::domain::EnvelopeKind;
use shared::events::RecentEvents;
use shared::identity::Identity;
use shared::presence::{Member, MemoryPresence};

use super::*;

fn with_presence(
    store: Arc<ObservedStore>,
    poster: Arc<ScriptedPoster>,
    presence: Arc<MemoryPresence>,
    events: Arc<RecentEvents>,
) -> (Worker, Arc<MemoryQueue>) {
    let queue = Arc::new(MemoryQueue::default());
    let stack = StackPorts {
        presence: Some(presence),
        events: Some(events),
        ..StackPorts::new(store, queue.clone())
    };
    let ports = Ports::new(stack, poster);
    (Worker::new(ports, settings()), queue)
}

async fn join(presence: &MemoryPresence, channel: &str, n: usize, join_leave: bool) {
    let member = Member::new(old(n), &Identity::Anonymous, 1, join_leave);
    presence.join(&Channel::parse(channel).expect("channel"), &member).await.expect("join");
}

#[tokio::test]
async fn a_join_frame_reaches_the_channels_watchers_and_no_other_member_or_connection() {
    let store = with_connections(5, 10).await;
    let presence = Arc::new(MemoryPresence::new());
    join(&presence, "room/1", 0, true).await;
    join(&presence, "room/1", 1, false).await;
    join(&presence, "room/1", 2, true).await;
    join(&presence, "room/2", 3, true).await;
    let poster = Arc::new(ScriptedPoster::default());
    let events = Arc::new(RecentEvents::new(10, "000000000000", "us-east-1"));
    let (worker, _) = with_presence(store, poster.clone(), presence, events);
    let room = Channel::parse("room/1").expect("channel");
    let frame = Envelope::presence(EnvelopeKind::Join, room.clone(), id(4), None, None, 1);
    let body = Job { envelope: frame, audience: Audience::Watchers(room), attempt: 0 }.to_body();

    let report = worker.process(sqs_event(&[body]), deadline(30.0)).await;

    assert!(report.failed.is_empty());
    assert_eq!(poster.recipients(), [id(0), id(2)].into_iter().collect(), "the watchers of room/1 alone");
    let (_, frame) = &poster.delivered()[0];
    let frame: Value = serde_json::from_slice(frame).expect("json");
    assert_eq!((frame["type"].as_str(), frame["connection"].as_str()), (Some("join"), Some(id(4).as_str())));
}

#[tokio::test]
async fn a_pruned_connection_leaves_its_channels_with_its_leave_frame_and_events() {
    let store = with_connections(3, 10).await;
    for n in 0..3 {
        subscribe(&store, n, "room/1").await;
    }
    subscribe(&store, 2, "room/*").await;
    let presence = Arc::new(MemoryPresence::new());
    join(&presence, "room/1", 0, true).await;
    join(&presence, "room/1", 1, false).await;
    join(&presence, "room/1", 2, false).await;
    let poster = Arc::new(ScriptedPoster::default());
    poster.script(&id(2), Scripted::Gone);
    let events = Arc::new(RecentEvents::new(10, "000000000000", "us-east-1"));
    let (worker, queue) = with_presence(store.clone(), poster, presence.clone(), events.clone());

    worker.process(sqs_event(&[publish_body("room/1", "1")]), deadline(30.0)).await;

    let room = Channel::parse("room/1").expect("channel");
    let members = presence.members(&room, 0).await.expect("members").members;
    assert_eq!(members.len(), 2, "the gone connection is no member any more");
    assert!(members.iter().all(|m| m.connection.id != id(2)));
    let kinds: Vec<Value> = events.recent().iter().map(|e| e["detail-type"].clone()).collect();
    assert_eq!(kinds, [json!("MemberLeft")], "one leave, for its one channel (a pattern makes no member)");
    let jobs: Vec<Job> = queue.peek().iter().map(|body| Job::parse(body).expect("a job")).collect();
    assert_eq!(jobs.len(), 1, "its leave frame, for the channel's watcher");
    assert_eq!(jobs[0].audience, Audience::Watchers(room));
    assert_eq!(jobs[0].envelope.connection.as_ref(), Some(&id(2)));
}
