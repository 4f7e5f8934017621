//! The worker function: drains SQS batches of jobs and fans each out to its audience.
//!
//! Each job names its [`Audience`]: everyone (a broadcast), a channel's subscribers (a publish), a
//! shard of either (split off a large one), or a list of connections (a retry job). Per batch it
//! lists each audience once for all of its messages (a channel: its partition and each wildcard's
//! above it, each subscriber once), and posts every message to every connection of each page as soon
//! as the page arrives, never more than `post_concurrency` posts at a time and at a pace that adapts
//! to the account's `@connections` limit. An audience larger than one shard is split into shard jobs
//! on the queue, so that several invocations post it at once. A connection that
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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use futures::TryStreamExt;
use futures::stream::{self, BoxStream, StreamExt};
use shared::aws::SQS_MAX_MESSAGE_BYTES;
use shared::clock::epoch_ms;
use shared::limits::PRUNE_GRACE;
use shared::pacing::AdaptiveRate;
use shared::{
    Audience, Channel, ConnectionId, ConnectionRef, ConnectionStore, Envelope, Job, PostError, Poster, Queue,
    Shard, StoreError,
};
use tokio::time::Instant;

pub mod metrics;
mod stuck;

pub use crate::metrics::LatencySample;
use crate::stuck::{Admission, StuckConnections};

/// How the worker paces and retries its `@connections` calls.
#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// `@connections` calls in flight at once.
    pub post_concurrency: usize,
    /// `@connections` calls per second an invocation starts at: its share of the account's rate
    /// when every invocation is busy. It adapts from there ([`AdaptiveRate`]).
    pub post_rate: u32,
    /// `@connections` calls per second of the whole account: the most one invocation may use.
    pub account_rate: u32,
    /// Connections per shard: a broadcast to more is split into shards on the queue, posted by as
    /// many invocations at once; 0 never splits.
    pub shard_size: usize,
    /// The fewest shards a split makes ([`min_shards`]): enough for every invocation the event
    /// source mapping runs at once to get a batch of them, three times over.
    pub min_shards: u32,
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
            account_rate: shared::WorkerConfig::DEFAULT_ACCOUNT_POST_RATE,
            shard_size: shared::WorkerConfig::DEFAULT_SHARD_SIZE,
            min_shards: min_shards(shared::WorkerConfig::DEFAULT_MAX_CONCURRENCY),
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

/// The most messages the SQS event source mapping hands one invocation (the template's
/// `WorkerBatchSize` allows no more).
pub const MAX_BATCH_SIZE: u32 = 10;

/// How many rounds of full batches a split makes at least, for every invocation the mapping runs.
/// With one round, each invocation takes its ten shards at once and the slowest sets the broadcast's
/// end while the others idle; with three, two thirds wait on the queue for whichever invocation is
/// free first. Measured with `simulate --connections 10000 --account-rate 2000 --latency-min-ms 0
/// --latency-max-ms 2 --post-concurrency 64 --capacity 5102`, seeds 1 to 5: one round 6.6–8.9 s to
/// the last delivery, longest invocation 5.6–7.9 s; three rounds 4.9–6.0 s and 2.1–3.6 s (the local
/// gateway measured 5.7 s; the account's floor is 4.5 s). At 100,000 on AWS's defaults: 11.0–11.1 s
/// against 10.6–10.9 s.
pub const SHARD_ROUNDS: u32 = 3;

/// The fewest shards a split makes when the mapping runs `max_concurrency` invocations at once.
pub fn min_shards(max_concurrency: u32) -> u32 {
    max_concurrency.saturating_mul(MAX_BATCH_SIZE).saturating_mul(SHARD_ROUNDS)
}

/// How finely the connections are divided to estimate a broadcast's audience: the first of this
/// many shards is read, and the audience is about this many times larger. A hundredth of the table
/// costs little to read (10,000 items of a million, one or two pages), and is enough to tell 2,000
/// connections from 20,000.
pub const PROBE_SHARDS: u32 = 100;

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
    /// Shard jobs queued for other invocations to post.
    pub shards_queued: usize,
    /// How long `@connections` took to answer each post's last call.
    pub post_latency: LatencySample,
}

impl BatchReport {
    /// The answer SQS gets: the messages it should deliver again.
    pub fn response(&self) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = self
            .failed
            .iter()
            .map(|id| {
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = id.clone();
                failure
            })
            .collect();
        response
    }
}

/// One message of the batch, ready to post.
struct Delivery {
    message_id: String,
    envelope: Envelope,
    frame: Bytes,
    audience: Audience,
    attempt: u32,
}

/// An audience the store lists, whole or in shards: everyone, or a channel's subscribers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Scope<'a> {
    Everyone,
    Channel(&'a Channel),
}

/// Where a part of a message's audience comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part<'a> {
    /// The connections the probe of the scope read.
    Probed(Scope<'a>),
    /// The rest of the scope: all of it listed, without the probed connections.
    Unprobed(Scope<'a>),
    /// One shard of the scope, listed whole.
    Shard(Scope<'a>, Shard),
}

/// What a probe read: the connections, and their ids to leave out of the rest.
#[derive(Default)]
struct Probe {
    connections: Arc<Vec<ConnectionRef>>,
    ids: Arc<HashSet<ConnectionId>>,
}

/// Who each message of a batch goes to, decided before the first post.
#[derive(Default)]
struct Plan<'a> {
    /// The messages of each part; a scope's parts together hold each of its connections once.
    parts: BTreeMap<Part<'a>, Vec<usize>>,
    probes: HashMap<Scope<'a>, Probe>,
    /// The messages whose audience could not be estimated: SQS must deliver them again.
    failed: Vec<usize>,
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
    Posted { message: usize, to: ConnectionRef, posted: Posted, retries: usize, latency_us: Option<u64> },
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

    /// A fresh pace for one invocation, adapting to the account's answers from its fair share. Per
    /// invocation rather than per `Worker`, so that invocations sharing one process (the local
    /// gateway's) each find their share.
    fn budget(&self) -> AdaptiveRate {
        AdaptiveRate::new(self.settings.post_rate, self.settings.account_rate)
    }

    /// Decides where each message of the batch goes. A broadcast or a publish to more connections
    /// than one shard holds is split: its other shards are queued as jobs for other invocations,
    /// and this one posts the first. The audience is estimated from one of [`PROBE_SHARDS`] shards;
    /// when it is small, the connections read are posted at once and the rest is listed without
    /// them, so a small audience costs two reads, not a hundred.
    async fn plan<'a>(&self, deliveries: &'a [Delivery], report: &mut BatchReport) -> Plan<'a> {
        let mut plan = Plan::default();
        let mut whole: BTreeMap<Scope<'a>, Vec<usize>> = BTreeMap::new();
        for (message, delivery) in deliveries.iter().enumerate() {
            let part = match &delivery.audience {
                Audience::Shard(shard) => Part::Shard(Scope::Everyone, *shard),
                Audience::ChannelShard { channel, shard } => Part::Shard(Scope::Channel(channel), *shard),
                Audience::Everyone => {
                    whole.entry(Scope::Everyone).or_default().push(message);
                    continue;
                }
                Audience::Channel(channel) => {
                    whole.entry(Scope::Channel(channel)).or_default().push(message);
                    continue;
                }
                Audience::Connections(_) => continue,
            };
            plan.parts.entry(part).or_default().push(message);
        }
        if self.settings.shard_size == 0 {
            for (scope, messages) in whole {
                plan.parts.entry(Part::Shard(scope, Shard::WHOLE)).or_default().extend(messages);
            }
            return plan;
        }
        // Every scope's probe at once: a batch of publishes to ten channels waits for one read
        // before its first post, not ten in a row.
        let probe = Shard::new(0, PROBE_SHARDS).unwrap_or(Shard::WHOLE);
        let probes =
            futures::future::join_all(whole.keys().map(|&scope| self.list(scope, probe).try_concat())).await;
        for ((scope, messages), probed) in whole.into_iter().zip(probes) {
            self.plan_scope(scope, messages, probed, deliveries, &mut plan, report).await;
        }
        plan
    }

    /// Plans the messages for the whole of one scope from its probe: splits it when it is large.
    async fn plan_scope<'a>(
        &self,
        scope: Scope<'a>,
        messages: Vec<usize>,
        probed: Result<Vec<ConnectionRef>, StoreError>,
        deliveries: &[Delivery],
        plan: &mut Plan<'a>,
        report: &mut BatchReport,
    ) {
        let probed = match probed {
            Ok(probed) => probed,
            Err(error) => {
                tracing::error!(error = %error, messages = messages.len(), "reading the audience failed; the messages will be redelivered");
                plan.failed.extend(messages);
                return;
            }
        };
        let estimate = probed.len().saturating_mul(PROBE_SHARDS as usize);
        let shards = u32::try_from(estimate.div_ceil(self.settings.shard_size)).unwrap_or(u32::MAX);
        if shards <= 1 {
            let ids = Arc::new(probed.iter().map(|to| to.id.clone()).collect());
            plan.probes.insert(scope, Probe { connections: Arc::new(probed), ids });
            plan.parts.insert(Part::Probed(scope), messages.clone());
            plan.parts.insert(Part::Unprobed(scope), messages);
            return;
        }
        // Enough shards for every invocation to take a batch, three times over: with fewer, one
        // invocation would get them all (measured: 10,000 connections in 5 shards took 5.1 s,
        // `simulate --connections 10000 --min-shards 1`), however many the mapping may run.
        let shards = shards.max(self.settings.min_shards);
        let split: Vec<Shard> = Shard::all(shards).collect();
        for message in messages {
            let envelope = &deliveries[message].envelope;
            let jobs: Vec<Job> = split[1..]
                .iter()
                .map(|&shard| match scope {
                    Scope::Everyone => Job::shard(envelope.clone(), shard),
                    Scope::Channel(channel) => Job::channel_shard(envelope.clone(), channel.clone(), shard),
                })
                .collect();
            let results = self.queue.send_batch(&jobs, Duration::ZERO).await;
            plan.parts.entry(Part::Shard(scope, split[0])).or_default().push(message);
            for (&shard, result) in split[1..].iter().zip(&results) {
                match result {
                    Ok(()) => report.shards_queued += 1,
                    // Posted here instead: slower, but every shard is still posted exactly once.
                    Err(err) => {
                        tracing::warn!(shard = %shard, error = %err, "queueing a shard failed; this invocation posts it");
                        plan.parts.entry(Part::Shard(scope, shard)).or_default().push(message);
                    }
                }
            }
        }
        tracing::info!(?scope, estimate, shards, "audience split into shards");
    }

    /// Handles one SQS batch; the response lists the messages SQS should deliver again. `deadline` is
    /// when Lambda ends the invocation.
    pub async fn handle(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        self.process(event, deadline).await.response()
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
        let plan = self.plan(&deliveries, &mut report).await;
        for &message in &plan.failed {
            failed[message] = true;
        }
        let mut unfinished: Vec<Vec<ConnectionRef>> = vec![Vec::new(); deliveries.len()];
        let mut gone = HashSet::new();
        let mut connecting = HashSet::new();
        let prune_before =
            epoch_ms() - i64::try_from(self.settings.prune_grace.as_millis()).unwrap_or(i64::MAX);
        let budget = self.budget();
        let mut outcomes = self.fan_out(&deliveries, &plan, &budget, stop_at);
        while let Some(outcome) = outcomes.next().await {
            match outcome {
                Outcome::Posted { message, to, posted, retries, latency_us } => {
                    report.retried += retries;
                    if let Some(latency_us) = latency_us {
                        report.post_latency.record(latency_us);
                    }
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
            shards_queued = report.shards_queued,
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
    /// Each part in `plan` is listed once for all its messages, and retry jobs name their targets.
    fn fan_out<'a>(
        &'a self,
        deliveries: &'a [Delivery],
        plan: &'a Plan<'a>,
        budget: &'a AdaptiveRate,
        stop_at: Instant,
    ) -> BoxStream<'a, Outcome> {
        let mut sources: Vec<BoxStream<'a, Step>> = Vec::new();
        for (&part, messages) in &plan.parts {
            let pages = match part {
                Part::Probed(scope) => {
                    let probed = plan.probes.get(&scope).map(|probe| probe.connections.to_vec());
                    stream::iter([Ok(probed.unwrap_or_default())]).boxed()
                }
                Part::Unprobed(scope) => {
                    let probed =
                        plan.probes.get(&scope).map(|probe| Arc::clone(&probe.ids)).unwrap_or_default();
                    self.list(scope, Shard::WHOLE)
                        .map_ok(move |page| page.into_iter().filter(|to| !probed.contains(&to.id)).collect())
                        .boxed()
                }
                Part::Shard(scope, shard) => self.list(scope, shard),
            };
            sources.push(pages_to_steps(pages, messages.clone()));
        }
        sources.push(
            stream::iter(deliveries.iter().enumerate().flat_map(|(message, delivery)| {
                let targets = match &delivery.audience {
                    Audience::Connections(targets) => targets.as_slice(),
                    _ => &[],
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
                        let (posted, retries, latency_us) =
                            self.post_with_retries(&to.id, frame, admission, budget, stop_at).await;
                        Outcome::Posted { message, to, posted, retries, latency_us }
                    }
                    Step::ListFailed { messages, error } => Outcome::ListFailed { messages, error },
                }
            })
            .buffer_unordered(self.settings.post_concurrency)
            .boxed()
    }

    /// The connections of one shard of a scope, one page at a time. A channel's are everyone
    /// subscribed to it directly or through a wildcard above it, each once however many of their
    /// patterns match: the channel's own partition, then each wildcard ancestor's (a connection is in
    /// the same shard for every pattern, so shards stay disjoint).
    fn list<'a>(
        &'a self,
        scope: Scope<'_>,
        shard: Shard,
    ) -> BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>> {
        let Scope::Channel(channel) = scope else { return self.store.scan_shard(shard) };
        let mut seen = HashSet::new();
        stream::iter(channel.patterns())
            .flat_map(move |pattern| self.store.subscribers_shard(&pattern, shard))
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
        budget: &AdaptiveRate,
        stop_at: Instant,
    ) -> (Posted, usize, Option<u64>) {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(self.settings.min_backoff)
            .with_max_delay(self.settings.max_backoff)
            .with_jitter()
            .without_max_times()
            .build();
        let mut retries = 0;
        let mut latency_us = None;
        // Set at the first failure: waiting for the post-rate budget is not this connection's doing.
        let mut give_up_at: Option<Instant> = None;
        let probe = match admission {
            Admission::Skip => return (Posted::Unfinished, 0, None),
            Admission::Probe => true,
            Admission::Post => false,
        };
        loop {
            if !budget.acquire(stop_at).await {
                return (Posted::Unfinished, retries, latency_us);
            }
            let called = Instant::now();
            let posted = self.poster.post(to, frame.clone()).await;
            latency_us = Some(u64::try_from(called.elapsed().as_micros()).unwrap_or(u64::MAX));
            budget.answered(matches!(posted, Err(PostError::Throttled)));
            let err = match posted {
                Ok(()) => {
                    self.stuck.recovered(to);
                    return (Posted::Delivered, retries, latency_us);
                }
                Err(PostError::Gone) => return (Posted::Gone, retries, latency_us),
                Err(err) => err,
            };
            if matches!(err, PostError::Forbidden) {
                tracing::warn!(connection = %to, error = %err, "post forbidden; the connection goes into a retry job");
                return (Posted::Unfinished, retries, latency_us);
            }
            if !err.is_retryable() {
                tracing::warn!(connection = %to, error = %err, "post rejected; not retried");
                return (Posted::Rejected, retries, latency_us);
            }
            // A streak of 429s: a client whose buffer stays full. Waiting for it holds everyone else.
            if matches!(err, PostError::Throttled) && self.stuck.throttled(to) {
                return (Posted::Unfinished, retries, latency_us);
            }
            if probe {
                return (Posted::Unfinished, retries, latency_us);
            }
            let give_up_at =
                *give_up_at.get_or_insert_with(|| Instant::now() + self.settings.target_retry_budget);
            let delay = backoff.next().unwrap_or(self.settings.max_backoff);
            if Instant::now() + delay >= give_up_at {
                tracing::debug!(connection = %to, error = %err, retries, "still failing after its retry budget; the connection goes into a retry job");
                return (Posted::Unfinished, retries, latency_us);
            }
            if Instant::now() + delay >= stop_at {
                return (Posted::Unfinished, retries, latency_us);
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
