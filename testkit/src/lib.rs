//! Test doubles for running a function's real bootstrap as Lambda runs it: [`bootstrap`] starts the
//! executable, [`runtime_api`] is the Lambda Runtime API it polls for events and answers,
//! [`connections`] an `@connections` endpoint that records every call, and [`lambda_env`] the
//! environment Lambda gives every function. [`moto_endpoint`] and [`unique_name`] serve every test
//! that runs against moto_server.

pub mod bootstrap;
pub mod connections;
pub mod runtime_api;
mod server;

pub use bootstrap::Bootstrap;
pub use connections::RecordingConnections;
pub use runtime_api::{Invocation, RuntimeApi, TRACE_ID};

/// The variables Lambda sets for every function, for a bootstrap started by hand: the Runtime API's
/// address, the function's name and its region, and its role's credentials.
pub fn lambda_env(runtime_api: std::net::SocketAddr, function: &str) -> Vec<(String, String)> {
    [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{function}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/11/28/[$LATEST]0123456789abcdef".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "local-secret".to_owned()),
        ("AWS_SESSION_TOKEN", "local-session-token".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect()
}

/// The moto_server that `scripts/test` starts and names in `MOTO_ENDPOINT`; without it a test fails
/// rather than pass untested.
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT")
        .expect("MOTO_ENDPOINT is not set: run scripts/test, which starts moto_server")
}

/// A table or queue name of its own for each test, so that tests (and test processes) can run at
/// once against one moto.
pub fn unique_name(prefix: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{prefix}-{nanos:x}{:x}{n:x}", std::process::id())
}
