//! DynamoDB calls any adapter may make: a plain write, and batched reads and deletes by key, each
//! call within DynamoDB's limits and what it leaves unprocessed (a throttling table) asked again with
//! backoff.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, KeysAndAttributes, WriteRequest};

use super::errors::store_error;
use crate::error::StoreError;

/// BatchGetItem's limit on keys per call.
const BATCH_GET_MAX: usize = 100;
/// BatchWriteItem's limit on requests per call.
const BATCH_WRITE_MAX: usize = 25;
/// Rounds of retrying what a batch left unprocessed before giving up; TTL still expires whatever is
/// left.
const UNPROCESSED_RETRIES: u32 = 5;

type Item = HashMap<String, AttributeValue>;

/// Writes `item` whole, whatever was there.
pub(crate) async fn put(client: &Client, table: &str, item: Item) -> Result<(), StoreError> {
    client.put_item().table_name(table).set_item(Some(item)).send().await.map_err(store_error)?;
    Ok(())
}

/// The items of `keys` that exist, with the attributes of `projection`, 100 keys to a call.
pub(crate) async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: &str,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::new();
    for chunk in keys.chunks(BATCH_GET_MAX) {
        let mut request = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(chunk.to_vec()))
                .projection_expression(projection)
                .build()
                .map_err(|err| StoreError::Rejected(Box::new(err)))?,
        );
        let mut round = 0;
        while let Some(keys) = request.take() {
            let out = client.batch_get_item().request_items(table, keys).send().await.map_err(store_error)?;
            found.extend(out.responses.and_then(|mut r| r.remove(table)).unwrap_or_default());
            request = out.unprocessed_keys.and_then(|mut keys| keys.remove(table));
            if request.is_some() {
                round += 1;
                if round > UNPROCESSED_RETRIES {
                    return Err(StoreError::Unavailable("reads still unprocessed after retries".into()));
                }
                tokio::time::sleep(Duration::from_millis(50 << round)).await;
            }
        }
    }
    Ok(found)
}

/// Deletes items by key, 25 to a call, sending unprocessed ones again with backoff.
pub(crate) async fn batch_delete(client: &Client, table: &str, keys: Vec<Item>) -> Result<(), StoreError> {
    for chunk in keys.chunks(BATCH_WRITE_MAX) {
        let mut requests: Vec<WriteRequest> = chunk
            .iter()
            .filter_map(|key| DeleteRequest::builder().set_key(Some(key.clone())).build().ok())
            .map(|delete| WriteRequest::builder().delete_request(delete).build())
            .collect();
        let mut round = 0;
        while !requests.is_empty() {
            let out =
                client.batch_write_item().request_items(table, requests).send().await.map_err(store_error)?;
            requests = out.unprocessed_items.and_then(|mut items| items.remove(table)).unwrap_or_default();
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
