//! The worker function's configuration, read from the environment once per cold start: where its
//! table, endpoint and queue are, and the [`Fleet`] it belongs to. Every variable is read before it
//! fails, so one log line names everything that is wrong.

use shared::EnvError;
use shared::environment::{Env, FromEnv};
use shared::history::HistorySettings;
use shared::presence::PresenceSettings;

use crate::settings::Fleet;

/// The worker function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// `AWS_REGION`, set by Lambda.
    pub region: String,
    /// `CONNECTIONS_TABLE`: the DynamoDB table holding connection records.
    pub table: String,
    /// `CONNECTIONS_ENDPOINT`: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub connections_endpoint: String,
    /// `QUEUE_URL`: the worker's own queue, for retry jobs.
    pub queue_url: String,
    /// `POST_CONCURRENCY` (default 128), `ACCOUNT_POST_RATE` (default 10,000),
    /// `WORKER_MAX_CONCURRENCY` (default 5) and `FANOUT_SHARD_SIZE` (default 2,000; 0 never splits).
    pub fleet: Fleet,
    /// `HISTORY_SIZE` and `HISTORY_TTL_SECONDS`: a backend's publish is numbered in its channel's
    /// history as a client's is by the ingress.
    pub history: HistorySettings,
    /// `PRESENCE` and `EVENT_BUS_NAME`: a pruned connection leaves its channels as a disconnected
    /// one does, with its `leave` frames and events.
    pub presence: PresenceSettings,
}

impl FromEnv for Deployment {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut env = Env::new(lookup);
        let region = env.required("AWS_REGION");
        let table = env.required("CONNECTIONS_TABLE");
        let connections_endpoint = env.required("CONNECTIONS_ENDPOINT");
        let queue_url = env.required("QUEUE_URL");
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
        let shard_size: usize = env.optional("FANOUT_SHARD_SIZE", Fleet::DEFAULT_SHARD_SIZE);
        let history = HistorySettings::from_env(&mut env);
        let presence = PresenceSettings::from_env(&mut env);
        env.finish()?;
        let fleet = Fleet { post_concurrency, account_post_rate, max_concurrency, shard_size };
        Ok(Self { region, table, connections_endpoint, queue_url, fleet, history, presence })
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
        assert_eq!(err.missing, ["AWS_REGION", "CONNECTIONS_TABLE", "CONNECTIONS_ENDPOINT", "QUEUE_URL"]);
        assert!(
            err.to_string().contains("AWS_REGION, CONNECTIONS_TABLE, CONNECTIONS_ENDPOINT, QUEUE_URL"),
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
