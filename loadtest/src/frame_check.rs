//! A check every frame the scenarios send and receive goes through, when one is installed: the
//! tests install the protocol's contract (`docs/asyncapi.yaml`, through `testkit::contract`); a run
//! against a deployed stack installs none and pays nothing. A frame the check refuses is recorded
//! rather than panicked on inside a connection's task, and a test asserts that none was.

use std::sync::{Mutex, OnceLock};

/// Says why `frame` (sent by a client when `sent`, else received by one) is not the protocol's.
pub type Check = fn(sent: bool, frame: &str) -> Result<(), String>;

static CHECK: OnceLock<Check> = OnceLock::new();
static VIOLATIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The most violations kept: a few say what is wrong.
const KEPT: usize = 20;

/// Checks every frame from now on with `check`; the first check installed stays.
pub fn install(check: Check) {
    let _ = CHECK.set(check);
}

/// The frames the check refused so far, each with why (the first few).
pub fn violations() -> Vec<String> {
    shared::sync::lock(&VIOLATIONS).clone()
}

fn record(sent: bool, frame: &str) {
    if let Some(check) = CHECK.get()
        && let Err(why) = check(sent, frame)
    {
        let mut kept = shared::sync::lock(&VIOLATIONS);
        if kept.len() < KEPT {
            let way = if sent { "sent" } else { "received" };
            kept.push(format!("{way} {frame}: {why}"));
        }
    }
}

/// A frame a client of the swarm sends.
pub(crate) fn sent(frame: &str) {
    record(true, frame);
}

/// A frame a client of the swarm received.
pub(crate) fn received(frame: &str) {
    record(false, frame);
}
