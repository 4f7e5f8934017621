//! The ingress function's configuration, read from the environment once per cold start: its table
//! and its queue. Every variable is read before it fails, so one log line names everything wrong.

use shared::EnvError;
use shared::environment::{Env, FromEnv};
use shared::history::HistorySettings;
use shared::presence::PresenceSettings;

/// The ingress function's configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// `AWS_REGION`, set by Lambda.
    pub region: String,
    /// `CONNECTIONS_TABLE`: the DynamoDB table holding connection records.
    pub table: String,
    /// `QUEUE_URL`: the SQS queue that feeds the worker.
    pub queue_url: String,
    /// `HISTORY_SIZE` and `HISTORY_TTL_SECONDS`: how much of each channel's history is kept.
    pub history: HistorySettings,
    /// `PRESENCE` and `EVENT_BUS_NAME`: whether members are kept, and where lifecycle events go.
    pub presence: PresenceSettings,
}

impl FromEnv for Deployment {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut env = Env::new(lookup);
        let region = env.required("AWS_REGION");
        let table = env.required("CONNECTIONS_TABLE");
        let queue_url = env.required("QUEUE_URL");
        let history = HistorySettings::from_env(&mut env);
        let presence = PresenceSettings::from_env(&mut env);
        env.finish()?;
        Ok(Self { region, table, queue_url, history, presence })
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
        assert_eq!(err.missing, ["CONNECTIONS_TABLE", "QUEUE_URL"]);
    }
}
