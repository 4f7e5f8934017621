//! The connection store in memory: the local gateway's, and the unit tests'.
//!
//! It behaves like the DynamoDB adapter where the handlers can tell the difference: it pages its
//! scans and queries, keeps each pattern's subscribers sorted by bucket so that a shard is a range,
//! and remembers each connection's patterns so that deleting it deletes its subscriptions.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use super::port::{ConnectionStore, Held, Subscription};
use crate::channel::ChannelPattern;
use crate::domain::{ConnectionId, ConnectionRecord, ConnectionRef, Shard};
use crate::error::{StoreError, SubscribeError};

/// Connection records in a sorted map, scanned in pages like a DynamoDB table, with the
/// subscriptions beside them, each remembered by its connection as the DynamoDB adapter does.
#[derive(Debug)]
pub struct MemoryStore {
    tables: RwLock<Tables>,
    page_size: usize,
}

#[derive(Debug, Default)]
struct Tables {
    /// Each record with its patterns and its id's [`Shard::hash`], kept so that a shard's scan hashes
    /// nothing: 50 shards of 10,000 connections hashed 500,000 ids a broadcast.
    connections: BTreeMap<ConnectionId, (ConnectionRecord, BTreeSet<ChannelPattern>, u64)>,
    /// Like the `CHAN#` partitions: each pattern's subscribers with their `ConnectedAt`, sorted by
    /// [`Shard::bucket`] first as the items' sort keys are, so that a shard is a range.
    subscriptions: BTreeMap<ChannelPattern, Subscribers>,
}

/// One pattern's subscribers by bucket, then by id.
type Subscribers = BTreeMap<u32, BTreeMap<ConnectionId, i64>>;

impl Tables {
    fn remove(&mut self, id: &ConnectionId) -> Option<Vec<ChannelPattern>> {
        let (_, patterns, _) = self.connections.remove(id)?;
        for pattern in &patterns {
            self.unsubscribe(id, pattern);
        }
        Some(patterns.into_iter().collect())
    }

    fn unsubscribe(&mut self, id: &ConnectionId, pattern: &ChannelPattern) {
        let Some(subscribers) = self.subscriptions.get_mut(pattern) else { return };
        let bucket = Shard::bucket(id.as_str());
        if let Some(ids) = subscribers.get_mut(&bucket) {
            ids.remove(id);
            if ids.is_empty() {
                subscribers.remove(&bucket);
            }
        }
        if subscribers.is_empty() {
            self.subscriptions.remove(pattern);
        }
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_page_size(Self::DEFAULT_PAGE_SIZE)
    }
}

impl MemoryStore {
    /// About what one 1 MB DynamoDB scan page holds for records of this size.
    pub const DEFAULT_PAGE_SIZE: usize = 1_000;

    pub fn with_page_size(page_size: usize) -> Self {
        Self { tables: RwLock::default(), page_size: page_size.max(1) }
    }

    pub fn get(&self, id: &ConnectionId) -> Option<ConnectionRecord> {
        self.read().connections.get(id).map(|(record, _, _)| record.clone())
    }

    pub fn ids(&self) -> Vec<ConnectionId> {
        self.read().connections.keys().cloned().collect()
    }

    /// The patterns a connection is subscribed to.
    pub fn subscriptions_of(&self, id: &ConnectionId) -> Vec<ChannelPattern> {
        self.read()
            .connections
            .get(id)
            .map(|(_, patterns, _)| patterns.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Subscription items, as many as a DynamoDB table would hold.
    pub fn subscription_count(&self) -> usize {
        self.read().subscriptions.values().flat_map(BTreeMap::values).map(BTreeMap::len).sum()
    }

    pub fn len(&self) -> usize {
        self.read().connections.len()
    }

    pub fn is_empty(&self) -> bool {
        self.read().connections.is_empty()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(PoisonError::into_inner)
    }

    fn page_after(&self, shard: Shard, after: Option<&ConnectionId>) -> Vec<ConnectionRef> {
        let tables = self.read();
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        tables
            .connections
            .range((lower, Bound::Unbounded))
            .filter(|(_, (_, _, hash))| shard.holds_hash(*hash))
            .take(self.page_size)
            .map(|(id, (record, _, _))| ConnectionRef {
                id: id.clone(),
                connected_at_ms: record.connected_at_ms,
            })
            .collect()
    }

    fn subscribers_after(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
        after: Option<&ConnectionId>,
    ) -> Vec<ConnectionRef> {
        let tables = self.read();
        let Some(subscribers) = tables.subscriptions.get(pattern) else { return Vec::new() };
        let buckets = shard.buckets();
        // The page goes on from the last one's (bucket, id), like a query from `ExclusiveStartKey`.
        let from = after.map_or(buckets.start, |id| Shard::bucket(id.as_str()));
        subscribers
            .range(from..buckets.end)
            .flat_map(|(&bucket, ids)| {
                let lower = match after {
                    Some(after) if bucket == from => Bound::Excluded(after),
                    _ => Bound::Unbounded,
                };
                ids.range((lower, Bound::Unbounded))
            })
            .take(self.page_size)
            .map(|(id, connected_at_ms)| ConnectionRef { id: id.clone(), connected_at_ms: *connected_at_ms })
            .collect()
    }

    /// Pages of `page`'s results, each starting after the last id of the one before, like DynamoDB's
    /// `LastEvaluatedKey`.
    fn paged<'a>(
        &'a self,
        page: impl Fn(Option<&ConnectionId>) -> Vec<ConnectionRef> + Send + Sync + 'a,
    ) -> BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>> {
        let page = std::sync::Arc::new(page);
        stream::unfold(Some(None), move |cursor: Option<Option<ConnectionId>>| {
            let page = std::sync::Arc::clone(&page);
            async move {
                let after = cursor?;
                let found = page(after.as_ref());
                if found.is_empty() {
                    return None;
                }
                let next = (found.len() == self.page_size).then(|| found.last().map(|last| last.id.clone()));
                Some((Ok(found), next))
            }
        })
        .boxed()
    }
}

#[async_trait]
impl ConnectionStore for MemoryStore {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let mut tables = self.write();
        let patterns =
            tables.connections.remove(&record.id).map(|(_, patterns, _)| patterns).unwrap_or_default();
        let hash = Shard::hash(record.id.as_str());
        tables.connections.insert(record.id.clone(), (record.clone(), patterns, hash));
        Ok(())
    }

    async fn delete(&self, id: &ConnectionId) -> Result<Vec<ChannelPattern>, StoreError> {
        Ok(self.write().remove(id).unwrap_or_default())
    }

    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<Vec<Held>, StoreError> {
        let mut tables = self.write();
        Ok(ids.iter().filter_map(|id| Some((id.clone(), tables.remove(id)?))).collect())
    }

    fn scan_shard(&self, shard: Shard) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.paged(move |after| self.page_after(shard, after))
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<(), SubscribeError> {
        let mut tables = self.write();
        let id = &subscription.connection.id;
        let Some((_, patterns, _)) = tables.connections.get_mut(id) else {
            return Err(SubscribeError::NotConnected);
        };
        if !patterns.contains(&subscription.pattern) && patterns.len() >= subscription.limit {
            return Err(SubscribeError::TooMany { limit: subscription.limit });
        }
        patterns.insert(subscription.pattern.clone());
        let bucket = Shard::bucket(id.as_str());
        tables
            .subscriptions
            .entry(subscription.pattern.clone())
            .or_default()
            .entry(bucket)
            .or_default()
            .insert(id.clone(), subscription.connection.connected_at_ms);
        Ok(())
    }

    async fn unsubscribe(&self, id: &ConnectionId, pattern: &ChannelPattern) -> Result<(), StoreError> {
        let mut tables = self.write();
        if let Some((_, patterns, _)) = tables.connections.get_mut(id) {
            patterns.remove(pattern);
        }
        tables.unsubscribe(id, pattern);
        Ok(())
    }

    fn subscribers_shard(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
    ) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let pattern = pattern.clone();
        self.paged(move |after| self.subscribers_after(&pattern, shard, after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    fn id(n: usize) -> ConnectionId {
        ConnectionId::parse(&format!("conn{n:05}")).expect("id")
    }

    fn record(n: usize) -> ConnectionRecord {
        ConnectionRecord { id: id(n), connected_at_ms: 0, source_ip: None, expires_at_s: 0 }
    }

    #[tokio::test]
    async fn a_scan_returns_every_record_once_across_pages() {
        let store = MemoryStore::with_page_size(3);
        for n in 0..10 {
            store.put(&record(n)).await.expect("put");
        }
        let pages: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [3, 3, 3, 1]);
        let all: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
        assert_eq!(all, (0..10).map(id).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn the_shards_of_a_split_list_every_record_once_between_them() {
        let store = MemoryStore::with_page_size(4);
        for n in 0..200 {
            store.put(&record(n)).await.expect("put");
        }
        let mut all = Vec::new();
        for shard in Shard::all(7) {
            let pages: Vec<Vec<ConnectionRef>> = store.scan_shard(shard).try_collect().await.expect("scan");
            let listed: Vec<ConnectionId> = pages.into_iter().flatten().map(|c| c.id).collect();
            assert!(!listed.is_empty() && listed.len() < 100, "shard {shard}: {}", listed.len());
            all.extend(listed);
        }
        all.sort();
        assert_eq!(all, (0..200).map(id).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn deleting_many_removes_only_those_records() {
        let store = MemoryStore::default();
        for n in 0..4 {
            store.put(&record(n)).await.expect("put");
        }
        store.delete_many(&[id(1), id(3), id(9)]).await.expect("delete");
        assert_eq!(store.ids(), [id(0), id(2)]);
    }

    fn subscription(n: usize, pattern: &str) -> Subscription {
        Subscription {
            connection: ConnectionRef { id: id(n), connected_at_ms: n as i64 },
            pattern: ChannelPattern::parse(pattern).expect("pattern"),
            expires_at_s: 0,
            limit: 3,
        }
    }

    async fn subscribers(store: &MemoryStore, pattern: &str) -> Vec<ConnectionId> {
        let pattern = ChannelPattern::parse(pattern).expect("pattern");
        let pages: Vec<Vec<ConnectionRef>> = store.subscribers(&pattern).try_collect().await.expect("query");
        pages.into_iter().flatten().map(|c| c.id).collect()
    }

    #[tokio::test]
    async fn subscriptions_are_listed_by_pattern_in_pages_and_skipped_by_a_scan() {
        let store = MemoryStore::with_page_size(2);
        for n in 0..5 {
            store.put(&record(n)).await.expect("put");
            store.subscribe(&subscription(n, "chat/*")).await.expect("subscribe");
        }
        store.subscribe(&subscription(1, "news")).await.expect("subscribe");
        let pattern = ChannelPattern::parse("chat/*").expect("pattern");
        let pages: Vec<Vec<ConnectionRef>> = store.subscribers(&pattern).try_collect().await.expect("query");
        assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(subscribers(&store, "news").await, [id(1)]);
        assert!(subscribers(&store, "nobody").await.is_empty());
        let scanned: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");
        assert_eq!(scanned.concat().len(), 5, "subscriptions are not connections");
    }

    #[tokio::test]
    async fn a_patterns_shards_list_each_subscriber_once_and_in_the_same_shard_for_every_pattern() {
        let store = MemoryStore::with_page_size(4);
        for n in 0..200 {
            store.put(&record(n)).await.expect("put");
            store.subscribe(&subscription(n, "chat/*")).await.expect("subscribe");
            store.subscribe(&subscription(n, "chat/eu")).await.expect("subscribe");
        }
        let mut all = Vec::new();
        for shard in Shard::all(7) {
            let list = |pattern: &str| {
                let pattern = ChannelPattern::parse(pattern).expect("pattern");
                let store = &store;
                async move {
                    let pages: Vec<Vec<ConnectionRef>> =
                        store.subscribers_shard(&pattern, shard).try_collect().await.expect("query");
                    pages.into_iter().flatten().map(|c| c.id).collect::<Vec<_>>()
                }
            };
            let (wildcard, exact) = (list("chat/*").await, list("chat/eu").await);
            assert!(!exact.is_empty() && exact.len() < 100, "shard {shard}: {}", exact.len());
            assert_eq!(wildcard, exact, "shard {shard}");
            all.extend(exact);
        }
        all.sort();
        assert_eq!(all, (0..200).map(id).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_connection_holds_at_most_its_limit_of_patterns_counting_each_once() {
        let store = MemoryStore::default();
        store.put(&record(0)).await.expect("put");
        for pattern in ["a", "b", "c", "c"] {
            store.subscribe(&subscription(0, pattern)).await.expect(pattern);
        }
        assert!(matches!(
            store.subscribe(&subscription(0, "d")).await,
            Err(SubscribeError::TooMany { limit: 3 })
        ));
        let unknown = ChannelPattern::parse("zzz").expect("pattern");
        store.unsubscribe(&id(0), &unknown).await.expect("not subscribed is fine");
        store.unsubscribe(&id(0), &ChannelPattern::parse("a").expect("pattern")).await.expect("unsubscribe");
        store.subscribe(&subscription(0, "d")).await.expect("room again");
        assert!(subscribers(&store, "a").await.is_empty());
        assert!(matches!(store.subscribe(&subscription(9, "a")).await, Err(SubscribeError::NotConnected)));
    }

    #[tokio::test]
    async fn deleting_a_connection_deletes_its_subscriptions() {
        let store = MemoryStore::default();
        for n in 0..3 {
            store.put(&record(n)).await.expect("put");
            store.subscribe(&subscription(n, "chat/*")).await.expect("subscribe");
            store.subscribe(&subscription(n, "news")).await.expect("subscribe");
        }
        store.delete(&id(0)).await.expect("delete");
        store.delete_many(&[id(1)]).await.expect("delete");
        assert_eq!(subscribers(&store, "chat/*").await, [id(2)]);
        assert_eq!(store.subscription_count(), 2);
        store.put(&record(2)).await.expect("a put again keeps the subscriptions");
        assert_eq!(store.subscriptions_of(&id(2)).len(), 2);
    }
}
