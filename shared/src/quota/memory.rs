//! Quotas counted in the process: token buckets keyed by connection and by user (`governor`).
//!
//! Exact for the local gateway, which runs one ingress. On AWS each ingress instance counts what it
//! sees: no write unit, no round trip, but API Gateway spreads one connection's messages over the
//! warm instances, so a client can get up to as many times its quota as instances are running (the
//! stage throttle, 100 a second by default, keeps about five busy; `IngressReservedConcurrency` caps
//! them at 50). A counter in DynamoDB would be exact across instances for one write unit a message
//! ($1.25 a million on demand, beside the $1.00 API Gateway charges for the message itself).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::port::{FLOOD_FACTOR, QuotaError, QuotaOverride, QuotaSettings, Quotas, Rate, Taken};
use crate::domain::ConnectionId;

type Keyed = RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>;

/// Every this many messages, buckets that have refilled completely are forgotten: a gone connection
/// leaves nothing behind for long.
const SWEEP_EVERY: u64 = 10_000;

/// The buckets of one scope: the stack's, or one namespace's with quotas of its own.
struct Buckets {
    per_connection: Option<Keyed>,
    per_user: Option<Keyed>,
    /// The refusals a connection may get: [`FLOOD_FACTOR`] times its quota. Spent, it is flooding.
    refusals: Option<Keyed>,
}

impl Buckets {
    fn new(settings: QuotaSettings) -> Self {
        let flood = |rate: Rate| Rate {
            per_second: rate.per_second.saturating_mul(FLOOD_FACTOR),
            burst: rate.burst.saturating_mul(FLOOD_FACTOR),
        };
        Self {
            per_connection: settings.per_connection.map(keyed),
            per_user: settings.per_user.map(keyed),
            refusals: settings.per_connection.map(flood).map(keyed),
        }
    }

    fn sweep(&self) {
        for limiter in self.per_connection.iter().chain(&self.per_user).chain(&self.refusals) {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

pub struct MemoryQuotas {
    settings: QuotaSettings,
    stack: Buckets,
    /// Namespaces with quotas of their own, made at their first message.
    namespaces: Mutex<HashMap<String, Arc<Buckets>>>,
    clock: DefaultClock,
    taken: AtomicU64,
    /// Users refused new connections, until when.
    bars: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for MemoryQuotas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryQuotas").field("settings", &self.settings).finish_non_exhaustive()
    }
}

fn keyed(rate: Rate) -> Keyed {
    let per_second = NonZeroU32::new(rate.per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(rate.burst).unwrap_or(per_second);
    RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst))
}

impl MemoryQuotas {
    pub fn new(settings: QuotaSettings) -> Self {
        Self {
            settings,
            stack: Buckets::new(settings),
            namespaces: Mutex::default(),
            clock: DefaultClock::default(),
            taken: AtomicU64::new(0),
            bars: Mutex::default(),
        }
    }

    /// No quota: every message allowed.
    pub fn unlimited() -> Self {
        Self::new(QuotaSettings::UNLIMITED)
    }

    fn check(&self, limiter: Option<&Keyed>, key: &str) -> Option<std::time::Duration> {
        let limiter = limiter?;
        limiter.check_key(&key.to_owned()).err().map(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    fn namespaces(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Buckets>>> {
        self.namespaces.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl Quotas for MemoryQuotas {
    async fn take(
        &self,
        connection: &ConnectionId,
        user: Option<&str>,
        namespace: Option<(&str, QuotaOverride)>,
    ) -> Result<Taken, QuotaError> {
        if self.taken.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.stack.sweep();
            self.namespaces().values().for_each(|buckets| buckets.sweep());
        }
        let own = namespace.map(|(name, quotas)| {
            let mut namespaces = self.namespaces();
            namespaces
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(Buckets::new(quotas.over(self.settings))))
                .clone()
        });
        let buckets = own.as_deref().unwrap_or(&self.stack);
        let refused = |retry_after, per_user| {
            let flooding = self.check(buckets.refusals.as_ref(), connection.as_str()).is_some();
            Ok(Taken::Limited { retry_after, per_user, flooding })
        };
        if let Some(retry_after) = self.check(buckets.per_connection.as_ref(), connection.as_str()) {
            return refused(retry_after, false);
        }
        if let Some(user) = user
            && let Some(retry_after) = self.check(buckets.per_user.as_ref(), user)
        {
            return refused(retry_after, true);
        }
        Ok(Taken::Allowed)
    }

    async fn bar(&self, user: &str, period: Duration) -> Result<(), QuotaError> {
        let now = Instant::now();
        let mut bars = self.bars.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        // Flooders are few; a bar past its time is forgotten at the next.
        bars.retain(|_, until| *until > now);
        bars.insert(user.to_owned(), now + period);
        Ok(())
    }

    async fn barred(&self, user: &str) -> Result<Option<Duration>, QuotaError> {
        let bars = self.bars.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(bars.get(user).and_then(|until| until.checked_duration_since(Instant::now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ConnectionId {
        ConnectionId::parse(&format!("connection{n:06}")).expect("an id")
    }

    async fn allowed(
        quotas: &MemoryQuotas,
        connection: &ConnectionId,
        user: Option<&str>,
        n: usize,
    ) -> usize {
        let mut allowed = 0;
        for _ in 0..n {
            if quotas.take(connection, user, None).await.expect("memory never fails") == Taken::Allowed {
                allowed += 1;
            }
        }
        allowed
    }

    #[tokio::test]
    async fn a_connection_gets_its_burst_at_once_then_is_refused_with_how_long_to_wait() {
        let quotas = MemoryQuotas::new(QuotaSettings::new(5, 0));
        assert_eq!(allowed(&quotas, &id(1), None, 100).await, 10, "two seconds' worth at once");
        match quotas.take(&id(1), None, None).await.expect("taken") {
            Taken::Limited { retry_after, per_user, .. } => {
                assert!(!per_user);
                assert!(
                    retry_after > std::time::Duration::ZERO
                        && retry_after <= std::time::Duration::from_millis(200)
                );
            }
            Taken::Allowed => panic!("the quota is spent"),
        }
        assert_eq!(allowed(&quotas, &id(2), None, 3).await, 3, "another connection is untouched");
    }

    #[tokio::test]
    async fn a_users_connections_share_the_users_quota() {
        let quotas = MemoryQuotas::new(QuotaSettings::new(100, 3));
        let taken = allowed(&quotas, &id(1), Some("mallory"), 4).await
            + allowed(&quotas, &id(2), Some("mallory"), 4).await;
        assert_eq!(taken, 6, "three a second, six at once, across both connections");
        let refused = quotas.take(&id(3), Some("mallory"), None).await.expect("taken");
        assert!(matches!(refused, Taken::Limited { per_user: true, .. }), "{refused:?}");
        assert_eq!(allowed(&quotas, &id(4), Some("alice"), 6).await, 6);
        assert_eq!(allowed(&MemoryQuotas::unlimited(), &id(1), Some("a"), 1000).await, 1000);
    }

    #[tokio::test]
    async fn a_namespace_with_quotas_of_its_own_counts_in_buckets_of_its_own() {
        let quotas = MemoryQuotas::new(QuotaSettings::new(1, 0));
        let cursor = Some(("cursor", QuotaOverride { per_connection: Some(30), per_user: None }));
        let mut in_cursor = 0;
        for _ in 0..100 {
            if quotas.take(&id(1), None, cursor).await.expect("taken") == Taken::Allowed {
                in_cursor += 1;
            }
        }
        // Two seconds' burst of 30 a second, and what refilled while the test ran.
        assert!((60..=70).contains(&in_cursor), "the namespace's own quota: {in_cursor}");
        assert_eq!(
            allowed(&quotas, &id(1), None, 5).await,
            2,
            "the stack's one a second, untouched by the namespace's"
        );
    }

    #[tokio::test]
    async fn a_connection_that_goes_on_sending_after_being_refused_is_flooding_and_one_that_waits_is_not() {
        let quotas = MemoryQuotas::new(QuotaSettings::new(5, 0));
        let flooding = |taken| matches!(taken, Taken::Limited { flooding: true, .. });
        let mut first_flood = None;
        for n in 0..200 {
            if flooding(quotas.take(&id(1), None, None).await.expect("taken")) {
                first_flood = Some(n);
                break;
            }
        }
        // Its burst of 10, then four times that in refusals.
        assert!(first_flood.is_some_and(|n| (50..=60).contains(&n)), "{first_flood:?}");
        let patient = id(2);
        allowed(&quotas, &patient, None, 10).await;
        let refused = quotas.take(&patient, None, None).await.expect("taken");
        assert!(
            matches!(refused, Taken::Limited { flooding: false, .. }),
            "one refusal is no flood: {refused:?}"
        );
    }

    #[tokio::test]
    async fn a_bar_refuses_its_user_until_its_time_and_no_one_else() {
        let quotas = MemoryQuotas::new(QuotaSettings::default());
        quotas.bar("mallory", Duration::from_millis(200)).await.expect("barred");
        let left = quotas.barred("mallory").await.expect("read").expect("barred now");
        assert!(left > Duration::ZERO && left <= Duration::from_millis(200), "{left:?}");
        assert_eq!(quotas.barred("alice").await.expect("read"), None);
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(quotas.barred("mallory").await.expect("read"), None, "the bar has run out");
    }
}
