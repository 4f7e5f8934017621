//! An SQS standard queue in memory, with its dead-letter queue: the local gateway's.
//!
//! It has what the worker and the event source mapping rely on: a visibility timeout, receive counts,
//! `DelaySeconds`, a redrive policy to a dead-letter list, and long polls that wake when a message
//! arrives or becomes visible.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::port::{Queue, QueueSource, ReceivedMessage};
use crate::clock::epoch_ms;
use crate::domain::Job;
use crate::error::QueueError;
use crate::sync::lock;

/// SQS semantics the worker and the event source mapping rely on.
#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    /// How long a received message stays hidden before it is delivered again.
    pub visibility_timeout: Duration,
    /// Receives after which a message moves to the dead-letter list (the queue's `RedrivePolicy`).
    pub max_receive_count: Option<u32>,
    /// The most bytes of message bodies the queue holds, visible, delayed, in flight and dead
    /// together; a send past it is refused ([`QueueFull`]). SQS has no such bound, but one
    /// process's memory has: without it, messages delayed 15 minutes could grow the gateway without
    /// end. `usize::MAX` for none.
    pub max_bytes: usize,
}

impl QueueSettings {
    /// 64 MiB: 256 of SQS's largest messages, and thousands of batches of the worker's own jobs.
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024 * 1024;
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: Some(5),
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }
}

/// A send refused because the queue holds its [`QueueSettings::max_bytes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the local queue holds {held} bytes of messages, and takes at most {max}; this one has {size}")]
pub struct QueueFull {
    pub held: usize,
    pub size: usize,
    pub max: usize,
}

#[derive(Debug)]
struct StoredMessage {
    id: String,
    body: String,
    sent_at_ms: i64,
    receive_count: u32,
    first_received_at_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct QueueState {
    visible: VecDeque<StoredMessage>,
    /// Sent with a delay: visible from the instant beside each.
    delayed: Vec<(Instant, StoredMessage)>,
    in_flight: HashMap<String, (Instant, StoredMessage)>,
    dead: Vec<StoredMessage>,
    /// The bytes of every body above.
    bytes: usize,
}

/// Counts of messages by state, like SQS's `ApproximateNumberOfMessages*` attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub visible: usize,
    pub in_flight: usize,
    pub delayed: usize,
    pub dead: usize,
}

/// An SQS standard queue in memory, with its dead-letter queue.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<QueueState>,
    settings: QueueSettings,
    arrived: Notify,
}

impl MemoryQueue {
    pub fn new(settings: QueueSettings) -> Self {
        Self { state: Mutex::default(), settings, arrived: Notify::new() }
    }

    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// `SendMessage`: returns the new message's id.
    pub fn push(&self, body: String) -> Result<String, QueueFull> {
        self.push_delayed(body, Duration::ZERO)
    }

    /// `SendMessage` with `DelaySeconds`: the message is visible only after `delay`.
    pub fn push_delayed(&self, body: String, delay: Duration) -> Result<String, QueueFull> {
        let mut state = lock(&self.state);
        let (held, size, max) = (state.bytes, body.len(), self.settings.max_bytes);
        if held.saturating_add(size) > max {
            return Err(QueueFull { held, size, max });
        }
        state.bytes += size;
        let id = uuid::Uuid::new_v4().to_string();
        let message = StoredMessage {
            id: id.clone(),
            body,
            sent_at_ms: epoch_ms(),
            receive_count: 0,
            first_received_at_ms: None,
        };
        if delay.is_zero() {
            state.visible.push_back(message);
        } else {
            state.delayed.push((Instant::now() + delay, message));
        }
        drop(state);
        self.arrived.notify_one();
        Ok(id)
    }

    /// `ReceiveMessage`: up to `max` visible messages, hidden for the visibility timeout. A message
    /// received more than `max_receive_count` times goes to the dead-letter list instead.
    pub fn receive_message(&self, max: usize) -> Vec<ReceivedMessage> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        Self::return_expired(&mut state, now);
        let mut received = Vec::new();
        while received.len() < max {
            let Some(mut message) = state.visible.pop_front() else { break };
            message.receive_count += 1;
            if self.settings.max_receive_count.is_some_and(|max| message.receive_count > max) {
                tracing::warn!(message_id = %message.id, receives = message.receive_count - 1, "message moved to the dead-letter queue");
                state.dead.push(message);
                continue;
            }
            let first_received_at_ms = *message.first_received_at_ms.get_or_insert_with(epoch_ms);
            let receipt_handle = format!("{}#{}", message.id, uuid::Uuid::new_v4().simple());
            received.push(ReceivedMessage {
                message_id: message.id.clone(),
                receipt_handle: receipt_handle.clone(),
                body: message.body.clone(),
                receive_count: message.receive_count,
                sent_at_ms: message.sent_at_ms,
                first_received_at_ms,
            });
            state.in_flight.insert(receipt_handle, (now + self.settings.visibility_timeout, message));
        }
        received
    }

    /// `DeleteMessage`. A stale receipt handle (the message timed out and was received again) deletes
    /// nothing, so a slow consumer cannot delete a message someone else is now processing.
    pub fn delete_message(&self, receipt_handle: &str) -> bool {
        let mut state = lock(&self.state);
        let Some((_, message)) = state.in_flight.remove(receipt_handle) else { return false };
        state.bytes -= message.body.len();
        true
    }

    /// The bytes of message bodies the queue holds, dead letters included.
    pub fn bytes(&self) -> usize {
        lock(&self.state).bytes
    }

    /// When the earliest in-flight or delayed message becomes visible, if any is waiting.
    pub fn next_visible_at(&self) -> Option<Instant> {
        let state = lock(&self.state);
        state.in_flight.values().map(|(at, _)| *at).chain(state.delayed.iter().map(|(at, _)| *at)).min()
    }

    /// Resolves when a message has been sent since the last call.
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    pub fn stats(&self) -> QueueStats {
        let mut state = lock(&self.state);
        Self::return_expired(&mut state, Instant::now());
        QueueStats {
            visible: state.visible.len(),
            in_flight: state.in_flight.len(),
            delayed: state.delayed.len(),
            dead: state.dead.len(),
        }
    }

    /// The bodies in the dead-letter list.
    pub fn dead_letters(&self) -> Vec<String> {
        lock(&self.state).dead.iter().map(|m| m.body.clone()).collect()
    }

    /// The bodies of the visible messages, without receiving them.
    pub fn peek(&self) -> Vec<String> {
        lock(&self.state).visible.iter().map(|m| m.body.clone()).collect()
    }

    /// The bodies of the delayed messages, with how long each has still to wait.
    pub fn peek_delayed(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        lock(&self.state)
            .delayed
            .iter()
            .map(|(at, m)| (m.body.clone(), at.saturating_duration_since(now)))
            .collect()
    }

    fn return_expired(state: &mut QueueState, now: Instant) {
        let expired: Vec<String> =
            state.in_flight.iter().filter(|(_, (at, _))| *at <= now).map(|(k, _)| k.clone()).collect();
        for receipt in expired {
            if let Some((_, message)) = state.in_flight.remove(&receipt) {
                state.visible.push_back(message);
            }
        }
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.delayed).into_iter().partition(|(at, _)| *at <= now);
        state.delayed = waiting;
        state.visible.extend(due.into_iter().map(|(_, message)| message));
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        self.send_batch(std::slice::from_ref(job), Duration::ZERO).await.remove(0)
    }

    async fn send_batch(&self, jobs: &[Job], delay: Duration) -> Vec<Result<(), QueueError>> {
        // Full is a moment, not a mistake: the worker drains the queue, and a sender may try again.
        jobs.iter()
            .map(|job| {
                self.push_delayed(job.to_body(), delay)
                    .map(drop)
                    .map_err(|full| QueueError::Unavailable(full.into()))
            })
            .collect()
    }
}

#[async_trait]
impl QueueSource for MemoryQueue {
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let batch = self.receive_message(max);
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            // Wake for a new message, for an in-flight one becoming visible, or at the deadline.
            let wake = self.next_visible_at().map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = self.arrived() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn delete(&self, receipt_handles: &[String]) -> Result<(), QueueError> {
        for receipt in receipt_handles {
            self.delete_message(receipt);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ConnectionId;

    fn id(n: usize) -> ConnectionId {
        ConnectionId::parse(&format!("conn{n:05}")).expect("id")
    }

    #[tokio::test(start_paused = true)]
    async fn an_unacknowledged_message_comes_back_after_the_visibility_timeout() {
        let queue = MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: None,
            ..QueueSettings::default()
        });
        queue.push("m".into()).expect("room");
        let first = queue.receive_message(10);
        assert_eq!(first.len(), 1);
        assert!(queue.receive_message(10).is_empty(), "hidden while in flight");
        tokio::time::advance(Duration::from_secs(31)).await;
        let again = queue.receive_message(10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        assert_eq!(again[0].message_id, first[0].message_id);
        assert!(!queue.delete_message(&first[0].receipt_handle), "a stale receipt deletes nothing");
        assert!(queue.delete_message(&again[0].receipt_handle));
        assert_eq!(queue.stats(), QueueStats::default());
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_message_is_received_only_once_its_delay_has_passed() {
        let queue = MemoryQueue::default();
        let data = serde_json::value::RawValue::from_string("1".into()).expect("raw");
        let jobs = [Job::broadcast(crate::domain::Envelope::broadcast(id(1), 42, data).expect("fits"))];
        let results = Queue::send_batch(&queue, &jobs, Duration::from_secs(2)).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(queue.stats().delayed, 1);
        assert!(queue.receive(10, Duration::from_millis(500)).await.expect("receive").is_empty());
        let received = queue.receive(10, Duration::from_secs(5)).await.expect("receive");
        assert_eq!(received.len(), 1, "visible after two seconds, within the long poll");
        assert_eq!(received[0].receive_count, 1);
        assert_eq!(queue.stats().delayed, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_received_too_often_moves_to_the_dead_letter_list() {
        let queue = MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_secs(1),
            max_receive_count: Some(2),
            ..QueueSettings::default()
        });
        queue.push("poison".into()).expect("room");
        for _ in 0..2 {
            assert_eq!(queue.receive_message(10).len(), 1);
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        assert!(queue.receive_message(10).is_empty());
        assert_eq!(queue.dead_letters(), ["poison"]);
        assert_eq!(queue.stats(), QueueStats { dead: 1, ..QueueStats::default() });
    }

    #[tokio::test]
    async fn the_queue_holds_at_most_its_bytes_and_makes_room_as_messages_are_deleted() {
        let queue = MemoryQueue::new(QueueSettings { max_bytes: 10, ..QueueSettings::default() });
        queue.push("123456".into()).expect("6 of 10 bytes");
        queue.push_delayed("1234".into(), Duration::from_secs(900)).expect("10 of 10 bytes");
        assert_eq!(queue.push("x".into()), Err(QueueFull { held: 10, size: 1, max: 10 }));
        let data = serde_json::value::RawValue::from_string("1".into()).expect("raw");
        let job = Job::broadcast(crate::domain::Envelope::broadcast(id(1), 42, data).expect("fits"));
        let refused = Queue::send(&queue, &job).await.expect_err("full");
        assert!(refused.is_retryable(), "the worker drains the queue: {refused}");
        let received = queue.receive_message(10);
        assert!(queue.delete_message(&received[0].receipt_handle));
        assert_eq!(queue.bytes(), 4, "the delayed message is still held");
        queue.push("x".into()).expect("room again");
    }
}
