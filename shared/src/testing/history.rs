//! History that fails every call, as DynamoDB does when it throttles or cannot be reached.

use async_trait::async_trait;

use crate::channel::Channel;
use crate::domain::Envelope;
use crate::error::StoreError;
use crate::history::{History, Page, Range, Stream};

/// Every call answers [`StoreError::Unavailable`].
#[derive(Debug, Default)]
pub struct BrokenHistory;

fn down() -> StoreError {
    StoreError::Unavailable("the history's table cannot be reached".into())
}

#[async_trait]
impl History for BrokenHistory {
    async fn stream(&self, _: &Channel) -> Result<Stream, StoreError> {
        Err(down())
    }

    async fn append(&self, _: &mut Envelope) -> Result<(), StoreError> {
        Err(down())
    }

    async fn append_once(&self, _: &mut Envelope) -> Result<bool, StoreError> {
        Err(down())
    }

    async fn read(&self, _: &Channel, _: Range, _: usize) -> Result<Page, StoreError> {
        Err(down())
    }
}
