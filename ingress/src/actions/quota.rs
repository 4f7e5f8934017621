//! What a `publish` or a `broadcast` spends first: one of its connection's and its user's quota
//! ([`shared::quota`]). Spent, the message is refused `rate_limited` with how long to wait — nothing
//! asked of a hook, numbered or queued. A quota store that fails lets the message through (fails
//! open): quotas guard the bill and the others' share, and refusing a message for a store's fault
//! would lose it for nothing.

use shared::quota::Taken;

use super::contract::Context;
use super::reply::Refusal;

pub(super) async fn take(cx: &Context<'_>) -> Result<(), Refusal> {
    match cx.ports.quotas.take(cx.connection, cx.identity.user()).await {
        Ok(Taken::Allowed) => Ok(()),
        Ok(Taken::Limited { retry_after, per_user }) => {
            tracing::debug!(connection = %cx.connection, per_user, "message refused: quota spent");
            // Rounded up: a client that waits exactly this long finds room.
            let retry_after_ms = u64::try_from(retry_after.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            Err(Refusal::RateLimited { retry_after_ms: retry_after_ms.max(1), per_user })
        }
        Err(err) => {
            tracing::warn!(connection = %cx.connection, error = %err, "quotas unavailable; the message goes through");
            Ok(())
        }
    }
}
