//! The `@connections` poster over `aws-sdk-apigatewaymanagement`.

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use bytes::Bytes;

use super::port::{Closer, Poster};
use crate::domain::ConnectionId;
use crate::error::PostError;

/// How long opening a connection to the `@connections` endpoint may take.
pub const POST_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// How long one `@connections` call may take before it counts as a transient failure.
pub const POST_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Posts frames through the API Gateway Management API.
#[derive(Clone, Debug)]
pub struct ApiGatewayPoster {
    client: Client,
}

impl ApiGatewayPoster {
    pub fn new(client: Client) -> Self {
        Self { client }
    }

    /// A client for `endpoint` (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`), the one
    /// thing the shared SDK configuration cannot know.
    pub fn for_endpoint(sdk: &aws_config::SdkConfig, endpoint: &str) -> Self {
        let config = lean(aws_sdk_apigatewaymanagement::config::Builder::from(sdk).endpoint_url(endpoint));
        Self::new(Client::from_conf(config))
    }

    /// A client for a local stand-in of `@connections` (the local gateway, or a stub), signing with
    /// `credentials` for `region` rather than reading any AWS configuration.
    pub fn for_local_endpoint(
        endpoint: &str,
        region: &str,
        credentials: aws_credential_types::Credentials,
    ) -> Self {
        let config = lean(
            aws_sdk_apigatewaymanagement::Config::builder()
                .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
                .region(aws_sdk_apigatewaymanagement::config::Region::new(region.to_owned()))
                .credentials_provider(credentials)
                .endpoint_url(endpoint),
        );
        Self::new(Client::from_conf(config))
    }
}

/// The client settings for one small call per delivery, tens of thousands per batch.
///
/// The SDK's own retries are off because the worker retries with its own backoff, bounded by the
/// invocation's deadline and its post-rate budget; SDK retries would multiply the calls behind the
/// worker's back. Stalled-stream protection watches uploads of a few hundred bytes and cost about 8 %
/// of the worker's CPU per delivery (perf, `worker_cpu`); the attempt timeout covers a stalled call.
fn lean(builder: aws_sdk_apigatewaymanagement::config::Builder) -> aws_sdk_apigatewaymanagement::Config {
    use aws_sdk_apigatewaymanagement::config::StalledStreamProtectionConfig;
    use aws_sdk_apigatewaymanagement::config::retry::RetryConfig;
    use aws_sdk_apigatewaymanagement::config::timeout::TimeoutConfig;
    builder
        .retry_config(RetryConfig::disabled())
        .stalled_stream_protection(StalledStreamProtectionConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(POST_CONNECT_TIMEOUT)
                .operation_attempt_timeout(POST_ATTEMPT_TIMEOUT)
                .build(),
        )
        .build()
}

impl ApiGatewayPoster {
    /// `DELETE @connections/{id}`: closes the connection as a backend does (API Gateway then runs its
    /// `$disconnect`). Not the worker's: the ingress closes a flooding client ([`Closer`]), and the
    /// load tools close theirs.
    pub async fn disconnect(&self, id: &ConnectionId) -> Result<(), PostError> {
        match self.client.delete_connection().connection_id(id.as_str()).send().await {
            Ok(_) => Ok(()),
            Err(err) if err.raw_response().is_some_and(|r| r.status().as_u16() == 410) => {
                Err(PostError::Gone)
            }
            Err(err) => Err(PostError::Other(Box::new(err))),
        }
    }
}

#[async_trait]
impl Closer for ApiGatewayPoster {
    async fn close(&self, connection: &ConnectionId) -> Result<(), PostError> {
        match self.disconnect(connection).await {
            // Gone already: what closing wanted.
            Err(PostError::Gone) => Ok(()),
            other => other,
        }
    }

    async fn say(&self, connection: &ConnectionId, frame: Bytes) -> Result<(), PostError> {
        self.post(connection, frame).await
    }
}

#[async_trait]
impl Poster for ApiGatewayPoster {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError> {
        self.client
            .post_to_connection()
            .connection_id(to.as_str())
            .data(Blob::new(frame))
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
}

fn classify<R>(err: SdkError<PostToConnectionError, R>) -> PostError
where
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match err {
        SdkError::ServiceError(service) => match service.into_err() {
            PostToConnectionError::GoneException(_) => PostError::Gone,
            PostToConnectionError::LimitExceededException(_) => PostError::Throttled,
            PostToConnectionError::PayloadTooLargeException(_) => PostError::PayloadTooLarge,
            PostToConnectionError::ForbiddenException(_) => PostError::Forbidden,
            other => {
                use aws_sdk_apigatewaymanagement::error::ProvideErrorMetadata;
                // An unmodelled error is a server fault unless the API says it is ours.
                if other.code().is_some_and(|code| code.contains("Internal") || code.contains("Unavailable"))
                {
                    PostError::Transient(Box::new(other))
                } else {
                    PostError::Other(Box::new(other))
                }
            }
        },
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PostError::Transient(Box::new(err))
        }
        other => PostError::Other(Box::new(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_apigatewaymanagement::types::error::{
        ForbiddenException, GoneException, LimitExceededException, PayloadTooLargeException,
    };
    use aws_smithy_mocks::{mock, mock_client};

    async fn outcome(err: PostToConnectionError) -> PostError {
        let rule = mock!(Client::post_to_connection).then_error(move || match &err {
            PostToConnectionError::GoneException(_) => {
                PostToConnectionError::GoneException(GoneException::builder().build())
            }
            PostToConnectionError::LimitExceededException(_) => {
                PostToConnectionError::LimitExceededException(LimitExceededException::builder().build())
            }
            PostToConnectionError::PayloadTooLargeException(_) => {
                PostToConnectionError::PayloadTooLargeException(PayloadTooLargeException::builder().build())
            }
            _ => PostToConnectionError::ForbiddenException(ForbiddenException::builder().build()),
        });
        let poster = ApiGatewayPoster::new(mock_client!(aws_sdk_apigatewaymanagement, [&rule]));
        let id = ConnectionId::parse("TWegAcC4EowCHnA=").expect("id");
        poster.post(&id, Bytes::from_static(b"hi")).await.expect_err("scripted failure")
    }

    #[tokio::test]
    async fn each_modelled_error_maps_to_its_own_outcome() {
        let gone = outcome(PostToConnectionError::GoneException(GoneException::builder().build())).await;
        assert!(matches!(gone, PostError::Gone));
        let limit = LimitExceededException::builder().build();
        assert!(matches!(
            outcome(PostToConnectionError::LimitExceededException(limit)).await,
            PostError::Throttled
        ));
        let large = PayloadTooLargeException::builder().build();
        assert!(matches!(
            outcome(PostToConnectionError::PayloadTooLargeException(large)).await,
            PostError::PayloadTooLarge
        ));
        let forbidden = ForbiddenException::builder().build();
        assert!(matches!(
            outcome(PostToConnectionError::ForbiddenException(forbidden)).await,
            PostError::Forbidden
        ));
    }
}
