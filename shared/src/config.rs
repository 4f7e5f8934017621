//! Configuration read from the environment once per cold start.
//!
//! `from_env` reads every variable before failing, so a misconfigured function names all of its
//! missing variables in one log line instead of one per deploy.

use std::str::FromStr;

/// The ingress function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngressConfig {
    /// `CONNECTIONS_TABLE`: the DynamoDB table holding connection records.
    pub table: String,
    /// `QUEUE_URL`: the SQS queue that feeds the worker.
    pub queue_url: String,
}

/// The worker function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerConfig {
    /// `CONNECTIONS_TABLE`: the DynamoDB table holding connection records.
    pub table: String,
    /// `CONNECTIONS_ENDPOINT`: `https://{api}.execute-api.{region}.amazonaws.com/{stage}`.
    pub connections_endpoint: String,
    /// `POST_CONCURRENCY` (default 64): `@connections` calls in flight at once per invocation.
    pub post_concurrency: usize,
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
        let table = env.required("CONNECTIONS_TABLE");
        let queue_url = env.required("QUEUE_URL");
        env.finish()?;
        Ok(Self { table, queue_url })
    }
}

impl WorkerConfig {
    pub const DEFAULT_POST_CONCURRENCY: usize = 64;

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut env = Env::new(lookup);
        let table = env.required("CONNECTIONS_TABLE");
        let connections_endpoint = env.required("CONNECTIONS_ENDPOINT");
        let post_concurrency: usize = env.optional("POST_CONCURRENCY", Self::DEFAULT_POST_CONCURRENCY);
        if post_concurrency == 0 {
            env.invalid("POST_CONCURRENCY", "must be at least 1".into());
        }
        env.finish()?;
        Ok(Self { table, connections_endpoint, post_concurrency })
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
        assert_eq!(err.missing, ["CONNECTIONS_TABLE", "CONNECTIONS_ENDPOINT"]);
        assert!(err.to_string().contains("CONNECTIONS_TABLE, CONNECTIONS_ENDPOINT"), "{err}");
        let err = IngressConfig::from_lookup(lookup(&[("QUEUE_URL", " ")])).expect_err("blank");
        assert_eq!(err.missing, ["CONNECTIONS_TABLE", "QUEUE_URL"]);
    }

    #[test]
    fn a_bad_number_is_reported_with_its_value() {
        let err = WorkerConfig::from_lookup(lookup(&[
            ("CONNECTIONS_TABLE", "t"),
            ("CONNECTIONS_ENDPOINT", "https://x"),
            ("POST_CONCURRENCY", "lots"),
        ]))
        .expect_err("bad number");
        assert!(err.missing.is_empty());
        assert!(err.to_string().contains("POST_CONCURRENCY is \"lots\""), "{err}");
    }

    #[test]
    fn a_complete_environment_parses_with_defaults() {
        let config = WorkerConfig::from_lookup(lookup(&[
            ("CONNECTIONS_TABLE", "t"),
            ("CONNECTIONS_ENDPOINT", "https://x"),
        ]))
        .expect("valid");
        assert_eq!(config.post_concurrency, WorkerConfig::DEFAULT_POST_CONCURRENCY);
    }
}
