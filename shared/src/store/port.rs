//! The port itself: what the handlers ask of the connection store.

use async_trait::async_trait;
use futures::stream::BoxStream;

use crate::channel::ChannelPattern;
use crate::domain::{ConnectionId, ConnectionRecord, ConnectionRef, Shard};
use crate::error::{StoreError, SubscribeError};

/// Where connections and their subscriptions are remembered between `$connect` and `$disconnect`
/// (one DynamoDB table on AWS).
#[async_trait]
pub trait ConnectionStore: Send + Sync {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError>;

    /// Deletes a connection and every subscription it holds: the patterns it held, so that its
    /// memberships can end too. Deleting a record that does not exist succeeds (holding nothing):
    /// `$disconnect` and pruning may race.
    async fn delete(&self, id: &ConnectionId) -> Result<Vec<ChannelPattern>, StoreError>;

    /// Deletes many connections and their subscriptions in as few round trips as the store allows:
    /// each connection that was stored, with the patterns it held.
    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<Vec<Held>, StoreError>;

    /// Every stored connection, one page at a time, so that delivery can start on the first page
    /// while the next one is being read. Subscriptions are not connections: a scan skips them.
    fn scan(&self) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.scan_shard(Shard::WHOLE)
    }

    /// The stored connections of one shard, one page at a time: the shards of one count are
    /// disjoint and together hold every connection.
    fn scan_shard(&self, shard: Shard) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>>;

    /// Subscribes a stored connection to a pattern. Subscribing again to the same pattern succeeds
    /// and counts once; a connection already holding `limit` other patterns is refused.
    async fn subscribe(&self, subscription: &Subscription) -> Result<(), SubscribeError>;

    /// Ends a subscription; ending one that does not exist succeeds.
    async fn unsubscribe(&self, id: &ConnectionId, pattern: &ChannelPattern) -> Result<(), StoreError>;

    /// The connections subscribed to exactly this pattern, one page at a time.
    fn subscribers(&self, pattern: &ChannelPattern) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        self.subscribers_shard(pattern, Shard::WHOLE)
    }

    /// The subscribers to this pattern in one shard, one page at a time: a connection is in the same
    /// shard of a count for every pattern, so a channel's shards never overlap either.
    fn subscribers_shard(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
    ) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>>;
}

/// A deleted connection and the patterns it was subscribed to.
pub type Held = (ConnectionId, Vec<ChannelPattern>);

/// One connection's subscription to one pattern, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    pub connection: ConnectionRef,
    pub pattern: ChannelPattern,
    /// Epoch seconds after which the store may expire it, as for the connection's own record.
    pub expires_at_s: i64,
    /// The most patterns one connection may hold.
    pub limit: usize,
}
