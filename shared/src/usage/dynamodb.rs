//! The counts in the connections' table: one item per sender and minute (`Pk = USAGE#<sender>`,
//! `Sk = MIN#<minute>`), added to with `UpdateItem ADD` — one write unit per sender per worker
//! batch — and read with an eventually consistent `GetItem` (half a read unit) before each of the
//! sender's messages. `Ttl` removes each item two minutes after its minute ends.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use super::port::Usage;
use crate::aws::store_error;
use crate::error::StoreError;

const USAGE_PREFIX: &str = "USAGE#";
const MINUTE_PREFIX: &str = "MIN#";

pub struct DynamoUsage {
    client: Client,
    table: String,
}

impl std::fmt::Debug for DynamoUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoUsage").field("table", &self.table).finish_non_exhaustive()
    }
}

impl DynamoUsage {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    fn key(sender: &str, minute: i64) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("Pk".to_owned(), AttributeValue::S(format!("{USAGE_PREFIX}{sender}"))),
            ("Sk".to_owned(), AttributeValue::S(format!("{MINUTE_PREFIX}{minute}"))),
        ])
    }
}

#[async_trait]
impl Usage for DynamoUsage {
    async fn add(&self, sender: &str, minute: i64, deliveries: u64) -> Result<(), StoreError> {
        let expires_at_s = (minute + 3) * 60;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(sender, minute)))
            .update_expression("ADD #d :d SET #t = :t")
            .expression_attribute_names("#d", "Deliveries")
            .expression_attribute_names("#t", "Ttl")
            .expression_attribute_values(":d", AttributeValue::N(deliveries.to_string()))
            .expression_attribute_values(":t", AttributeValue::N(expires_at_s.to_string()))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn used(&self, sender: &str, minute: i64) -> Result<u64, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(sender, minute)))
            .projection_expression("Deliveries")
            .send()
            .await
            .map_err(store_error)?;
        let count =
            out.item.as_ref().and_then(|item| item.get("Deliveries")).and_then(|value| value.as_n().ok());
        Ok(count.and_then(|n| n.parse().ok()).unwrap_or(0))
    }
}
