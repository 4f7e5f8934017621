//! What the template tells the ingress through its environment, read once per cold start: its
//! table and its queue ([`Stack`]), and the clients' quotas ([`QuotaSettings`]). Every variable is read before it fails, so one log line names
//! everything wrong.

use shared::EnvError;
use shared::environment::{Env, FromEnv};
use shared::quota::QuotaSettings;
use shared::stack::Stack;

/// What the template tells the ingress: the stack's table, queue and channel settings, and what
/// one connection and one user may send a second.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    pub stack: Stack,
    /// `PUBLISH_RATE_PER_CONNECTION` and `PUBLISH_RATE_PER_USER`.
    pub quotas: QuotaSettings,
    /// `CONNECTIONS_ENDPOINT`: `@connections`, where a connection flooding past its quota is closed.
    pub connections_endpoint: String,
}

impl FromEnv for Deployment {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut env = Env::new(lookup);
        let stack = Stack::read(&mut env);
        let quotas = QuotaSettings::from_env(&mut env);
        let connections_endpoint = env.required("CONNECTIONS_ENDPOINT");
        env.finish()?;
        Ok(Self { stack, quotas, connections_endpoint })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::vars;

    #[test]
    fn a_blank_variable_is_a_missing_one_and_every_missing_one_is_named() {
        let lookup = vars(&[("QUEUE_URL", " "), ("AWS_REGION", "eu-west-1")]);
        let err = Deployment::from_lookup(lookup).expect_err("blank");
        assert_eq!(err.missing, ["CONNECTIONS_TABLE", "QUEUE_URL", "CONNECTIONS_ENDPOINT"]);
    }
}
