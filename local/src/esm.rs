//! The SQS event source mapping: polls the queue and invokes the worker with batches.
//!
//! It reproduces what the worker relies on: batches of up to `batch_size`, an optional batching window
//! to fill them, several invocations at once, deletion of the messages the function did not report in
//! `batchItemFailures` (and of none if the invocation failed), and redelivery of the rest after the
//! queue's visibility timeout — until the queue's redrive policy moves them to the dead-letter list.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::SqsBatchResponse;
use shared::{QueueSource, ReceivedMessage};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::function::{self, Function};
use crate::integration::{self, Api};

/// The mapping's configuration, as in the template's `Events: Type: SQS`.
#[derive(Clone, Copy, Debug)]
pub struct EsmSettings {
    /// `BatchSize`.
    pub batch_size: usize,
    /// `MaximumBatchingWindowInSeconds`, at a finer grain.
    pub batch_window: Duration,
    /// `ScalingConfig.MaximumConcurrency`: invocations in flight at once.
    pub max_concurrency: usize,
    /// The worker function's `Timeout`: an invocation still running then is stopped mid-batch.
    pub function_timeout: Duration,
    /// Fault injection: the fraction of invocations that fail before the handler runs, as a crashed
    /// or throttled invocation does. SQS then redelivers their whole batch.
    pub failure_rate: f64,
}

impl Default for EsmSettings {
    fn default() -> Self {
        Self {
            batch_size: 10,
            batch_window: Duration::ZERO,
            // The template's WorkerMaxConcurrency.
            max_concurrency: worker::Fleet::DEFAULT_MAX_CONCURRENCY as usize,
            function_timeout: Duration::from_secs(30),
            failure_rate: 0.0,
        }
    }
}

/// What the mapping needs to build events and reach the function.
pub struct Mapping {
    pub queue: Arc<dyn QueueSource>,
    pub queue_name: String,
    pub api: Api,
    pub function: Arc<dyn Function>,
    pub settings: EsmSettings,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("queue_name", &self.queue_name)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

/// How long one receive waits for a first message: SQS's longest long poll.
const LONG_POLL: Duration = Duration::from_secs(20);
/// How long invocations in flight may still run once the gateway shuts down.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Pause after a failed receive, so an unreachable queue is not hammered.
const RECEIVE_RETRY: Duration = Duration::from_secs(1);

impl Mapping {
    /// Polls until `shutdown`, then gives the invocations in flight [`SHUTDOWN_GRACE`] to finish and
    /// stops the rest where they are, as Lambda stops a function at its deadline: their messages were
    /// not deleted, so SQS delivers them again (the in-memory queue goes with the process).
    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let slots = Arc::new(Semaphore::new(this.settings.max_concurrency.max(1)));
        let mut invocations = JoinSet::new();
        loop {
            while invocations.try_join_next().is_some() {}
            let permit = tokio::select! {
                permit = slots.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
                () = shutdown.cancelled() => break,
            };
            let batch = tokio::select! {
                batch = this.next_batch() => batch,
                () = shutdown.cancelled() => break,
            };
            let mapping = this.clone();
            invocations.spawn(async move {
                mapping.invoke(batch).await;
                drop(permit);
            });
        }
        let finished = async { while invocations.join_next().await.is_some() {} };
        if tokio::time::timeout(SHUTDOWN_GRACE, finished).await.is_err() {
            tracing::warn!(
                invocations = invocations.len(),
                "stopping worker invocations still running at shutdown; SQS delivers their messages again"
            );
            invocations.shutdown().await;
        }
    }

    /// Waits for at least one visible message, then fills the batch for up to the batching window.
    async fn next_batch(&self) -> Vec<ReceivedMessage> {
        let size = self.settings.batch_size.max(1);
        let mut batch = loop {
            match self.queue.receive(size, LONG_POLL).await {
                Ok(batch) if !batch.is_empty() => break batch,
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "receiving from the queue failed");
                    tokio::time::sleep(RECEIVE_RETRY).await;
                }
            }
        };
        let deadline = Instant::now() + self.settings.batch_window;
        while batch.len() < size {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.queue.receive(size - batch.len(), left).await {
                Ok(more) => batch.extend(more),
                Err(err) => {
                    tracing::warn!(error = %err, "receiving from the queue failed");
                    break;
                }
            }
        }
        batch
    }

    async fn invoke(&self, batch: Vec<ReceivedMessage>) {
        if self.settings.failure_rate > 0.0 && rand::random::<f64>() < self.settings.failure_rate {
            tracing::warn!(
                messages = batch.len(),
                "injected fault: the worker invocation fails; the batch will be retried"
            );
            return;
        }
        let event = integration::sqs(&self.api, &self.queue_name, &batch);
        let response: Result<SqsBatchResponse, _> =
            function::call(self.function.as_ref(), &event, self.settings.function_timeout).await;
        let failed: HashSet<String> = match response {
            Ok(response) => response.batch_item_failures.into_iter().map(|f| f.item_identifier).collect(),
            Err(err) => {
                tracing::warn!(error = %err, messages = batch.len(), "worker invocation failed; the batch will be retried");
                return;
            }
        };
        // Lambda treats an identifier that is not in the batch as a failure of the whole batch.
        if failed.iter().any(|id| !batch.iter().any(|m| &m.message_id == id)) {
            tracing::warn!("batchItemFailures named a message not in the batch; the batch will be retried");
            return;
        }
        let done: Vec<String> = batch
            .iter()
            .filter(|m| !failed.contains(&m.message_id))
            .map(|m| m.receipt_handle.clone())
            .collect();
        if let Err(err) = self.queue.delete(&done).await {
            // They come back after the visibility timeout: delivered twice, never lost.
            tracing::warn!(error = %err, "deleting processed messages failed");
        }
        if !failed.is_empty() {
            tracing::info!(failed = failed.len(), of = batch.len(), "messages left for redelivery");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use aws_lambda_events::sqs::SqsEvent;
    use serde_json::json;
    use shared::queue::{MemoryQueue, QueueSettings};
    use std::sync::Mutex;

    use crate::function::FunctionError;

    /// Records each batch's bodies; fails the bodies listed in `fail` on their first `fail_times` tries.
    struct Scripted {
        batches: Mutex<Vec<Vec<String>>>,
        fail: Vec<&'static str>,
        fail_times: u32,
    }

    #[async_trait]
    impl Function for Scripted {
        async fn invoke(&self, payload: Vec<u8>, _deadline: Instant) -> Result<Vec<u8>, FunctionError> {
            let event: SqsEvent = serde_json::from_slice(&payload).map_err(FunctionError::Deserialize)?;
            let mut failures = Vec::new();
            let mut bodies = Vec::new();
            for record in &event.records {
                let body = record.body.clone().unwrap_or_default();
                let tries: u32 = record.attributes["ApproximateReceiveCount"].parse().unwrap_or(0);
                if self.fail.contains(&body.as_str()) && tries <= self.fail_times {
                    failures.push(json!({ "itemIdentifier": record.message_id }));
                }
                bodies.push(body);
            }
            self.batches.lock().expect("lock").push(bodies);
            Ok(serde_json::to_vec(&json!({ "batchItemFailures": failures })).expect("json"))
        }
    }

    fn mapping(queue: Arc<MemoryQueue>, function: Arc<dyn Function>, settings: EsmSettings) -> Mapping {
        let queue: Arc<dyn QueueSource> = queue;
        let api = Api { api_id: "local".into(), stage: "local".into(), region: "us-east-1".into() };
        Mapping { queue, queue_name: "q".into(), api, function, settings }
    }

    async fn run_until(queue: &MemoryQueue, mapping: Mapping, done: impl Fn(&MemoryQueue) -> bool) {
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mapping.run(shutdown.clone()));
        for _ in 0..2_000 {
            if done(queue) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        task.await.expect("the mapping stops");
    }

    #[tokio::test(start_paused = true)]
    async fn only_the_reported_failures_are_delivered_again() {
        let queue = Arc::new(MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_secs(2),
            max_receive_count: Some(5),
            ..QueueSettings::default()
        }));
        for body in ["a", "b", "c"] {
            queue.push(body.into()).expect("room");
        }
        let function = Arc::new(Scripted { batches: Mutex::default(), fail: vec!["b"], fail_times: 1 });
        let settings = EsmSettings { batch_size: 10, ..EsmSettings::default() };
        run_until(&queue, mapping(queue.clone(), function.clone(), settings), |q| {
            q.stats().in_flight == 0 && q.stats().visible == 0 && q.dead_letters().is_empty()
        })
        .await;

        let batches = function.batches.lock().expect("lock").clone();
        assert_eq!(batches, [vec!["a", "b", "c"], vec!["b"]]);
        assert_eq!(queue.stats().dead, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_that_always_fails_ends_in_the_dead_letter_list() {
        let queue = Arc::new(MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_secs(1),
            max_receive_count: Some(3),
            ..QueueSettings::default()
        }));
        queue.push("poison".into()).expect("room");
        let function =
            Arc::new(Scripted { batches: Mutex::default(), fail: vec!["poison"], fail_times: u32::MAX });
        run_until(&queue, mapping(queue.clone(), function.clone(), EsmSettings::default()), |q| {
            q.stats().dead == 1
        })
        .await;

        assert_eq!(function.batches.lock().expect("lock").len(), 3, "tried maxReceiveCount times");
        assert_eq!(queue.dead_letters(), ["poison"]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_batching_window_fills_a_batch_up_to_its_size() {
        let queue = Arc::new(MemoryQueue::default());
        let function = Arc::new(Scripted { batches: Mutex::default(), fail: vec![], fail_times: 0 });
        let settings = EsmSettings {
            batch_size: 3,
            batch_window: Duration::from_millis(500),
            max_concurrency: 1,
            ..EsmSettings::default()
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(mapping(queue.clone(), function.clone(), settings).run(shutdown.clone()));
        for body in ["1", "2", "3", "4"] {
            queue.push(body.into()).expect("room");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        shutdown.cancel();
        task.await.expect("stops");
        let batches = function.batches.lock().expect("lock").clone();
        assert_eq!(batches, [vec!["1", "2", "3"], vec!["4"]]);
    }

    /// Stalls past any deadline on a message's first delivery; handles it on the next.
    struct Stalling {
        handled: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Function for Stalling {
        async fn invoke(&self, payload: Vec<u8>, _deadline: Instant) -> Result<Vec<u8>, FunctionError> {
            let event: SqsEvent = serde_json::from_slice(&payload).map_err(FunctionError::Deserialize)?;
            if event.records.iter().any(|r| r.attributes["ApproximateReceiveCount"] == "1") {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
            let bodies = event.records.iter().map(|r| r.body.clone().unwrap_or_default());
            self.handled.lock().expect("lock").extend(bodies);
            Ok(serde_json::to_vec(&json!({ "batchItemFailures": [] })).expect("json"))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_invocation_that_times_out_mid_batch_loses_no_message() {
        let queue = Arc::new(MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_secs(6),
            max_receive_count: Some(5),
            ..QueueSettings::default()
        }));
        for body in ["a", "b", "c"] {
            queue.push(body.into()).expect("room");
        }
        let function = Arc::new(Stalling { handled: Mutex::default() });
        let settings = EsmSettings { function_timeout: Duration::from_secs(1), ..EsmSettings::default() };
        run_until(&queue, mapping(queue.clone(), function.clone(), settings), |q| {
            q.stats().in_flight == 0 && q.stats().visible == 0
        })
        .await;

        let mut handled = function.handled.lock().expect("lock").clone();
        handled.sort();
        assert_eq!(handled, ["a", "b", "c"], "redelivered after the visibility timeout and handled");
        assert_eq!(queue.stats().dead, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failing_invocations_lose_no_message() {
        let queue = Arc::new(MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_millis(50),
            max_receive_count: Some(1_000),
            ..QueueSettings::default()
        }));
        let bodies: Vec<String> = (0..20).map(|n| n.to_string()).collect();
        for body in &bodies {
            queue.push(body.clone()).expect("room");
        }
        let function = Arc::new(Scripted { batches: Mutex::default(), fail: vec![], fail_times: 0 });
        let settings = EsmSettings { batch_size: 3, failure_rate: 0.5, ..EsmSettings::default() };
        run_until(&queue, mapping(queue.clone(), function.clone(), settings), |q| {
            q.stats().in_flight == 0 && q.stats().visible == 0
        })
        .await;

        let mut handled: Vec<String> = function.batches.lock().expect("lock").concat();
        handled.sort_by_key(|body| body.parse::<u32>().unwrap_or(u32::MAX));
        assert_eq!(handled, bodies, "each message handled, and once: a failed invocation ran nothing");
        assert_eq!(queue.stats().dead, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn when_every_invocation_fails_the_messages_wait_in_the_dead_letter_list() {
        let queue = Arc::new(MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_millis(100),
            max_receive_count: Some(3),
            ..QueueSettings::default()
        }));
        queue.push("kept".into()).expect("room");
        let function = Arc::new(Scripted { batches: Mutex::default(), fail: vec![], fail_times: 0 });
        let settings = EsmSettings { failure_rate: 1.0, ..EsmSettings::default() };
        run_until(&queue, mapping(queue.clone(), function.clone(), settings), |q| q.stats().dead == 1).await;

        assert!(function.batches.lock().expect("lock").is_empty());
        assert_eq!(queue.dead_letters(), ["kept"], "not lost: kept for inspection and redrive");
    }
}
