//! Token buckets, the one shape API Gateway's limits take: the stage throttle on client messages and
//! the account's budget of `@connections` calls, which the worker's invocations share by adapting
//! their pace to its answers.

use std::num::NonZeroU32;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::time::Instant;

/// A bucket refilled at `rate` tokens a second and holding at most `burst`; zero counts as one, since
/// a bucket that never lets anything through is no limit anyone configures on purpose.
pub fn token_bucket(rate: u32, burst: u32) -> DefaultDirectRateLimiter {
    let rate = NonZeroU32::new(rate).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_second(rate).allow_burst(burst))
}

/// One worker invocation's share of the account's `@connections` calls per second: every concurrent
/// invocation posting at this rate keeps the fleet within `account_rate`.
pub fn post_rate_share(account_rate: u32, invocations: u32) -> u32 {
    (account_rate / invocations.max(1)).max(1)
}

/// How long [`AdaptiveRate`] counts answers before it adjusts its rate: a few round trips to API
/// Gateway (20–60 ms in-region), so that it reacts within a fraction of a second of the account
/// bucket running dry.
pub const ADAPT_EVERY: Duration = Duration::from_millis(100);

/// The share of 429s in a window above which [`AdaptiveRate`] slows down. Not every 429 is the
/// account's: a client whose buffer is full answers 429 too (`worker/src/stuck.rs`), and some calls
/// are throttled now and then at any rate; slowing down for those would leave the account's rate
/// unused (`cargo run --release -p loadtest --bin simulate -- --throttle 0.05` measures it).
pub const THROTTLE_SIGNAL: f64 = 0.2;

/// What a window of throttling does to the rate, and how fast it climbs back.
const DECREASE: f64 = 0.75;
const SLOW_START: f64 = 1.5;
/// Steps, after the first slowdown, from nothing to the whole account rate: 50 windows, 5 s.
const INCREASE_STEPS: f64 = 50.0;

/// The pace of one worker invocation's `@connections` calls, adapting to the account's answers:
/// it starts at the invocation's fair share of the account rate, grows by half every
/// [`ADAPT_EVERY`] it keeps busy (slow start) until calls are throttled, then climbs back linearly
/// and backs off by a quarter whenever more than [`THROTTLE_SIGNAL`] of a window's calls were
/// throttled (additive increase, multiplicative decrease, as TCP shares a link). One invocation alone
/// thus uses the whole account rate, and five share it, without knowing of each other.
///
/// Runs on tokio's clock, so that it can be driven under a paused clock (the `simulate` binary).
#[derive(Debug)]
pub struct AdaptiveRate {
    state: Mutex<RateState>,
    min: f64,
    max: f64,
}

#[derive(Debug)]
struct RateState {
    rate: f64,
    /// Tokens in the bucket, negative when calls have reserved tokens not yet refilled.
    tokens: f64,
    refilled: Instant,
    window_started: Instant,
    answered: u32,
    throttled: u32,
    slow_start: bool,
}

impl AdaptiveRate {
    /// Starts at `start` calls a second, never above `max` nor below a hundredth of it.
    pub fn new(start: u32, max: u32) -> Self {
        let max = f64::from(max.max(1));
        let min = (max / 100.0).max(1.0);
        let rate = f64::from(start).clamp(min, max);
        let now = Instant::now();
        Self {
            state: Mutex::new(RateState {
                rate,
                tokens: burst(rate),
                refilled: now,
                window_started: now,
                answered: 0,
                throttled: 0,
                slow_start: true,
            }),
            min,
            max,
        }
    }

    fn lock(&self) -> MutexGuard<'_, RateState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Calls a second, now.
    pub fn rate(&self) -> u32 {
        self.lock().rate as u32
    }

    /// Waits for this call's turn; false, without waiting, if it would come at or after `stop_at`
    /// (or `stop_at` has passed).
    pub async fn acquire(&self, stop_at: Instant) -> bool {
        let wait = {
            let mut state = self.lock();
            let now = Instant::now();
            let elapsed = now.saturating_duration_since(state.refilled).as_secs_f64();
            state.tokens = (state.tokens + elapsed * state.rate).min(burst(state.rate));
            state.refilled = now;
            let wait = Duration::from_secs_f64((1.0 - state.tokens).max(0.0) / state.rate);
            // Checked even when a token is at hand: an invocation held back by its calls' latency
            // rather than by its rate always finds one, and would post until Lambda stops it.
            if now + wait >= stop_at {
                return false;
            }
            // A reservation: the calls waiting are served in turn, each with one sleep.
            state.tokens -= 1.0;
            wait
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        true
    }

    /// Like [`AdaptiveRate::new`], with an empty bucket: the first call waits its turn. For an
    /// invocation that starts while others already use the account's rate, whose burst would only
    /// meet 429s and slow it down for seconds after.
    pub fn steady(start: u32, max: u32) -> Self {
        let rate = Self::new(start, max);
        rate.lock().tokens = 0.0;
        rate
    }

    /// Counts a call's answer: `throttled` for a 429.
    pub fn answered(&self, throttled: bool) {
        let mut state = self.lock();
        state.answered += 1;
        state.throttled += u32::from(throttled);
        let now = Instant::now();
        let window = now.saturating_duration_since(state.window_started);
        if window < ADAPT_EVERY {
            return;
        }
        let share = f64::from(state.throttled) / f64::from(state.answered);
        // Speeding up is only earned by using the rate: an idle invocation must not grow a burst.
        let busy = f64::from(state.answered) >= state.rate * window.as_secs_f64() / 2.0;
        if share > THROTTLE_SIGNAL {
            state.rate = (state.rate * DECREASE).max(self.min);
            state.slow_start = false;
        } else if busy && state.slow_start {
            state.rate = (state.rate * SLOW_START).min(self.max);
        } else if busy {
            state.rate = (state.rate + self.max / INCREASE_STEPS).min(self.max);
        }
        state.tokens = state.tokens.min(burst(state.rate));
        state.window_started = now;
        state.answered = 0;
        state.throttled = 0;
    }
}

/// API Gateway's account bucket holds half a second of its rate (10,000/s, burst 5,000): so does an
/// invocation's.
fn burst(rate: f64) -> f64 {
    (rate / 2.0).max(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_lets_its_burst_through_at_once_and_no_more() {
        let bucket = token_bucket(1, 5);
        assert_eq!((0..10).filter(|_| bucket.check().is_ok()).count(), 5);
        let zero = token_bucket(0, 0);
        assert_eq!((0..10).filter(|_| zero.check().is_ok()).count(), 1);
    }

    #[test]
    fn the_share_divides_the_account_rate_among_the_invocations() {
        assert_eq!(post_rate_share(10_000, 5), 2_000);
        assert_eq!(post_rate_share(9_000, 20), 450);
        assert_eq!(post_rate_share(3, 10), 1, "never zero");
        assert_eq!(post_rate_share(10, 0), 10, "zero invocations counts as one");
    }

    /// Drives `rate` against an account bucket of `account` calls a second (burst half of it) for
    /// `seconds`, as `invocations` equal invocations would; returns the calls that got through.
    async fn against_account(rates: &[AdaptiveRate], account: f64, seconds: u64) -> u64 {
        let mut tokens = account / 2.0;
        let mut last = Instant::now();
        let mut through = 0;
        let end = Instant::now() + Duration::from_secs(seconds);
        let far = end + Duration::from_secs(3600);
        while Instant::now() < end {
            for rate in rates {
                assert!(rate.acquire(far).await);
                let now = Instant::now();
                tokens = (tokens + now.duration_since(last).as_secs_f64() * account).min(account / 2.0);
                last = now;
                let throttled = tokens < 1.0;
                if !throttled {
                    tokens -= 1.0;
                    through += 1;
                }
                rate.answered(throttled);
            }
        }
        through
    }

    #[tokio::test(start_paused = true)]
    async fn one_invocation_alone_climbs_to_the_account_rate() {
        let rate = AdaptiveRate::new(2_000, 10_000);
        let through = against_account(std::slice::from_ref(&rate), 10_000.0, 10).await;
        // 10 s at 10,000/s and the 5,000 burst would be 105,000: the climb and the backing off cost
        // a little of it.
        assert!(through > 85_000, "{through} calls in 10 s");
        assert!(rate.rate() > 5_000, "{}", rate.rate());
    }

    #[tokio::test(start_paused = true)]
    async fn five_invocations_share_the_account_rate_without_exceeding_it_for_long() {
        let rates: Vec<AdaptiveRate> = (0..5).map(|_| AdaptiveRate::new(2_000, 10_000)).collect();
        let through = against_account(&rates, 10_000.0, 10).await;
        assert!(through > 85_000, "{through} calls in 10 s");
        let total: u32 = rates.iter().map(AdaptiveRate::rate).sum();
        assert!(total < 20_000, "together {total}/s");
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_invocation_does_not_grow_its_rate() {
        let rate = AdaptiveRate::new(2_000, 10_000);
        for _ in 0..20 {
            tokio::time::advance(ADAPT_EVERY).await;
            assert!(rate.acquire(Instant::now() + Duration::from_secs(1)).await);
            rate.answered(false);
        }
        assert_eq!(rate.rate(), 2_000);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_rate_starts_with_an_empty_bucket() {
        let (burst, steady) = (AdaptiveRate::new(1_000, 1_000), AdaptiveRate::steady(1_000, 1_000));
        let far = Instant::now() + Duration::from_secs(60);
        let began = Instant::now();
        for _ in 0..100 {
            assert!(burst.acquire(far).await);
        }
        assert_eq!(began.elapsed(), Duration::ZERO, "half a second of its rate at once");
        for _ in 0..100 {
            assert!(steady.acquire(far).await);
        }
        assert!(began.elapsed() >= Duration::from_millis(99), "each call in its turn: {:?}", began.elapsed());
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_that_would_wait_past_the_deadline_is_refused_at_once() {
        let rate = AdaptiveRate::new(1, 1);
        let stop_at = Instant::now() + Duration::from_millis(500);
        assert!(rate.acquire(stop_at).await, "the burst of one");
        assert!(!rate.acquire(stop_at).await, "the next comes in a second");
        assert_eq!(Instant::now() + Duration::from_millis(500), stop_at, "without waiting");
    }
}
