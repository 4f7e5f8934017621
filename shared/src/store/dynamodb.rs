//! The connection store over DynamoDB, in a single-table layout.
//!
//! A connection is the item `Pk = Sk = "CONN#<id>"` with `ConnectedAt` (epoch ms), `SourceIp`, `Ttl`
//! (epoch seconds, the table's TTL attribute) and `Subs`, the string set of the patterns it is
//! subscribed to. A subscription is the item `Pk = "CHAN#<pattern>"`, `Sk = "SUB#<bucket>#<id>"`
//! with the connection's `ConnectedAt` and `Ttl`: a publish finds a channel's subscribers by querying
//! a few partitions, and `$disconnect` finds a connection's subscriptions in its own item, which is
//! why both live in one table.
//!
//! Only connection items carry `Conn` (their id): the sparse global secondary index [`INDEX`] keyed
//! on it holds the connections alone, and a broadcast scans it rather than the table, so that it
//! reads neither subscription items nor the channels' history (`HIST#` partitions, see
//! [`crate::history::DynamoHistory`]). Connections written before `Conn` existed are not in it until
//! [`DynamoStore::index_old_connections`] gives them one (`local index-connections`, the upgrade's
//! step, [`migration`]), or they reconnect. The items' keys are in [`keys`]; batched reads and
//! deletes, which any DynamoDB adapter may use, in [`crate::aws::dynamodb`].
//!
//! The bucket (three digits, [`Shard::bucket`] of the id) leads the sort key so that a shard of a
//! channel is one `Sk BETWEEN` range of its partitions: a publish to a large channel is split like a
//! broadcast, each shard reading only its own items. Subscriptions written before the bucket existed
//! (`Sk = "CONN#<id>"`) are still found by a whole channel's query and deleted by `unsubscribe`; a
//! split skips them, and their `Ttl` (the connection's lifetime) removes them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::stream::{self, BoxStream, StreamExt};

use super::port::{ConnectionStore, Held, Subscription};
use crate::aws::dynamodb::{batch_delete, batch_get, put};
use crate::aws::store_error;
use crate::channel::ChannelPattern;
use crate::domain::{ConnectionId, ConnectionRecord, ConnectionRef, Shard};
use crate::error::{StoreError, SubscribeError};

mod keys;
mod migration;

pub use self::keys::INDEX;
use self::keys::{
    CHANNEL_PREFIX, CONNECTION_PREFIX, Key, SUBSCRIBER_PREFIX, connection_in, key, legacy_subscription_key,
    subscription_key,
};

/// Connection records in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// `Scan`'s `Limit`: items evaluated per page. `None` lets DynamoDB fill 1 MB pages.
    page_limit: Option<i32>,
    /// `TotalSegments` of a parallel scan; 1 scans sequentially.
    segments: u16,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into(), page_limit: None, segments: 1 }
    }

    /// Caps each scan page at `limit` items.
    pub fn with_page_limit(mut self, limit: i32) -> Self {
        self.page_limit = Some(limit.max(1));
        self
    }

    /// Scans in `segments` parallel segments: for tables large enough that one sequential scan is the
    /// bottleneck of a broadcast. Pages from all segments are interleaved as they arrive.
    pub fn with_segments(mut self, segments: u16) -> Self {
        self.segments = segments.max(1);
        self
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    /// The inclusive `Sk` bounds of a shard's subscription items: from its first bucket's
    /// `SUB#bbb#` to just past its last one's (`$` sorts right after `#`).
    fn shard_bounds(shard: Shard) -> (String, String) {
        let buckets = shard.buckets();
        let last = buckets.end.saturating_sub(1);
        (format!("{SUBSCRIBER_PREFIX}{:03}#", buckets.start), format!("{SUBSCRIBER_PREFIX}{last:03}$"))
    }

    /// Gives connection items written before the [`INDEX`] existed their `Conn`, so that broadcasts
    /// reach them now rather than once they reconnect: the one step of an upgrade from such a
    /// version ([`migration`]). A connection deleted meanwhile is left deleted. Returns how many were
    /// indexed.
    pub async fn index_old_connections(&self) -> Result<u64, StoreError> {
        migration::index_old_connections(&self.client, &self.table).await
    }

    /// The keys of a connection's item and of every subscription its `Subs` lists.
    fn keys_of(id: &ConnectionId, item: Option<&Key>) -> Vec<Key> {
        let patterns = item.and_then(|item| item.get("Subs")).and_then(|subs| subs.as_ss().ok());
        std::iter::once(key(id))
            .chain(patterns.into_iter().flatten().map(|pattern| subscription_key(pattern, id)))
            .collect()
    }

    async fn query_page(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
        start: Option<Key>,
    ) -> Result<(Vec<ConnectionRef>, Option<Key>), StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .set_limit(self.page_limit)
            .expression_attribute_values(":pk", AttributeValue::S(format!("{CHANNEL_PREFIX}{pattern}")));
        // The whole partition when unsplit, so that subscriptions without a bucket are found too.
        query = if shard.is_whole() {
            query.key_condition_expression("Pk = :pk")
        } else {
            let (low, high) = Self::shard_bounds(shard);
            query
                .key_condition_expression("Pk = :pk AND Sk BETWEEN :low AND :high")
                .expression_attribute_values(":low", AttributeValue::S(low))
                .expression_attribute_values(":high", AttributeValue::S(high))
        };
        let page = query
            .projection_expression("Sk, ConnectedAt")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let ids = page.items().iter().filter_map(|item| connection_in(item, "Sk")).collect();
        Ok((ids, page.last_evaluated_key))
    }

    async fn scan_page(
        &self,
        shard: Shard,
        start: Option<Key>,
    ) -> Result<(Vec<ConnectionRef>, Option<Key>), StoreError> {
        let mut scan =
            self.client.scan().table_name(&self.table).index_name(INDEX).set_limit(self.page_limit);
        if !shard.is_whole() {
            let (segment, total) = (i32::try_from(shard.index()), i32::try_from(shard.of()));
            scan = scan.set_segment(segment.ok()).set_total_segments(total.ok());
        }
        let page = scan
            .projection_expression("Pk, ConnectedAt")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let ids = page.items().iter().filter_map(|item| connection_in(item, "Pk")).collect();
        Ok((ids, page.last_evaluated_key))
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        // An update rather than a put: a connection's `Subs` outlives a second put of its record.
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(&record.id)))
            .expression_attribute_values(":c", AttributeValue::N(record.connected_at_ms.to_string()))
            .expression_attribute_values(":t", AttributeValue::N(record.expires_at_s.to_string()))
            .expression_attribute_values(":id", AttributeValue::S(record.id.to_string()));
        update = match &record.source_ip {
            Some(ip) => update
                .update_expression("SET ConnectedAt = :c, #ttl = :t, Conn = :id, SourceIp = :ip")
                .expression_attribute_values(":ip", AttributeValue::S(ip.clone())),
            None => update.update_expression("SET ConnectedAt = :c, #ttl = :t, Conn = :id"),
        };
        update.expression_attribute_names("#ttl", "Ttl").send().await.map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, id: &ConnectionId) -> Result<Vec<ChannelPattern>, StoreError> {
        let old = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?;
        let subscriptions: Vec<Key> =
            Self::keys_of(id, old.attributes.as_ref()).into_iter().skip(1).collect();
        batch_delete(&self.client, &self.table, subscriptions).await?;
        Ok(old.attributes.as_ref().map(patterns_of).unwrap_or_default())
    }

    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<Vec<Held>, StoreError> {
        let keys: Vec<Key> = ids.iter().map(key).collect();
        let items: HashMap<String, Key> = batch_get(&self.client, &self.table, keys, "Pk, Subs")
            .await?
            .into_iter()
            .filter_map(|item| Some((item.get("Pk")?.as_s().ok()?.clone(), item)))
            .collect();
        let keys = ids
            .iter()
            .flat_map(|id| Self::keys_of(id, items.get(&format!("{CONNECTION_PREFIX}{id}"))))
            .collect();
        batch_delete(&self.client, &self.table, keys).await?;
        Ok(ids
            .iter()
            .filter_map(|id| {
                let item = items.get(&format!("{CONNECTION_PREFIX}{id}"))?;
                Some((id.clone(), patterns_of(item)))
            })
            .collect())
    }

    fn scan_shard(&self, shard: Shard) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let segment = move |shard: Shard| {
            // The cursor is `None` once the segment's last page has been read.
            stream::unfold(Some(None), move |cursor: Option<Option<Key>>| async move {
                let start = cursor?;
                match self.scan_page(shard, start).await {
                    Ok((ids, next)) => Some((Ok(ids), next.map(Some))),
                    Err(err) => Some((Err(err), None)),
                }
            })
            .boxed()
        };
        // A whole scan is read in `segments` parallel segments when so configured; a shard is one.
        if !shard.is_whole() || self.segments == 1 {
            return segment(shard);
        }
        stream::select_all(Shard::all(u32::from(self.segments)).map(segment)).boxed()
    }

    async fn subscribe(&self, subscription: &Subscription) -> Result<(), SubscribeError> {
        let id = &subscription.connection.id;
        let pattern = subscription.pattern.as_str();
        // The connection's item first: once it lists the pattern, `$disconnect` deletes the
        // subscription item even if writing that item is what fails next.
        let added = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("ADD Subs :set")
            .condition_expression(
                "attribute_exists(Pk) AND (attribute_not_exists(Subs) OR contains(Subs, :one) OR size(Subs) < :max)",
            )
            .expression_attribute_values(":set", AttributeValue::Ss(vec![pattern.to_owned()]))
            .expression_attribute_values(":one", AttributeValue::S(pattern.to_owned()))
            .expression_attribute_values(":max", AttributeValue::N(subscription.limit.to_string()))
            .send()
            .await;
        if let Err(err) = added {
            if !err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) {
                return Err(store_error(err).into());
            }
            let exists = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key(id)))
                .projection_expression("Pk")
                .consistent_read(true)
                .send()
                .await
                .map_err(store_error)?
                .item
                .is_some();
            return Err(if exists {
                SubscribeError::TooMany { limit: subscription.limit }
            } else {
                SubscribeError::NotConnected
            });
        }
        let mut item = subscription_key(pattern, id);
        item.insert(
            "ConnectedAt".into(),
            AttributeValue::N(subscription.connection.connected_at_ms.to_string()),
        );
        item.insert("Ttl".into(), AttributeValue::N(subscription.expires_at_s.to_string()));
        Ok(put(&self.client, &self.table, item).await?)
    }

    async fn unsubscribe(&self, id: &ConnectionId, pattern: &ChannelPattern) -> Result<(), StoreError> {
        let removed = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(id)))
            .update_expression("DELETE Subs :set")
            // Without it, an update would create an item for a connection that is gone.
            .condition_expression("attribute_exists(Pk)")
            .expression_attribute_values(":set", AttributeValue::Ss(vec![pattern.to_string()]))
            .send()
            .await;
        if let Err(err) = removed
            && !err.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception())
        {
            return Err(store_error(err));
        }
        // Both forms of the key, so that a subscription made before buckets cannot outlive this.
        let keys =
            vec![subscription_key(pattern.as_str(), id), legacy_subscription_key(pattern.as_str(), id)];
        batch_delete(&self.client, &self.table, keys).await
    }

    fn subscribers_shard(
        &self,
        pattern: &ChannelPattern,
        shard: Shard,
    ) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let pattern = pattern.clone();
        stream::unfold(Some(None), move |cursor: Option<Option<Key>>| {
            let pattern = pattern.clone();
            async move {
                let start = cursor?;
                match self.query_page(&pattern, shard, start).await {
                    Ok((ids, next)) => Some((Ok(ids), next.map(Some))),
                    Err(err) => Some((Err(err), None)),
                }
            }
        })
        .boxed()
    }
}

/// The patterns a connection item's `Subs` lists (those that still parse).
fn patterns_of(item: &Key) -> Vec<ChannelPattern> {
    let subs = item.get("Subs").and_then(|subs| subs.as_ss().ok());
    subs.into_iter().flatten().filter_map(|raw| ChannelPattern::parse(raw).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
    use aws_sdk_dynamodb::operation::scan::ScanOutput;
    use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use futures::TryStreamExt;

    fn item(id: &str) -> Key {
        HashMap::from([("Pk".to_owned(), AttributeValue::S(format!("CONN#{id}")))])
    }

    #[tokio::test]
    async fn deleting_connections_deletes_their_subscriptions_and_retries_unprocessed_deletes() {
        let leftover = |n: usize| {
            let key = key(&ConnectionId::parse(&format!("left{n}")).expect("id"));
            let delete = DeleteRequest::builder().set_key(Some(key)).build().expect("delete");
            WriteRequest::builder().delete_request(delete).build()
        };
        let throttled = mock!(Client::batch_write_item)
            .match_requests(|req| {
                req.request_items().is_some_and(|items| {
                    items["t"].len() == 25
                        && items["t"].iter().any(|w| {
                            w.delete_request().and_then(|d| d.key().get("Pk")).and_then(|pk| pk.as_s().ok())
                                == Some(&"CHAN#chat/*".to_owned())
                        })
                })
            })
            .then_output(move || {
                BatchWriteItemOutput::builder().unprocessed_items("t", vec![leftover(1), leftover(2)]).build()
            });
        let retried = mock!(Client::batch_write_item)
            .match_requests(|req| req.request_items().is_some_and(|items| items["t"].len() == 2))
            .then_output(|| BatchWriteItemOutput::builder().build());
        // The 30 connections, and the subscription item the first one's `Subs` lists.
        let rest = mock!(Client::batch_write_item)
            .match_requests(|req| req.request_items().is_some_and(|items| items["t"].len() == 6))
            .then_output(|| BatchWriteItemOutput::builder().build());
        let read = mock!(Client::batch_get_item).then_output(|| {
            let mut item = item("id0");
            item.insert("Subs".into(), AttributeValue::Ss(vec!["chat/*".into()]));
            aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput::builder()
                .responses("t", vec![item])
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled, &retried, &rest, &read]);
        let store = DynamoStore::new(client, "t");
        let ids: Vec<ConnectionId> =
            (0..30).map(|n| ConnectionId::parse(&format!("id{n}")).expect("id")).collect();

        store.delete_many(&ids).await.expect("all deleted in the end");

        assert_eq!(
            (read.num_calls(), throttled.num_calls(), retried.num_calls(), rest.num_calls()),
            (1, 1, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_scan_follows_last_evaluated_key_across_pages() {
        let first =
            mock!(Client::scan).match_requests(|req| req.exclusive_start_key().is_none()).then_output(|| {
                ScanOutput::builder()
                    .items(item("a1"))
                    .items(item("a2"))
                    .set_last_evaluated_key(Some(item("a2")))
                    .build()
            });
        let second = mock!(Client::scan)
            .match_requests(|req| req.exclusive_start_key().is_some())
            .then_output(|| ScanOutput::builder().items(item("b1")).build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&first, &second]);
        let store = DynamoStore::new(client, "t");
        let pages: Vec<Vec<ConnectionRef>> = store.scan().try_collect().await.expect("scan");
        let ids: Vec<Vec<&str>> = pages.iter().map(|p| p.iter().map(|c| c.id.as_str()).collect()).collect();
        assert_eq!(ids, [vec!["a1", "a2"], vec!["b1"]]);
    }
}
