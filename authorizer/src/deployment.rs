//! What the authorizer's deployment tells it through its environment, once per cold start: where the keys
//! come from (`JWKS_URL`, an OIDC issuer's, or `JWT_SECRET`, for development tokens) and the
//! issuer and audience tokens must have (`JWT_ISSUER`, `JWT_AUDIENCE`; empty: not checked).
//!
//! Like the other functions' (`shared::environment`), it reads every variable before failing, so one
//! log line names everything that is wrong.

use shared::EnvError;
use shared::environment::{Env, FromEnv};

use crate::jwks::{HttpJwks, Keys};
use crate::verify::Verifier;

/// What the authorizer's deployment tells it: how to verify tokens.
#[derive(Debug)]
pub struct Deployment {
    pub verifier: Verifier,
}

impl FromEnv for Deployment {
    /// An empty variable is an unset one (the template sets every parameter, empty when not chosen).
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, EnvError> {
        let mut env = Env::new(lookup);
        let (issuer, audience) = (env.present("JWT_ISSUER"), env.present("JWT_AUDIENCE"));
        let verifier = match (env.present("JWKS_URL"), env.present("JWT_SECRET")) {
            (Some(url), None) => {
                Some(Verifier::jwks(Keys::new(Box::new(HttpJwks::new(url))), issuer, audience))
            }
            (None, Some(secret)) => match Verifier::secret(secret.as_bytes(), issuer, audience) {
                Ok(verifier) => Some(verifier),
                Err(err) => {
                    env.invalid("JWT_SECRET", format!("is unusable: {err}"));
                    None
                }
            },
            (Some(_), Some(_)) => {
                env.invalid("JWT_SECRET", "is set beside JWKS_URL: set one of them".to_owned());
                None
            }
            (None, None) => {
                env.missing("JWKS_URL (an OIDC issuer's keys) or JWT_SECRET (HS256 development tokens)");
                None
            }
        };
        env.finish()?;
        // `finish` has refused every case without a verifier.
        verifier
            .map(|verifier| Self { verifier })
            .ok_or_else(|| EnvError { missing: Vec::new(), invalid: Vec::new() })
    }
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
            Deployment::from_lookup(vars(&[
                ("JWKS_URL", "https://issuer.example/jwks.json"),
                ("JWT_SECRET", "")
            ]))
            .is_ok()
        );
        assert!(Deployment::from_lookup(vars(&[("JWT_SECRET", "0123456789abcdef0123456789abcdef")])).is_ok());
    }

    #[test]
    fn no_keys_both_kinds_or_a_short_secret_name_the_variable_at_fault() {
        let neither = Deployment::from_lookup(vars(&[("JWKS_URL", " ")])).expect_err("refused");
        assert!(neither.to_string().contains("missing environment variables: JWKS_URL"), "{neither}");
        let both = Deployment::from_lookup(vars(&[
            ("JWKS_URL", "https://issuer.example/jwks.json"),
            ("JWT_SECRET", ""),
        ]));
        assert!(both.is_ok(), "an empty secret is unset");
        let both = Deployment::from_lookup(vars(&[
            ("JWKS_URL", "https://issuer.example/jwks.json"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ]))
        .expect_err("refused");
        assert_eq!(both.invalid[0].0, "JWT_SECRET");
        let short = Deployment::from_lookup(vars(&[("JWT_SECRET", "short")])).expect_err("refused");
        assert!(
            short.to_string().contains("JWT_SECRET is unusable: an HS256 secret needs at least"),
            "{short}"
        );
    }
}
