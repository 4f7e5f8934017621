//! Reading what a function's deployment tells it through its environment, once per cold start.
//!
//! Each function has its `Deployment` beside it (`ingress::deployment`, `worker::deployment`,
//! `authorizer::deployment`); all of them read every variable before failing, through an [`Env`]
//! ([`FromEnv`]), so a misconfigured function names all of its missing variables in one log line
//! instead of one per deploy. A part several functions configure alike reads its own variables
//! from the same [`Env`] (`HistorySettings::from_env`, `PresenceSettings::from_env`).

use std::str::FromStr;

/// What is wrong with the environment: every missing and every unparsable variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {}", self.describe())]
pub struct EnvError {
    pub missing: Vec<&'static str>,
    pub invalid: Vec<(&'static str, String)>,
}

impl EnvError {
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

/// What a function's deployment tells it, read from its environment.
pub trait FromEnv: Sized {
    /// The configuration the variables `lookup` gives describe: every variable is read before it
    /// fails, through an [`Env`].
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError>;

    /// The configuration this process's environment describes, read once per cold start.
    fn from_env() -> Result<Self, EnvError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// Reads variables, remembering every problem instead of stopping at the first: each function's
/// configuration reads all of its variables through one, then calls [`Env::finish`].
pub struct Env<F> {
    lookup: F,
    error: EnvError,
}

impl<F> std::fmt::Debug for Env<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env").field("error", &self.error).finish_non_exhaustive()
    }
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    pub fn new(lookup: F) -> Self {
        Self { lookup, error: EnvError { missing: Vec::new(), invalid: Vec::new() } }
    }

    pub fn required(&mut self, name: &'static str) -> String {
        match (self.lookup)(name).filter(|value| !value.trim().is_empty()) {
            Some(value) => value,
            None => {
                self.error.missing.push(name);
                String::new()
            }
        }
    }

    pub fn optional<T: FromStr>(&mut self, name: &'static str, default: T) -> T
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

    /// The variable's value, or `None` when it is unset or blank: the template sets every parameter,
    /// empty when not chosen.
    pub fn present(&mut self, name: &'static str) -> Option<String> {
        (self.lookup)(name).filter(|value| !value.trim().is_empty())
    }

    /// Records that one of several variables is missing, described as a whole.
    pub fn missing(&mut self, what: &'static str) {
        self.error.missing.push(what);
    }

    pub fn invalid(&mut self, name: &'static str, why: String) {
        self.error.invalid.push((name, why));
    }

    pub fn finish(self) -> Result<(), EnvError> {
        if self.error.missing.is_empty() && self.error.invalid.is_empty() { Ok(()) } else { Err(self.error) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::vars as lookup;

    #[test]
    fn every_problem_is_named_at_once_and_a_blank_variable_is_a_missing_one() {
        let mut env = Env::new(lookup(&[("BLANK", " "), ("COUNT", "lots"), ("SET", "x")]));
        assert_eq!(env.required("SET"), "x");
        env.required("UNSET");
        env.required("BLANK");
        assert_eq!(env.optional("COUNT", 7_u32), 7, "the default stands in for a bad value");
        assert_eq!(env.optional("ABSENT", 3_u32), 3);
        let err = env.finish().expect_err("two missing, one invalid");
        assert_eq!(err.missing, ["UNSET", "BLANK"]);
        assert!(err.to_string().contains("missing environment variables: UNSET, BLANK"), "{err}");
        assert!(err.to_string().contains("COUNT is \"lots\""), "{err}");
        assert!(Env::new(lookup(&[])).finish().is_ok());
    }
}
