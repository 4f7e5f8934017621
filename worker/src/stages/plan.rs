//! Stage 4: who each message of the batch goes to, decided before the first post.
//!
//! Each broadcast or publish's audience (a [`Scope`]) is estimated from a sample, one of
//! [`SAMPLE_SHARDS`] shards; a batch's samples are read at once. A small audience posts what the
//! sample read and lists the rest without it (two reads, not a hundred); one larger than a shard is
//! split into shard jobs on the bulk lane's queue, all of them when this is the interactive lane of
//! a stack of two (its invocations stay free for small audiences), or all but the first, which this
//! invocation posts, in a stack of one queue. Shard and retry jobs name their part already.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::TryStreamExt;
use shared::{Audience, ConnectionId, ConnectionRef, Job, Shard, StoreError};

use super::batch::Batch;
use super::invocation::Invocation;
use super::listing::Scope;
use crate::report::BatchReport;
use crate::settings::SHARD_ROUNDS;

/// How finely an audience is divided to estimate its size: the first of this
/// many shards is read, and the audience is about this many times larger. A hundredth of the table
/// costs little to read (10,000 items of a million, one or two pages), and is enough to tell 2,000
/// connections from 20,000.
pub const SAMPLE_SHARDS: u32 = 100;

/// Where a part of a message's audience comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Part<'a> {
    /// The connections the sample of the scope read.
    Sampled(Scope<'a>),
    /// The rest of the scope: all of it listed, without the sampled connections.
    Unsampled(Scope<'a>),
    /// One shard of the scope, listed whole.
    Shard(Scope<'a>, Shard),
}

/// What a sample read: the connections, and their ids to leave out of the rest.
#[derive(Default)]
pub(crate) struct Sample {
    pub connections: Arc<Vec<ConnectionRef>>,
    pub ids: Arc<HashSet<ConnectionId>>,
}

/// Who each message of a batch goes to, decided before the first post.
#[derive(Default)]
pub(crate) struct Plan<'a> {
    /// The items of each part (their indices in the batch); a scope's parts together hold each of
    /// its connections once.
    pub parts: BTreeMap<Part<'a>, Vec<usize>>,
    pub samples: HashMap<Scope<'a>, Sample>,
}

impl Invocation<'_> {
    /// Decides where each message of the batch goes. A broadcast or a publish to more connections
    /// than one shard holds is split into shard jobs for other invocations (see the module's note
    /// for which shards this one keeps). The audience is estimated from one of [`SAMPLE_SHARDS`] shards;
    /// when it is small, the connections read are posted at once and the rest is listed without
    /// them, so a small audience costs two reads, not a hundred.
    /// A message whose audience cannot be read is left to SQS's redelivery, before any post.
    pub async fn plan<'d>(&self, batch: &'d Batch, report: &mut BatchReport) -> Plan<'d> {
        let mut plan = Plan::default();
        let mut whole: BTreeMap<Scope<'d>, Vec<usize>> = BTreeMap::new();
        for (item, message) in batch.items.iter().enumerate().filter(|(_, message)| !message.failed()) {
            let part = match &message.audience {
                Audience::Shard(shard) => Part::Shard(Scope::Everyone, *shard),
                Audience::ChannelShard { channel, shard } => Part::Shard(Scope::Channel(channel), *shard),
                Audience::Everyone => {
                    whole.entry(Scope::Everyone).or_default().push(item);
                    continue;
                }
                Audience::Channel(channel) => {
                    whole.entry(Scope::Channel(channel)).or_default().push(item);
                    continue;
                }
                Audience::Watchers(channel) => Part::Shard(Scope::Watchers(channel), Shard::WHOLE),
                Audience::Connections(_) => continue,
            };
            plan.parts.entry(part).or_default().push(item);
        }
        if self.settings.shard_size == 0 {
            for (scope, items) in whole {
                plan.parts.entry(Part::Shard(scope, Shard::WHOLE)).or_default().extend(items);
            }
            return plan;
        }
        // Every scope's sample at once: a batch of publishes to ten channels waits for one read
        // before its first post, not ten in a row.
        let sample = Shard::new(0, SAMPLE_SHARDS).unwrap_or(Shard::WHOLE);
        let samples =
            futures::future::join_all(whole.keys().map(|&scope| self.list(scope, sample).try_concat())).await;
        for ((scope, items), sampled) in whole.into_iter().zip(samples) {
            self.plan_scope(scope, items, sampled, batch, &mut plan, report).await;
        }
        plan
    }

    /// Plans the `items` for the whole of one scope from its sample: splits it when it is large.
    async fn plan_scope<'d>(
        &self,
        scope: Scope<'d>,
        items: Vec<usize>,
        sampled: Result<Vec<ConnectionRef>, StoreError>,
        batch: &Batch,
        plan: &mut Plan<'d>,
        report: &mut BatchReport,
    ) {
        let sampled = match sampled {
            Ok(sampled) => sampled,
            Err(error) => {
                tracing::error!(error = %error, messages = items.len(), "reading the audience failed; the messages will be redelivered");
                for &item in &items {
                    batch.items[item].redeliver();
                }
                return;
            }
        };
        let estimate = sampled.len().saturating_mul(SAMPLE_SHARDS as usize);
        let shards = u32::try_from(estimate.div_ceil(self.settings.shard_size)).unwrap_or(u32::MAX);
        if shards <= 1 {
            let ids = Arc::new(sampled.iter().map(|to| to.id.clone()).collect());
            plan.samples.insert(scope, Sample { connections: Arc::new(sampled), ids });
            plan.parts.insert(Part::Sampled(scope), items.clone());
            plan.parts.insert(Part::Unsampled(scope), items);
            return;
        }
        // Enough shards for every invocation to take a batch, three times over: with fewer, one
        // invocation would get them all (measured: 10,000 connections in 5 shards took 5.1 s,
        // `simulate --connections 10000 --min-shards 1`), however many the mapping may run.
        // And a whole number of rounds: a last round of one batch would leave one bulk invocation
        // posting for seconds at its share of the rate while the others idle (1,000,000 in 508
        // shards took 109.5 s, in 550 of them 105.8 s, both with a reserve of 300 calls/s,
        // `simulate --connections 1000000 --interactive-post-rate 300`). `Shard::all` keeps to
        // `MAX_SHARDS` whatever this asks.
        let round = (self.settings.min_shards / SHARD_ROUNDS).max(1);
        let shards = shards.max(self.settings.min_shards).div_ceil(round).saturating_mul(round);
        let split: Vec<Shard> = Shard::all(shards).collect();
        // On the interactive lane every shard goes to the bulk lane; otherwise this invocation
        // posts the first itself.
        let (kept, queued) = if self.hands_off_shards() { (&[][..], &split[..]) } else { split.split_at(1) };
        for item in items {
            let envelope = &batch.items[item].envelope;
            let jobs: Vec<Job> = queued
                .iter()
                .filter_map(|&shard| match scope {
                    Scope::Everyone => Some(Job::shard(envelope.clone(), shard)),
                    Scope::Channel(channel) => {
                        Some(Job::channel_shard(envelope.clone(), channel.clone(), shard))
                    }
                    // Never sampled, so never split.
                    Scope::Watchers(_) => None,
                })
                .collect();
            let results = self.shard_queue().send_batch(&jobs, Duration::ZERO).await;
            for &shard in kept {
                plan.parts.entry(Part::Shard(scope, shard)).or_default().push(item);
            }
            for (&shard, result) in queued.iter().zip(&results) {
                match result {
                    Ok(()) => report.shards_queued += 1,
                    // Posted here instead: slower, but every shard is still posted exactly once.
                    Err(err) => {
                        tracing::warn!(shard = %shard, error = %err, "queueing a shard failed; this invocation posts it");
                        plan.parts.entry(Part::Shard(scope, shard)).or_default().push(item);
                    }
                }
            }
        }
        tracing::info!(?scope, estimate, shards, "audience split into shards");
    }
}
