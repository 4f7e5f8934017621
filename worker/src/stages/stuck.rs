//! Connections that have stopped reading, as this process has met them.
//!
//! A client that does not read fills its buffer at API Gateway, and from then on every post to it is
//! answered 429. Retrying those posts holds the invocation (and everyone else's next messages), and
//! each one carries the whole message to API Gateway only to be refused. So a connection that has
//! answered [`STUCK_AFTER`] posts in a row with 429, and taken none in between, counts as stuck: its
//! posts, fresh or in retry jobs, go straight into (the next) retry jobs without a call, but for one
//! probe every `probe_every`, which finds out when it reads again. A probe throttled again keeps it
//! stuck for `stuck_for` more; a post that reaches it frees it. A stuck client thus costs one call a
//! second, not one per message and attempt: with a thousand of them, the latter would be the
//! account's whole `@connections` rate. A random 429 now and then (the account's throttle) does not
//! make a streak: any post that gets through ends it.
//!
//! On Lambda each concurrent invocation is its own process and learns this on its own; the local
//! gateway's invocations share one.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use shared::ConnectionId;
use tokio::time::Instant;

/// 429s in a row, with no post getting through, that make a connection stuck. Six: the account's
/// throttle answering 5 % of calls 429 makes such a streak about once in 64 million posts to one
/// connection (`scripts/reliability` injects that), a batch of six messages to a stuck client makes
/// it at once, and a single message within its retry budget plus the next.
pub const STUCK_AFTER: u32 = 6;

/// How many connections a process keeps track of; past it, a new one is not tracked and costs each
/// invocation that meets it its retry budget, as if nothing was known.
const REMEMBERED: usize = 10_000;

#[derive(Debug, Default)]
struct Entry {
    /// 429s in a row.
    throttled: u32,
    stuck: Option<Stuck>,
}

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
    entries: Mutex<HashMap<ConnectionId, Entry>>,
    stuck_for: Duration,
    probe_every: Duration,
}

impl StuckConnections {
    pub fn new(stuck_for: Duration, probe_every: Duration) -> Self {
        Self { entries: Mutex::default(), stuck_for, probe_every }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<ConnectionId, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What to do with a post to `id`.
    pub fn admit(&self, id: &ConnectionId) -> Admission {
        let now = Instant::now();
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(id) else {
            return Admission::Post;
        };
        let Some(stuck) = entry.stuck.as_mut() else {
            return Admission::Post;
        };
        if now >= stuck.until {
            entries.remove(id);
            return Admission::Post;
        }
        if now < stuck.next_probe {
            return Admission::Skip;
        }
        stuck.next_probe = now + self.probe_every;
        Admission::Probe
    }

    /// A post to `id` was answered 429; true if that makes (or keeps) it stuck.
    pub fn throttled(&self, id: &ConnectionId) -> bool {
        let now = Instant::now();
        let mut entries = self.lock();
        if entries.len() >= REMEMBERED && !entries.contains_key(id) {
            entries.retain(|_, entry| entry.stuck.as_ref().is_some_and(|stuck| now < stuck.until));
            if entries.len() >= REMEMBERED {
                return false;
            }
        }
        let entry = entries.entry(id.clone()).or_default();
        entry.throttled += 1;
        match entry.stuck.as_mut() {
            Some(stuck) => stuck.until = now + self.stuck_for,
            None if entry.throttled >= STUCK_AFTER => {
                entry.stuck = Some(Stuck { until: now + self.stuck_for, next_probe: now + self.probe_every });
            }
            None => return false,
        }
        true
    }

    /// A post reached `id`.
    pub fn recovered(&self, id: &ConnectionId) {
        let mut entries = self.lock();
        if !entries.is_empty() {
            entries.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> ConnectionId {
        ConnectionId::parse(&format!("conn{n:012}")).expect("id")
    }

    fn stuck(connections: &StuckConnections, id: &ConnectionId) {
        for _ in 0..STUCK_AFTER {
            connections.throttled(id);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_connection_is_skipped_but_for_one_probe_a_second_until_a_post_reaches_it() {
        let connections = StuckConnections::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(connections.admit(&id(1)), Admission::Post);
        stuck(&connections, &id(1));
        assert_eq!(connections.admit(&id(1)), Admission::Skip);
        assert_eq!(connections.admit(&id(2)), Admission::Post, "others are not affected");

        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert_eq!(connections.admit(&id(1)), Admission::Probe);
        assert_eq!(connections.admit(&id(1)), Admission::Skip, "one probe at a time");
        assert!(connections.throttled(&id(1)), "a throttled probe keeps it stuck");

        tokio::time::advance(Duration::from_millis(1_001)).await;
        assert_eq!(connections.admit(&id(1)), Admission::Probe);
        connections.recovered(&id(1));
        assert_eq!(connections.admit(&id(1)), Admission::Post);
    }

    #[test]
    fn only_a_streak_of_429s_with_nothing_getting_through_makes_a_connection_stuck() {
        let connections = StuckConnections::new(Duration::from_secs(10), Duration::from_secs(1));
        for _ in 0..10 {
            for _ in 1..STUCK_AFTER {
                assert!(!connections.throttled(&id(1)));
            }
            connections.recovered(&id(1));
        }
        assert_eq!(connections.admit(&id(1)), Admission::Post);
        for _ in 1..STUCK_AFTER {
            connections.throttled(&id(1));
        }
        assert!(connections.throttled(&id(1)), "the sixth in a row");
        assert_eq!(connections.admit(&id(1)), Admission::Skip);
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_not_probed_for_a_while_is_forgotten() {
        let connections = StuckConnections::new(Duration::from_secs(10), Duration::from_secs(60));
        stuck(&connections, &id(1));
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(connections.admit(&id(1)), Admission::Post);
    }

    #[tokio::test(start_paused = true)]
    async fn it_keeps_track_of_a_bounded_number() {
        let connections = StuckConnections::new(Duration::from_secs(10), Duration::from_secs(1));
        for n in 0..REMEMBERED + 5 {
            stuck(&connections, &id(n));
        }
        assert_eq!(connections.lock().len(), REMEMBERED);
        tokio::time::advance(Duration::from_secs(11)).await;
        stuck(&connections, &id(REMEMBERED + 6));
        assert_eq!(connections.lock().len(), 1, "the expired ones made room");
    }
}
