//! The server API authorizer's answers, kept by identity source (the `Authorization` header) for the
//! template's `AuthorizerResultTtlInSeconds`, as API Gateway keeps them: a token's answer stands
//! for five minutes, whatever happens to the token meanwhile. A leaf: [`crate::server_api`] asks it.

use std::time::Duration;

use serde_json::Value;

/// The template's `AuthorizerResultTtlInSeconds` for the server API's authorizer.
pub const AUTHORIZER_CACHE_TTL: Duration = Duration::from_secs(300);
/// Answers kept at most; past it the expired go, and then all, as a cache may.
const AUTHORIZER_CACHE_ENTRIES: usize = 10_000;

/// The authorizer's answers by identity source (the `Authorization` header), as API Gateway keeps
/// them: the context of an allowed token, `None` for a refused one.
#[derive(Debug, Default)]
pub struct AuthorizerCache {
    answers: std::sync::Mutex<std::collections::HashMap<String, (Option<Value>, tokio::time::Instant)>>,
}

impl AuthorizerCache {
    pub fn get(&self, identity: &str) -> Option<Option<Value>> {
        let answers = shared::sync::lock(&self.answers);
        let now = tokio::time::Instant::now();
        answers.get(identity).filter(|(_, until)| *until > now).map(|(answer, _)| answer.clone())
    }

    pub fn put(&self, identity: &str, answer: Option<Value>) {
        let mut answers = shared::sync::lock(&self.answers);
        if answers.len() >= AUTHORIZER_CACHE_ENTRIES {
            let now = tokio::time::Instant::now();
            answers.retain(|_, (_, until)| *until > now);
            if answers.len() >= AUTHORIZER_CACHE_ENTRIES {
                answers.clear();
            }
        }
        answers.insert(identity.to_owned(), (answer, tokio::time::Instant::now() + AUTHORIZER_CACHE_TTL));
    }
}
