//! Phase 1: the connections open at the configured rate (API Gateway admits 500 new connections a
//! second per account), each in a task of its own, and the run waits until every one has connected
//! (and subscribed) or failed; then the stuck connections open, after the readers so that nobody's
//! handshake waits behind them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use super::connection::{ConnectionResult, Run, connection, stuck_connection};
use super::progress::{progress_bar, wait_for};
use super::settings::SwarmSettings;

/// The open connections: their tasks, the publishers' outgoing channels, and how many connected.
pub(crate) struct Dialled {
    pub tasks: Vec<JoinHandle<ConnectionResult>>,
    /// The first `publishers` connections' outgoing messages.
    pub senders: Vec<mpsc::Sender<String>>,
    pub connected: u64,
    /// When the next connection may open at the configured rate.
    next: Instant,
}

/// Opens `settings.connections` connections at `settings.connect_rate`, the first `publishers` of them
/// publishers, and waits until each has connected or failed (or the run's deadline).
pub(crate) async fn open(
    settings: &SwarmSettings,
    run: &Arc<Run>,
    publishers: u32,
    deadline: Instant,
) -> Dialled {
    let shared = &run.shared;
    let total = u64::from(settings.connections);
    let bar = progress_bar(settings.progress, total, "connecting");
    let mut tasks = Vec::with_capacity(settings.connections as usize);
    let mut senders = Vec::with_capacity(publishers as usize);
    let mut next = Instant::now();
    for index in 0..settings.connections {
        sleep_until(next).await;
        next += interval(settings);
        let (tx, rx) = mpsc::channel(64);
        if index < publishers {
            senders.push(tx);
        } else {
            drop(tx);
        }
        tasks.push(tokio::spawn(connection(run.clone(), index, rx)));
        bar.set_position(shared.connected.load(Ordering::Relaxed));
    }
    wait_for(
        shared,
        deadline,
        &bar,
        || shared.connected.load(Ordering::Relaxed),
        || shared.resolved.load(Ordering::Relaxed) == total,
    )
    .await;
    bar.finish_and_clear();
    Dialled { tasks, senders, connected: shared.connected.load(Ordering::Relaxed), next }
}

/// Opens `settings.stuck` connections that never read, at the same rate after the readers.
pub(crate) async fn open_stuck(
    settings: &SwarmSettings,
    run: &Arc<Run>,
    dialled: &Dialled,
) -> Vec<JoinHandle<bool>> {
    let mut next = dialled.next;
    let mut stuck = Vec::with_capacity(settings.stuck as usize);
    for index in settings.connections..settings.connections.saturating_add(settings.stuck) {
        sleep_until(next).await;
        next += interval(settings);
        stuck.push(tokio::spawn(stuck_connection(run.clone(), index)));
    }
    stuck
}

fn interval(settings: &SwarmSettings) -> Duration {
    Duration::from_secs_f64(1.0 / f64::from(settings.connect_rate.max(1)))
}
