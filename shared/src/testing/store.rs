//! An in-memory connection store that says what was asked of it: how many scans and queries, and
//! the size of every page they read. It fails them or answers late when told to. The worker's tests
//! count reads with it (one scan per batch, not per message); `simulate` prices them in read units.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::channel::ChannelPattern;
use crate::domain::{ConnectionId, ConnectionRecord, ConnectionRef, Shard};
use crate::error::{StoreError, SubscribeError};
use crate::store::{ConnectionStore, Held, MemoryStore, Subscription};
use crate::sync::lock;

/// A [`MemoryStore`] under observation.
#[derive(Debug, Default)]
pub struct ObservedStore {
    inner: MemoryStore,
    scans: AtomicUsize,
    queries: AtomicUsize,
    /// The length of every page a scan or a query returned, in the order they were read.
    pages: Mutex<Vec<usize>>,
    fail_scans: bool,
    fail_queries: bool,
    query_delay: Duration,
}

impl ObservedStore {
    pub fn new(inner: MemoryStore) -> Self {
        Self { inner, ..Self::default() }
    }

    /// Every scan fails at once, as a throttled table answers.
    pub fn failing_scans(self) -> Self {
        Self { fail_scans: true, ..self }
    }

    /// Every query fails at once.
    pub fn failing_queries(self) -> Self {
        Self { fail_queries: true, ..self }
    }

    /// Each query begins answering only after `delay`, as a round trip to DynamoDB does.
    pub fn with_query_delay(self, delay: Duration) -> Self {
        Self { query_delay: delay, ..self }
    }

    /// The store observed, to set it up without counting.
    pub fn inner(&self) -> &MemoryStore {
        &self.inner
    }

    /// Scans begun (whole or a shard), failed ones included.
    pub fn scans(&self) -> usize {
        self.scans.load(Ordering::SeqCst)
    }

    /// Queries of a pattern's subscribers begun, failed ones included.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    /// The length of every page read so far, scans and queries alike.
    pub fn pages(&self) -> Vec<usize> {
        lock(&self.pages).clone()
    }

    fn observed<'a>(
        &'a self,
        pages: BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>>,
    ) -> BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>> {
        pages
            .inspect(move |page| {
                if let Ok(page) = page {
                    lock(&self.pages).push(page.len());
                }
            })
            .boxed()
    }
}

fn failed<'a>() -> BoxStream<'a, Result<Vec<ConnectionRef>, StoreError>> {
    stream::iter([Err(StoreError::Unavailable("throttled".into()))]).boxed()
}

#[async_trait]
impl ConnectionStore for ObservedStore {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        self.inner.put(record).await
    }

    async fn delete(&self, id: &ConnectionId) -> Result<Vec<ChannelPattern>, StoreError> {
        self.inner.delete(id).await
    }

    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<Vec<Held>, StoreError> {
        self.inner.delete_many(ids).await
    }

    fn scan_shard(&self, shard: Shard) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.scans.fetch_add(1, Ordering::SeqCst);
        if self.fail_scans {
            return failed();
        }
        self.observed(self.inner.scan_shard(shard))
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<(), SubscribeError> {
        self.inner.subscribe(subscription).await
    }

    async fn unsubscribe(&self, id: &ConnectionId, pattern: &ChannelPattern) -> Result<(), StoreError> {
        self.inner.unsubscribe(id, pattern).await
    }

    fn subscribers_shard(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
    ) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.queries.fetch_add(1, Ordering::SeqCst);
        if self.fail_queries {
            return failed();
        }
        let pages = self.inner.subscribers_shard(pattern, shard);
        let delay = self.query_delay;
        let pages = stream::once(async move {
            tokio::time::sleep(delay).await;
            pages
        })
        .flatten()
        .boxed();
        self.observed(pages)
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;

    #[tokio::test]
    async fn it_counts_scans_queries_and_the_pages_they_read_and_fails_them_when_told() {
        let store = ObservedStore::new(MemoryStore::with_page_size(2));
        for n in 0..5 {
            let id = ConnectionId::parse(&format!("conn{n}")).expect("id");
            let record = ConnectionRecord { id, connected_at_ms: 0, source_ip: None, expires_at_s: 0 };
            store.put(&record).await.expect("put");
        }
        let listed: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");
        assert_eq!(listed.concat().len(), 5);
        let pattern = ChannelPattern::parse("chat/*").expect("pattern");
        let none: Vec<Vec<ConnectionRef>> = store.subscribers(&pattern).try_collect().await.expect("query");
        assert!(none.is_empty());
        assert_eq!((store.scans(), store.queries(), store.pages()), (1, 1, vec![2, 2, 1]));

        let failing = ObservedStore::new(MemoryStore::default()).failing_scans().failing_queries();
        assert!(failing.scan().try_collect::<Vec<_>>().await.is_err());
        assert!(failing.subscribers(&pattern).try_collect::<Vec<_>>().await.is_err());
        assert_eq!((failing.scans(), failing.queries()), (1, 1));
    }
}
