//! In-memory adapters for the ports, used by unit tests and by the local gateway.
//!
//! They behave like the AWS services where the handlers can tell the difference: the store pages its
//! scans, the queue has SQS's visibility timeout, receive counts and dead-letter queue, and the poster
//! answers like `@connections` for ids it has been told are gone.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::channel::ChannelPattern;
use crate::clock::epoch_ms;
use crate::domain::{ConnectionId, ConnectionRecord, ConnectionRef, Job, Shard};
use crate::error::{PostError, QueueError, StoreError, SubscribeError};
use crate::ports::{ConnectionStore, Poster, Queue, QueueSource, ReceivedMessage, Subscription};

/// A poisoned lock only means another test thread panicked; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    fn remove(&mut self, id: &ConnectionId) {
        let Some((_, patterns, _)) = self.connections.remove(id) else { return };
        for pattern in patterns {
            self.unsubscribe(id, &pattern);
        }
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

    async fn delete(&self, id: &ConnectionId) -> Result<(), StoreError> {
        self.write().remove(id);
        Ok(())
    }

    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<(), StoreError> {
        let mut tables = self.write();
        for id in ids {
            tables.remove(id);
        }
        Ok(())
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

/// SQS semantics the worker and the event source mapping rely on.
#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    /// How long a received message stays hidden before it is delivered again.
    pub visibility_timeout: Duration,
    /// Receives after which a message moves to the dead-letter list (the queue's `RedrivePolicy`).
    pub max_receive_count: Option<u32>,
}

impl Default for QueueSettings {
    fn default() -> Self {
        Self { visibility_timeout: Duration::from_secs(30), max_receive_count: Some(5) }
    }
}

#[derive(Debug)]
struct StoredMessage {
    id: String,
    body: String,
    sent_at_ms: i64,
    receive_count: u32,
    first_received_at_ms: Option<i64>,
}

#[derive(Debug, Default)]
struct QueueState {
    visible: VecDeque<StoredMessage>,
    /// Sent with a delay: visible from the instant beside each.
    delayed: Vec<(Instant, StoredMessage)>,
    in_flight: HashMap<String, (Instant, StoredMessage)>,
    dead: Vec<StoredMessage>,
}

/// Counts of messages by state, like SQS's `ApproximateNumberOfMessages*` attributes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub visible: usize,
    pub in_flight: usize,
    pub delayed: usize,
    pub dead: usize,
}

/// An SQS standard queue in memory, with its dead-letter queue.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    state: Mutex<QueueState>,
    settings: QueueSettings,
    arrived: Notify,
}

impl MemoryQueue {
    pub fn new(settings: QueueSettings) -> Self {
        Self { state: Mutex::default(), settings, arrived: Notify::new() }
    }

    pub fn settings(&self) -> QueueSettings {
        self.settings
    }

    /// `SendMessage`: returns the new message's id.
    pub fn push(&self, body: String) -> String {
        self.push_delayed(body, Duration::ZERO)
    }

    /// `SendMessage` with `DelaySeconds`: the message is visible only after `delay`.
    pub fn push_delayed(&self, body: String, delay: Duration) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let message = StoredMessage {
            id: id.clone(),
            body,
            sent_at_ms: epoch_ms(),
            receive_count: 0,
            first_received_at_ms: None,
        };
        let mut state = lock(&self.state);
        if delay.is_zero() {
            state.visible.push_back(message);
        } else {
            state.delayed.push((Instant::now() + delay, message));
        }
        drop(state);
        self.arrived.notify_one();
        id
    }

    /// `ReceiveMessage`: up to `max` visible messages, hidden for the visibility timeout. A message
    /// received more than `max_receive_count` times goes to the dead-letter list instead.
    pub fn receive_message(&self, max: usize) -> Vec<ReceivedMessage> {
        let now = Instant::now();
        let mut state = lock(&self.state);
        Self::return_expired(&mut state, now);
        let mut received = Vec::new();
        while received.len() < max {
            let Some(mut message) = state.visible.pop_front() else { break };
            message.receive_count += 1;
            if self.settings.max_receive_count.is_some_and(|max| message.receive_count > max) {
                tracing::warn!(message_id = %message.id, receives = message.receive_count - 1, "message moved to the dead-letter queue");
                state.dead.push(message);
                continue;
            }
            let first_received_at_ms = *message.first_received_at_ms.get_or_insert_with(epoch_ms);
            let receipt_handle = format!("{}#{}", message.id, uuid::Uuid::new_v4().simple());
            received.push(ReceivedMessage {
                message_id: message.id.clone(),
                receipt_handle: receipt_handle.clone(),
                body: message.body.clone(),
                receive_count: message.receive_count,
                sent_at_ms: message.sent_at_ms,
                first_received_at_ms,
            });
            state.in_flight.insert(receipt_handle, (now + self.settings.visibility_timeout, message));
        }
        received
    }

    /// `DeleteMessage`. A stale receipt handle (the message timed out and was received again) deletes
    /// nothing, so a slow consumer cannot delete a message someone else is now processing.
    pub fn delete_message(&self, receipt_handle: &str) -> bool {
        lock(&self.state).in_flight.remove(receipt_handle).is_some()
    }

    /// When the earliest in-flight or delayed message becomes visible, if any is waiting.
    pub fn next_visible_at(&self) -> Option<Instant> {
        let state = lock(&self.state);
        state.in_flight.values().map(|(at, _)| *at).chain(state.delayed.iter().map(|(at, _)| *at)).min()
    }

    /// Resolves when a message has been sent since the last call.
    pub async fn arrived(&self) {
        self.arrived.notified().await;
    }

    pub fn stats(&self) -> QueueStats {
        let mut state = lock(&self.state);
        Self::return_expired(&mut state, Instant::now());
        QueueStats {
            visible: state.visible.len(),
            in_flight: state.in_flight.len(),
            delayed: state.delayed.len(),
            dead: state.dead.len(),
        }
    }

    /// The bodies in the dead-letter list.
    pub fn dead_letters(&self) -> Vec<String> {
        lock(&self.state).dead.iter().map(|m| m.body.clone()).collect()
    }

    /// The bodies of the visible messages, without receiving them.
    pub fn peek(&self) -> Vec<String> {
        lock(&self.state).visible.iter().map(|m| m.body.clone()).collect()
    }

    /// The bodies of the delayed messages, with how long each has still to wait.
    pub fn peek_delayed(&self) -> Vec<(String, Duration)> {
        let now = Instant::now();
        lock(&self.state)
            .delayed
            .iter()
            .map(|(at, m)| (m.body.clone(), at.saturating_duration_since(now)))
            .collect()
    }

    fn return_expired(state: &mut QueueState, now: Instant) {
        let expired: Vec<String> =
            state.in_flight.iter().filter(|(_, (at, _))| *at <= now).map(|(k, _)| k.clone()).collect();
        for receipt in expired {
            if let Some((_, message)) = state.in_flight.remove(&receipt) {
                state.visible.push_back(message);
            }
        }
        let (due, waiting): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.delayed).into_iter().partition(|(at, _)| *at <= now);
        state.delayed = waiting;
        state.visible.extend(due.into_iter().map(|(_, message)| message));
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, job: &Job) -> Result<(), QueueError> {
        self.push(job.to_body());
        Ok(())
    }

    async fn send_batch(&self, jobs: &[Job], delay: Duration) -> Vec<Result<(), QueueError>> {
        jobs.iter()
            .map(|job| {
                self.push_delayed(job.to_body(), delay);
                Ok(())
            })
            .collect()
    }
}

#[async_trait]
impl QueueSource for MemoryQueue {
    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<ReceivedMessage>, QueueError> {
        let deadline = Instant::now() + wait;
        loop {
            let batch = self.receive_message(max);
            if !batch.is_empty() || Instant::now() >= deadline {
                return Ok(batch);
            }
            // Wake for a new message, for an in-flight one becoming visible, or at the deadline.
            let wake = self.next_visible_at().map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                () = self.arrived() => {}
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn delete(&self, receipt_handles: &[String]) -> Result<(), QueueError> {
        for receipt in receipt_handles {
            self.delete_message(receipt);
        }
        Ok(())
    }
}

/// A scripted `@connections` failure for [`MemoryPoster`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scripted {
    Gone,
    Throttled,
    Forbidden,
    PayloadTooLarge,
    Transient,
}

impl Scripted {
    fn to_error(self) -> PostError {
        match self {
            Self::Gone => PostError::Gone,
            Self::Throttled => PostError::Throttled,
            Self::Forbidden => PostError::Forbidden,
            Self::PayloadTooLarge => PostError::PayloadTooLarge,
            Self::Transient => PostError::Transient("scripted transient failure".into()),
        }
    }
}

/// Records every post; answers with a scripted failure for chosen connection ids.
#[derive(Debug, Default)]
pub struct MemoryPoster {
    delivered: Mutex<Vec<(ConnectionId, Bytes)>>,
    scripted: Mutex<HashMap<ConnectionId, Scripted>>,
    /// Outcomes that last a number of calls, then give way to delivery.
    transient: Mutex<HashMap<ConnectionId, (Scripted, u32)>>,
    calls: AtomicUsize,
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

impl MemoryPoster {
    /// A poster whose every post takes `delay`, so that concurrency can be observed.
    pub fn with_delay(delay: Duration) -> Self {
        Self { delay, ..Self::default() }
    }

    pub fn script(&self, id: &ConnectionId, outcome: Scripted) {
        lock(&self.scripted).insert(id.clone(), outcome);
    }

    /// Delivers to `id` again from now on.
    pub fn unscript(&self, id: &ConnectionId) {
        lock(&self.scripted).remove(id);
    }

    /// Answers the next `times` posts to `id` with `outcome`, then delivers.
    pub fn script_times(&self, id: &ConnectionId, outcome: Scripted, times: u32) {
        lock(&self.transient).insert(id.clone(), (outcome, times));
    }

    /// Every post made, failed ones included.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn delivered(&self) -> Vec<(ConnectionId, Bytes)> {
        lock(&self.delivered).clone()
    }

    /// The distinct connections that received at least one frame.
    pub fn recipients(&self) -> HashSet<ConnectionId> {
        lock(&self.delivered).iter().map(|(id, _)| id.clone()).collect()
    }

    /// The most posts that were ever in progress at once.
    pub fn max_in_flight(&self) -> usize {
        self.max_in_flight.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl Poster for MemoryPoster {
    async fn post(&self, to: &ConnectionId, frame: Bytes) -> Result<(), PostError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(outcome) = lock(&self.scripted).get(to) {
            return Err(outcome.to_error());
        }
        if let Some((outcome, left)) = lock(&self.transient).get_mut(to)
            && *left > 0
        {
            *left -= 1;
            return Err(outcome.to_error());
        }
        lock(&self.delivered).push((to.clone(), frame));
        Ok(())
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

    #[tokio::test(start_paused = true)]
    async fn an_unacknowledged_message_comes_back_after_the_visibility_timeout() {
        let queue = MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_secs(30),
            max_receive_count: None,
        });
        queue.push("m".into());
        let first = queue.receive_message(10);
        assert_eq!(first.len(), 1);
        assert!(queue.receive_message(10).is_empty(), "hidden while in flight");
        tokio::time::advance(Duration::from_secs(31)).await;
        let again = queue.receive_message(10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].receive_count, 2);
        assert_eq!(again[0].message_id, first[0].message_id);
        assert!(!queue.delete_message(&first[0].receipt_handle), "a stale receipt deletes nothing");
        assert!(queue.delete_message(&again[0].receipt_handle));
        assert_eq!(queue.stats(), QueueStats::default());
    }

    #[tokio::test(start_paused = true)]
    async fn a_delayed_message_is_received_only_once_its_delay_has_passed() {
        let queue = MemoryQueue::default();
        let data = serde_json::value::RawValue::from_string("1".into()).expect("raw");
        let jobs = [Job::broadcast(crate::Envelope::broadcast(id(1), 42, data).expect("fits"))];
        let results = Queue::send_batch(&queue, &jobs, Duration::from_secs(2)).await;
        assert!(results.iter().all(Result::is_ok));
        assert_eq!(queue.stats().delayed, 1);
        assert!(queue.receive(10, Duration::from_millis(500)).await.expect("receive").is_empty());
        let received = queue.receive(10, Duration::from_secs(5)).await.expect("receive");
        assert_eq!(received.len(), 1, "visible after two seconds, within the long poll");
        assert_eq!(received[0].receive_count, 1);
        assert_eq!(queue.stats().delayed, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_received_too_often_moves_to_the_dead_letter_list() {
        let queue = MemoryQueue::new(QueueSettings {
            visibility_timeout: Duration::from_secs(1),
            max_receive_count: Some(2),
        });
        queue.push("poison".into());
        for _ in 0..2 {
            assert_eq!(queue.receive_message(10).len(), 1);
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        assert!(queue.receive_message(10).is_empty());
        assert_eq!(queue.dead_letters(), ["poison"]);
        assert_eq!(queue.stats(), QueueStats { dead: 1, ..QueueStats::default() });
    }

    #[tokio::test]
    async fn the_poster_records_deliveries_and_plays_its_script() {
        let poster = MemoryPoster::default();
        poster.script(&id(2), Scripted::Gone);
        poster.post(&id(1), Bytes::from_static(b"x")).await.expect("delivered");
        assert!(matches!(poster.post(&id(2), Bytes::new()).await, Err(PostError::Gone)));
        assert_eq!(poster.delivered(), [(id(1), Bytes::from_static(b"x"))]);
    }
}
