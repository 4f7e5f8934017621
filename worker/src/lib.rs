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
//!
//! A batch goes through [`stages`] in order, one file each, each a method of the invocation: parsed
//! into a batch that keeps every message's fate, numbered (a backend's publish, in its channel's
//! history) and rendered, handed to its namespace's event hook, planned, fanned out post by post, tallied, metered (the fan-out ceiling's count), requeued, pruned;
//! [`Worker::process`] reads in that order and says what it did in a [`BatchReport`] ([`report`];
//! [`metrics`] writes it as an EMF line). [`deployment`] reads what the template tells the function,
//! [`settings`] holds the pacing and its defaults, and [`Ports`] the ports.

pub mod deployment;
pub mod latency;
pub mod metrics;
pub mod ports;
pub mod report;
pub mod settings;
mod stages;

use std::sync::Arc;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use tokio::time::Instant;

pub use crate::deployment::Deployment;
pub use crate::latency::LatencySample;
pub use crate::ports::Ports;
pub use crate::report::BatchReport;
pub use crate::settings::{Fleet, Lane, Lanes, WorkerSettings, min_shards};
use crate::stages::invocation::Invocation;
use crate::stages::stuck::StuckConnections;
use crate::stages::tally::Tally;

/// The handler: its ports, its settings, and the connections it has found stuck, which outlive
/// each invocation.
#[derive(Clone)]
pub struct Worker {
    ports: Ports,
    settings: WorkerSettings,
    stuck: Arc<StuckConnections>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Worker {
    pub fn new(ports: Ports, settings: WorkerSettings) -> Self {
        let settings = WorkerSettings { post_concurrency: settings.post_concurrency.max(1), ..settings };
        let stuck = Arc::new(StuckConnections::new(settings.stuck_for, settings.probe_every));
        Self { ports, settings, stuck }
    }

    /// Handles one SQS batch; the response lists the messages SQS should deliver again. `deadline` is
    /// when Lambda ends the invocation.
    pub async fn handle(&self, event: SqsEvent, deadline: Instant) -> SqsBatchResponse {
        self.process(event, deadline).await.response()
    }

    /// Does the work of [`Worker::handle`] and says what happened: the batch through its stages, in
    /// order, its fate kept by the [`Batch`](stages::batch) they all mark.
    pub async fn process(&self, event: SqsEvent, deadline: Instant) -> BatchReport {
        let started = Instant::now();
        let mut report = BatchReport::new(event.records.len());
        let invocation = Invocation::new(&self.ports, &self.settings, &self.stuck, started, deadline);
        let mut batch = invocation.parse(event);
        if !batch.is_empty() {
            invocation.number(&mut batch).await;
            invocation.notify(&batch).await;
            let plan = invocation.plan(&batch, &mut report).await;
            let outcomes = invocation.fan_out(&batch, &plan);
            let Tally { unfinished, gone, delivered } = invocation.tally(outcomes, &batch, &mut report).await;
            invocation.meter(&batch, &delivered).await;
            invocation.requeue(&batch, unfinished, &mut report).await;
            invocation.prune(gone, &mut report).await;
        }
        report.failed = batch.failures();
        if !batch.is_empty() {
            report.log(started);
        }
        report
    }
}
