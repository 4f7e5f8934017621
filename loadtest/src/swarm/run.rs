//! The run itself: its connections dialled, its messages published, their records collected.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};

use anyhow::bail;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::collect::Outcome;
use super::connection::{Run, Shared};
use super::settings::{Channels, Scenario, SwarmSettings};
use super::{collect, dial, publish, socket};

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
