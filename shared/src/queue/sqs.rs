//! The job queue over SQS: sending for the ingress, receiving and deleting for an event source
//! mapping (the local gateway's, when it runs against SQS).

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};

use super::port::{Queue, QueueSource, ReceivedMessage};
use crate::aws::is_retryable;
use crate::domain::Job;
use crate::error::QueueError;

/// SQS's message size limit on the accounts with the smallest one; also the limit on the total
/// size of one `SendMessageBatch` call.
pub const SQS_MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Entries per `SendMessageBatch`, `DeleteMessageBatch` and `ReceiveMessage` call.
const SQS_BATCH_MAX: usize = 10;
/// `ReceiveMessage`'s longest long poll.
const SQS_MAX_WAIT: Duration = Duration::from_secs(20);

/// A queue on SQS (or anything that speaks its API).
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    queue_url: String,
}

fn queue_error<E, R>(err: aws_sdk_sqs::error::SdkError<E, R>) -> QueueError
where
    E: aws_sdk_sqs::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if is_retryable(&err) {
        QueueError::Unavailable(Box::new(err))
    } else {
        QueueError::Rejected(Box::new(err))
    }
}

/// SQS's `DelaySeconds` for `delay`: rounded up to whole seconds, at most its 900.
fn delay_seconds(delay: Duration) -> i32 {
    let seconds = delay.as_secs() + u64::from(delay.subsec_nanos() > 0);
    i32::try_from(seconds.min(SQS_MAX_DELAY_SECONDS)).unwrap_or(0)
}

/// The longest delay SQS accepts on a message: 15 minutes.
const SQS_MAX_DELAY_SECONDS: u64 = 900;

fn too_large(size: usize) -> QueueError {
    QueueError::Rejected(
        format!("a job of {size} bytes exceeds SQS's {SQS_MAX_MESSAGE_BYTES} byte limit").into(),
    )
}

impl SqsQueue {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self { client, queue_url: queue_url.into() }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), queue_url)
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }

    /// One `SendMessageBatch` call for `bodies` (at most ten, at most 256 KB together).
    async fn send_chunk(
        &self,
        bodies: &[(usize, String)],
        delay_seconds: i32,
        results: &mut [Result<(), QueueError>],
    ) {
        let entries: Vec<SendMessageBatchRequestEntry> = bodies
            .iter()
            .filter_map(|(index, body)| {
                SendMessageBatchRequestEntry::builder()
                    .id(index.to_string())
                    .message_body(body)
                    .set_delay_seconds((delay_seconds > 0).then_some(delay_seconds))
                    .build()
                    .ok()
            })
            .collect();
        let output = match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(err) => {
                let err = queue_error(err);
                let retryable = err.is_retryable();
                let message = err.to_string();
                for (index, _) in bodies {
                    results[*index] = Err(if retryable {
                        QueueError::Unavailable(message.clone().into())
                    } else {
                        QueueError::Rejected(message.clone().into())
                    });
                }
                return;
            }
        };
        for failed in output.failed() {
            let Some(index) = failed.id().parse::<usize>().ok().filter(|i| *i < results.len()) else {
                continue;
            };
            let why = format!("{}: {}", failed.code(), failed.message().unwrap_or_default()).into();
            // SQS says whose fault each failure was: the sender's is permanent, its own is not.
            results[index] = Err(if failed.sender_fault() {
                QueueError::Rejected(why)
            } else {
                QueueError::Unavailable(why)
            });
        }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        let body = job.to_body();
        if body.len() > SQS_MAX_MESSAGE_BYTES {
            return Err(too_large(body.len()));
        }
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(())
    }

    async fn send_batch(&self, jobs: &[Job], delay: Duration) -> Vec<Result<(), QueueError>> {
        let delay_seconds = delay_seconds(delay);
        let mut results: Vec<Result<(), QueueError>> = jobs.iter().map(|_| Ok(())).collect();
        let mut chunk: Vec<(usize, String)> = Vec::new();
        let mut chunk_bytes = 0;
        for (index, job) in jobs.iter().enumerate() {
            let body = job.to_body();
            if body.len() > SQS_MAX_MESSAGE_BYTES {
                results[index] = Err(too_large(body.len()));
                continue;
            }
            if chunk.len() == SQS_BATCH_MAX || chunk_bytes + body.len() > SQS_MAX_MESSAGE_BYTES {
                self.send_chunk(&chunk, delay_seconds, &mut results).await;
                chunk.clear();
                chunk_bytes = 0;
            }
            chunk_bytes += body.len();
            chunk.push((index, body));
        }
        if !chunk.is_empty() {
            self.send_chunk(&chunk, delay_seconds, &mut results).await;
        }
        results
    }
}

fn attribute<T: std::str::FromStr>(
    message: &aws_sdk_sqs::types::Message,
    name: MessageSystemAttributeName,
) -> Option<T> {
    message.attributes()?.get(&name)?.parse().ok()
}

#[async_trait]
impl QueueSource for SqsQueue {
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let max = i32::try_from(max.clamp(1, SQS_BATCH_MAX)).unwrap_or(1);
        let wait = i32::try_from(wait.min(SQS_MAX_WAIT).as_secs()).unwrap_or(0);
        let output = self
            .client
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(max)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .map_err(queue_error)?;
        Ok(output
            .messages()
            .iter()
            .filter_map(|m| {
                Some(ReceivedMessage {
                    message_id: m.message_id()?.to_owned(),
                    receipt_handle: m.receipt_handle()?.to_owned(),
                    body: m.body().unwrap_or_default().to_owned(),
                    receive_count: attribute(m, MessageSystemAttributeName::ApproximateReceiveCount)
                        .unwrap_or(1),
                    sent_at_ms: attribute(m, MessageSystemAttributeName::SentTimestamp).unwrap_or(0),
                    first_received_at_ms: attribute(
                        m,
                        MessageSystemAttributeName::ApproximateFirstReceiveTimestamp,
                    )
                    .unwrap_or(0),
                })
            })
            .collect())
    }

    async fn delete(&self, receipt_handles: &[String]) -> Result<(), QueueError> {
        for chunk in receipt_handles.chunks(SQS_BATCH_MAX) {
            let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
                .iter()
                .enumerate()
                .filter_map(|(n, receipt)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(n.to_string())
                        .receipt_handle(receipt)
                        .build()
                        .ok()
                })
                .collect();
            let output = self
                .client
                .delete_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(queue_error)?;
            if let Some(failed) = output.failed().first() {
                return Err(QueueError::Unavailable(
                    format!("{} deletes failed, first: {}", output.failed().len(), failed.code()).into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_is_rounded_up_to_whole_seconds_within_sqs_limit() {
        assert_eq!(delay_seconds(Duration::ZERO), 0);
        assert_eq!(delay_seconds(Duration::from_millis(1)), 1);
        assert_eq!(delay_seconds(Duration::from_millis(2_500)), 3);
        assert_eq!(delay_seconds(Duration::from_secs(3_600)), 900);
    }
}
