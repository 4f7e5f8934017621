//! The swarm: many WebSocket connections, driven through a scenario, and what they saw.
//!
//! A run goes through three phases, each in a file of its own: [`dial`] opens the connections at a
//! bounded rate, each a task of its own ([`connection`], over a [`socket`]) recording what it
//! receives; [`publish`] sends the scenario's stamped messages at a bounded rate and waits for their
//! deliveries; [`collect`] gathers every task's record into the report. [`config`] says what a run
//! does, and [`progress`] shows it. Everything a run does is bounded in count and time: it ends once
//! every expected delivery has arrived, or `settle` after the last publish, or at `deadline`.

pub mod collect;
pub mod config;
pub mod connection;
pub mod dial;
pub mod progress;
pub mod publish;
pub mod socket;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use anyhow::bail;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use self::collect::Outcome;
pub use self::config::{Channels, Scenario, SwarmConfig};
use self::connection::{Run, Shared};
pub use self::socket::frames;

/// Runs the swarm and accounts for what it saw.
pub async fn run(config: SwarmConfig) -> anyhow::Result<Outcome> {
    if config.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if config.scenario == Scenario::Recovery {
        bail!("the recovery scenario runs with loadtest::recovery::run");
    }
    let publishers = config.publishers.clamp(1, config.connections);
    let channels = (config.scenario == Scenario::Channels).then(|| Channels {
        count: config.channels.max(1),
        wildcard_from: publishers,
        wildcard_to: publishers.saturating_add(config.wildcards),
    });
    let run = Arc::new(Run {
        channels,
        jwt_secret: config.jwt_secret.clone(),
        ready: (0..config.connections).map(|_| AtomicBool::new(false)).collect(),
        url: config.url.clone(),
        target: socket::resolve(&config.url).await?,
        connections: config.connections.saturating_add(config.stuck),
        shared: Shared {
            started: Instant::now(),
            connected: AtomicU64::new(0),
            resolved: AtomicU64::new(0),
            receipts: AtomicU64::new(0),
            changed: Notify::new(),
        },
        stop: CancellationToken::new(),
    });
    let deadline = run.shared.started + config.deadline;

    let dialled = dial::open(&config, &run, publishers, deadline).await;
    let stuck = dial::open_stuck(&config, &run, &dialled).await;
    let traffic = match config.scenario {
        Scenario::Hold => publish::hold(&config, &run, deadline).await,
        Scenario::Broadcast
        | Scenario::Echo
        | Scenario::Channels
        | Scenario::Recovery
        | Scenario::Presence => publish::publish(&config, &run, &dialled, publishers, deadline).await,
    };
    let finished_us = run.shared.now_us();
    run.stop.cancel();
    collect::outcome(&config, channels, dialled, stuck, traffic, finished_us).await
}
