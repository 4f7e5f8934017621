//! The authorizer Lambda's bootstrap: the verifier from the environment, then the runtime loop.
//!
//! `JWKS_URL` (with `JWT_ISSUER` and `JWT_AUDIENCE`) verifies tokens from an OIDC issuer; `JWT_SECRET`
//! verifies development tokens signed with that secret.

use anyhow::bail;
use authorizer::jwks::{HttpJwks, Keys};
use authorizer::{Authorizer, Verifier};
use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{LambdaEvent, service_fn};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn non_empty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.is_empty())
}

fn verifier() -> anyhow::Result<Verifier> {
    let (issuer, audience) = (non_empty("JWT_ISSUER"), non_empty("JWT_AUDIENCE"));
    match (non_empty("JWKS_URL"), non_empty("JWT_SECRET")) {
        (Some(url), None) => Ok(Verifier::jwks(Keys::new(Box::new(HttpJwks::new(url))), issuer, audience)),
        (None, Some(secret)) => Ok(Verifier::secret(secret.as_bytes(), issuer, audience)?),
        (Some(_), Some(_)) => bail!("set JWKS_URL or JWT_SECRET, not both"),
        (None, None) => {
            bail!("set JWKS_URL (an OIDC issuer's keys) or JWT_SECRET (HS256 development tokens)")
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::init_tracing();
    let authorizer = Authorizer::new(verifier()?);
    let authorizer = &authorizer;
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>| async move {
            authorizer.handle(event.payload).await.map_err(|err| lambda_runtime::Diagnostic {
                error_type: err.error_type().to_owned(),
                error_message: err.to_string(),
            })
        },
    ))
    .await
}
