//! Configuration read from the environment once per cold start.
//!
//! `from_env` reads every variable before failing, so a misconfigured function names all of its
//! missing variables in one log line instead of one per deploy.

use std::str::FromStr;

/// The ingress function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    /// `AWS_REGION`, set by Lambda.
    pub region: String,
    /// `CONNECTIONS_TABLE`: the DynamoDB table holding connection records.
    pub table: String,
    /// `QUEUE_URL`: the SQS queue that feeds the worker.
    pub queue_url: String,
}

/// The worker function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// `AWS_REGION`, set by Lambda.
    pub region: String,
    /// `CONNECTIONS_TABLE`: the DynamoDB table holding connection records.
    pub table: String,
    /// `CONNECTIONS_ENDPOINT`: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub connections_endpoint: String,
    /// `QUEUE_URL`: the worker's own queue, for retry jobs.
    pub queue_url: String,
    /// `POST_CONCURRENCY` (default 128): `@connections` calls in flight at once per invocation.
    pub post_concurrency: usize,
    /// `ACCOUNT_POST_RATE` (default 10,000): `@connections` calls per second the whole fleet may make,
    /// API Gateway's account-wide limit or the share of it left to this API.
    pub account_post_rate: u32,
    /// `WORKER_MAX_CONCURRENCY` (default 5): the event source mapping's maximum concurrency, the
    /// number of invocations that share [`WorkerConfig::account_post_rate`].
    pub max_concurrency: u32,
    /// `FANOUT_SHARD_SIZE` (default 2,000; 0 never splits): connections per shard of a broadcast or a publish.
    pub shard_size: usize,
}

/// What is wrong with the environment: every missing and every unparsable variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", self.describe())]
pub struct ConfigError {
    pub missing: Vec<&'static str>,
    pub invalid: Vec<(&'static str, String)>,
}

impl ConfigError {
    fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.missing.is_empty() {
            parts.push(format!("missing environment variables: {}", self.missing.join(", ")));
        }
        for (name, why) in &self.invalid {
            parts.push(format!("{name} {why}"));
        }
        parts.join("; ")
    }
}

impl IngressConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let region = env.required("AWS_REGION");
        let table = env.required("CONNECTIONS_TABLE");
        let queue_url = env.required("QUEUE_URL");
        env.finish()?;
        Ok(Self { region, table, queue_url })
    }
}

impl WorkerConfig {
    /// At 20–60 ms a call, 128 in flight post about 3,200 a second: five invocations can reach the
    /// account's 10,000/s, which 64 could not (8,000/s; a million connections took 125 s instead of
    /// 102, `cargo run --release -p loadtest --bin simulate -- --connections 1000000
    /// --post-concurrency 64`).
    pub const DEFAULT_POST_CONCURRENCY: usize = 128;
    pub const DEFAULT_ACCOUNT_POST_RATE: u32 = crate::limits::ACCOUNT_POST_RATE;
    pub const DEFAULT_MAX_CONCURRENCY: u32 = 5;
    /// About a second of one invocation's share of the default account rate (10,000/s ÷ 5): a
    /// broadcast to 10,000 is posted by five invocations at once, one to a million by all of them in
    /// turn, each invocation's batch of ten shards well within its timeout
    /// (`cargo run --release -p loadtest --bin simulate`).
    pub const DEFAULT_SHARD_SIZE: usize = 2_000;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let region = env.required("AWS_REGION");
        let table = env.required("CONNECTIONS_TABLE");
        let connections_endpoint = env.required("CONNECTIONS_ENDPOINT");
        let queue_url = env.required("QUEUE_URL");
        let post_concurrency: usize = env.optional("POST_CONCURRENCY", Self::DEFAULT_POST_CONCURRENCY);
        if post_concurrency == 0 {
            env.invalid("POST_CONCURRENCY", "must be at least 1".into());
        }
        let account_post_rate: u32 = env.optional("ACCOUNT_POST_RATE", Self::DEFAULT_ACCOUNT_POST_RATE);
        if account_post_rate == 0 {
            env.invalid("ACCOUNT_POST_RATE", "must be at least 1".into());
        }
        let max_concurrency: u32 = env.optional("WORKER_MAX_CONCURRENCY", Self::DEFAULT_MAX_CONCURRENCY);
        if max_concurrency == 0 {
            env.invalid("WORKER_MAX_CONCURRENCY", "must be at least 1".into());
        }
        let shard_size: usize = env.optional("FANOUT_SHARD_SIZE", Self::DEFAULT_SHARD_SIZE);
        env.finish()?;
        Ok(Self {
            region,
            table,
            connections_endpoint,
            queue_url,
            post_concurrency,
            account_post_rate,
            max_concurrency,
            shard_size,
        })
    }

    /// This invocation's share of the account's `@connections` budget, in calls per second: every
    /// concurrent invocation posting at this rate keeps the fleet within the account's limit.
    pub fn post_rate(&self) -> u32 {
        crate::pacing::post_rate_share(self.account_post_rate, self.max_concurrency)
    }
}

/// Reads variables, remembering every problem instead of stopping at the first.
struct Env<F> {
    lookup: F,
    error: ConfigError,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn new(lookup: F) -> Self {
        Self { lookup, error: ConfigError { missing: Vec::new(), invalid: Vec::new() } }
    }

    fn required(&mut self, name: &'static str) -> String {
        match (self.lookup)(name).filter(|value| !value.trim().is_empty()) {
            Some(value) => value,
            None => {
                self.error.missing.push(name);
                String::new()
            }
        }
    }

    fn optional<T: FromStr>(&mut self, name: &'static str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        match (self.lookup)(name) {
            None => default,
            Some(raw) => raw.trim().parse().unwrap_or_else(|err| {
                self.invalid(name, format!("is {raw:?}: {err}"));
                default
            }),
        }
    }

    fn invalid(&mut self, name: &'static str, why: String) {
        self.error.invalid.push((name, why));
    }

    fn finish(self) -> Result<(), ConfigError> {
        if self.error.missing.is_empty() && self.error.invalid.is_empty() { Ok(()) } else { Err(self.error) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> =
            vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn every_missing_variable_is_named_at_once() {
        let err = WorkerConfig::from_lookup(lookup(&[])).expect_err("nothing set");
        assert_eq!(err.missing, ["AWS_REGION", "CONNECTIONS_TABLE", "CONNECTIONS_ENDPOINT", "QUEUE_URL"]);
        assert!(
            err.to_string().contains("AWS_REGION, CONNECTIONS_TABLE, CONNECTIONS_ENDPOINT, QUEUE_URL"),
            "{err}"
        );
        let err = IngressConfig::from_lookup(lookup(&[("QUEUE_URL", " "), ("AWS_REGION", "eu-west-1")]))
            .expect_err("blank");
        assert_eq!(err.missing, ["CONNECTIONS_TABLE", "QUEUE_URL"]);
    }

    #[test]
    fn a_bad_number_is_reported_with_its_value() {
        let err = WorkerConfig::from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("CONNECTIONS_TABLE", "t"),
            ("CONNECTIONS_ENDPOINT", "https://x"),
            ("QUEUE_URL", "https://q"),
            ("POST_CONCURRENCY", "lots"),
        ]))
        .expect_err("bad number");
        assert!(err.missing.is_empty());
        assert!(err.to_string().contains("POST_CONCURRENCY is \"lots\""), "{err}");
    }

    #[test]
    fn a_complete_environment_parses_with_defaults() {
        let config = WorkerConfig::from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("CONNECTIONS_TABLE", "t"),
            ("CONNECTIONS_ENDPOINT", "https://x"),
            ("QUEUE_URL", "https://q"),
        ]))
        .expect("valid");
        assert_eq!(config.post_concurrency, WorkerConfig::DEFAULT_POST_CONCURRENCY);
        assert_eq!(config.post_rate(), 2_000, "10,000 calls/s shared by 5 invocations");
    }

    #[test]
    fn the_post_rate_is_the_accounts_budget_shared_by_the_concurrent_invocations() {
        let config = WorkerConfig::from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("CONNECTIONS_TABLE", "t"),
            ("CONNECTIONS_ENDPOINT", "https://x"),
            ("QUEUE_URL", "https://q"),
            ("ACCOUNT_POST_RATE", "9000"),
            ("WORKER_MAX_CONCURRENCY", "20"),
        ]))
        .expect("valid");
        assert_eq!(config.post_rate(), 450);
        let err = WorkerConfig::from_lookup(lookup(&[
            ("AWS_REGION", "eu-west-1"),
            ("CONNECTIONS_TABLE", "t"),
            ("CONNECTIONS_ENDPOINT", "https://x"),
            ("QUEUE_URL", "https://q"),
            ("WORKER_MAX_CONCURRENCY", "0"),
        ]))
        .expect_err("zero invocations");
        assert!(err.to_string().contains("WORKER_MAX_CONCURRENCY must be at least 1"), "{err}");
    }
}
