//! The worker function: drains SQS batches of jobs and fans each out to its audience.
//!
//! Each job names its [`Audience`]: everyone (a broadcast), a channel's subscribers (a publish), or a
//! list of connections (a retry job). Per batch it scans the connection store once for all its
//! broadcasts, queries each channel's partitions once for all of that channel's messages (the channel
//! and each wildcard above it, each subscriber once), and posts every message to every connection of
//! each page as soon as the page arrives, never more than `post_concurrency` posts at a time and never
//! faster than its share of the account's `@connections` budget. A connection that
//! answers 410 Gone is pruned (the stale id, not the sender) unless its record is young enough to
//! belong to a connection still completing its `$connect`.
//!
//! Throttling (429), server errors and timeouts are retried with exponential backoff and jitter, for
//! at most a short budget per connection and never past the invocation's deadline. A connection still
//! failing then — a client that has stopped reading answers 429 for as long as it is stuck — is not a
//! reason to fail the message, which SQS would deliver again to everyone who already has it, nor to
//! hold the invocation and delay everyone else's next messages: it is put back on the queue in a
//! retry job naming only the connections left, delayed so that it does not spin. Only when that is
//! impossible (the scan failed, or the queue refused the retry job) is a message reported in
//! `batchItemFailures` for SQS to redeliver.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use governor::DefaultDirectRateLimiter;
use governor::clock::{Clock, DefaultClock};
use shared::aws::SQS_MAX_MESSAGE_BYTES;
use shared::clock::epoch_ms;
use shared::limits::PRUNE_GRACE;
use shared::pacing::token_bucket;
use shared::{
    Audience, Channel, ConnectionId, ConnectionRef, ConnectionStore, Envelope, Job, PostError, Poster, Queue,
    StoreError,
};
use tokio::time::Instant;

mod stuck;

use crate::stuck::{Admission, StuckConnections};

/// How the worker paces and retries its `@connections` calls.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// `@connections` calls in flight at once.
    pub post_concurrency: usize,
    /// `@connections` calls per second: this invocation's share of the account's budget.
    pub post_rate: u32,
    /// Time kept free at the end of an invocation to finish the scan, queue the retry jobs and prune.
    pub deadline_reserve: Duration,
    /// The first retry's delay; each retry doubles it, with full jitter, up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// How long one connection's posts may keep failing (from the first failure) before it goes into
    /// a retry job: what one stuck client can cost an invocation, and so everyone else.
    pub target_retry_budget: Duration,
    /// How long a retry job waits on the queue before its first attempt; it doubles with each later
    /// attempt (1, 2, 4, 8 s by default), giving a stuck client time to catch up.
    pub retry_job_delay: Duration,
    /// How long a connection that answered a streak of 429s counts as stuck, unless a post reaches
    /// it: meanwhile its posts go straight into retry jobs, but for one probe every `probe_every`.
    pub stuck_for: Duration,
    pub probe_every: Duration,
    /// How young a record must be to be kept despite a 410 ([`PRUNE_GRACE`] on AWS).
    pub prune_grace: Duration,
    /// Invocations a broadcast may go through (the first and its retry jobs) before the connections it
    /// still could not reach are given up on.
    pub max_job_attempts: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            post_concurrency: shared::WorkerConfig::DEFAULT_POST_CONCURRENCY,
            post_rate: shared::pacing::post_rate_share(
                shared::WorkerConfig::DEFAULT_ACCOUNT_POST_RATE,
                shared::WorkerConfig::DEFAULT_MAX_CONCURRENCY,
            ),
            deadline_reserve: DEFAULT_DEADLINE_RESERVE,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            target_retry_budget: DEFAULT_TARGET_RETRY_BUDGET,
            retry_job_delay: DEFAULT_RETRY_JOB_DELAY,
            stuck_for: DEFAULT_STUCK_FOR,
            probe_every: DEFAULT_PROBE_EVERY,
            prune_grace: PRUNE_GRACE,
            max_job_attempts: DEFAULT_MAX_JOB_ATTEMPTS,
        }
    }
}

/// Kept free before the deadline: a scan of the rest of the table and one SendMessageBatch per ten
/// retry jobs take well under this.
pub const DEFAULT_DEADLINE_RESERVE: Duration = Duration::from_secs(3);

/// Four or five retries with backoff: enough to ride out a burst of throttling or server errors
/// within the invocation, so that few deliveries wait a second or more in a retry job. A client that
/// has stopped reading costs this once at most: a streak of 429s marks it stuck (`stuck.rs`).
pub const DEFAULT_TARGET_RETRY_BUDGET: Duration = Duration::from_secs(1);

/// The first retry job's delay on the queue; SQS counts delays in whole seconds.
pub const DEFAULT_RETRY_JOB_DELAY: Duration = Duration::from_secs(1);

/// A probe failing keeps a connection stuck this much longer: a client that has read nothing for
/// this long is not about to.
pub const DEFAULT_STUCK_FOR: Duration = Duration::from_secs(10);

/// One post a second finds out that a stuck client reads again; every other post to it would only
/// carry its message there to be refused.
pub const DEFAULT_PROBE_EVERY: Duration = Duration::from_secs(1);

/// A broadcast's first attempt and four retry jobs: with backoff inside each invocation, a connection
/// still failing after that is broken, not busy.
pub const DEFAULT_MAX_JOB_ATTEMPTS: u32 = 5;

/// The handler and the ports it needs.
#[derive(Clone)]
pub struct Worker {
    store: Arc<dyn ConnectionStore>,
    poster: Arc<dyn Poster>,
    queue: Arc<dyn Queue>,
    settings: WorkerSettings,
    stuck: Arc<StuckConnections>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("settings", &self.settings).finish_non_exhaustive()
    }
}

/// What one batch did, for logs and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub messages: usize,
    pub delivered: usize,
    pub pruned: usize,
    /// Connections that answered 410 but were kept: their records are younger than [`PRUNE_GRACE`].
    pub kept_connecting: usize,
    /// Posts made again after a 429, a 5xx or a timeout, within this invocation.
    pub retried: usize,
    /// Connections put back on the queue in retry jobs.
    pub requeued: usize,
    /// Connections given up on after [`WorkerSettings::max_job_attempts`].
    pub abandoned: usize,
    /// Posts refused for good (payload too large, an unknown error): never retried.
    pub rejected: usize,
    /// Message ids reported back to SQS for redelivery.
    pub failed: Vec<String>,
}

/// One message of the batch, ready to post.
struct Delivery {
    message_id: String,
    envelope: Envelope,
    frame: Bytes,
    audience: Audience,
    attempt: u32,
}

enum Step {
    Post {
        message: usize,
        to: ConnectionRef,
    },
    /// Listing these messages' audience failed part way.
    ListFailed {
        messages: Arc<Vec<usize>>,
        error: StoreError,
    },
}

/// How posting to one connection ended.
enum Posted {
    Delivered,
    Gone,
    /// Not delivered yet, and worth trying again later: throttled or failing until the deadline came
    /// near, or forbidden (a policy being fixed).
    Unfinished,
    Rejected,
}

enum Outcome {
    Posted { message: usize, to: ConnectionRef, posted: Posted, retries: usize },
    ListFailed { messages: Arc<Vec<usize>>, error: StoreError },
}

impl Worker {
    pub fn new(
        store: Arc<dyn ConnectionStore>,
        poster: Arc<dyn Poster>,
        queue: Arc<dyn Queue>,
        settings: WorkerSettings,
    ) -> Self {
        let settings = WorkerSettings { post_concurrency: settings.post_concurrency.max(1), ..settings };
        let stuck = Arc::new(StuckConnections::new(settings.stuck_for, settings.probe_every));
        Self { store, poster, queue, settings, stuck }
    }

    /// A fresh budget for one invocation. API Gateway's account bucket holds half a second of its rate
    /// (10,000/s, burst 5,000): so does each invocation's share of it. Per invocation rather than per
    /// `Worker`, so that invocations sharing one process (the local gateway's) each get their share.
    fn budget(&self) -> DefaultDirectRateLimiter {
        token_bucket(self.settings.post_rate, self.settings.post_rate / 2)
    }

    /// Handles one SQS batch; the response lists the messages SQS should deliver again. `deadline` is
    /// when Lambda ends the invocation.
    pub async fn handle(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        let report = self.process(event, deadline).await;
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = report
            .failed
            .into_iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id;
                failure
            })
            .collect();
        response
    }

    /// Does the work of [`Worker::handle`] and says what happened.
    pub async fn process(&self, event: SqsEvent, deadline: Instant) -> BatchReport {
        let started = Instant::now();
        let stop_at = deadline.checked_sub(self.settings.deadline_reserve).unwrap_or(started);
        let mut report = BatchReport { messages: event.records.len(), ..BatchReport::default() };
        let deliveries = parse_batch(event, &mut report);
        if deliveries.is_empty() {
            return report;
        }

        let mut failed = vec![false; deliveries.len()];
        let mut unfinished: Vec<Vec<ConnectionRef>> = vec![Vec::new(); deliveries.len()];
        let mut gone = HashSet::new();
        let mut connecting = HashSet::new();
        let prune_before =
            epoch_ms() - i64::try_from(self.settings.prune_grace.as_millis()).unwrap_or(i64::MAX);
        let budget = self.budget();
        let mut outcomes = self.fan_out(&deliveries, &budget, stop_at);
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Posted { message, to, posted, retries } => {
                    report.retried += retries;
                    match posted {
                        Posted::Delivered => report.delivered += 1,
                        // A young record may be a connection whose handshake is still completing.
                        Posted::Gone if to.connected_at_ms < prune_before => {
                            gone.insert(to.id);
                        }
                        Posted::Gone => {
                            connecting.insert(to.id);
                        }
                        Posted::Unfinished => unfinished[message].push(to),
                        Posted::Rejected => report.rejected += 1,
                    }
                }
                Outcome::ListFailed { messages, error } => {
                    // The messages already reached some connections, but which ones the rest of the
                    // listing would have found is unknown: only SQS's redelivery can finish them.
                    tracing::error!(error = %error, messages = messages.len(), "listing the audience failed; the messages will be redelivered");
                    for &message in messages.iter() {
                        failed[message] = true;
                    }
                }
            }
        }
        drop(outcomes);
        report.kept_connecting = connecting.len();

        for (message, targets) in unfinished.into_iter().enumerate() {
            if !targets.is_empty() && !failed[message] {
                failed[message] = !self.requeue(&deliveries[message], targets, &mut report).await;
            }
        }

        if !gone.is_empty() {
            let stale: Vec<ConnectionId> = gone.into_iter().collect();
            match self.store.delete_many(&stale).await {
                Ok(()) => report.pruned = stale.len(),
                // Not a reason to redeliver: the records' TTL removes them later anyway.
                Err(err) => {
                    tracing::warn!(error = %err, stale = stale.len(), "pruning gone connections failed")
                }
            }
        }
        report.failed.extend(
            deliveries.iter().zip(&failed).filter(|(_, failed)| **failed).map(|(d, _)| d.message_id.clone()),
        );
        tracing::info!(
            messages = report.messages,
            delivered = report.delivered,
            pruned = report.pruned,
            retried = report.retried,
            requeued = report.requeued,
            abandoned = report.abandoned,
            failed = report.failed.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "batch done"
        );
        report
    }

    /// How long a retry job for `attempt` (1 for the first retry) waits on the queue.
    fn retry_job_delay(&self, attempt: u32) -> Duration {
        self.settings.retry_job_delay.saturating_mul(1 << attempt.saturating_sub(1).min(10))
    }

    /// Puts `targets` back on the queue for `delivery`'s next attempt; false when the queue refused,
    /// and only SQS's redelivery of the whole message is left.
    async fn requeue(
        &self,
        delivery: &Delivery,
        targets: Vec<ConnectionRef>,
        report: &mut BatchReport,
    ) -> bool {
        let attempt = delivery.attempt + 1;
        if attempt >= self.settings.max_job_attempts {
            tracing::error!(message = %delivery.message_id, broadcast = %delivery.envelope.id, connections = targets.len(), attempts = attempt, "giving up on connections that kept failing");
            report.abandoned += targets.len();
            return true;
        }
        let count = targets.len();
        let jobs = Job::retries(&delivery.envelope, targets, attempt, SQS_MAX_MESSAGE_BYTES);
        let results = self.queue.send_batch(&jobs, self.retry_job_delay(attempt)).await;
        match results.iter().find_map(|result| result.as_ref().err()) {
            None => {
                report.requeued += count;
                true
            }
            Some(err) => {
                // Some retry jobs may be queued already: redelivery then reaches their targets twice,
                // which is better than never.
                tracing::error!(message = %delivery.message_id, error = %err, "queueing a retry job failed; the message will be redelivered");
                false
            }
        }
    }

    /// Every (message, connection) post, page by page as the audiences are listed, at most
    /// `post_concurrency` at a time. Within a page, each message goes to every connection before the
    /// next message starts, which keeps per-connection order as close to the batch's as SQS allows.
    /// The store is scanned once if the batch holds broadcasts, each channel's partitions are queried
    /// once for all its messages, and retry jobs name their targets.
    fn fan_out<'a>(
        &'a self,
        deliveries: &'a [Delivery],
        budget: &'a DefaultDirectRateLimiter,
        stop_at: Instant,
    ) -> BoxStream<'a, Outcome> {
        let mut sources: Vec<BoxStream<'a, Step>> = Vec::new();
        let everyone: Vec<usize> =
            (0..deliveries.len()).filter(|&m| deliveries[m].audience == Audience::Everyone).collect();
        if !everyone.is_empty() {
            sources.push(pages_to_steps(self.store.scan(), everyone));
        }
        let mut channels: BTreeMap<&Channel, Vec<usize>> = BTreeMap::new();
        for (message, delivery) in deliveries.iter().enumerate() {
            if let Audience::Channel(channel) = &delivery.audience {
                channels.entry(channel).or_default().push(message);
            }
        }
        for (channel, messages) in channels {
            sources.push(pages_to_steps(self.subscribers(channel), messages));
        }
        sources.push(
            stream::iter(deliveries.iter().enumerate().flat_map(|(message, delivery)| {
                let targets = match &delivery.audience {
                    Audience::Connections(targets) => targets.as_slice(),
                    Audience::Everyone | Audience::Channel(_) => &[],
                };
                targets.iter().map(move |to| Step::Post { message, to: to.clone() })
            }))
            .boxed(),
        );
        stream::iter(sources)
            .flatten()
            .map(move |step| async move {
                match step {
                    Step::Post { message, to } => {
                        let admission = self.stuck.admit(&to.id);
                        let frame = &deliveries[message].frame;
                        let (posted, retries) =
                            self.post_with_retries(&to.id, frame, admission, budget, stop_at).await;
                        Outcome::Posted { message, to, posted, retries }
                    }
                    Step::ListFailed { messages, error } => Outcome::ListFailed { messages, error },
                }
            })
            .buffer_unordered(self.settings.post_concurrency)
            .boxed()
    }

    /// Everyone subscribed to `channel`, directly or through a wildcard above it, each once however
    /// many of their patterns match: the channel's own partition, then each wildcard ancestor's.
    fn subscribers<'a>(&'a self, channel: &Channel) -> BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>> {
        let mut seen = HashSet::new();
        stream::iter(channel.patterns())
            .flat_map(move |pattern| self.store.subscribers(&pattern))
            .map(move |page| {
                page.map(|page| page.into_iter().filter(|to| seen.insert(to.id.clone())).collect())
            })
            .boxed()
    }

    /// Posts `frame` to `to` within the post-rate budget, retrying throttling and transient failures
    /// with exponential backoff and jitter for at most the connection's own retry budget, and never
    /// past `stop_at` — or, for a stuck connection, once or not at all, as `admission` says.
    async fn post_with_retries(
        &self,
        to: &ConnectionId,
        frame: &Bytes,
        admission: Admission,
        budget: &DefaultDirectRateLimiter,
        stop_at: Instant,
    ) -> (Posted, usize) {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.min_backoff)
            .with_max_delay(self.settings.max_backoff)
            .with_jitter()
            .without_max_times()
            .build();
        let mut retries = 0;
        // Set at the first failure: waiting for the post-rate budget is not this connection's doing.
        let mut give_up_at: Option<Instant> = None;
        let probe = match admission {
            Admission::Skip => return (Posted::Unfinished, 0),
            Admission::Probe => true,
            Admission::Post => false,
        };
        loop {
            if !within_budget(budget, stop_at).await {
                return (Posted::Unfinished, retries);
            }
            let err = match self.poster.post(to, frame.clone()).await {
                Ok(()) => {
                    self.stuck.recovered(to);
                    return (Posted::Delivered, retries);
                }
                Err(PostError::Gone) => return (Posted::Gone, retries),
                Err(err) => err,
            };
            if matches!(err, PostError::Forbidden) {
                tracing::warn!(connection = %to, error = %err, "post forbidden; the connection goes into a retry job");
                return (Posted::Unfinished, retries);
            }
            if !err.is_retryable() {
                tracing::warn!(connection = %to, error = %err, "post rejected; not retried");
                return (Posted::Rejected, retries);
            }
            // A streak of 429s: a client whose buffer stays full. Waiting for it holds everyone else.
            if matches!(err, PostError::Throttled) && self.stuck.throttled(to) {
                return (Posted::Unfinished, retries);
            }
            if probe {
                return (Posted::Unfinished, retries);
            }
            let give_up_at =
                *give_up_at.get_or_insert_with(|| Instant::now() + self.settings.target_retry_budget);
            let delay = backoff.next().unwrap_or(self.settings.max_backoff);
            if Instant::now() + delay >= give_up_at {
                tracing::debug!(connection = %to, error = %err, retries, "still failing after its retry budget; the connection goes into a retry job");
                return (Posted::Unfinished, retries);
            }
            if Instant::now() + delay >= stop_at {
                return (Posted::Unfinished, retries);
            }
            tokio::time::sleep(delay).await;
            retries += 1;
        }
    }
}

/// The batch's jobs, ready to post. Poison (a body that is not a job) goes into `report.failed`, so
/// that SQS's redrive policy moves it to the dead-letter queue.
fn parse_batch(event: SqsEvent, report: &mut BatchReport) -> Vec<Delivery> {
    let mut deliveries = Vec::with_capacity(event.records.len());
    for record in event.records {
        let Some(message_id) = record.message_id else {
            tracing::error!("an SQS record without a messageId cannot be acknowledged or retried");
            continue;
        };
        let sent_at_ms =
            record.attributes.get("SentTimestamp").and_then(|at| at.parse().ok()).unwrap_or_else(epoch_ms);
        match Job::from_queue(record.body.as_deref().unwrap_or_default(), &message_id, sent_at_ms) {
            Ok(job) => deliveries.push(Delivery {
                message_id,
                frame: Bytes::from(job.envelope.frame()),
                envelope: job.envelope,
                audience: job.audience,
                attempt: job.attempt,
            }),
            Err(err) => {
                tracing::error!(message = %message_id, error = %err, "unparsable job");
                report.failed.push(message_id);
            }
        }
    }
    deliveries
}

/// A post for each of `messages` to each connection of each page; a failed page ends the listing.
fn pages_to_steps<'a>(
    pages: BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>>,
    messages: Vec<usize>,
) -> BoxStream<'a, Step> {
    let messages = Arc::new(messages);
    pages
        .flat_map(move |page| match page {
            Ok(ids) => {
                let ids = Arc::new(ids);
                let messages = Arc::clone(&messages);
                stream::iter((0..messages.len()).flat_map(move |m| {
                    let (ids, message) = (Arc::clone(&ids), messages[m]);
                    (0..ids.len()).map(move |i| Step::Post { message, to: ids[i].clone() })
                }))
                .boxed()
            }
            Err(error) => stream::iter([Step::ListFailed { messages: Arc::clone(&messages), error }]).boxed(),
        })
        .boxed()
}

/// Waits for a token of the post-rate budget; false if none comes before `stop_at`.
async fn within_budget(budget: &DefaultDirectRateLimiter, stop_at: Instant) -> bool {
    loop {
        let Err(not_until) = budget.check() else {
            return true;
        };
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        if Instant::now() + wait >= stop_at {
            return false;
        }
        tokio::time::sleep(wait).await;
    }
}
