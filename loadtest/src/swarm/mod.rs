//! The swarm: many WebSocket connections, driven through a scenario, and what they saw.
//!
//! A run goes through three phases, each in a file of its own: [`dial`] opens the connections at a
//! bounded rate, each a task of its own ([`connection`], over a [`socket`]) recording what it
//! receives; [`publish`] sends the scenario's stamped messages at a bounded rate and waits for their
//! deliveries; [`collect`] gathers every task's record into the report. [`settings`] says what a run
//! does, and [`progress`] shows it. Everything a run does is bounded in count and time: it ends once
//! every expected delivery has arrived, or `settle` after the last publish, or at `deadline`.

pub mod collect;
pub mod connection;
pub mod dial;
pub mod progress;
pub mod publish;
pub mod settings;
pub mod socket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use anyhow::bail;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::collect::Outcome;
use self::connection::{Run, Shared};
pub use self::settings::{Channels, Scenario, SwarmSettings};
pub use self::socket::frames;

/// Runs the swarm and accounts for what it saw.
pub async fn run(settings: SwarmSettings) -> anyhow::Result<Outcome> {
    if settings.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if settings.scenario == Scenario::Recovery {
        bail!("the recovery scenario runs with loadtest::recovery::run");
    }
    let publishers = settings.publishers.clamp(1, settings.connections);
    let channels = (settings.scenario == Scenario::Channels).then(|| Channels {
        count: settings.channels.max(1),
        wildcard_from: publishers,
        wildcard_to: publishers.saturating_add(settings.wildcards),
    });
    let run = Arc::new(Run {
        channels,
        jwt_secret: settings.jwt_secret.clone(),
        ready: (0..settings.connections).map(|_| AtomicBool::new(false)).collect(),
        url: settings.url.clone(),
        target: socket::resolve(&settings.url).await?,
        connections: settings.connections.saturating_add(settings.stuck),
        shared: Shared {
            started: Instant::now(),
            connected: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            changed: Notify::new(),
        },
        stop: CancellationToken::new(),
    });
    let deadline = run.shared.started + settings.deadline;

    let dialled = dial::open(&settings, &run, publishers, deadline).await;
    let stuck = dial::open_stuck(&settings, &run, &dialled).await;
    let traffic = match settings.scenario {
        Scenario::Hold => publish::hold(&settings, &run, deadline).await,
        Scenario::Broadcast
        | Scenario::Echo
        | Scenario::Channels
        | Scenario::Recovery
        | Scenario::Presence => publish::publish(&settings, &run, &dialled, publishers, deadline).await,
    };
    let finished_us = run.shared.now_us();
    run.stop.cancel();
    collect::outcome(&settings, channels, dialled, stuck, traffic, finished_us).await
}
