//! Stage 6: one post to one connection, within the invocation's pace ([`shared::pacing::AdaptiveRate`]), retrying
//! throttling and transient failures with exponential backoff and jitter for at most the
//! connection's retry budget, and never past the time the invocation must stop. A connection that
//! has stopped reading ([`super::stuck`]) gets one probe a second at most, and its posts go into
//! retry jobs instead.

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use shared::{ConnectionId, PostError};
use tokio::time::Instant;

use super::invocation::Invocation;
use super::stuck::Admission;

/// How posting to one connection ended.
pub(crate) enum Posted {
    Delivered,
    Gone,
    /// Not delivered yet, and worth trying again later: throttled or failing until the deadline came
    /// near, or forbidden (a policy being fixed).
    Unfinished,
    Rejected,
}

impl Invocation<'_> {
    /// Posts `frame` to `to` within the post-rate budget, retrying throttling and transient failures
    /// with exponential backoff and jitter for at most the connection's own retry budget, and never
    /// past `stop_at` — or, for a stuck connection, once or not at all, as `admission` says.
    pub async fn post_with_retries(
        &self,
        to: &ConnectionId,
        frame: &Bytes,
        admission: Admission,
    ) -> (Posted, usize, Option<u64>) {
        let (budget, stop_at) = (&self.budget, self.stop_at);
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
            let posted = self.ports.poster.post(to, frame.clone()).await;
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
