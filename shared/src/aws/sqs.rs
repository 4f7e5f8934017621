//! The job queue over SQS.

use async_trait::async_trait;
use aws_sdk_sqs::Client;

use super::is_retryable;
use crate::domain::Job;
use crate::error::QueueError;
use crate::ports::Queue;

/// SQS's message size limit on the accounts with the smallest one.
pub const SQS_MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// Sends jobs to an SQS queue.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), queue_url)
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        let body = job.to_body();
        if body.len() > SQS_MAX_MESSAGE_BYTES {
            return Err(QueueError::Rejected(
                format!("job of {} bytes exceeds SQS's {SQS_MAX_MESSAGE_BYTES} byte limit", body.len())
                    .into(),
            ));
        }
        self.client.send_message().queue_url(&self.queue_url).message_body(body).send().await.map_err(
            |err| {
                if is_retryable(&err) {
                    QueueError::Unavailable(Box::new(err))
                } else {
                    QueueError::Rejected(Box::new(err))
                }
            },
        )?;
        Ok(())
    }
}
