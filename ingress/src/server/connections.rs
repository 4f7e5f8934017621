//! Whom a `disconnect` or an `unsubscribe` reaches: one connection, or every connection of a user —
//! the subscribers of their own channel, `user/<sub>`, which `$connect` subscribes each of them to —
//! and what they are told, through the ingress's own `@connections` (the [`Closer`] port).

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use shared::error::PostError;
use shared::poster::Closer;
use shared::{Channel, ChannelPattern, ConnectionId, ConnectionRef};

use super::contract::Call;
use super::error::ServerError;

/// How many connections are told and closed at once: 100 connections of one user close within a
/// second locally (BENCHMARKS.md, *Server API*), far inside API Gateway's 10,000 calls a second.
pub const AT_ONCE: usize = 32;

/// Every connection of the user whose own channel is `own`.
pub async fn of_user(call: &Call<'_>, own: &Channel) -> Result<Vec<ConnectionRef>, ServerError> {
    let pattern = ChannelPattern::from(own.clone());
    let pages: Vec<Vec<ConnectionRef>> =
        call.ports.store.subscribers(&pattern).try_collect().await.map_err(|err| {
            tracing::error!(caller = %call.caller, error = %err, "could not list a user's connections");
            ServerError::Unavailable("the user's connections could not be listed; send it again".into())
        })?;
    Ok(pages.into_iter().flatten().collect())
}

/// The ingress's `@connections`, or why there is none.
pub fn closer<'a>(call: &Call<'a>) -> Result<&'a dyn Closer, ServerError> {
    call.ports.closer.as_deref().ok_or_else(|| {
        ServerError::Unavailable(
            "this deployment has no @connections endpoint to reach connections with".into(),
        )
    })
}

/// Tells each of `connections` `frame` (when there is one) and closes it when `close`, [`AT_ONCE`]
/// at a time: how many were reached, and how many could not be (gone ones are neither).
pub async fn tell(
    closer: &dyn Closer,
    connections: &[ConnectionId],
    frame: Option<Bytes>,
    close: bool,
) -> (usize, usize) {
    let outcomes: Vec<Result<bool, PostError>> = futures::stream::iter(connections.to_vec())
        .map(|connection| reach(closer, connection, frame.clone(), close))
        .buffer_unordered(AT_ONCE)
        .collect()
        .await;
    let reached = outcomes.iter().filter(|outcome| matches!(outcome, Ok(true))).count();
    let failed = outcomes.iter().filter(|outcome| outcome.is_err()).count();
    for err in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        tracing::warn!(error = %err, "could not reach a connection");
    }
    (reached, failed)
}

/// Tells one connection, and closes it: whether it was there to reach.
async fn reach(
    closer: &dyn Closer,
    connection: ConnectionId,
    frame: Option<Bytes>,
    close: bool,
) -> Result<bool, PostError> {
    if let Some(frame) = frame {
        match closer.say(&connection, frame).await {
            Err(PostError::Gone) => return Ok(false),
            // Told or not, a disconnect still closes.
            Err(err) if !close => return Err(err),
            _ => {}
        }
    }
    if close {
        closer.close(&connection).await?;
    }
    Ok(true)
}
