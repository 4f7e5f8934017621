//! Token buckets, the one shape API Gateway's limits take: the stage throttle on client messages and
//! the account's budget of `@connections` calls, which each worker invocation takes a share of.

use std::num::NonZeroU32;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

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
}
