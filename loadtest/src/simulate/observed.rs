//! The worker's surroundings under observation, for the report: the queue, counting the shard and
//! retry jobs the worker sends and the requests they take; the worker as Lambda runs it, timing each
//! invocation (the store's reads are counted by [`shared::testing::ObservedStore`]).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use local::function::{Function, FunctionError};
use shared::queue::MemoryQueue;
use shared::sync::lock;
use shared::{Audience, Job, Queue, QueueError};
use tokio::time::Instant;
use worker::Worker;

/// The queue, counting what the worker sends to it.
#[derive(Debug)]
pub struct CountingQueue {
    inner: Arc<MemoryQueue>,
    pub counts: Arc<JobCounts>,
}

/// What was sent to the queues counted together.
#[derive(Debug, Default)]
pub struct JobCounts {
    pub shard_jobs: AtomicU64,
    pub retry_jobs: AtomicU64,
    /// `SendMessage(Batch)` requests, ten jobs a request.
    pub requests: AtomicU64,
}

impl CountingQueue {
    pub fn new(inner: Arc<MemoryQueue>) -> Self {
        Self { inner, counts: Arc::default() }
    }

    /// Another queue, counted with `other`: the bulk lane's beside the main one.
    pub fn sharing(other: &Self, inner: Arc<MemoryQueue>) -> Self {
        Self { inner, counts: other.counts.clone() }
    }

    fn count(&self, jobs: &[Job]) {
        let counts = &self.counts;
        for job in jobs {
            match &job.audience {
                Audience::Shard(_) | Audience::ChannelShard { .. } => {
                    counts.shard_jobs.fetch_add(1, Ordering::Relaxed)
                }
                Audience::Connections(_) => counts.retry_jobs.fetch_add(1, Ordering::Relaxed),
                Audience::Everyone | Audience::Channel(_) | Audience::Watchers(_) => 0,
            };
        }
        counts.requests.fetch_add(jobs.len().div_ceil(10) as u64, Ordering::Relaxed);
    }
}

#[async_trait]
impl Queue for CountingQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        self.count(std::slice::from_ref(job));
        self.inner.send(job).await
    }

    async fn send_batch(&self, jobs: &[Job], delay: Duration) -> Vec<Result<(), QueueError>> {
        self.count(jobs);
        self.inner.send_batch(jobs, delay).await
    }
}

/// The worker as Lambda runs it, timing each invocation.
#[derive(Debug)]
pub struct TimedFunction {
    worker: Worker,
    pub started: AtomicU64,
    pub finished: AtomicU64,
    /// Simulated seconds of every finished invocation, and of the longest.
    pub durations: Mutex<(f64, f64)>,
    pub running: AtomicUsize,
}

impl TimedFunction {
    pub fn new(worker: Worker) -> Self {
        Self {
            worker,
            started: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            durations: Mutex::new((0.0, 0.0)),
            running: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Function for TimedFunction {
    async fn invoke(&self, payload: Vec<u8>, deadline: Instant) -> Result<Vec<u8>, FunctionError> {
        self.started.fetch_add(1, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
        // Counts the invocation down however it ends: Lambda stopping it at its timeout drops this.
        let guard = Running { function: self, began: Instant::now() };
        let response = super::cpu::Cpu::scope(self.worker.invoke(payload, deadline)).await;
        self.finished.fetch_add(1, Ordering::Relaxed);
        drop(guard);
        response
    }
}

struct Running<'a> {
    function: &'a TimedFunction,
    began: Instant,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        let took = self.began.elapsed().as_secs_f64();
        let mut durations = lock(&self.function.durations);
        durations.0 += took;
        durations.1 = durations.1.max(took);
        self.function.running.fetch_sub(1, Ordering::Relaxed);
    }
}
