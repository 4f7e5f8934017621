//! Presence over DynamoDB, in the connections' table.
//!
//! A channel's members are the partition `Pk = "PRES#<channel>"`: each member the item
//! `Sk = "M#<connection id>"` (`ConnectedAt`, `User`, `Info`, `Since`, `JoinLeave`, `Ttl` — its
//! connection's), and the channel's count the item `Sk = "META"` (`Clients`, `Seq`, `Ttl`).
//!
//! A join writes its member with one `UpdateItem` returning what was there (`ALL_OLD`): only a
//! member that was not there is counted, with `ADD Clients :1, Seq :1` returning the new values
//! (`UPDATED_NEW`). DynamoDB applies the updates of one item one at a time, so exactly one join sees
//! `Clients = 1` and exactly one leave (`DeleteItem` returning `ALL_OLD`, then `ADD Clients :-1`)
//! sees 0. `Watchers` counts the members that asked for `join` and `leave` frames, so that none is
//! queued for a channel nobody watches. A join costs 2 write units and a leave 2; a member that was
//! one already, 1 (2 if it changed `joinLeave`).
//! The counts a `presence` answer gives are read from the member items themselves, so they stay
//! exact even if a function stopped between a member's write and its count's.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use futures::stream::{self, BoxStream, StreamExt};

use super::port::{COUNT_MARGIN_S, Change, Member, Presence, Roster};
use crate::aws::store_error;
use crate::channel::Channel;
use crate::domain::{ConnectionId, ConnectionRef};
use crate::error::StoreError;
use crate::identity::Info;

const PRESENCE_PREFIX: &str = "PRES#";
const META: &str = "META";
const MEMBER_PREFIX: &str = "M#";

type Item = HashMap<String, AttributeValue>;

/// A channel's counts after an update.
struct Counts {
    clients: u64,
    seq: u64,
    watchers: u64,
}

/// Presence in a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoPresence {
    client: Client,
    table: String,
}

impl DynamoPresence {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn from_sdk(sdk: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), table)
    }

    fn pk(channel: &Channel) -> AttributeValue {
        AttributeValue::S(format!("{PRESENCE_PREFIX}{channel}"))
    }

    fn key(channel: &Channel, sk: String) -> Item {
        HashMap::from([("Pk".to_owned(), Self::pk(channel)), ("Sk".to_owned(), AttributeValue::S(sk))])
    }

    /// Moves the channel's counts: members by `clients` (a join or a leave, numbered) and watchers
    /// by `watchers`. The counts and change number after it.
    async fn count(
        &self,
        channel: &Channel,
        clients: i64,
        watchers: i64,
        ttl: Option<i64>,
    ) -> Result<Counts, StoreError> {
        let mut add = vec!["#w :w"];
        if clients != 0 {
            add.extend(["#c :c", "#s :one"]);
        }
        let mut expression = format!("ADD {}", add.join(", "));
        if ttl.is_some() {
            expression.push_str(" SET #t = :t");
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(channel, META.to_owned())))
            .update_expression(expression)
            .expression_attribute_names("#w", "Watchers")
            .expression_attribute_values(":w", AttributeValue::N(watchers.to_string()))
            .return_values(ReturnValue::AllNew);
        if clients != 0 {
            update = update
                .expression_attribute_names("#c", "Clients")
                .expression_attribute_names("#s", "Seq")
                .expression_attribute_values(":c", AttributeValue::N(clients.to_string()))
                .expression_attribute_values(":one", AttributeValue::N("1".into()));
        }
        if let Some(ttl) = ttl {
            update = update
                .expression_attribute_names("#t", "Ttl")
                .expression_attribute_values(":t", AttributeValue::N(ttl.to_string()));
        }
        let out = update.send().await.map_err(store_error)?;
        let attributes = out.attributes.unwrap_or_default();
        // A count below zero would mean a leave counted without its join: read as none.
        let count = |name: &str| {
            let n = attributes.get(name).and_then(|n| n.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
            u64::try_from(n.unwrap_or(0)).unwrap_or(0)
        };
        Ok(Counts { clients: count("Clients"), seq: count("Seq"), watchers: count("Watchers") })
    }
}

/// The attributes of a member's item besides its keys, as a join writes them.
fn member_attributes(member: &Member) -> Vec<(&'static str, AttributeValue)> {
    let mut attributes = vec![
        ("ConnectedAt", AttributeValue::N(member.connection.connected_at_ms.to_string())),
        ("Since", AttributeValue::N(member.since_ms.to_string())),
        ("JoinLeave", AttributeValue::Bool(member.join_leave)),
        ("Ttl", AttributeValue::N(member.expires_at_s.to_string())),
    ];
    if let Some(user) = &member.user {
        attributes.push(("User", AttributeValue::S(user.clone())));
    }
    if let Some(info) = &member.info {
        attributes.push(("Info", AttributeValue::S(info.as_str().to_owned())));
    }
    attributes
}

/// A member item, read back; `None` for anything that is not one.
fn member_of(item: &Item) -> Option<Member> {
    let number = |name: &str| item.get(name).and_then(|n| n.as_n().ok()).and_then(|n| n.parse::<i64>().ok());
    let id = item.get("Sk")?.as_s().ok()?.strip_prefix(MEMBER_PREFIX)?;
    Some(Member {
        connection: ConnectionRef {
            id: ConnectionId::parse(id).ok()?,
            connected_at_ms: number("ConnectedAt").unwrap_or(0),
        },
        user: item.get("User").and_then(|u| u.as_s().ok()).cloned(),
        info: item.get("Info").and_then(|i| i.as_s().ok()).and_then(|text| Info::parse(text).ok()),
        since_ms: number("Since").unwrap_or(0),
        join_leave: item.get("JoinLeave").and_then(|b| b.as_bool().ok()).copied().unwrap_or(false),
        expires_at_s: number("Ttl").unwrap_or(i64::MAX),
    })
}

#[async_trait]
impl Presence for DynamoPresence {
    async fn join(&self, channel: &Channel, member: &Member) -> Result<Option<Change>, StoreError> {
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(channel, format!("{MEMBER_PREFIX}{}", member.connection.id))))
            .return_values(ReturnValue::AllOld);
        let mut set = Vec::new();
        for (n, (name, value)) in member_attributes(member).into_iter().enumerate() {
            // A member that joins again keeps the time it first joined.
            set.push(if name == "Since" {
                format!("#a{n} = if_not_exists(#a{n}, :v{n})")
            } else {
                format!("#a{n} = :v{n}")
            });
            update = update
                .expression_attribute_names(format!("#a{n}"), name)
                .expression_attribute_values(format!(":v{n}"), value);
        }
        let old =
            update.update_expression(format!("SET {}", set.join(", "))).send().await.map_err(store_error)?;
        if let Some(old) = old.attributes.as_ref().and_then(member_of) {
            if old.join_leave != member.join_leave {
                self.count(channel, 0, if member.join_leave { 1 } else { -1 }, None).await?;
            }
            return Ok(None);
        }
        let ttl = member.expires_at_s.saturating_add(COUNT_MARGIN_S);
        let counts = self.count(channel, 1, i64::from(member.join_leave), Some(ttl)).await?;
        Ok(Some(Change {
            member: member.clone(),
            clients: counts.clients,
            seq: counts.seq,
            watchers: counts.watchers,
        }))
    }

    async fn leave(
        &self,
        channel: &Channel,
        connection: &ConnectionId,
    ) -> Result<Option<Change>, StoreError> {
        let old = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(channel, format!("{MEMBER_PREFIX}{connection}"))))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(store_error)?;
        let Some(member) = old.attributes.as_ref().and_then(member_of) else { return Ok(None) };
        let counts = self.count(channel, -1, -i64::from(member.join_leave), None).await?;
        Ok(Some(Change { member, clients: counts.clients, seq: counts.seq, watchers: counts.watchers }))
    }

    async fn members(&self, channel: &Channel, now_s: i64) -> Result<Roster, StoreError> {
        let mut roster = Roster::default();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("Pk = :pk AND begins_with(Sk, :m)")
                .expression_attribute_values(":pk", Self::pk(channel))
                .expression_attribute_values(":m", AttributeValue::S(MEMBER_PREFIX.to_owned()))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(store_error)?;
            for member in page.items().iter().filter_map(member_of) {
                if member.expires_at_s <= now_s {
                    roster.expired.push(member.connection.id);
                } else {
                    roster.members.push(member);
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(roster);
            }
        }
    }

    fn watchers(&self, channel: &Channel) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        let pk = Self::pk(channel);
        stream::unfold(Some(None), move |cursor: Option<Option<Item>>| {
            let pk = pk.clone();
            async move {
                let start = cursor?;
                let page = self
                    .client
                    .query()
                    .table_name(&self.table)
                    .key_condition_expression("Pk = :pk AND begins_with(Sk, :m)")
                    .filter_expression("JoinLeave = :yes")
                    .projection_expression("Sk, ConnectedAt, JoinLeave, #t")
                    .expression_attribute_names("#t", "Ttl")
                    .expression_attribute_values(":pk", pk)
                    .expression_attribute_values(":m", AttributeValue::S(MEMBER_PREFIX.to_owned()))
                    .expression_attribute_values(":yes", AttributeValue::Bool(true))
                    .set_exclusive_start_key(start)
                    .send()
                    .await;
                match page {
                    Ok(page) => {
                        let refs = page.items().iter().filter_map(member_of).map(|m| m.connection).collect();
                        Some((Ok(refs), page.last_evaluated_key.map(Some)))
                    }
                    Err(err) => Some((Err(store_error(err)), None)),
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Info;

    /// An item's size as DynamoDB bills it: each attribute's name and value (a number about one
    /// byte for two digits, plus one; a boolean one byte).
    fn billed_bytes(attributes: &[(String, AttributeValue)]) -> usize {
        attributes
            .iter()
            .map(|(name, value)| {
                name.len()
                    + match value {
                        AttributeValue::S(s) => s.len(),
                        AttributeValue::N(n) => n.trim_start_matches('-').len().div_ceil(2) + 1,
                        AttributeValue::Bool(_) => 1,
                        other => panic!("an attribute this adapter does not write: {other:?}"),
                    }
            })
            .sum()
    }

    fn member_item(channel: &Channel, member: &Member) -> Vec<(String, AttributeValue)> {
        let key = DynamoPresence::key(channel, format!("{MEMBER_PREFIX}{}", member.connection.id));
        key.into_iter().chain(member_attributes(member).into_iter().map(|(n, v)| (n.to_owned(), v))).collect()
    }

    fn member(info_bytes: usize) -> Member {
        Member {
            connection: ConnectionRef {
                id: ConnectionId::parse("TWegAcC4EowCHnA=").expect("id"),
                connected_at_ms: 1_795_708_288_148,
            },
            user: Some("a-user-sub-of-36-characters-uuid-lik".into()),
            info: (info_bytes > 0).then(|| {
                Info::parse(&serde_json::json!({ "name": "x".repeat(info_bytes - 11) }).to_string())
                    .expect("info")
            }),
            since_ms: 1_795_708_288_148,
            join_leave: true,
            expires_at_s: 1_795_716_088,
        }
    }

    /// Write units: one per KB of the larger of the item before and after (here, the member's).
    fn write_units(bytes: usize) -> usize {
        bytes.div_ceil(1024).max(1)
    }

    #[test]
    fn what_a_membership_costs_in_units_is_what_the_readme_says() {
        let channel = Channel::parse("chat/a-channel-name-of-some-length").expect("channel");
        let bare = billed_bytes(&member_item(&channel, &member(0)));
        // `docs/protocol.md`'s 150 bytes a member without info (a 36-character sub, a 35-character channel).
        assert!((140..=160).contains(&bare), "{bare} bytes");
        // A join is the member's UpdateItem and the count's: 2 units with an info of up to ~850 bytes.
        let with_info = billed_bytes(&member_item(&channel, &member(850)));
        assert!(with_info <= 1024, "{with_info} bytes");
        assert_eq!(write_units(with_info) + 1, 2);
        let full = billed_bytes(&member_item(&channel, &member(1024)));
        assert_eq!(write_units(full) + 1, 3, "a full 1 KB info costs a unit more");
        let meta: Vec<(String, AttributeValue)> = DynamoPresence::key(&channel, META.to_owned())
            .into_iter()
            .chain([
                ("Clients".to_owned(), AttributeValue::N("100000".into())),
                ("Watchers".to_owned(), AttributeValue::N("100000".into())),
                ("Seq".to_owned(), AttributeValue::N("9999999999".into())),
                ("Ttl".to_owned(), AttributeValue::N("1795716088".into())),
            ])
            .collect();
        assert_eq!(write_units(billed_bytes(&meta)), 1);
        // presence of 1,000 members, eventually consistent: a read unit per 4 KB, halved.
        let read_units = |bytes: usize| (bytes * 1000).div_ceil(4096).div_ceil(2);
        assert_eq!(read_units(bare), 19, "{bare} bytes a member");
        let heavy = billed_bytes(&member_item(&channel, &member(1024)));
        assert_eq!(read_units(heavy), 145, "{heavy} bytes a member");
    }
}
