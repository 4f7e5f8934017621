//! Hooks on Lambda: `Invoke` (`RequestResponse`, or `Event` for an event hook) through the SDK — the real service on AWS, or
//! locally any Invoke API the user names (`cargo lambda watch` on port 9000, `sam local
//! start-lambda`), so that the user's own function runs unchanged.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::Client;
use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use serde::Deserialize;

use super::port::{HookError, Hooks, Invoked};

/// Hooks invoked through Lambda's API.
#[derive(Clone, Debug)]
pub struct LambdaHooks {
    client: Client,
}

/// What Lambda's body holds when the function raised.
#[derive(Deserialize)]
struct Raised {
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default, rename = "errorMessage")]
    error_message: Option<String>,
}

impl LambdaHooks {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// On AWS: the function's own region and role.
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(Client::from_conf(lean(aws_sdk_lambda::config::Builder::from(sdk))))
    }

    /// Against an Invoke API at `endpoint`, signing with this key pair as the SDK would (local
    /// runners do not check).
    pub fn for_endpoint(endpoint: &str, region: &str, access_key_id: &str, secret_access_key: &str) -> Self {
        let credentials = aws_credential_types::Credentials::new(
            access_key_id,
            secret_access_key,
            None,
            None,
            "local-hooks",
        );
        let builder = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new(region.to_owned()))
            .credentials_provider(credentials)
            .endpoint_url(endpoint);
        Self::new(Client::from_conf(lean(builder)))
    }
}

/// No SDK retries: a hook has one timeout, the namespace's, and a retry inside it would only hide
/// a slow function; the caller decides what a failure means.
fn lean(builder: aws_sdk_lambda::config::Builder) -> aws_sdk_lambda::Config {
    builder.retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled()).build()
}

#[async_trait]
impl Hooks for LambdaHooks {
    async fn invoke(
        &self,
        function: &str,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Invoked, HookError> {
        let call = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(request))
            .send();
        let output = match tokio::time::timeout(timeout, call).await {
            Err(_) => return Err(HookError::Timeout(timeout)),
            Ok(Err(err)) => return Err(sorted(err)),
            Ok(Ok(output)) => output,
        };
        let body = output.payload.map(Blob::into_inner).unwrap_or_default();
        if output.function_error.is_some() {
            let raised: Raised =
                serde_json::from_slice(&body).unwrap_or(Raised { error_type: None, error_message: None });
            return Ok(Invoked::Raised {
                error_type: raised.error_type.unwrap_or_else(|| "Unhandled".into()),
                message: raised.error_message.unwrap_or_default(),
            });
        }
        Ok(Invoked::Answer(body))
    }

    async fn notify(&self, function: &str, request: Vec<u8>) -> Result<(), HookError> {
        let call = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(request))
            .send();
        match tokio::time::timeout(QUEUED_WITHIN, call).await {
            Err(_) => Err(HookError::Unavailable(format!(
                "Lambda did not queue the event within {QUEUED_WITHIN:?}"
            ))),
            Ok(Err(err)) => Err(sorted(err)),
            Ok(Ok(_)) => Ok(()),
        }
    }
}

/// How long Lambda may take to accept an `Event` invocation (202) before the message is left to
/// SQS's redelivery: it only queues the event, in milliseconds when it is well.
const QUEUED_WITHIN: Duration = Duration::from_secs(5);

fn sorted<E, R>(err: SdkError<E, R>) -> HookError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let retryable = crate::aws::is_retryable(&err)
        || matches!(&err, SdkError::ServiceError(service) if matches!(service.err().code(), Some("TooManyRequestsException" | "ServiceException" | "EC2ThrottledException" | "ResourceNotReadyException")));
    let text = match &err {
        SdkError::ServiceError(service) => format!(
            "{}: {}",
            service.err().code().unwrap_or("error"),
            service.err().message().unwrap_or_default()
        ),
        other => aws_smithy_types::error::display::DisplayErrorContext(other).to_string(),
    };
    if retryable { HookError::Unavailable(text) } else { HookError::Refused(text) }
}
