//! Presence that fails every call, as DynamoDB does when it throttles or cannot be reached.

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::channel::Channel;
use crate::domain::{ConnectionId, ConnectionRef};
use crate::error::StoreError;
use crate::presence::{Change, Member, Presence, Roster};

/// Every call answers [`StoreError::Unavailable`].
#[derive(Debug, Default)]
pub struct BrokenPresence;

fn down() -> StoreError {
    StoreError::Unavailable("the members' table cannot be reached".into())
}

#[async_trait]
impl Presence for BrokenPresence {
    async fn join(&self, _: &Channel, _: &Member) -> Result<Option<Change>, StoreError> {
        Err(down())
    }

    async fn leave(&self, _: &Channel, _: &ConnectionId) -> Result<Option<Change>, StoreError> {
        Err(down())
    }

    async fn members(&self, _: &Channel, _: i64) -> Result<Roster, StoreError> {
        Err(down())
    }

    fn watchers(&self, _: &Channel) -> BoxStream<'_, Result<Vec<ConnectionRef>, StoreError>> {
        stream::iter([Err(down())]).boxed()
    }
}
