//! What the template tells the worker through its environment, read once per cold start: the
//! stack's table and queue ([`Stack`]), its `@connections` endpoint, and the [`Fleet`] it belongs to. Every variable is read before it
//! fails, so one log line names everything that is wrong.

use shared::EnvError;
use shared::environment::{Env, FromEnv};
use shared::stack::Stack;

use crate::settings::{Fleet, Lane, WorkerSettings};

/// What the template tells the worker: the stack's, and its `@connections` endpoint and fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The table, the queue (for shard and retry jobs) and the channel settings: a backend's
    /// publish is numbered in its channel's history as a client's is by the ingress, and a pruned
    /// connection leaves its channels as a disconnected one does.
    pub stack: Stack,
    /// `CONNECTIONS_ENDPOINT`: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub connections_endpoint: String,
    /// `POST_CONCURRENCY` (default 128), `ACCOUNT_POST_RATE` (default 10,000),
    /// `INTERACTIVE_POST_RATE` (default 100), `WORKER_MAX_CONCURRENCY` (default 5),
    /// `BULK_WORKER_MAX_CONCURRENCY` (default 5) and `FANOUT_SHARD_SIZE` (default 2,000; 0 never
    /// splits).
    pub fleet: Fleet,
    /// `BULK_QUEUE_URL`: the bulk lane's queue, where shard jobs go; unset in a stack of one queue.
    pub bulk_queue_url: Option<String>,
    /// `LANE` (`interactive`, the default, or `bulk`): which queue this function drains.
    pub lane: Lane,
}

impl Deployment {
    /// The worker's settings: its lane's, in a stack of two; the only lane's otherwise.
    pub fn settings(&self) -> WorkerSettings {
        match self.bulk_queue_url {
            Some(_) => WorkerSettings::for_lane(self.fleet, self.lane),
            None => WorkerSettings::for_fleet(self.fleet),
        }
    }
}

impl FromEnv for Deployment {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut env = Env::new(lookup);
        let stack = Stack::read(&mut env);
        let connections_endpoint = env.required("CONNECTIONS_ENDPOINT");
        let post_concurrency: usize = env.optional("POST_CONCURRENCY", Fleet::DEFAULT_POST_CONCURRENCY);
        if post_concurrency == 0 {
            env.invalid("POST_CONCURRENCY", "must be at least 1".into());
        }
        let account_post_rate: u32 = env.optional("ACCOUNT_POST_RATE", Fleet::DEFAULT_ACCOUNT_POST_RATE);
        if account_post_rate == 0 {
            env.invalid("ACCOUNT_POST_RATE", "must be at least 1".into());
        }
        let max_concurrency: u32 = env.optional("WORKER_MAX_CONCURRENCY", Fleet::DEFAULT_MAX_CONCURRENCY);
        if max_concurrency == 0 {
            env.invalid("WORKER_MAX_CONCURRENCY", "must be at least 1".into());
        }
        let bulk_max_concurrency: u32 =
            env.optional("BULK_WORKER_MAX_CONCURRENCY", Fleet::DEFAULT_BULK_MAX_CONCURRENCY);
        if bulk_max_concurrency == 0 {
            env.invalid("BULK_WORKER_MAX_CONCURRENCY", "must be at least 1".into());
        }
        let interactive_post_rate: u32 =
            env.optional("INTERACTIVE_POST_RATE", Fleet::DEFAULT_INTERACTIVE_POST_RATE);
        if interactive_post_rate >= account_post_rate && account_post_rate > 0 {
            env.invalid(
                "INTERACTIVE_POST_RATE",
                format!("must be below ACCOUNT_POST_RATE ({account_post_rate}): the bulk lane needs a rate"),
            );
        }
        let shard_size: usize = env.optional("FANOUT_SHARD_SIZE", Fleet::DEFAULT_SHARD_SIZE);
        let bulk_queue_url = env.present("BULK_QUEUE_URL");
        let lane_text: String = env.optional("LANE", Lane::Interactive.as_str().to_owned());
        let lane = match Lane::parse(&lane_text) {
            Some(lane) => lane,
            None => {
                env.invalid("LANE", format!("is {lane_text:?}: interactive or bulk"));
                Lane::Interactive
            }
        };
        if lane == Lane::Bulk && bulk_queue_url.is_none() {
            env.invalid("LANE", "is bulk, but BULK_QUEUE_URL is not set".into());
        }
        env.finish()?;
        let fleet = Fleet {
            post_concurrency,
            account_post_rate,
            interactive_post_rate,
            max_concurrency,
            bulk_max_concurrency,
            shard_size,
        };
        Ok(Self { stack, connections_endpoint, fleet, bulk_queue_url, lane })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::vars as lookup;

    const REQUIRED: [(&str, &str); 4] = [
        ("AWS_REGION", "eu-west-1"),
        ("CONNECTIONS_TABLE", "t"),
        ("CONNECTIONS_ENDPOINT", "https://x"),
        ("QUEUE_URL", "https://q"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        REQUIRED.iter().chain(extra).copied().collect()
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let err = Deployment::from_lookup(lookup(&[])).expect_err("nothing set");
        // The stack's variables first, then the worker's own.
        assert_eq!(err.missing, ["AWS_REGION", "CONNECTIONS_TABLE", "QUEUE_URL", "CONNECTIONS_ENDPOINT"]);
        assert!(
            err.to_string().contains("AWS_REGION, CONNECTIONS_TABLE, QUEUE_URL, CONNECTIONS_ENDPOINT"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_number_is_reported_with_its_value() {
        let err =
            Deployment::from_lookup(lookup(&with(&[("POST_CONCURRENCY", "lots")]))).expect_err("bad number");
        assert!(err.missing.is_empty());
        assert!(err.to_string().contains("POST_CONCURRENCY is \"lots\""), "{err}");
    }

    #[test]
    fn a_complete_environment_parses_with_defaults() {
        let deployment = Deployment::from_lookup(lookup(&REQUIRED)).expect("valid");
        assert_eq!(deployment.fleet, Fleet::default());
        assert_eq!(deployment.fleet.post_rate(), 2_000, "10,000 calls/s shared by 5 invocations");
    }

    #[test]
    fn a_bulk_lane_shares_the_account_rate_less_the_interactive_reserve() {
        let bulk = Deployment::from_lookup(lookup(&with(&[
            ("BULK_QUEUE_URL", "https://bulk"),
            ("LANE", "bulk"),
            ("INTERACTIVE_POST_RATE", "500"),
            ("BULK_WORKER_MAX_CONCURRENCY", "10"),
        ])))
        .expect("valid");
        let settings = bulk.settings();
        assert_eq!((settings.lane, settings.post_rate, settings.account_rate), (Lane::Bulk, 950, 950));
        let interactive =
            Deployment::from_lookup(lookup(&with(&[("BULK_QUEUE_URL", "https://bulk")]))).expect("valid");
        let settings = interactive.settings();
        assert_eq!(settings.lane, Lane::Interactive);
        assert_eq!((settings.post_rate, settings.account_rate), (2_000, 10_000), "its share, up to all");
        assert_eq!(settings.min_shards, 150, "enough for every bulk invocation");
        let alone = Deployment::from_lookup(lookup(&REQUIRED)).expect("valid").settings();
        assert_eq!((alone.post_rate, alone.account_rate), (2_000, 10_000), "one queue: as before lanes");
    }

    #[test]
    fn a_lane_without_its_queue_or_a_reserve_of_the_whole_rate_is_refused() {
        let err = Deployment::from_lookup(lookup(&with(&[("LANE", "bulk")]))).expect_err("no bulk queue");
        assert!(err.to_string().contains("LANE is bulk, but BULK_QUEUE_URL is not set"), "{err}");
        let err = Deployment::from_lookup(lookup(&with(&[("LANE", "fast")]))).expect_err("no such lane");
        assert!(err.to_string().contains("LANE is \"fast\": interactive or bulk"), "{err}");
        let err = Deployment::from_lookup(lookup(&with(&[("INTERACTIVE_POST_RATE", "10000")])))
            .expect_err("nothing left for bulk");
        assert!(err.to_string().contains("INTERACTIVE_POST_RATE must be below ACCOUNT_POST_RATE"), "{err}");
    }

    #[test]
    fn the_post_rate_is_the_accounts_budget_shared_by_the_concurrent_invocations() {
        let deployment = Deployment::from_lookup(lookup(&with(&[
            ("ACCOUNT_POST_RATE", "9000"),
            ("WORKER_MAX_CONCURRENCY", "20"),
        ])))
        .expect("valid");
        assert_eq!(deployment.fleet.post_rate(), 450);
        let err = Deployment::from_lookup(lookup(&with(&[("WORKER_MAX_CONCURRENCY", "0")])))
            .expect_err("zero invocations");
        assert!(err.to_string().contains("WORKER_MAX_CONCURRENCY must be at least 1"), "{err}");
    }
}
