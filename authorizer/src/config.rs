//! The authorizer's configuration, read from the environment once per cold start: where the keys
//! come from (`JWKS_URL`, an OIDC issuer's, or `JWT_SECRET`, for development tokens) and the
//! issuer and audience tokens must have (`JWT_ISSUER`, `JWT_AUDIENCE`; empty: not checked).
//!
//! Like the other functions' (`shared::config`), it reads every variable before failing, so one
//! log line names everything that is wrong.

use shared::ConfigError;

use crate::jwks::{HttpJwks, Keys};
use crate::verify::Verifier;

/// The verifier the environment describes.
pub fn from_env() -> Result<Verifier, ConfigError> {
    from_lookup(|name| std::env::var(name).ok())
}

/// The verifier the variables `lookup` gives describe; an empty variable is an unset one (the
/// template sets every parameter, empty when not chosen).
pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Verifier, ConfigError> {
    let non_empty = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
    let (issuer, audience) = (non_empty("JWT_ISSUER"), non_empty("JWT_AUDIENCE"));
    let mut error = ConfigError { missing: Vec::new(), invalid: Vec::new() };
    let verifier = match (non_empty("JWKS_URL"), non_empty("JWT_SECRET")) {
        (Some(url), None) => Some(Verifier::jwks(Keys::new(Box::new(HttpJwks::new(url))), issuer, audience)),
        (None, Some(secret)) => match Verifier::secret(secret.as_bytes(), issuer, audience) {
            Ok(verifier) => Some(verifier),
            Err(err) => {
                error.invalid.push(("JWT_SECRET", format!("is unusable: {err}")));
                None
            }
        },
        (Some(_), Some(_)) => {
            error.invalid.push(("JWT_SECRET", "is set beside JWKS_URL: set one of them".to_owned()));
            None
        }
        (None, None) => {
            error.missing.push("JWKS_URL (an OIDC issuer's keys) or JWT_SECRET (HS256 development tokens)");
            None
        }
    };
    verifier.ok_or(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn one_source_of_keys_makes_a_verifier() {
        assert!(
            from_lookup(vars(&[("JWKS_URL", "https://issuer.example/jwks.json"), ("JWT_SECRET", "")]))
                .is_ok()
        );
        assert!(from_lookup(vars(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")])).is_ok());
    }

    #[test]
    fn no_keys_both_kinds_or_a_short_secret_name_the_variable_at_fault() {
        let neither = from_lookup(vars(&[("JWKS_URL", " ")])).expect_err("refused");
        assert!(neither.to_string().contains("missing environment variables: JWKS_URL"), "{neither}");
        let both = from_lookup(vars(&[("JWKS_URL", "https://issuer.example/jwks.json"), ("JWT_SECRET", "")]));
        assert!(both.is_ok(), "an empty secret is unset");
        let both = from_lookup(vars(&[
            ("JWKS_URL", "https://issuer.example/jwks.json"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]))
        .expect_err("refused");
        assert_eq!(both.invalid[0].0, "JWT_SECRET");
        let short = from_lookup(vars(&[("JWT_SECRET", "short")])).expect_err("refused");
        assert!(
            short.to_string().contains("JWT_SECRET is unusable: an HS256 secret needs at least"),
            "{short}"
        );
    }
}
