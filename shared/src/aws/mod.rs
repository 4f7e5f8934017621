//! AWS adapters for the ports: DynamoDB for connections, SQS for jobs, `@connections` for delivery.
//!
//! Each wraps an SDK client that the Lambda's `main` builds once per cold start; nothing here builds a
//! client per call. SDK errors are sorted into retryable and permanent here, so the handlers never see
//! an SDK type.

mod dynamodb;
mod poster;
pub mod provision;
mod sqs;

pub use dynamodb::DynamoStore;
pub use poster::ApiGatewayPoster;
pub use sqs::{SQS_MAX_MESSAGE_BYTES, SqsQueue};

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Error codes that AWS services use for throttling and transient server trouble.
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "RequestLimitExceeded",
    "RequestThrottled",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "KMSThrottlingException",
];

/// Whether an SDK error is worth retrying: timeouts, connection failures, 5xx and throttling are;
/// validation, access and missing-resource errors are not.
pub(crate) fn is_retryable<E, R>(err: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            service.err().code().is_some_and(|code| RETRYABLE_CODES.contains(&code))
        }
        _ => false,
    }
}
