//! Creating the table and queues the template declares, for local development and tests.
//!
//! `sam deploy` creates these on AWS; against a DynamoDB/SQS-compatible endpoint on a laptop
//! (moto, DynamoDB Local, ElasticMQ) this makes the same shapes: the single table with its TTL,
//! and the broadcast queue with its dead-letter queue and redrive policy.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::error::BoxError;

/// Creates the connections table (`Pk`/`Sk`, on-demand, TTL on `Ttl`, the sparse index of
/// connections on `Conn`) unless it exists.
pub async fn ensure_table(sdk: &aws_config::SdkConfig, table: &str) -> Result<(), BoxError> {
    let client = aws_sdk_dynamodb::Client::new(sdk);
    if client.describe_table().table_name(table).send().await.is_ok() {
        return Ok(());
    }
    let key =
        |name: &str, kind: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let attribute = |name: &str| {
        AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
    };
    // The sparse index of connection items a broadcast scans: see `crate::store::DynamoStore`.
    let connections = GlobalSecondaryIndex::builder()
        .index_name(crate::store::CONNECTIONS_INDEX)
        .key_schema(key("Conn", KeyType::Hash)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::Include)
                .non_key_attributes("ConnectedAt")
                .build(),
        )
        .build()?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("Pk", KeyType::Hash)?)
        .key_schema(key("Sk", KeyType::Range)?)
        .attribute_definitions(attribute("Pk")?)
        .attribute_definitions(attribute("Sk")?)
        .attribute_definitions(attribute("Conn")?)
        .global_secondary_indexes(connections)
        .send()
        .await?;
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder().attribute_name("Ttl").enabled(true).build()?,
        )
        .send()
        .await?;
    Ok(())
}

/// Creates `name` and its dead-letter queue `name-dlq` (after `max_receive_count` receives),
/// and returns both URLs: `(queue, dead_letter_queue)`.
pub async fn ensure_queue(
    sdk: &aws_config::SdkConfig,
    name: &str,
    visibility_timeout: Duration,
    max_receive_count: u32,
) -> Result<(String, String), BoxError> {
    let client = aws_sdk_sqs::Client::new(sdk);
    let dlq = client.create_queue().queue_name(format!("{name}-dlq")).send().await?;
    let dlq_url = dlq.queue_url().ok_or("CreateQueue returned no URL")?.to_owned();
    let dlq_arn = client
        .get_queue_attributes()
        .queue_url(&dlq_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await?
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or("GetQueueAttributes returned no QueueArn")?;
    let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count });
    let queue = client
        .create_queue()
        .queue_name(name)
        .attributes(QueueAttributeName::VisibilityTimeout, visibility_timeout.as_secs().to_string())
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await?;
    let url = queue.queue_url().ok_or("CreateQueue returned no URL")?.to_owned();
    Ok((url, dlq_url))
}

/// SDK configuration for an AWS-compatible endpoint on this machine (moto, DynamoDB Local): a fixed
/// region and placeholder credentials, which such endpoints accept and AWS never sees.
pub async fn sdk_for_endpoint(endpoint: &str) -> aws_config::SdkConfig {
    let credentials =
        aws_credential_types::Credentials::new("testing", "testing", None, None, "local-endpoint");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .load()
        .await
}
