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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn an_answer_stands_for_its_ttl_by_token_and_then_the_authorizer_is_asked_again() {
        let cache = AuthorizerCache::default();
        assert_eq!(cache.get("Bearer a"), None, "never asked");
        cache.put("Bearer a", Some(json!({"sub": "backend", "server": true})));
        cache.put("Bearer b", None);
        tokio::time::advance(AUTHORIZER_CACHE_TTL - Duration::from_secs(1)).await;
        assert_eq!(cache.get("Bearer a"), Some(Some(json!({"sub": "backend", "server": true}))));
        assert_eq!(cache.get("Bearer b"), Some(None), "a refusal is kept too");
        assert_eq!(cache.get("Bearer c"), None, "another token is its own");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(cache.get("Bearer a"), None, "past its TTL");
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_cache_drops_what_expired_and_then_everything_rather_than_grow() {
        let cache = AuthorizerCache::default();
        for n in 0..AUTHORIZER_CACHE_ENTRIES {
            cache.put(&format!("Bearer {n}"), None);
        }
        cache.put("Bearer new", None);
        assert_eq!(shared::sync::lock(&cache.answers).len(), 1, "nothing had expired: all went");
        tokio::time::advance(AUTHORIZER_CACHE_TTL).await;
        assert_eq!(cache.get("Bearer new"), None);
    }
}
