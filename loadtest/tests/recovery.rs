//! The recovery scenario against the local gateway: subscribers cut at random, by their own side and
//! by `DELETE @connections`, while publishers publish; every app gets every message of its channel,
//! in order, once. Loopback only, bounded in count and time.

mod support;

use std::time::Duration;

use loadtest::recovery::{self, RecoverySwarmSettings};
use local::Settings;
use support::gateway;

fn swarm(url: String) -> RecoverySwarmSettings {
    let endpoint = url.replacen("ws://", "http://", 1);
    RecoverySwarmSettings {
        url,
        subscribers: 12,
        channels: 3,
        publishers: 2,
        messages: 120,
        rate: 60.0,
        size: 200,
        cut_every: Some((Duration::from_millis(500), Duration::from_millis(1_500))),
        away: (Duration::from_millis(50), Duration::from_millis(400)),
        server_cuts: 0.5,
        order_wait: Duration::from_secs(1),
        endpoint,
        region: "us-east-1".into(),
        credentials: ("local".into(), "local".into()),
        settle: Duration::from_secs(20),
        deadline: Duration::from_secs(60),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_cut_by_either_side_recover_every_message_in_order_once() {
    let _frames = support::frames_checked();
    let (url, shutdown) = gateway(Settings { stage_throttle: None, ..Settings::default() }).await;

    let report = recovery::run(swarm(url)).await.expect("the scenario runs");

    shutdown.cancel();
    assert_eq!(report.published, 240, "{report}");
    assert_eq!(report.owed, 240 / 3 * 12, "every subscriber is owed its channel's messages: {report}");
    assert!(report.clean(), "{report}");
    assert_eq!((report.gaps, report.unrecovered), (0, 0), "every position was still kept: {report}");
    assert!(report.cuts_by_client > 0 && report.cuts_by_server > 0, "{report}");
    // Each cut is followed by a recovered resubscription, but for a subscriber's last cut when the
    // run ends while it is still away.
    let cuts = report.cuts_by_client + report.cuts_by_server;
    assert!(report.recovered <= cuts && report.recovered + report.subscribers >= cuts, "{report}");
    assert!(report.recovery_ms.samples > 0, "some came back to messages they had missed: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_away_longer_than_the_history_keeps_is_told_of_the_gap_and_loses_nothing_silently() {
    let _frames = support::frames_checked();
    let history = shared::history::HistorySettings { size: 3, ..Default::default() };
    let (url, shutdown) = gateway(Settings { stage_throttle: None, history, ..Settings::default() }).await;
    let settings = RecoverySwarmSettings {
        subscribers: 4,
        channels: 1,
        publishers: 1,
        messages: 100,
        rate: 50.0,
        away: (Duration::from_millis(600), Duration::from_millis(800)),
        ..swarm(url)
    };

    let report = recovery::run(settings).await.expect("the scenario runs");

    shutdown.cancel();
    assert!(report.clean(), "{report}");
    assert!(report.unrecovered > 0 && report.gaps > 0 && report.in_gaps > 0, "{report}");
    assert_eq!(
        report.in_gaps + report.delivered,
        report.owed,
        "each owed message delivered or in a gap: {report}"
    );
}
