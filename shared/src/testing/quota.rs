//! Quotas whose store cannot be reached: every call fails.

use async_trait::async_trait;

use crate::domain::ConnectionId;
use crate::quota::{QuotaError, QuotaOverride, Quotas, Taken};

#[derive(Debug, Default)]
pub struct BrokenQuotas;

#[async_trait]
impl Quotas for BrokenQuotas {
    async fn take(
        &self,
        _: &ConnectionId,
        _: Option<&str>,
        _: Option<(&str, QuotaOverride)>,
    ) -> Result<Taken, QuotaError> {
        Err(QuotaError::Unavailable("the quota store cannot be reached".into()))
    }

    async fn bar(&self, _: &str, _: std::time::Duration) -> Result<(), QuotaError> {
        Err(QuotaError::Unavailable("the quota store cannot be reached".into()))
    }

    async fn barred(&self, _: &str) -> Result<Option<std::time::Duration>, QuotaError> {
        Err(QuotaError::Unavailable("the quota store cannot be reached".into()))
    }
}
