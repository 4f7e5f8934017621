//! Listing an audience from the store, whole or one shard of it, page by page: what the plan's
//! sample reads and what the fan-out posts to.

use std::collections::HashSet;

use futures::stream::{self, BoxStream, StreamExt};
use shared::{Channel, ConnectionRef, Shard, StoreError};

use super::invocation::Invocation;

/// An audience the store lists, whole or in shards: everyone, or a channel's subscribers; or one
/// that presence lists, whole: a channel's watchers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Scope<'a> {
    Everyone,
    Channel(&'a Channel),
    Watchers(&'a Channel),
}

impl Invocation<'_> {
    /// The connections of one shard of a scope, one page at a time. A channel's are everyone
    /// subscribed to it directly or through a wildcard above it, each once however many of their
    /// patterns match: the channel's own partition, then each wildcard ancestor's (a connection is in
    /// the same shard for every pattern, so shards stay disjoint).
    pub fn list(
        &self,
        scope: Scope<'_>,
        shard: Shard,
    ) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let store = &self.ports.stack.store;
        let channel = match scope {
            Scope::Everyone => return store.scan_shard(shard),
            Scope::Watchers(channel) => {
                return match &self.ports.stack.presence {
                    Some(presence) if shard.is_whole() => presence.watchers(channel),
                    _ => stream::iter([Ok(Vec::new())]).boxed(),
                };
            }
            Scope::Channel(channel) => channel,
        };
        let mut seen = HashSet::new();
        stream::iter(channel.patterns())
            .flat_map(move |pattern| store.subscribers_shard(&pattern, shard))
            .map(move |page| {
                page.map(|page| page.into_iter().filter(|to| seen.insert(to.id.clone())).collect())
            })
            .boxed()
    }
}
