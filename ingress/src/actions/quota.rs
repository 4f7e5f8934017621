//! What a `publish` or a `broadcast` spends first: one of its connection's and its user's quota
//! ([`shared::quota`]) — a publish to a channel whose namespace has quotas of its own spends those.
//! Spent, the message is refused `rate_limited` with how long to wait — nothing asked of a hook,
//! numbered or queued. A connection that goes on sending after being refused (four times its quota
//! in refusals: no client that waits as it is told) is closed, and its user refused new connections
//! for [`BARRED_FOR`]: API Gateway's stage throttle is one bucket
//! for every client, spent before any function runs, so only closing a flood, and keeping it from
//! coming back at once, protects the others' share of it. Then the fan-out ceiling, when the stack
//! sets one: a sender whose messages have made its deliveries this minute is refused `rate_limited`
//! until the next minute. A quota store that fails lets the message through (fails open): quotas guard
//! the bill and the others' share, and refusing a message for a store's fault would lose it for
//! nothing.

use shared::Channel;
use shared::namespaces::Namespaces;
use shared::quota::{BARRED_FOR, Taken};
use shared::usage::{minute_of, sender_of};

use super::contract::Context;
use super::reply::Refusal;

/// Takes one message of the quota that counts for `channel` (`None`: a broadcast, the stack's).
pub(super) async fn take(cx: &Context<'_>, channel: Option<&Channel>) -> Result<(), Refusal> {
    let namespace = channel.and_then(|channel| {
        let quotas = cx.ports.namespaces.of(channel).quotas?;
        Some((Namespaces::name_of(channel), quotas))
    });
    match cx.ports.quotas.take(cx.connection, cx.identity.user(), namespace).await {
        Ok(Taken::Allowed) => within_ceiling(cx).await,
        Ok(Taken::Limited { retry_after, per_user, flooding }) => {
            tracing::debug!(connection = %cx.connection, per_user, "message refused: quota spent");
            if flooding && let Some(closer) = &cx.ports.closer {
                tracing::warn!(connection = %cx.connection, user = cx.identity.user(), "closing a connection flooding past its quota");
                // Its user barred first, so that no reconnect made the moment the close arrives
                // finds the door open.
                if let Some(user) = cx.identity.user()
                    && let Err(err) = cx.ports.quotas.bar(user, BARRED_FOR).await
                {
                    tracing::warn!(user, error = %err, "could not bar a flooder's new connections");
                }
                if let Err(err) = closer.close(cx.connection).await {
                    tracing::error!(connection = %cx.connection, error = %err, "could not close a flooding connection");
                }
            }
            // Rounded up: a client that waits exactly this long finds room.
            let retry_after_ms = u64::try_from(retry_after.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
            Err(Refusal::RateLimited { retry_after_ms: retry_after_ms.max(1), per_user })
        }
        Err(err) => {
            tracing::warn!(connection = %cx.connection, error = %err, "quotas unavailable; the message goes through");
            within_ceiling(cx).await
        }
    }
}

/// Refuses a message whose sender's messages have made the fan-out ceiling's deliveries this minute
/// (`FANOUT_PER_USER_PER_MINUTE`). A message under it goes however large its audience: the count is
/// of deliveries made, which the worker adds as it posts. A store that fails lets it through.
async fn within_ceiling(cx: &Context<'_>) -> Result<(), Refusal> {
    let Some(ceiling) = &cx.ports.ceiling else { return Ok(()) };
    let sender = sender_of(cx.identity.user(), cx.connection);
    let (minute, left) = minute_of(cx.received_at_ms);
    match ceiling.usage.used(&sender, minute).await {
        Ok(used) if used >= ceiling.per_minute => {
            tracing::info!(%sender, used, "message refused: the fan-out ceiling is spent for this minute");
            let retry_after_ms = u64::try_from(left.as_millis()).unwrap_or(60_000).max(1);
            Err(Refusal::FanoutSpent { retry_after_ms, per_minute: ceiling.per_minute })
        }
        Ok(_) => Ok(()),
        Err(err) => {
            tracing::warn!(%sender, error = %err, "the fan-out count is unavailable; the message goes through");
            Ok(())
        }
    }
}
