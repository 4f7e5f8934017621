//! What to simulate: the world around the worker (latency, the account's bucket, capacity, gone
//! connections) and the worker's own settings, with AWS's and the template's defaults.

use std::time::Duration;

use local::esm::EsmSettings;
use shared::queue::QueueSettings;
use worker::{Lanes, WorkerSettings};

/// The template's `WorkerMemorySize` (a test holds them together).
pub const DEFAULT_MEMORY_MB: u32 = 256;

/// The worker's CPU per delivery at one full core: `worker_cpu` (10,000 connections, 3 batches of
/// 10 broadcasts, sharded, every post counted at the stub) on this project's 2-core build machine
/// (AMD EPYC): 42.2 and 41.3 µs at commit `1a2c517` (`scripts/bench-worker-cpu`, BENCHMARKS.md
/// *Worker CPU*).
pub const DEFAULT_CPU_PER_DELIVERY: Duration = Duration::from_micros(42);

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimSettings {
    pub connections: usize,
    /// Each `@connections` call takes a time drawn uniformly from this range.
    pub latency: (Duration, Duration),
    /// The fraction of calls answered 429 whatever the account's bucket holds.
    pub throttle: f64,
    /// Calls per second the endpoint can serve, one after another, when something other than the
    /// account's rate limits it: the local gateway's CPU, shared with its clients on one machine.
    /// Measured there in pipeline mode, it lets a simulation be checked against a local run.
    /// `None` on AWS, whose fleet serves every call the account's bucket admits.
    pub capacity: Option<f64>,
    /// The fraction of connections that are gone (410) and get pruned.
    pub gone: f64,
    /// The account's `@connections` calls per second, and its burst.
    pub account_rate: f64,
    pub account_burst: f64,
    /// The one-queue worker's settings; with `lanes`, each lane's are made from them
    /// ([`WorkerSettings::lanes`]).
    pub worker: WorkerSettings,
    /// The main queue's event source mapping (the interactive lane's, with `lanes`).
    pub esm: EsmSettings,
    /// A bulk queue and its own worker beside the main one; `None`: one queue, as before lanes.
    pub lanes: Option<Lanes>,
    /// Messages a second to one connection (not one of the broadcast's), queued from the
    /// broadcast's start for `direct_for`: what the lanes keep prompt. 0 sends none.
    pub direct_rate: f64,
    pub direct_for: Duration,
    pub queue: QueueSettings,
    /// Connections per page of a scan: DynamoDB's 1 MB pages hold about this many connection items.
    pub page_size: usize,
    /// The worker's memory: its share of a core, and its cost.
    pub memory_mb: u32,
    /// The worker's CPU per delivery at one full core (`worker_cpu`); `None` gives it all the CPU
    /// it wants, as the simulation did before it knew better.
    pub cpu_per_delivery: Option<Duration>,
    /// The broadcast's payload.
    pub message_bytes: usize,
    /// Simulated time after which the run stops, finished or not.
    pub limit: Duration,
    pub seed: u64,
}

impl Default for SimSettings {
    fn default() -> Self {
        Self {
            connections: 10_000,
            latency: (Duration::from_millis(20), Duration::from_millis(60)),
            throttle: 0.0,
            capacity: None,
            gone: 0.0,
            account_rate: f64::from(shared::limits::ACCOUNT_POST_RATE),
            account_burst: f64::from(shared::limits::ACCOUNT_POST_RATE / 2),
            worker: WorkerSettings::default(),
            esm: EsmSettings::default(),
            lanes: Some(Lanes::default()),
            direct_rate: 0.0,
            direct_for: Duration::ZERO,
            // The template's queue: six times the worker's timeout, five receives before the DLQ, and,
            // as SQS, no bound on what it holds.
            queue: QueueSettings {
                visibility_timeout: Duration::from_secs(180),
                max_receive_count: Some(5),
                max_bytes: usize::MAX,
            },
            page_size: 7_000,
            memory_mb: DEFAULT_MEMORY_MB,
            cpu_per_delivery: Some(DEFAULT_CPU_PER_DELIVERY),
            message_bytes: 128,
            limit: Duration::from_secs(3_600),
            seed: 1,
        }
    }
}

impl SimSettings {
    /// The CPU each invocation's deliveries take, when the simulation charges it.
    pub fn cpu(&self) -> Option<super::cpu::CpuModel> {
        self.cpu_per_delivery
            .map(|per_delivery| super::cpu::CpuModel::for_memory(self.memory_mb, per_delivery))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_simulated_worker_has_the_templates_memory_by_default() {
        let template = include_str!("../../../template.yaml");
        let parameter = template.split("\n  WorkerMemorySize:\n").nth(1).expect("the parameter");
        let default =
            parameter.lines().find_map(|line| line.trim().strip_prefix("Default: ")).expect("a default");
        assert_eq!(default.parse::<u32>().expect("a number"), DEFAULT_MEMORY_MB);
        assert_eq!(SimSettings::default().memory_mb, DEFAULT_MEMORY_MB);
    }
}
