//! `@connections` as the account sees it: each call takes a latency drawn from a range, takes a
//! token from the account's bucket or answers 429, is served one after another when a capacity is
//! set, and answers 410 for connections that are gone; every post that gets through is counted per
//! connection, and a direct message's arrival timed.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shared::sync::lock;
use shared::{ConnectionId, PostError, Poster};
use tokio::time::Instant;

use super::direct::DirectMessages;
use super::settings::SimSettings;

/// The id of simulated connection `index`.
pub fn id(index: usize) -> ConnectionId {
    ConnectionId::parse(&format!("sim{index:09}")).unwrap_or_else(|_| unreachable!("sim ids are valid"))
}

/// Which simulated connection `id` is.
fn index(id: &ConnectionId) -> Option<usize> {
    id.as_str().strip_prefix("sim")?.parse().ok()
}

/// `@connections` as the account sees it.
#[derive(Debug)]
pub struct SimPoster {
    latency: (Duration, Duration),
    cpu: Option<super::cpu::CpuModel>,
    throttle: f64,
    account_rate: f64,
    account_burst: f64,
    bucket: Mutex<(f64, Instant)>,
    /// The time each call takes to serve with a limited capacity, and when the server is next free.
    service: Option<(Duration, Mutex<Instant>)>,
    rng: Mutex<StdRng>,
    gone: Vec<bool>,
    direct_target: ConnectionId,
    /// Posts that got through, per connection.
    pub received: Vec<AtomicU32>,
    pub last_delivery: Mutex<Option<Instant>>,
    pub calls: AtomicU64,
    pub throttled_by_account: AtomicU64,
    pub throttled_injected: AtomicU64,
    pub gone_answers: AtomicU64,
    /// The direct messages' arrivals at [`super::direct::target`].
    pub direct: Arc<DirectMessages>,
}

impl SimPoster {
    /// The endpoint `settings` describe, where connection `i` is gone if `gone[i]`.
    pub fn new(settings: &SimSettings, gone: Vec<bool>) -> Self {
        Self {
            latency: settings.latency,
            cpu: settings.cpu(),
            throttle: settings.throttle.clamp(0.0, 1.0),
            account_rate: settings.account_rate.max(1.0),
            account_burst: settings.account_burst.max(1.0),
            bucket: Mutex::new((settings.account_burst.max(1.0), Instant::now())),
            service: settings
                .capacity
                .filter(|capacity| *capacity > 0.0)
                .map(|capacity| (Duration::from_secs_f64(1.0 / capacity), Mutex::new(Instant::now()))),
            rng: Mutex::new(StdRng::seed_from_u64(settings.seed.wrapping_add(1))),
            received: (0..settings.connections).map(|_| AtomicU32::new(0)).collect(),
            gone,
            direct_target: super::direct::target(),
            last_delivery: Mutex::new(None),
            calls: AtomicU64::new(0),
            throttled_by_account: AtomicU64::new(0),
            throttled_injected: AtomicU64::new(0),
            gone_answers: AtomicU64::new(0),
            direct: Arc::default(),
        }
    }

    fn take_token(&self) -> bool {
        let mut bucket = lock(&self.bucket);
        let now = Instant::now();
        let refill = now.saturating_duration_since(bucket.1).as_secs_f64() * self.account_rate;
        bucket.0 = (bucket.0 + refill).min(self.account_burst);
        bucket.1 = now;
        if bucket.0 >= 1.0 {
            bucket.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

#[async_trait]
impl Poster for SimPoster {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError> {
        let (latency, injected) = {
            let mut rng = lock(&self.rng);
            (rng.random_range(self.latency.0..=self.latency.1), rng.random_bool(self.throttle))
        };
        // The worker's own work on its share of a core, then the request reaches API Gateway half
        // way, and the answer comes back in the other half.
        super::cpu::charge(self.cpu).await;
        tokio::time::sleep(latency / 2).await;
        if let Some((each, free_at)) = &self.service {
            let done = {
                let mut free_at = lock(free_at);
                *free_at = (*free_at).max(Instant::now()) + *each;
                *free_at
            };
            tokio::time::sleep_until(done).await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        let answer = if !self.take_token() {
            self.throttled_by_account.fetch_add(1, Ordering::Relaxed);
            Err(PostError::Throttled)
        } else if injected {
            self.throttled_injected.fetch_add(1, Ordering::Relaxed);
            Err(PostError::Throttled)
        } else {
            match index(to) {
                None if *to == self.direct_target => {
                    self.direct.arrived(&frame);
                    Ok(())
                }
                Some(i) if i < self.gone.len() && !self.gone[i] => {
                    self.received[i].fetch_add(1, Ordering::Relaxed);
                    *lock(&self.last_delivery) = Some(Instant::now());
                    Ok(())
                }
                _ => {
                    self.gone_answers.fetch_add(1, Ordering::Relaxed);
                    Err(PostError::Gone)
                }
            }
        };
        tokio::time::sleep(latency - latency / 2).await;
        answer
    }
}
