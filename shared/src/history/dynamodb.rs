//! Channel history over DynamoDB, in the connections' table.
//!
//! A channel's stream is the partition `Pk = "HIST#<channel>"`: its state is the item `Sk = "META"`
//! (`Offset`, the latest; `Epoch`; `Ttl`, pushed back by every use to [`HistorySettings::stream_lifetime`]
//! from now), each kept message the item `Sk = "OFF#<offset, 20 digits>"` (`Frame`, as delivered;
//! `Ttl`), and each message id a backend published the item `Sk = "MSG#<id>"` (`Offset`, `Epoch`,
//! `Ttl`), which gives a redelivered `SendMessage` its first position.
//!
//! An offset is taken with one `UpdateItem` (`ADD`-like, `UPDATED_NEW`): atomic, so two publishers
//! never share one, and a message then costs that update and its `PutItem` — 3 write units for a
//! frame of up to 1 KB. A stream whose `Ttl` has passed (DynamoDB deletes expired items within
//! days, not at once) is treated as gone: it starts again in a new epoch. Reads skip expired items.
//! Scans for connections never read these items (they list the connections' index).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};

use super::port::{History, HistorySettings, Kept, Page, Range, Stream, cost, page, spent, window};
use crate::aws::dynamodb::put;
use crate::aws::store_error;
use crate::channel::Channel;
use crate::clock::epoch_ms;
use crate::domain::{Envelope, Epoch, MessageId, Position};
use crate::error::StoreError;
use crate::namespaces::{ChannelOptions, Namespaces};

const HISTORY_PREFIX: &str = "HIST#";
const META: &str = "META";
const OFFSET_PREFIX: &str = "OFF#";
const MESSAGE_PREFIX: &str = "MSG#";

type Item = HashMap<String, AttributeValue>;

/// Channel history in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoHistory {
    client: Client,
    table: String,
    /// How much each channel keeps, by its namespace.
    namespaces: Namespaces,
}

impl DynamoHistory {
    /// Every channel keeping as `settings` say.
    pub fn new(client: Client, table: impl Into<String>, settings: HistorySettings) -> Self {
        Self::of(client, table, Namespaces::uniform(ChannelOptions::defaults(settings, true)))
    }

    /// Each channel keeping as its namespace says.
    pub fn of(client: Client, table: impl Into<String>, namespaces: Namespaces) -> Self {
        Self { client, table: table.into(), namespaces }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>, namespaces: Namespaces) -> Self {
        Self::of(Client::new(sdk), table, namespaces)
    }

    fn key(channel: &Channel, sk: String) -> Item {
        HashMap::from([
            ("Pk".to_owned(), AttributeValue::S(format!("{HISTORY_PREFIX}{channel}"))),
            ("Sk".to_owned(), AttributeValue::S(sk)),
        ])
    }

    fn offset_sk(offset: u64) -> String {
        format!("{OFFSET_PREFIX}{offset:020}")
    }

    fn now_s() -> i64 {
        epoch_ms() / 1000
    }

    /// Epoch seconds at which `channel`'s stream used now expires.
    fn stream_ttl(&self, channel: &Channel) -> i64 {
        let lifetime = self.namespaces.history(channel).stream_lifetime();
        Self::now_s() + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2)
    }

    /// Pushes the stream's `Ttl` back and, when `take`, takes its next offset — starting the stream
    /// again first when its state has expired: the state after the update.
    async fn update_stream(&self, channel: &Channel, take: bool) -> Result<Item, StoreError> {
        let offset =
            if take { "#o = if_not_exists(#o, :zero) + :one" } else { "#o = if_not_exists(#o, :zero)" };
        for _ in 0..3 {
            let update = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(Self::key(channel, META.to_owned())))
                .update_expression(format!("SET #e = if_not_exists(#e, :epoch), #t = :ttl, {offset}"))
                .condition_expression("attribute_not_exists(Pk) OR #t > :now")
                .expression_attribute_names("#e", "Epoch")
                .expression_attribute_names("#o", "Offset")
                .expression_attribute_names("#t", "Ttl")
                .expression_attribute_values(":epoch", AttributeValue::S(Epoch::random().to_string()))
                .expression_attribute_values(":zero", AttributeValue::N("0".into()))
                .expression_attribute_values(":ttl", AttributeValue::N(self.stream_ttl(channel).to_string()))
                .expression_attribute_values(":now", AttributeValue::N(Self::now_s().to_string()))
                .return_values(ReturnValue::AllNew);
            let update = if take {
                update.expression_attribute_values(":one", AttributeValue::N("1".into()))
            } else {
                update
            };
            match update.send().await {
                Ok(output) => return Ok(output.attributes.unwrap_or_default()),
                Err(err) if err.code() == Some("ConditionalCheckFailedException") => {
                    self.restart(channel).await?
                }
                Err(err) => return Err(store_error(err)),
            }
        }
        Err(StoreError::Unavailable("the channel's stream kept expiring while it was used".into()))
    }

    /// A new stream in place of an expired one; another writer having restarted it first is fine.
    async fn restart(&self, channel: &Channel) -> Result<(), StoreError> {
        let mut item = Self::key(channel, META.to_owned());
        item.insert("Epoch".into(), AttributeValue::S(Epoch::random().to_string()));
        item.insert("Offset".into(), AttributeValue::N("0".into()));
        item.insert("Ttl".into(), AttributeValue::N(self.stream_ttl(channel).to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(Pk) OR #t <= :now")
            .expression_attribute_names("#t", "Ttl")
            .expression_attribute_values(":now", AttributeValue::N(Self::now_s().to_string()))
            .send()
            .await;
        match put {
            Ok(_) => Ok(()),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => Ok(()),
            Err(err) => Err(store_error(err)),
        }
    }

    /// The next offset of `channel`'s stream, taken.
    async fn take(&self, channel: &Channel) -> Result<Position, StoreError> {
        let item = self.update_stream(channel, true).await?;
        position(&item).ok_or_else(|| StoreError::Rejected("the stream's state has no offset".into()))
    }

    /// The item that keeps `envelope` (already placed) at its offset: its frame as delivered.
    fn message_item(&self, channel: &Channel, envelope: &Envelope) -> Item {
        let offset = envelope.offset.unwrap_or_default();
        let mut item = Self::key(channel, Self::offset_sk(offset));
        item.insert(
            "Frame".into(),
            AttributeValue::S(String::from_utf8(envelope.frame()).unwrap_or_default()),
        );
        let ttl = self.namespaces.history(channel).ttl;
        let expires = Self::now_s() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
        item.insert("Ttl".into(), AttributeValue::N(expires.to_string()));
        item
    }

    /// Keeps `envelope` (already placed) at its offset.
    async fn keep(&self, channel: &Channel, envelope: &Envelope) -> Result<(), StoreError> {
        put(&self.client, &self.table, self.message_item(channel, envelope)).await
    }

    /// The position message `id` was given, if it was.
    async fn placed(&self, channel: &Channel, id: &MessageId) -> Result<Option<Position>, StoreError> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(channel, format!("{MESSAGE_PREFIX}{id}"))))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(found.item.as_ref().and_then(position))
    }

    /// Records that message `id` has `position`, unless it already has one: the one it has.
    async fn claim(
        &self,
        channel: &Channel,
        id: &MessageId,
        at: &Position,
    ) -> Result<Option<Position>, StoreError> {
        let mut item = Self::key(channel, format!("{MESSAGE_PREFIX}{id}"));
        item.insert("Offset".into(), AttributeValue::N(at.offset.to_string()));
        item.insert("Epoch".into(), AttributeValue::S(at.epoch.to_string()));
        item.insert("Ttl".into(), AttributeValue::N(self.stream_ttl(channel).to_string()));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(Pk)")
            .send()
            .await;
        match put {
            Ok(_) => Ok(None),
            Err(err) if err.code() == Some("ConditionalCheckFailedException") => {
                self.placed(channel, id).await
            }
            Err(err) => Err(store_error(err)),
        }
    }
}

/// `Offset` and `Epoch` of a stream's state or a message id's record.
fn position(item: &Item) -> Option<Position> {
    let offset = item.get("Offset")?.as_n().ok()?.parse().ok()?;
    let epoch = Epoch::parse(item.get("Epoch")?.as_s().ok()?)?;
    Some(Position { offset, epoch })
}

fn channel_of(envelope: &Envelope) -> Result<Channel, StoreError> {
    envelope.channel.clone().ok_or_else(|| StoreError::Rejected("a broadcast has no channel history".into()))
}

#[async_trait]
impl History for DynamoHistory {
    async fn stream(&self, channel: &Channel) -> Result<Stream, StoreError> {
        let item = self.update_stream(channel, false).await?;
        let Position { offset, epoch } =
            position(&item).ok_or_else(|| StoreError::Rejected("the stream's state has no offset".into()))?;
        Ok(Stream { offset, epoch })
    }

    async fn append(&self, envelope: &mut Envelope) -> Result<(), StoreError> {
        let channel = channel_of(envelope)?;
        let at = self.take(&channel).await?;
        envelope.place(at);
        self.keep(&channel, envelope).await
    }

    async fn append_once(&self, envelope: &mut Envelope) -> Result<bool, StoreError> {
        let channel = channel_of(envelope)?;
        if let Some(first) = self.placed(&channel, &envelope.id).await? {
            // Kept again, in case the first attempt stopped between its claim and its item.
            envelope.place(first);
            self.keep(&channel, envelope).await?;
            return Ok(false);
        }
        let at = self.take(&channel).await?;
        match self.claim(&channel, &envelope.id, &at).await? {
            // Another attempt claimed it meanwhile: the offset just taken stays a gap.
            Some(first) => {
                envelope.place(first);
                Ok(false)
            }
            None => {
                envelope.place(at);
                self.keep(&channel, envelope).await?;
                Ok(true)
            }
        }
    }

    async fn read(&self, channel: &Channel, range: Range, budget: usize) -> Result<Page, StoreError> {
        let stream = self.stream(channel).await?;
        let read = window(stream.offset, self.namespaces.history(channel).size, range);
        let mut found = Vec::new();
        if !read.is_empty() {
            let now = Self::now_s();
            let mut start = None;
            let mut bytes = 0;
            loop {
                let query = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("Pk = :pk AND Sk BETWEEN :lo AND :hi")
                    .projection_expression("Sk, #f, #t")
                    .expression_attribute_names("#f", "Frame")
                    .expression_attribute_names("#t", "Ttl")
                    .expression_attribute_values(
                        ":pk",
                        AttributeValue::S(format!("{HISTORY_PREFIX}{channel}")),
                    )
                    .expression_attribute_values(":lo", AttributeValue::S(Self::offset_sk(read.lo)))
                    .expression_attribute_values(":hi", AttributeValue::S(Self::offset_sk(read.hi)))
                    // The wanted end first, so that a read past its budget stops after a page.
                    .scan_index_forward(!read.newest_first)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(store_error)?;
                for kept in query.items().iter().filter_map(|item| kept(item, now)) {
                    bytes += cost(&kept);
                    found.push(kept);
                }
                start = query.last_evaluated_key;
                if start.is_none() || spent(bytes, budget) {
                    break;
                }
            }
            if read.newest_first {
                found.reverse();
            }
        }
        Ok(page(stream, found, read, budget))
    }
}

/// A message item, unless it has expired.
fn kept(item: &Item, now: i64) -> Option<Kept> {
    let expires: i64 = item.get("Ttl")?.as_n().ok()?.parse().ok()?;
    if expires <= now {
        return None;
    }
    let offset = item.get("Sk")?.as_s().ok()?.strip_prefix(OFFSET_PREFIX)?.parse().ok()?;
    Some(Kept { offset, frame: item.get("Frame")?.as_s().ok()?.clone() })
}

#[cfg(test)]
mod tests {
    use serde_json::value::RawValue;

    use super::*;
    use crate::domain::{ConnectionId, Sender};

    /// An item's size as DynamoDB bills it: each attribute's name and value, a number counting about
    /// one byte for two digits, plus one.
    fn billed_bytes(item: &Item) -> usize {
        item.iter()
            .map(|(name, value)| {
                name.len()
                    + match value {
                        AttributeValue::S(s) => s.len(),
                        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
                        other => panic!("an attribute this adapter does not write: {other:?}"),
                    }
            })
            .sum()
    }

    fn history() -> DynamoHistory {
        let config = aws_sdk_dynamodb::Config::builder().behavior_version_latest().build();
        DynamoHistory::new(Client::from_conf(config), "table", HistorySettings::default())
    }

    /// A publish of `data_bytes` of data to `chat/general` by an authenticated user, placed as a
    /// busy channel's message would be.
    fn message(data_bytes: usize) -> Envelope {
        let data = RawValue::from_string(format!("\"{}\"", "x".repeat(data_bytes - 2))).expect("json");
        let sender = Sender {
            connection: Some(ConnectionId::parse("TWegAcC4EowCHnA=").expect("id")),
            user: Some("alice".into()),
        };
        let channel = Channel::parse("chat/general").expect("channel");
        let mut envelope = Envelope::message(channel, sender, 1_795_708_288_148, data).expect("fits");
        envelope.place(Position { offset: 1_234_567, epoch: Epoch::random() });
        envelope
    }

    #[test]
    fn what_a_message_costs_in_units_is_what_the_readme_says() {
        let history = history();
        let channel = Channel::parse("chat/general").expect("channel");
        let units = |bytes: usize, unit: usize| bytes.div_ceil(unit);
        let meta = {
            let mut item = DynamoHistory::key(&channel, META.to_owned());
            item.insert("Offset".into(), AttributeValue::N("1234567".into()));
            item.insert("Epoch".into(), AttributeValue::S(Epoch::random().to_string()));
            item.insert("Ttl".into(), AttributeValue::N(history.stream_ttl(&channel).to_string()));
            item
        };
        assert_eq!(
            units(billed_bytes(&meta), 1024),
            1,
            "the stream's state: one write unit per offset taken"
        );

        let kilobyte = billed_bytes(&history.message_item(&channel, &message(1024)));
        assert_eq!(
            units(kilobyte, 1024),
            2,
            "a message of 1 KB of data is a {kilobyte}-byte item: 1 + 2 = 3 write units"
        );
        let small = billed_bytes(&history.message_item(&channel, &message(750)));
        assert!(small <= 1024, "750 bytes of data fit an item of one write unit: {small} bytes");

        // A Query bills the items it reads together, rounded up to 4 KB, halved when eventually consistent.
        let read_units = |item_bytes: usize| units(100 * item_bytes, 4096).div_ceil(2);
        assert_eq!(read_units(1024), 13, "a recovery of 100 items of 1 KB");
        assert_eq!(read_units(kilobyte), 16, "of 100 messages of 1 KB of data ({kilobyte}-byte items)");
    }
}
