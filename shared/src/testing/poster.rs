//! A scripted `@connections`: records every post, and answers chosen connections with the failure
//! a test asks for.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::domain::ConnectionId;
use crate::error::PostError;
use crate::poster::Poster;
use crate::sync::lock;

/// A scripted `@connections` failure for [`ScriptedPoster`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scripted {
    Gone,
    Throttled,
    Forbidden,
    PayloadTooLarge,
    Transient,
}

impl Scripted {
    fn to_error(self) -> PostError {
        match self {
            Self::Gone => PostError::Gone,
            Self::Throttled => PostError::Throttled,
            Self::Forbidden => PostError::Forbidden,
            Self::PayloadTooLarge => PostError::PayloadTooLarge,
            Self::Transient => PostError::Transient("scripted transient failure".into()),
        }
    }
}

/// Records every post; answers with a scripted failure for chosen connection ids.
#[derive(Debug, Default)]
pub struct ScriptedPoster {
    delivered: Mutex<Vec<(ConnectionId, Bytes)>>,
    scripted: Mutex<HashMap<ConnectionId, Scripted>>,
    /// Outcomes that last a number of calls, then give way to delivery.
    transient: Mutex<HashMap<ConnectionId, (Scripted, u32)>>,
    calls: AtomicUsize,
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl ScriptedPoster {
    /// A poster whose every post takes `delay`, so that concurrency can be observed.
    pub fn with_delay(delay: Duration) -> Self {
        Self { delay, ..Self::default() }
    }

    pub fn script(&self, id: &ConnectionId, outcome: Scripted) {
        lock(&self.scripted).insert(id.clone(), outcome);
    }

    /// Delivers to `id` again from now on.
    pub fn unscript(&self, id: &ConnectionId) {
        lock(&self.scripted).remove(id);
    }

    /// Answers the next `times` posts to `id` with `outcome`, then delivers.
    pub fn script_times(&self, id: &ConnectionId, outcome: Scripted, times: u32) {
        lock(&self.transient).insert(id.clone(), (outcome, times));
    }

    /// Every post made, failed ones included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn delivered(&self) -> Vec<(ConnectionId, Bytes)> {
        lock(&self.delivered).clone()
    }

    /// The distinct connections that received at least one frame.
    pub fn recipients(&self) -> HashSet<ConnectionId> {
        lock(&self.delivered).iter().map(|(id, _)| id.clone()).collect()
    }

    /// The most posts that were ever in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Poster for ScriptedPoster {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(outcome) = lock(&self.scripted).get(to) {
            return Err(outcome.to_error());
        }
        if let Some((outcome, left)) = lock(&self.transient).get_mut(to)
            && *left > 0
        {
            *left -= 1;
            return Err(outcome.to_error());
        }
        lock(&self.delivered).push((to.clone(), frame));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> ConnectionId {
        ConnectionId::parse(&format!("conn{n:05}")).expect("id")
    }

    #[tokio::test]
    async fn the_poster_records_deliveries_and_plays_its_script() {
        let poster = ScriptedPoster::default();
        poster.script(&id(2), Scripted::Gone);
        poster.post(&id(1), Bytes::from_static(b"x")).await.expect("delivered");
        assert!(matches!(poster.post(&id(2), Bytes::new()).await, Err(PostError::Gone)));
        assert_eq!(poster.delivered(), [(id(1), Bytes::from_static(b"x"))]);
    }
}
