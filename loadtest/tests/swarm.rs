//! The swarm against the local gateway and against the baseline: a few hundred connections, every
//! broadcast delivered once. Loopback only, bounded in count and time.

mod support;

use std::time::Duration;

use loadtest::swarm::{self, Scenario, SwarmSettings};
use local::esm::EsmSettings;
use local::{Faults, Gateway, Settings};
use shared::queue::QueueSettings;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use worker::WorkerSettings;

fn swarm(url: String, scenario: Scenario) -> SwarmSettings {
    // Each test holds both ends of its connections, and the tests run at once: past a 1,024 soft limit.
    rlimit::increase_nofile_limit(u64::MAX).expect("raise the open-file limit");
    SwarmSettings {
        url,
        connections: 300,
        connect_rate: 2_000,
        scenario,
        publishers: 3,
        messages: 4,
        rate: 50.0,
        size: 256,
        hold: Duration::from_secs(1),
        settle: Duration::from_secs(20),
        deadline: Duration::from_secs(60),
        progress: false,
        stuck: 0,
        channels: 30,
        wildcards: 20,
        jwt_secret: None,
    }
}

async fn gateway() -> (String, CancellationToken) {
    support::gateway(Settings::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_broadcast_reaches_all_300_connections_of_the_local_gateway_exactly_once() {
    let _frames = support::frames_checked();
    let (url, shutdown) = gateway().await;

    let report = swarm::run(swarm(url, Scenario::Broadcast)).await.expect("the swarm runs").report;

    shutdown.cancel();
    assert_eq!(report.connected, 300, "{report}");
    assert_eq!(report.sent, 12, "{report}");
    assert_eq!(report.tally.expected, 12 * 300, "{report}");
    assert_eq!((report.tally.lost, report.tally.duplicated, report.tally.dropped), (0, 0, 0), "{report}");
    assert!(report.errors.is_empty(), "{report}");
    assert!(report.latency_ms.samples == 3_600 && report.latency_ms.max > 0.0, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subscriber_gets_exactly_its_channels_messages_and_nobody_anothers() {
    let _frames = support::frames_checked();
    let (url, shutdown) = gateway().await;
    let settings = SwarmSettings { messages: 10, ..swarm(url, Scenario::Channels) };

    let report = swarm::run(settings).await.expect("the swarm runs").report;

    shutdown.cancel();
    assert_eq!((report.connected, report.sent), (300, 30), "{report}");
    // Each publish reaches its channel's 10 members and the 20 on the wildcard (one of them its own).
    assert!(report.tally.expected >= 30 * 28 && report.tally.expected <= 30 * 30, "{report}");
    assert_eq!(
        (report.tally.lost, report.tally.duplicated, report.tally.misdelivered, report.tally.unexpected),
        (0, 0, 0, 0),
        "{report}"
    );
    assert!(report.errors.is_empty(), "the stage throttle's refusals were retried: {report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authenticated_swarm_connects_with_tokens_and_loses_nothing() {
    let _frames = support::frames_checked();
    let secret = "swarm-secret-swarm-secret-swarm-secret";
    let verifier = authorizer::Verifier::secret(secret.as_bytes(), None, None).expect("secret");
    let settings = Settings {
        authorizer: Some(std::sync::Arc::new(authorizer::Authorizer::new(verifier))),
        ..Settings::default()
    };
    let (url, shutdown) = support::gateway(settings).await;
    let settings = SwarmSettings {
        connections: 100,
        jwt_secret: Some(secret.into()),
        ..swarm(url.clone(), Scenario::Channels)
    };

    let report = swarm::run(settings).await.expect("the swarm runs").report;
    let anonymous =
        swarm::run(SwarmSettings { connections: 5, ..config_without_auth(url) }).await.expect("runs").report;

    shutdown.cancel();
    assert_eq!(report.connected, 100, "{report}");
    assert_eq!(
        (report.tally.lost, report.tally.duplicated, report.tally.misdelivered),
        (0, 0, 0),
        "{report}"
    );
    assert_eq!(anonymous.errors.get("handshake_401"), Some(&5), "{anonymous}");
}

fn config_without_auth(url: String) -> SwarmSettings {
    SwarmSettings { jwt_secret: None, ..swarm(url, Scenario::Hold) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_echo_comes_back_to_its_sender() {
    let _frames = support::frames_checked();
    let (url, shutdown) = gateway().await;

    let report = swarm::run(swarm(url, Scenario::Echo)).await.expect("the swarm runs").report;

    shutdown.cancel();
    assert_eq!((report.tally.expected, report.tally.received, report.tally.lost), (12, 12, 0), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_baseline_server_delivers_every_broadcast_too() {
    let _frames = support::frames_checked();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let shutdown = CancellationToken::new();
    tokio::spawn(loadtest::baseline::serve(listener, shutdown.clone().cancelled_owned()));

    let report = swarm::run(swarm(url, Scenario::Broadcast)).await.expect("the swarm runs").report;

    shutdown.cancel();
    assert_eq!(
        (report.connected, report.tally.expected, report.tally.lost, report.tally.duplicated),
        (300, 3_600, 0, 0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_goes_away_shows_up_as_drops_and_close_codes() {
    let _frames = support::frames_checked();
    let (url, shutdown) = gateway().await;
    let stopper = shutdown.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        stopper.cancel();
    });
    let mut hold = swarm(url, Scenario::Hold);
    hold.connections = 50;
    hold.hold = Duration::from_secs(3);

    let report = swarm::run(hold).await.expect("the swarm runs").report;

    assert_eq!(report.connected, 50, "{report}");
    assert_eq!(report.tally.dropped, 50, "{report}");
    assert_eq!(report.errors.get("close_1001"), Some(&50), "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_injected_429s_5xx_and_lost_connections_survivors_get_every_broadcast_once_and_the_lost_are_pruned()
 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let settings = Settings {
        // 10 % of `@connections` calls throttled or failing, and about a tenth of the connections cut
        // mid-fan-out (12 broadcasts × 300 posts × 0.8 %) with no `$disconnect`.
        faults: Faults { post_throttle: 0.05, post_error: 0.05, drop_connection: 0.008, ..Faults::default() },
        // The swarm's connections are all past their handshakes when the broadcasts start.
        worker: WorkerSettings { prune_grace: Duration::ZERO, ..WorkerSettings::default() },
        ..Settings::default()
    };
    let gateway = Gateway::new(listener, settings).expect("gateway");
    let (url, store, queue) =
        (gateway.ws_url(), gateway.memory_store().expect("memory"), gateway.memory_queue().expect("memory"));
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.run(shutdown.clone().cancelled_owned()));

    let report = swarm::run(swarm(url, Scenario::Broadcast)).await.expect("the swarm runs").report;

    eprintln!("{report}");
    assert_eq!(report.connected, 300, "{report}");
    assert!(report.tally.dropped > 0, "no connection was cut: {report}");
    assert_eq!((report.tally.lost, report.tally.duplicated), (0, 0), "{report}");
    assert!(report.tally.received > 0 && report.tally.received == report.tally.expected, "{report}");
    // The swarm has closed the survivors, whose `$disconnect`s removed their records; the cut ones had
    // no `$disconnect`: only the worker's pruning can have removed theirs.
    for _ in 0..100 {
        let stats = queue.stats();
        if store.is_empty() && stats.visible + stats.in_flight + stats.delayed == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shutdown.cancel();
    assert_eq!(store.len(), 0, "records of cut connections left unpruned: {:?}", store.ids());
    assert_eq!(queue.stats().dead, 0, "{:?}", queue.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sharded_broadcast_under_failing_invocations_and_429s_reaches_everyone_once() {
    let _frames = support::frames_checked();
    let settings = Settings {
        // Shards of one connection: each broadcast to 300 is split into 50 shard jobs (five invocations
        // of ten), unless the probe happens to find no connection in its hundredth of the table.
        // An invocation that runs out of time queues its unreached connections as retry jobs a second
        // before its 4 s timeout, which the visibility timeout matches (as AWS requires).
        worker: WorkerSettings {
            shard_size: 1,
            deadline_reserve: Duration::from_secs(1),
            ..WorkerSettings::default()
        },
        // A fifth of the invocations fail before the handler runs, and their batches come back after
        // the visibility timeout; 5 % of the calls are answered 429.
        esm: EsmSettings {
            failure_rate: 0.2,
            function_timeout: Duration::from_secs(4),
            ..EsmSettings::default()
        },
        queue: QueueSettings {
            visibility_timeout: Duration::from_secs(4),
            max_receive_count: Some(20),
            ..QueueSettings::default()
        },
        faults: Faults { post_throttle: 0.05, ..Faults::default() },
        ..Settings::default()
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let gateway = Gateway::new(listener, settings).expect("gateway");
    let (url, queue) = (gateway.ws_url(), gateway.memory_queue().expect("memory"));
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.run(shutdown.clone().cancelled_owned()));

    // Failed invocations' batches come back only after the visibility timeout, some more than once:
    // the swarm waits long enough for that (it stops as soon as every delivery has arrived).
    let settings = SwarmSettings {
        settle: Duration::from_secs(45),
        deadline: Duration::from_secs(90),
        ..swarm(url, Scenario::Broadcast)
    };
    let report = swarm::run(settings).await.expect("the swarm runs").report;

    shutdown.cancel();
    eprintln!("{report}");
    assert_eq!(report.connected, 300, "{report}");
    assert_eq!((report.tally.lost, report.tally.duplicated, report.tally.dropped), (0, 0, 0), "{report}");
    assert!(report.tally.received > 0 && report.tally.received == report.tally.expected, "{report}");
    assert_eq!(queue.stats().dead, 0, "{:?}", queue.stats());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_delays_no_one_else() {
    let _frames = support::frames_checked();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    // A small outbound buffer, so that 30 broadcasts of 16 KB fill the stuck client's.
    let settings = Settings { outbound_buffer_bytes: 16 * 1024, ..Settings::default() };
    let gateway = Gateway::new(listener, settings).expect("gateway");
    let (url, state) = (gateway.ws_url(), gateway.state());
    let shutdown = CancellationToken::new();
    tokio::spawn(gateway.run(shutdown.clone().cancelled_owned()));
    let settings = SwarmSettings {
        connections: 100,
        stuck: 1,
        publishers: 2,
        messages: 15,
        rate: 10.0,
        size: 16 * 1024,
        ..swarm(url, Scenario::Broadcast)
    };

    let report = swarm::run(settings).await.expect("the swarm runs").report;

    shutdown.cancel();
    eprintln!("{report}");
    assert_eq!((report.connected, report.stuck, report.sent), (100, 1, 30), "{report}");
    let refused = state.buffer_full.load(std::sync::atomic::Ordering::Relaxed);
    assert!(refused > 0, "the stuck client's buffer never filled: the run proves nothing");
    assert_eq!((report.tally.lost, report.tally.duplicated, report.tally.dropped), (0, 0, 0), "{report}");
    // Before the hardening each invocation that reached the stuck client retried it until 3 s before
    // its 30 s deadline (hundreds of refused posts), and the broadcasts behind waited 24 to 50 s. Now
    // it is marked stuck after three 429s in a row and probed once a second.
    assert!(refused <= 60, "{refused} posts to the stuck client: it was not recognised as stuck");
    assert!(report.latency_ms.max < 20_000.0, "the others waited behind the stuck client: {report}");
}
