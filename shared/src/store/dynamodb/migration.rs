//! An upgrade's one step: connection items written before the index of connections ([`super::INDEX`]) existed are given their
//! `Conn`, so that broadcasts, which scan the index, reach them before they reconnect
//! (`local index-connections`). A connection deleted meanwhile is left deleted.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::keys::{CONNECTION_PREFIX, key};
use crate::aws::store_error;
use crate::domain::ConnectionId;
use crate::error::StoreError;

/// Indexes every connection of `table` that the index lacks; how many it indexed.
pub(super) async fn index_old_connections(client: &Client, table: &str) -> Result<u64, StoreError> {
    let (mut start, mut indexed) = (None, 0);
    loop {
        let page = client
            .scan()
            .table_name(table)
            .filter_expression("begins_with(Pk, :conn) AND attribute_not_exists(Conn)")
            .projection_expression("Pk")
            .expression_attribute_values(":conn", AttributeValue::S(CONNECTION_PREFIX.into()))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(store_error)?;
        for item in page.items() {
            let id = item
                .get("Pk")
                .and_then(|pk| pk.as_s().ok())
                .and_then(|pk| pk.strip_prefix(CONNECTION_PREFIX));
            let Some(id) = id.and_then(|id| ConnectionId::parse(id).ok()) else { continue };
            let update = client
                .update_item()
                .table_name(table)
                .set_key(Some(key(&id)))
                .update_expression("SET Conn = :id")
                .condition_expression("attribute_exists(Pk)")
                .expression_attribute_values(":id", AttributeValue::S(id.to_string()))
                .send()
                .await;
            match update {
                Ok(_) => indexed += 1,
                Err(err)
                    if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&err)
                        == Some("ConditionalCheckFailedException") => {}
                Err(err) => return Err(store_error(err)),
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            return Ok(indexed);
        }
    }
}
