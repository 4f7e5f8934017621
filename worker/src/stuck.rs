//! Connections that have stopped reading, as this process has met them.
//!
//! A client that does not read fills its buffer at API Gateway, and from then on every post to it is
//! answered 429. Retrying those posts holds the invocation (and everyone else's next messages), and
//! each one carries the whole message to API Gateway only to be refused. So once a connection has
//! been throttled through its whole retry budget it counts as stuck: fresh broadcasts put it straight
//! into their retry jobs without a call, but for one probe every `probe_every`, which finds out when
//! it reads again; retry jobs try it once each, without retries (skipping it there would spend the
//! job's attempt without a try). A failed try keeps it stuck for `stuck_for` more; a post that reaches
//! it frees it.
//!
//! On Lambda each concurrent invocation is its own process and learns this on its own; the local
//! gateway's invocations share one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use shared::ConnectionId;
use tokio::time::Instant;

/// How many stuck connections a process remembers; past it, a new one is not remembered and costs
/// each invocation that meets it its retry budget, as if nothing was known.
const REMEMBERED: usize = 10_000;

#[derive(Debug)]
struct Stuck {
    until: Instant,
    next_probe: Instant,
}

/// What to do with a post to a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Post it, with retries within the connection's budget.
    Post,
    /// Post it once, without retries: the connection is stuck, and this finds out whether it still is.
    Probe,
    /// Do not post: the connection is stuck and was probed lately. It goes into a retry job.
    Skip,
}

#[derive(Debug)]
pub struct StuckConnections {
    stuck: Mutex<HashMap<ConnectionId, Stuck>>,
    stuck_for: Duration,
    probe_every: Duration,
}

impl StuckConnections {
    pub fn new(stuck_for: Duration, probe_every: Duration) -> Self {
        Self { stuck: Mutex::default(), stuck_for, probe_every }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConnectionId, Stuck>> {
        self.stuck.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What to do with a post to `id`, for a fresh broadcast or for a retry job.
    pub fn admit(&self, id: &ConnectionId, retry_job: bool) -> Admission {
        let now = Instant::now();
        let mut stuck = self.lock();
        let Some(entry) = stuck.get_mut(id) else {
            return Admission::Post;
        };
        if now >= entry.until {
            stuck.remove(id);
            return Admission::Post;
        }
        if retry_job {
            return Admission::Probe;
        }
        if now < entry.next_probe {
            return Admission::Skip;
        }
        entry.next_probe = now + self.probe_every;
        Admission::Probe
    }

    /// `id` used up its retry budget.
    pub fn stuck(&self, id: &ConnectionId) {
        let now = Instant::now();
        let mut stuck = self.lock();
        if stuck.len() >= REMEMBERED && !stuck.contains_key(id) {
            stuck.retain(|_, entry| now < entry.until);
            if stuck.len() >= REMEMBERED {
                return;
            }
        }
        stuck.insert(id.clone(), Stuck { until: now + self.stuck_for, next_probe: now + self.probe_every });
    }

    /// A probe of `id` failed.
    pub fn still_stuck(&self, id: &ConnectionId) {
        if let Some(entry) = self.lock().get_mut(id) {
            entry.until = Instant::now() + self.stuck_for;
        }
    }

    /// A post reached `id`.
    pub fn recovered(&self, id: &ConnectionId) {
        let mut stuck = self.lock();
        if !stuck.is_empty() {
            stuck.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> ConnectionId {
        ConnectionId::parse(&format!("conn{n:012}")).expect("id")
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_connection_is_skipped_but_for_one_probe_a_second_until_a_post_reaches_it() {
        let stuck = StuckConnections::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(stuck.admit(&id(1), false), Admission::Post);
        stuck.stuck(&id(1));
        assert_eq!(stuck.admit(&id(1), false), Admission::Skip);
        assert_eq!(stuck.admit(&id(1), true), Admission::Probe, "a retry job always tries once");
        assert_eq!(stuck.admit(&id(2), false), Admission::Post, "others are not affected");

        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert_eq!(stuck.admit(&id(1), false), Admission::Probe);
        assert_eq!(stuck.admit(&id(1), false), Admission::Skip, "one probe at a time");
        stuck.still_stuck(&id(1));

        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert_eq!(stuck.admit(&id(1), false), Admission::Probe);
        stuck.recovered(&id(1));
        assert_eq!(stuck.admit(&id(1), false), Admission::Post);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_not_probed_for_a_while_is_forgotten() {
        let stuck = StuckConnections::new(Duration::from_secs(10), Duration::from_secs(60));
        stuck.stuck(&id(1));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(stuck.admit(&id(1), false), Admission::Post);
    }

    #[tokio::test(start_paused = true)]
    async fn it_remembers_a_bounded_number() {
        let stuck = StuckConnections::new(Duration::from_secs(10), Duration::from_secs(1));
        for n in 0..REMEMBERED + 5 {
            stuck.stuck(&id(n));
        }
        assert_eq!(stuck.lock().len(), REMEMBERED);
        tokio::time::advance(Duration::from_secs(11)).await;
        stuck.stuck(&id(REMEMBERED + 6));
        assert_eq!(stuck.lock().len(), 1, "the expired ones made room");
    }
}
