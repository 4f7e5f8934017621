//! Fault injection: what goes wrong on AWS under load, on demand and off by default.
//!
//! `@connections` calls can be answered 429 `LimitExceededException` (the account's throttle) or 500
//! (a server fault), or answered late; a connection can be lost mid-fan-out the way a network failure
//! loses it, with no close frame and no `$disconnect` (API Gateway's `$disconnect` is best effort), so
//! that only the worker's pruning on 410 can clean up its record. Worker invocations failing is the
//! event source mapping's [`crate::esm::EsmSettings::failure_rate`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Fractions of `@connections` POSTs that meet each fault, drawn independently per call.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Faults {
    /// Answered 429 `LimitExceededException`.
    pub post_throttle: f64,
    /// Answered 500 `InternalServerErrorException`.
    pub post_error: f64,
    /// Answered only after `post_delay`.
    pub post_delay_rate: f64,
    pub post_delay: Duration,
    /// Their target connection is cut (and the call answered 410).
    pub drop_connection: f64,
}

/// How many of each fault were injected, for `/_local/stats`.
#[derive(Debug, Default)]
pub struct Injected {
    pub throttled: AtomicU64,
    pub errors: AtomicU64,
    pub delayed: AtomicU64,
    pub dropped: AtomicU64,
}

impl Injected {
    pub fn count(&self, fault: PostFault) {
        let counter = match fault {
            PostFault::Throttle => &self.throttled,
            PostFault::Error => &self.errors,
            PostFault::DropConnection => &self.dropped,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "throttled": self.throttled.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "delayed": self.delayed.load(Ordering::Relaxed),
            "dropped": self.dropped.load(Ordering::Relaxed),
        })
    }
}

/// What an injected fault makes of one POST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostFault {
    Throttle,
    Error,
    DropConnection,
}

impl Faults {
    /// How long to hold this POST before answering, if at all.
    pub fn delay(&self) -> Option<Duration> {
        (self.post_delay_rate > 0.0 && rand::random::<f64>() < self.post_delay_rate)
            .then_some(self.post_delay)
    }

    /// The fault this POST meets, if any.
    pub fn draw(&self) -> Option<PostFault> {
        let total = self.post_throttle + self.post_error + self.drop_connection;
        if total <= 0.0 {
            return None;
        }
        let roll = rand::random::<f64>();
        if roll < self.post_throttle {
            Some(PostFault::Throttle)
        } else if roll < self.post_throttle + self.post_error {
            Some(PostFault::Error)
        } else if roll < total {
            Some(PostFault::DropConnection)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_faults_are_drawn_by_default() {
        let faults = Faults::default();
        assert!((0..10_000).all(|_| faults.draw().is_none() && faults.delay().is_none()));
    }

    #[test]
    fn each_fault_is_drawn_at_about_its_rate() {
        let faults =
            Faults { post_throttle: 0.1, post_error: 0.05, drop_connection: 0.02, ..Faults::default() };
        let draws: Vec<_> = (0..100_000).map(|_| faults.draw()).collect();
        let share = |fault| draws.iter().filter(|d| **d == Some(fault)).count() as f64 / draws.len() as f64;
        assert!((share(PostFault::Throttle) - 0.1).abs() < 0.01);
        assert!((share(PostFault::Error) - 0.05).abs() < 0.01);
        assert!((share(PostFault::DropConnection) - 0.02).abs() < 0.005);
    }
}
