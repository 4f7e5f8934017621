//! What a simulated broadcast did, and what it would cost at AWS's list prices.

use serde::Serialize;

/// What a simulated broadcast did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SimReport {
    pub connections: usize,
    /// Connections not gone: those the broadcast must reach.
    pub live: usize,
    /// Live connections reached at least once.
    pub delivered: usize,
    /// Deliveries beyond the first to a connection.
    pub duplicated: u64,
    /// Live connections never reached.
    pub lost: usize,
    /// From the broadcast's queueing to the last connection reached.
    pub time_to_last_delivery_s: f64,
    /// The account's rate would reach everyone in this long at best: (live − burst) ÷ rate.
    pub floor_s: f64,
    /// What each limit alone would allow at best, and which of them is the tightest: the account
    /// (`floor_s`), the workers' CPU (every call's CPU at their share of a core, all invocations at
    /// once), or their concurrency (every call's latency over all the calls in flight at once).
    pub floors: Floors,
    pub held_back_by: &'static str,
    /// CPU seconds the invocations spent on deliveries, at one full core (what `worker_cpu`
    /// measures), and the share of a core each had.
    pub cpu_time_s: f64,
    pub cpu_share: f64,
    pub invocations: u64,
    /// Invocations stopped at the function's timeout.
    pub timed_out: u64,
    pub longest_invocation_s: f64,
    pub shard_jobs: u64,
    pub retry_jobs: u64,
    pub dead_letters: usize,
    pub calls: u64,
    /// Calls refused by the account's bucket.
    pub throttled_by_account: u64,
    /// Calls answered 429 by injection.
    pub throttled_injected: u64,
    pub gone_answers: u64,
    /// Pages the scans read, and DynamoDB's read units for them (eventually consistent, 4 KB each).
    pub scan_pages: u64,
    pub read_units: f64,
    pub cost_usd: f64,
    pub cost: Cost,
    pub finished: bool,
    /// Whether shard jobs went on a bulk queue of their own.
    pub lanes: bool,
    /// The messages to one connection published beside the broadcast, when there were any.
    pub direct: Option<super::direct::DirectReport>,
    pub settings: EchoedSettings,
}

/// The least time each limit alone allows for the calls made, in seconds.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Floors {
    pub account_s: f64,
    pub cpu_s: f64,
    pub concurrency_s: f64,
}

impl Floors {
    /// The tightest limit's name.
    pub fn tightest(&self) -> &'static str {
        if self.cpu_s >= self.account_s && self.cpu_s >= self.concurrency_s {
            "cpu"
        } else if self.concurrency_s >= self.account_s {
            "concurrency"
        } else {
            "account"
        }
    }
}

/// The cost of one broadcast at AWS's list prices (us-east-1, `../shared/reference`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cost {
    /// $1.00 per million messages sent to connections.
    pub api_gateway: f64,
    /// $0.0000133334 per GB-s (arm64) and $0.20 per million invocations.
    pub lambda: f64,
    /// $0.40 per million requests: sends (ten jobs a batch), receives and deletes.
    pub sqs: f64,
    /// $0.125 per million read units, $0.625 per million write units (pruning).
    pub dynamodb: f64,
}

/// The settings a report was made with.
#[derive(Clone, Debug, Default, Serialize)]
pub struct EchoedSettings {
    pub post_concurrency: usize,
    pub post_rate: u32,
    pub shard_size: usize,
    pub max_concurrency: usize,
    pub batch_size: usize,
    pub function_timeout_s: f64,
    pub latency_ms: (u128, u128),
    pub throttle: f64,
    pub capacity: Option<f64>,
    pub gone: f64,
    pub memory_mb: u32,
    /// The worker's CPU per delivery at one full core; `None`: not charged.
    pub cpu_per_delivery_us: Option<f64>,
}

/// Bytes of one connection item as a scan reads it (`Pk`, `Sk`, `ConnectedAt`, `Ttl`, `SourceIp`).
const ITEM_BYTES: usize = 120;

/// DynamoDB's read units for pages of these lengths: an eventually consistent read unit is 4 KB, at
/// half the price of a strong one, and each page rounds up.
pub fn read_units(pages: &[usize]) -> f64 {
    pages.iter().map(|&items| (items * ITEM_BYTES).div_ceil(4096).max(1) as f64 / 2.0).sum()
}

/// What a broadcast's work costs, from the counts it made.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    /// Deliveries, and the bytes of each message (API Gateway bills 32 KB units).
    pub delivered: usize,
    pub message_bytes: usize,
    /// Seconds the worker's invocations ran, at this memory, and how many there were.
    pub busy_s: f64,
    pub memory_mb: u32,
    pub invocations: u64,
    pub sqs_requests: u64,
    pub read_units: f64,
    /// One delete (a write unit) each.
    pub pruned: u64,
}

impl Cost {
    pub fn of(usage: Usage) -> Self {
        Self {
            api_gateway: usage.delivered as f64
                * 1e-6
                * usage.message_bytes.div_ceil(32 * 1024).max(1) as f64,
            lambda: usage.busy_s * f64::from(usage.memory_mb) / 1024.0 * 0.000_013_333_4
                + usage.invocations as f64 * 0.2e-6,
            sqs: usage.sqs_requests as f64 * 0.4e-6,
            dynamodb: usage.read_units * 0.125e-6 + usage.pruned as f64 * 0.625e-6,
        }
    }

    pub fn total(&self) -> f64 {
        self.api_gateway + self.lambda + self.sqs + self.dynamodb
    }
}
