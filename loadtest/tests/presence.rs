//! The presence scenario against the local gateway: members watch a room while probes join and
//! leave it, `presence` is read, and connections join and leave small rooms at random while the
//! gateway POSTs its lifecycle events to the swarm. Loopback only, bounded in count and time.

mod support;

use std::time::Duration;

use loadtest::presence::{self, PresenceSwarmSettings};
use local::Settings;
use support::gateway;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn joins_and_leaves_reach_every_member_and_the_counts_and_events_stay_exact_under_churn() {
    let _frames = support::frames_checked();
    let events = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let events_listen = events.local_addr().expect("addr");
    drop(events);
    let settings = Settings {
        stage_throttle: None,
        events_url: Some(format!("http://{events_listen}/")),
        ..Settings::default()
    };
    let (url, shutdown) = gateway(settings).await;

    let report = presence::run(PresenceSwarmSettings {
        url,
        members: 30,
        probes: 4,
        presence_reads: 5,
        churn_connections: 30,
        churn_channels: 6,
        churn: Duration::from_secs(4),
        events_listen: Some(events_listen),
        deadline: Duration::from_secs(60),
    })
    .await
    .expect("the scenario runs");

    shutdown.cancel();
    assert!(report.clean(), "{report}");
    assert_eq!((report.joined, report.probes), (30, 4), "{report}");
    assert_eq!(report.frames_received, 4 * 2 * 30, "every member saw every join and leave: {report}");
    assert_eq!(report.leave_by_close_ms.samples, 2 * 30, "half the probes closed their socket: {report}");
    assert!(report.churn_actions > 30, "{report}");
    assert!(report.occupied > 0 && report.vacated > 0, "small rooms filled and emptied: {report}");
    assert_eq!(report.events_members, Some(report.churn_subscribed), "{report}");
}

#[test]
fn a_run_whose_counts_or_events_disagree_is_not_clean() {
    let clean = presence::PresenceReport {
        members: 2,
        joined: 2,
        frames_expected: 4,
        frames_received: 4,
        ..Default::default()
    };
    assert!(clean.clean());
    let churned = presence::PresenceReport {
        churn_actions: 5,
        churn_subscribed: 2,
        churn_presence_clients: Some(2),
        events_received: 9,
        events_members: Some(2),
        ..clean.clone()
    };
    assert!(churned.clean());
    for broken in [
        presence::PresenceReport { frames_received: 3, ..clean.clone() },
        presence::PresenceReport { presence_inexact: 1, ..clean.clone() },
        presence::PresenceReport { joined: 1, ..clean.clone() },
        presence::PresenceReport {
            churn_actions: 5,
            churn_subscribed: 2,
            churn_presence_clients: Some(1),
            ..clean.clone()
        },
        presence::PresenceReport { edges_out_of_turn: 1, ..churned.clone() },
        presence::PresenceReport { changes_missing: 1, ..churned.clone() },
        presence::PresenceReport { changes_repeated: 1, ..churned.clone() },
        presence::PresenceReport { events_members: Some(1), ..churned.clone() },
    ] {
        assert!(!broken.clean(), "{broken:?}");
    }
}
