//! The port itself: a function invoked with a JSON request and waited for, as Lambda's `Invoke`
//! (`RequestResponse`) does it, or handed one to run later (`Event`).

use std::time::Duration;

use async_trait::async_trait;

/// What an invoked function did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Invoked {
    /// It returned: its answer, as JSON text (`null` included).
    Answer(Vec<u8>),
    /// It raised: Lambda's `X-Amz-Function-Error`, with the `errorType` and `errorMessage` of the
    /// body. Powertools refuses a request by raising `UnauthorizedException`.
    Raised { error_type: String, message: String },
}

/// Why a function could not be asked: nothing it decided.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("the function did not answer within {0:?}")]
    Timeout(Duration),
    /// No such function, no permission to invoke it, a request Lambda refuses: asking again will
    /// not help.
    #[error("the function cannot be invoked: {0}")]
    Refused(String),
    /// Throttled, Lambda or the network failing: asking again may help.
    #[error("the function could not be reached: {0}")]
    Unavailable(String),
}

impl HookError {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, Self::Refused(_))
    }
}

/// Where hooks run.
#[async_trait]
pub trait Hooks: Send + Sync {
    /// Invokes `function` with `request` and waits at most `timeout` for what it did.
    async fn invoke(&self, function: &str, request: Vec<u8>, timeout: Duration)
    -> Result<Invoked, HookError>;

    /// Hands `function` `request` to run later (Lambda's `Event` invocation): `Ok` once it is
    /// queued — Lambda then runs it, retrying a failed run by itself (twice by default, then the
    /// function's on-failure destination). At least once: a function dedupes by the event's id.
    async fn notify(&self, function: &str, request: Vec<u8>) -> Result<(), HookError>;
}
