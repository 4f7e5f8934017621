//! The connection store over DynamoDB, in a single-table layout.
//!
//! A connection is the item `Pk = Sk = "CONN#<id>"` with `ConnectedAt` (epoch ms), `SourceIp` and `Ttl`
//! (epoch seconds, the table's TTL attribute). The `CONN#` prefix leaves the table free for other item
//! types (topics, subscriptions) that a scan for connections skips.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use futures::stream::{self, BoxStream, StreamExt};

use super::is_retryable;
use crate::domain::{ConnectionId, ConnectionRecord, ConnectionRef};
use crate::error::StoreError;
use crate::ports::ConnectionStore;

const CONNECTION_PREFIX: &str = "CONN#";
/// BatchWriteItem's limit on requests per call.
const BATCH_WRITE_MAX: usize = 25;
/// Rounds of retrying `UnprocessedItems` before giving up; TTL still expires whatever is left.
const UNPROCESSED_RETRIES: u32 = 5;

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

type Key = HashMap<String, AttributeValue>;

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

    fn key(id: &ConnectionId) -> Key {
        let pk = AttributeValue::S(format!("{CONNECTION_PREFIX}{id}"));
        HashMap::from([("Pk".to_owned(), pk.clone()), ("Sk".to_owned(), pk)])
    }

    fn connection_of(item: &Key) -> Option<ConnectionRef> {
        let pk = item.get("Pk")?.as_s().ok()?;
        let id = ConnectionId::parse(pk.strip_prefix(CONNECTION_PREFIX)?).ok()?;
        let connected_at_ms =
            item.get("ConnectedAt").and_then(|n| n.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0);
        Some(ConnectionRef { id, connected_at_ms })
    }

    async fn scan_page(
        &self,
        segment: u16,
        start: Option<Key>,
    ) -> Result<(Vec<ConnectionRef>, Option<Key>), StoreError> {
        let mut scan = self.client.scan().table_name(&self.table).set_limit(self.page_limit);
        if self.segments > 1 {
            scan = scan.segment(i32::from(segment)).total_segments(i32::from(self.segments));
        }
        let page = scan
            .projection_expression("Pk, ConnectedAt")
            .filter_expression("begins_with(Pk, :prefix)")
            .expression_attribute_values(":prefix", AttributeValue::S(CONNECTION_PREFIX.to_owned()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        let ids = page.items().iter().filter_map(Self::connection_of).collect();
        Ok((ids, page.last_evaluated_key))
    }
}

fn store_error<E, R>(err: aws_sdk_dynamodb::error::SdkError<E, R>) -> StoreError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    if is_retryable(&err) {
        StoreError::Unavailable(Box::new(err))
    } else {
        StoreError::Rejected(Box::new(err))
    }
}

#[async_trait]
impl ConnectionStore for DynamoStore {
    async fn put(&self, record: &ConnectionRecord) -> Result<(), StoreError> {
        let mut item = Self::key(&record.id);
        item.insert("ConnectedAt".into(), AttributeValue::N(record.connected_at_ms.to_string()));
        item.insert("Ttl".into(), AttributeValue::N(record.expires_at_s.to_string()));
        if let Some(ip) = &record.source_ip {
            item.insert("SourceIp".into(), AttributeValue::S(ip.clone()));
        }
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete(&self, id: &ConnectionId) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(id)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn delete_many(&self, ids: &[ConnectionId]) -> Result<(), StoreError> {
        for chunk in ids.chunks(BATCH_WRITE_MAX) {
            let mut requests: Vec<WriteRequest> = chunk
                .iter()
                .filter_map(|id| DeleteRequest::builder().set_key(Some(Self::key(id))).build().ok())
                .map(|delete| WriteRequest::builder().delete_request(delete).build())
                .collect();
            let mut round = 0;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(store_error)?;
                requests =
                    out.unprocessed_items.and_then(|mut items| items.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                round += 1;
                if round > UNPROCESSED_RETRIES {
                    return Err(StoreError::Unavailable(
                        format!(
                            "{} deletes still unprocessed after {UNPROCESSED_RETRIES} retries",
                            requests.len()
                        )
                        .into(),
                    ));
                }
                // Unprocessed items mean the table is throttling: back off before asking again.
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
        }
        Ok(())
    }

    fn scan(&self) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let segment = move |segment: u16| {
            // The cursor is `None` once the segment's last page has been read.
            stream::unfold(Some(None), move |cursor: Option<Option<Key>>| async move {
                let start = cursor?;
                match self.scan_page(segment, start).await {
                    Ok((ids, next)) => Some((Ok(ids), next.map(Some))),
                    Err(err) => Some((Err(err), None)),
                }
            })
            .boxed()
        };
        if self.segments == 1 {
            return segment(0);
        }
        stream::select_all((0..self.segments).map(segment)).boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
    use aws_sdk_dynamodb::operation::scan::ScanOutput;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use futures::TryStreamExt;

    fn item(id: &str) -> Key {
        HashMap::from([("Pk".to_owned(), AttributeValue::S(format!("CONN#{id}")))])
    }

    #[tokio::test]
    async fn unprocessed_deletes_are_sent_again_until_none_are_left() {
        let leftover = |n: usize| {
            let key = DynamoStore::key(&ConnectionId::parse(&format!("left{n}")).expect("id"));
            let delete = DeleteRequest::builder().set_key(Some(key)).build().expect("delete");
            WriteRequest::builder().delete_request(delete).build()
        };
        let throttled = mock!(Client::batch_write_item)
            .match_requests(|req| req.request_items().is_some_and(|items| items["t"].len() == 25))
            .then_output(move || {
                BatchWriteItemOutput::builder().unprocessed_items("t", vec![leftover(1), leftover(2)]).build()
            });
        let retried = mock!(Client::batch_write_item)
            .match_requests(|req| req.request_items().is_some_and(|items| items["t"].len() == 2))
            .then_output(|| BatchWriteItemOutput::builder().build());
        let rest = mock!(Client::batch_write_item)
            .match_requests(|req| req.request_items().is_some_and(|items| items["t"].len() == 5))
            .then_output(|| BatchWriteItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled, &retried, &rest]);
        let store = DynamoStore::new(client, "t");
        let ids: Vec<ConnectionId> =
            (0..30).map(|n| ConnectionId::parse(&format!("id{n}")).expect("id")).collect();

        store.delete_many(&ids).await.expect("all deleted in the end");

        assert_eq!((throttled.num_calls(), retried.num_calls(), rest.num_calls()), (1, 1, 1));
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
