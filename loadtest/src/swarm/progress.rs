//! What the swarm shows while it runs, and how it waits for its connections to catch up.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::time::{Instant, sleep, sleep_until};

use super::connection::Shared;

pub(crate) fn progress_bar(enabled: bool, length: u64, message: &'static str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    let style =
        ProgressStyle::with_template("{msg:>12} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec})")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar.set_message(message);
    bar
}

/// Waits until `done` holds or `until`, waking on every change the tasks report.
pub(crate) async fn wait_for(
    shared: &Shared,
    until: Instant,
    bar: &ProgressBar,
    progress: impl Fn() -> u64,
    done: impl Fn() -> bool,
) {
    while !done() && Instant::now() < until {
        let changed = shared.changed.notified();
        tokio::select! {
            () = changed => {}
            () = sleep(Duration::from_millis(100)) => {}
            () = sleep_until(until) => {}
        }
        bar.set_position(progress());
    }
    bar.set_position(progress());
}
