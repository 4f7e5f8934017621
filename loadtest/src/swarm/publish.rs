//! Phase 2: the scenario's traffic. Publishers send stamped messages at the configured rate, each
//! recorded with who it is for, and the run then waits for every expected delivery, or `settle`
//! after the last publish, or the deadline, whichever comes first. The hold scenario only holds.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::{Instant, sleep, sleep_until};

use super::connection::Run;
use super::dial::Dialled;
use super::progress::{progress_bar, wait_for};
use super::settings::{Scenario, SwarmSettings};
use crate::ledger::{Destination, Published};
use crate::stamp::{Action, Stamp};

/// What was published, and when the first message went.
#[derive(Default)]
pub(crate) struct Traffic {
    pub published: Vec<Published>,
    pub first_publish_us: Option<u64>,
}

/// Holds every connection open for `settings.hold`.
pub(crate) async fn hold(settings: &SwarmSettings, run: &Run, deadline: Instant) -> Traffic {
    let until = (Instant::now() + settings.hold).min(deadline);
    let bar = progress_bar(settings.progress, settings.hold.as_secs(), "holding");
    while Instant::now() < until {
        sleep(Duration::from_millis(250).min(until - Instant::now())).await;
        bar.set_position(run.shared.started.elapsed().as_secs());
    }
    bar.finish_and_clear();
    Traffic::default()
}

/// Sends every publisher's messages, then waits for their deliveries.
pub(crate) async fn publish(
    settings: &SwarmSettings,
    run: &Arc<Run>,
    dialled: &Dialled,
    publishers: u32,
    deadline: Instant,
) -> Traffic {
    let (shared, channels) = (&run.shared, run.channels);
    // How many ready connections each channel reaches.
    let reach: Vec<u64> = channels.map_or_else(Vec::new, |channels| {
        (0..channels.count)
            .map(|k| {
                (0..settings.connections)
                    .filter(|&i| run.ready[i as usize].load(Ordering::Relaxed) && channels.member(i, k))
                    .count() as u64
            })
            .collect()
    });
    let count = u64::from(publishers) * settings.messages;
    let per_message = |n: u64| match (settings.scenario, channels) {
        (Scenario::Echo, _) => 1,
        (Scenario::Channels, Some(channels)) => reach[channels.target(n) as usize],
        _ => dialled.connected,
    };
    let expected_receipts: u64 = (0..count).map(per_message).sum();
    let bar = progress_bar(settings.progress, expected_receipts, "delivering");
    let interval = Duration::from_secs_f64(1.0 / settings.rate.max(0.001));
    let mut next = Instant::now();
    let mut expected_so_far = 0;
    let mut traffic = Traffic::default();
    let mut last_publish = None;
    for n in 0..count {
        if Instant::now() >= deadline {
            break;
        }
        sleep_until(next).await;
        next += interval;
        let publisher = (n % u64::from(publishers)) as u32;
        let seq = n / u64::from(publishers);
        let at_us = shared.now_us();
        let stamp = Stamp { p: publisher, s: seq, t: at_us, pad: String::new() };
        let (action, destination) = match (settings.scenario, channels) {
            (Scenario::Echo, _) => (Action::Echo, Destination::Only(publisher)),
            (Scenario::Channels, Some(channels)) => {
                let channel = channels.target(n);
                (Action::Publish(channel), Destination::Channel(channel))
            }
            _ => (Action::Broadcast, Destination::All),
        };
        // A publisher whose connection failed has a closed channel: nothing is published.
        if dialled.senders[publisher as usize].send(stamp.message(action, settings.size)).await.is_ok() {
            expected_so_far += per_message(n);
            traffic.published.push(Published { publisher, seq, at_us, destination });
            traffic.first_publish_us.get_or_insert(at_us);
            last_publish = Some(Instant::now());
        }
        bar.set_position(shared.receipts.load(Ordering::Relaxed));
    }
    let until = last_publish.map_or(deadline, |at| (at + settings.settle).min(deadline));
    let expected_now = expected_so_far;
    wait_for(
        shared,
        until,
        &bar,
        || shared.receipts.load(Ordering::Relaxed),
        || shared.receipts.load(Ordering::Relaxed) >= expected_now,
    )
    .await;
    bar.finish_and_clear();
    traffic
}
