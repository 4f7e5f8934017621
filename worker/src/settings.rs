//! How the worker paces, splits and retries: what a deployment sets ([`Fleet`]) and the tuning
//! behind it, each default with the measurement that chose it.

use std::time::Duration;

use shared::limits::PRUNE_GRACE;

/// How the worker paces and retries its `@connections` calls.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// `@connections` calls in flight at once.
    pub post_concurrency: usize,
    /// `@connections` calls per second an invocation starts at: its share of the account's rate
    /// when every invocation is busy. It adapts from there ([`AdaptiveRate`]).
    pub post_rate: u32,
    /// `@connections` calls per second of the whole account: the most one invocation may use.
    pub account_rate: u32,
    /// Connections per shard: a broadcast to more is split into shards on the queue, posted by as
    /// many invocations at once; 0 never splits.
    pub shard_size: usize,
    /// The fewest shards a split makes ([`min_shards`]): enough for every invocation the event
    /// source mapping runs at once to get a batch of them, three times over.
    pub min_shards: u32,
    /// Time kept free at the end of an invocation to finish the scan, queue the retry jobs and prune.
    pub deadline_reserve: Duration,
    /// The first retry's delay; each retry doubles it, with full jitter, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long one connection's posts may keep failing (from the first failure) before it goes into
    /// a retry job: what one stuck client can cost an invocation, and so everyone else.
    pub target_retry_budget: Duration,
    /// How long a retry job waits on the queue before its first attempt; it doubles with each later
    /// attempt (1, 2, 4, 8 s by default), giving a stuck client time to catch up.
    pub retry_job_delay: Duration,
    /// How long a connection that answered a streak of 429s counts as stuck, unless a post reaches
    /// it: meanwhile its posts go straight into retry jobs, but for one probe every `probe_every`.
    pub stuck_for: Duration,
    pub probe_every: Duration,
    /// How young a record must be to be kept despite a 410 ([`PRUNE_GRACE`] on AWS).
    pub prune_grace: Duration,
    /// Invocations a broadcast may go through (the first and its retry jobs) before the connections it
    /// still could not reach are given up on.
    pub max_job_attempts: u32,
    /// Which queue this worker drains, and so where its own jobs go ([`Lane`]).
    pub lane: Lane,
}

/// The two queues a stack's work flows through, each drained by its own worker function with its
/// own concurrency and its own part of the account's `@connections` rate. Everything the ingress
/// and backends queue arrives on the interactive lane; an audience too large for one shard is
/// split there into shard jobs on the bulk lane. So a message to one connection, a channel of a
/// few hundred, a recovery replay or a `join` frame never waits behind the hundreds of shard jobs of
/// a large broadcast, and the bulk lane leaves the interactive lane a reserve of the account's rate
/// (`InteractivePostRate`) that its posts never meet a 429 within. Each lane's retry jobs stay on
/// their lane, and one message's order is what it always was: one channel's messages are numbered
/// before either queue and recovered by offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lane {
    /// The main queue: every job as first queued, and retry jobs of those.
    #[default]
    Interactive,
    /// The bulk queue: shard jobs and their retry jobs.
    Bulk,
}

impl Lane {
    /// The `LANE` variable's value, which the template gives each worker function.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "interactive" => Some(Self::Interactive),
            "bulk" => Some(Self::Bulk),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Interactive => "interactive",
            Self::Bulk => "bulk",
        }
    }
}

/// A stack's second lane: the bulk worker's concurrency, and the part of the account's rate it
/// leaves the interactive lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lanes {
    pub bulk_concurrency: u32,
    pub interactive_post_rate: u32,
}

impl Default for Lanes {
    fn default() -> Self {
        Self {
            bulk_concurrency: Fleet::DEFAULT_BULK_MAX_CONCURRENCY,
            interactive_post_rate: Fleet::DEFAULT_INTERACTIVE_POST_RATE,
        }
    }
}

impl Default for WorkerSettings {
    /// The template's defaults: [`Fleet::default`].
    fn default() -> Self {
        Self::for_fleet(Fleet::default())
    }
}

impl WorkerSettings {
    /// The settings of a worker that drains the only queue there is (a stack without a bulk
    /// queue): its share of the account's rate to start from, the account's rate as its ceiling,
    /// and enough shards for every invocation; the rest is tuning that no deployment changes.
    pub fn for_fleet(fleet: Fleet) -> Self {
        Self {
            post_concurrency: fleet.post_concurrency,
            post_rate: fleet.post_rate(),
            account_rate: fleet.account_post_rate,
            shard_size: fleet.shard_size,
            min_shards: min_shards(fleet.max_concurrency),
            deadline_reserve: DEFAULT_DEADLINE_RESERVE,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            target_retry_budget: DEFAULT_TARGET_RETRY_BUDGET,
            retry_job_delay: DEFAULT_RETRY_JOB_DELAY,
            stuck_for: DEFAULT_STUCK_FOR,
            probe_every: DEFAULT_PROBE_EVERY,
            prune_grace: PRUNE_GRACE,
            max_job_attempts: DEFAULT_MAX_JOB_ATTEMPTS,
            lane: Lane::Interactive,
        }
    }

    /// The settings of the worker of `lane` in a stack of two lanes ([`WorkerSettings::lanes`]).
    /// The bootstrap, the local gateway and `simulate` start here.
    pub fn for_lane(fleet: Fleet, lane: Lane) -> Self {
        let [interactive, bulk] = Self::for_fleet(fleet).lanes(Lanes {
            bulk_concurrency: fleet.bulk_max_concurrency,
            interactive_post_rate: fleet.interactive_post_rate,
        });
        match lane {
            Lane::Interactive => interactive,
            Lane::Bulk => bulk,
        }
    }

    /// These settings of a one-queue worker made into the two lanes' — the interactive's, then
    /// the bulk's. Each bulk invocation keeps to its share of the account's rate less the
    /// interactive reserve, from its first call (no burst) to its last (no growth): API Gateway
    /// answers the account's throttling and a client's full buffer alike with 429, so a bulk lane
    /// that probed the account's limit as the one-queue worker does would throttle the interactive
    /// lane's posts too, and a direct message meeting a streak of them counts its client stuck
    /// (1,000,000 with 50 direct messages a second: p99 3.8 s probing, 31 ms keeping to the share;
    /// `simulate --connections 1000000 --direct-rate 50`). The interactive lane paces as a
    /// one-queue worker does, from its share of the account's rate up to all of it, so that a
    /// publish to a channel of a thousand is as quick as before lanes. Both split an audience into
    /// whole rounds of batches for the bulk invocations.
    pub fn lanes(&self, lanes: Lanes) -> [Self; 2] {
        let reserve = lanes.interactive_post_rate.clamp(1, self.account_rate.saturating_sub(1).max(1));
        let bulk_rate = self.account_rate.saturating_sub(reserve).max(1);
        let min_shards = min_shards(lanes.bulk_concurrency);
        [
            Self { lane: Lane::Interactive, min_shards, ..self.clone() },
            Self {
                lane: Lane::Bulk,
                post_rate: shared::pacing::post_rate_share(bulk_rate, lanes.bulk_concurrency),
                account_rate: shared::pacing::post_rate_share(bulk_rate, lanes.bulk_concurrency),
                min_shards,
                ..self.clone()
            },
        ]
    }
}

/// What a deployment decides about its worker fleets — the template's `PostConcurrency`,
/// `AccountPostRate`, `InteractivePostRate`, `WorkerMaxConcurrency`, `BulkWorkerMaxConcurrency`
/// and `FanoutShardSize` — from which each lane's pacing follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fleet {
    /// `@connections` calls in flight at once per invocation.
    pub post_concurrency: usize,
    /// `@connections` calls per second the whole fleet may make: API Gateway's account-wide limit,
    /// or the share of it left to this API.
    pub account_post_rate: u32,
    /// The part of `account_post_rate` the bulk lane leaves to the interactive lane.
    pub interactive_post_rate: u32,
    /// The main queue's event source mapping's maximum concurrency (the interactive lane's, or the
    /// only lane's in a stack without a bulk queue).
    pub max_concurrency: u32,
    /// The bulk queue's: the invocations that share the account's rate during a large fan-out.
    pub bulk_max_concurrency: u32,
    /// Connections per shard of a broadcast or a publish; 0 never splits.
    pub shard_size: usize,
}

impl Fleet {
    /// At 20–60 ms a call, 128 in flight post about 3,200 a second: five invocations can reach the
    /// account's 10,000/s, which 64 could not (8,000/s; a million connections took 125 s instead of
    /// 102, `cargo run --release -p loadtest --bin simulate -- --connections 1000000
    /// --post-concurrency 64`).
    pub const DEFAULT_POST_CONCURRENCY: usize = 128;
    pub const DEFAULT_ACCOUNT_POST_RATE: u32 = shared::limits::ACCOUNT_POST_RATE;
    pub const DEFAULT_MAX_CONCURRENCY: u32 = 5;
    pub const DEFAULT_BULK_MAX_CONCURRENCY: u32 = 5;
    /// 1 % of the default account rate, twice what 50 direct messages a second need: beside a
    /// million-connection broadcast they arrived with p99 31 ms and the broadcast took 4.2 % over
    /// the account's floor; with 300 (3 %) the broadcast took 6.3 % over it (BENCHMARKS.md *Lanes*,
    /// `cargo run --release -p loadtest --bin simulate -- --connections 1000000 --direct-rate 50`).
    pub const DEFAULT_INTERACTIVE_POST_RATE: u32 = 100;
    /// About a second of one invocation's share of the default account rate (10,000/s ÷ 5): a
    /// broadcast to 10,000 is posted by five invocations at once, one to a million by all of them in
    /// turn, each invocation's batch of ten shards well within its timeout
    /// (`cargo run --release -p loadtest --bin simulate`).
    pub const DEFAULT_SHARD_SIZE: usize = 2_000;

    /// One invocation's share of the account's `@connections` budget, in calls per second: every
    /// concurrent invocation posting at this rate keeps the fleet within the account's limit.
    pub fn post_rate(&self) -> u32 {
        shared::pacing::post_rate_share(self.account_post_rate, self.max_concurrency)
    }
}

impl Default for Fleet {
    fn default() -> Self {
        Self {
            post_concurrency: Self::DEFAULT_POST_CONCURRENCY,
            account_post_rate: Self::DEFAULT_ACCOUNT_POST_RATE,
            interactive_post_rate: Self::DEFAULT_INTERACTIVE_POST_RATE,
            max_concurrency: Self::DEFAULT_MAX_CONCURRENCY,
            bulk_max_concurrency: Self::DEFAULT_BULK_MAX_CONCURRENCY,
            shard_size: Self::DEFAULT_SHARD_SIZE,
        }
    }
}

/// Kept free before the deadline: a scan of the rest of the table and one SendMessageBatch per ten
/// retry jobs take well under this.
pub const DEFAULT_DEADLINE_RESERVE: Duration = Duration::from_secs(3);

/// Four or five retries with backoff: enough to ride out a burst of throttling or server errors
/// within the invocation, so that few deliveries wait a second or more in a retry job. A client that
/// has stopped reading costs this once at most: a streak of 429s marks it stuck (`stuck.rs`).
pub const DEFAULT_TARGET_RETRY_BUDGET: Duration = Duration::from_secs(1);

/// The first retry job's delay on the queue; SQS counts delays in whole seconds.
pub const DEFAULT_RETRY_JOB_DELAY: Duration = Duration::from_secs(1);

/// A probe failing keeps a connection stuck this much longer: a client that has read nothing for
/// this long is not about to.
pub const DEFAULT_STUCK_FOR: Duration = Duration::from_secs(10);

/// One post a second finds out that a stuck client reads again; every other post to it would only
/// carry its message there to be refused.
pub const DEFAULT_PROBE_EVERY: Duration = Duration::from_secs(1);

/// A broadcast's first attempt and four retry jobs: with backoff inside each invocation, a connection
/// still failing after that is broken, not busy.
pub const DEFAULT_MAX_JOB_ATTEMPTS: u32 = 5;

/// The most messages the SQS event source mapping hands one invocation (the template's
/// `WorkerBatchSize` allows no more).
pub const MAX_BATCH_SIZE: u32 = 10;

/// How many rounds of full batches a split makes at least, for every invocation the mapping runs.
/// With one round, each invocation takes its ten shards at once and the slowest sets the broadcast's
/// end while the others idle; with three, two thirds wait on the queue for whichever invocation is
/// free first. Measured with `simulate --connections 10000 --account-rate 2000 --latency-min-ms 0
/// --latency-max-ms 2 --post-concurrency 64 --capacity 5102`, seeds 1 to 5: one round 6.6–8.9 s to
/// the last delivery, longest invocation 5.6–7.9 s; three rounds 4.9–6.0 s and 2.1–3.6 s (the local
/// gateway measured 5.7 s; the account's floor is 4.5 s). At 100,000 on AWS's defaults: 11.0–11.1 s
/// against 10.6–10.9 s.
pub const SHARD_ROUNDS: u32 = 3;

/// The fewest shards a split makes when the mapping runs `max_concurrency` invocations at once.
pub fn min_shards(max_concurrency: u32) -> u32 {
    max_concurrency.saturating_mul(MAX_BATCH_SIZE).saturating_mul(SHARD_ROUNDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleets_invocations_share_the_accounts_rate_and_split_into_three_rounds_of_batches() {
        let settings = WorkerSettings::default();
        assert_eq!(settings.post_rate, 2_000, "10,000 calls/s shared by 5 invocations");
        assert_eq!((settings.account_rate, settings.min_shards), (10_000, 5 * 10 * 3));
        let fleet = Fleet { account_post_rate: 9_000, max_concurrency: 20, ..Fleet::default() };
        let settings = WorkerSettings::for_fleet(fleet);
        assert_eq!((settings.post_rate, settings.account_rate, settings.min_shards), (450, 9_000, 600));
    }
}
