//! A fan-out count whose store cannot be reached: every call fails.

use async_trait::async_trait;

use crate::error::StoreError;
use crate::usage::Usage;

#[derive(Debug, Default)]
pub struct BrokenUsage;

#[async_trait]
impl Usage for BrokenUsage {
    async fn add(&self, _: &str, _: i64, _: u64) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("the usage store cannot be reached".into()))
    }

    async fn used(&self, _: &str, _: i64) -> Result<u64, StoreError> {
        Err(StoreError::Unavailable("the usage store cannot be reached".into()))
    }
}
