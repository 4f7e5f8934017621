//! The authorizer Lambda's bootstrap: the verifier from the environment, then the runtime loop.
//!
//! `JWKS_URL` (with `JWT_ISSUER` and `JWT_AUDIENCE`) verifies tokens from an OIDC issuer; `JWT_SECRET`
//! verifies development tokens signed with that secret.

use authorizer::Authorizer;
use authorizer::deployment::Deployment;
use authorizer::server::Event;
use lambda_runtime::{LambdaEvent, service_fn};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    let deployment: Deployment = shared::lambda::start().await?;
    let authorizer = Authorizer::new(deployment.verifier);
    let authorizer = &authorizer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        authorizer.answer(event.payload).await.map_err(|err| lambda_runtime::Diagnostic {
            error_type: err.error_type().to_owned(),
            error_message: err.to_string(),
        })
    }))
    .await
}
