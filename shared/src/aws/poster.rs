//! The `@connections` poster over `aws-sdk-apigatewaymanagement`.

use async_trait::async_trait;
use aws_sdk_apigatewaymanagement::Client;
use aws_sdk_apigatewaymanagement::error::SdkError;
use aws_sdk_apigatewaymanagement::operation::post_to_connection::PostToConnectionError;
use aws_sdk_apigatewaymanagement::primitives::Blob;
use bytes::Bytes;

use crate::domain::ConnectionId;
use crate::error::PostError;
use crate::ports::Poster;

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
        let config = aws_sdk_apigatewaymanagement::config::Builder::from(sdk).endpoint_url(endpoint).build();
        Self::new(Client::from_conf(config))
    }

    /// A client for a local stand-in of `@connections` (the local gateway), which checks no
    /// signature: fixed region and placeholder credentials, so no AWS configuration is needed.
    pub fn for_local_endpoint(endpoint: &str) -> Self {
        let credentials =
            aws_credential_types::Credentials::new("local", "local", None, None, "local-gateway");
        let config = aws_sdk_apigatewaymanagement::Config::builder()
            .behavior_version(aws_sdk_apigatewaymanagement::config::BehaviorVersion::latest())
            .region(aws_sdk_apigatewaymanagement::config::Region::new("us-east-1"))
            .credentials_provider(credentials)
            .endpoint_url(endpoint)
            .build();
        Self::new(Client::from_conf(config))
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
