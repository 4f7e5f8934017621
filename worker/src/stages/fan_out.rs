//! Stage 5: every (message, connection) post, page by page as the audiences are listed.
//!
//! Each part of the [`Plan`] is listed once for all of its messages, retry jobs name their targets,
//! and at most `post_concurrency` posts ([`super::post`]) are in flight at a time. What became of
//! each comes back as an [`Outcome`] for the tally.

use std::sync::Arc;

use futures::TryStreamExt;
use futures::stream::{self, BoxStream, StreamExt};
use shared::{Audience, ConnectionRef, Shard, StoreError};

use super::batch::Batch;
use super::invocation::Invocation;
use super::plan::{Part, Plan};
use super::post::Posted;

/// One thing to do: a post, or a listing that failed part way.
enum Step {
    /// A post of the batch's item `item`.
    Post { item: usize, to: ConnectionRef },
    /// Listing these items' audience failed part way.
    ListFailed { items: Arc<Vec<usize>>, error: StoreError },
}

/// What became of one post, or of one part's listing.
pub(crate) enum Outcome {
    Posted { item: usize, to: ConnectionRef, posted: Posted, retries: usize, latency_us: Option<u64> },
    ListFailed { items: Arc<Vec<usize>>, error: StoreError },
}

impl Invocation<'_> {
    /// Every (message, connection) post, page by page as the audiences are listed, at most
    /// `post_concurrency` at a time. Within a page, each message goes to every connection before the
    /// next message starts, which keeps per-connection order as close to the batch's as SQS allows.
    /// Each part in `plan` is listed once for all its messages, and retry jobs name their targets.
    pub fn fan_out<'s>(&'s self, batch: &'s Batch, plan: &'s Plan<'s>) -> BoxStream<'s, Outcome> {
        let mut sources: Vec<BoxStream<'s, Step>> = Vec::new();
        for (&part, items) in &plan.parts {
            let pages = match part {
                Part::Sampled(scope) => {
                    let sampled = plan.samples.get(&scope).map(|sample| sample.connections.to_vec());
                    stream::iter([Ok(sampled.unwrap_or_default())]).boxed()
                }
                Part::Unsampled(scope) => {
                    let sampled =
                        plan.samples.get(&scope).map(|sample| Arc::clone(&sample.ids)).unwrap_or_default();
                    self.list(scope, Shard::WHOLE)
                        .map_ok(move |page| page.into_iter().filter(|to| !sampled.contains(&to.id)).collect())
                        .boxed()
                }
                Part::Shard(scope, shard) => self.list(scope, shard),
            };
            sources.push(pages_to_steps(pages, items.clone()));
        }
        sources.push(
            stream::iter(batch.items.iter().enumerate().flat_map(|(item, message)| {
                let targets = match &message.audience {
                    Audience::Connections(targets) if !message.failed() => targets.as_slice(),
                    _ => &[],
                };
                targets.iter().map(move |to| Step::Post { item, to: to.clone() })
            }))
            .boxed(),
        );
        stream::iter(sources)
            .flatten()
            .map(move |step| async move {
                match step {
                    Step::Post { item, to } => {
                        let admission = self.stuck.admit(&to.id);
                        let frame = &batch.items[item].frame;
                        let (posted, retries, latency_us) =
                            self.post_with_retries(&to.id, frame, admission).await;
                        Outcome::Posted { item, to, posted, retries, latency_us }
                    }
                    Step::ListFailed { items, error } => Outcome::ListFailed { items, error },
                }
            })
            .buffer_unordered(self.settings.post_concurrency)
            .boxed()
    }
}

/// A post of each of `items` to each connection of each page; a failed page ends the listing.
fn pages_to_steps<'a>(
    pages: BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>>,
    items: Vec<usize>,
) -> BoxStream<'a, Step> {
    let items = Arc::new(items);
    pages
        .flat_map(move |page| match page {
            Ok(ids) => {
                let ids = Arc::new(ids);
                let items = Arc::clone(&items);
                stream::iter((0..items.len()).flat_map(move |m| {
                    let (ids, item) = (Arc::clone(&ids), items[m]);
                    (0..ids.len()).map(move |i| Step::Post { item, to: ids[i].clone() })
                }))
                .boxed()
            }
            Err(error) => stream::iter([Step::ListFailed { items: Arc::clone(&items), error }]).boxed(),
        })
        .boxed()
}
