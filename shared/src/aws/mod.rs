//! What the AWS adapters share: sorting SDK errors into retryable and permanent, so the handlers
//! never see an SDK type (`errors`); batched DynamoDB reads and deletes ([`dynamodb`]); making the
//! table and queues the template declares ([`provision`], for moto and DynamoDB Local). The adapters
//! live beside their ports:
//! [`crate::store::DynamoStore`], [`crate::queue::SqsQueue`], [`crate::poster::ApiGatewayPoster`].
//! Each wraps an SDK client that a Lambda's `main` builds once per cold start; nothing builds a
//! client per call.

pub(crate) mod dynamodb;
mod errors;
pub mod provision;

pub(crate) use self::errors::{is_retryable, store_error};
