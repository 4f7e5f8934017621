//! The live connections: what API Gateway itself knows, as opposed to the application's store.
//!
//! `@connections` calls land here. A connection is registered only once its handshake has completed
//! and is removed before its `$disconnect` runs, so a post to it outside that window answers 410 as
//! on AWS.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;
use shared::ConnectionId;
use tokio_util::sync::CancellationToken;

use crate::integration::Connection;
use crate::outbox::{Outbox, Refused};

/// One live connection.
#[derive(Debug)]
pub struct Live {
    pub info: Connection,
    last_active_ms: AtomicI64,
    pub outbox: Outbox,
    /// Cancelled by `DELETE @connections/{id}`; separate from the outbox so a full buffer cannot
    /// block it.
    pub deleted: CancellationToken,
    /// Cancelled by fault injection: the connection is cut with no close frame and no `$disconnect`.
    pub lost: CancellationToken,
}

impl Live {
    pub fn new(info: Connection, outbox: Outbox) -> Self {
        let now = info.connected_at_ms;
        Self {
            info,
            last_active_ms: AtomicI64::new(now),
            outbox,
            deleted: CancellationToken::new(),
            lost: CancellationToken::new(),
        }
    }

    pub fn touch(&self, now_ms: i64) {
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
    }

    pub fn last_active_ms(&self) -> i64 {
        self.last_active_ms.load(Ordering::Relaxed)
    }
}

/// Why a frame could not be handed to a connection.
#[derive(Debug, PartialEq, Eq)]
pub enum SendFailure {
    /// No such connection, or it is closing: 410.
    Gone,
    /// Its outbound buffer holds its bound in bytes: 429, as API Gateway answers for a client that
    /// does not keep up.
    Full,
}

#[derive(Debug, Default)]
pub struct Registry {
    live: RwLock<HashMap<ConnectionId, Arc<Live>>>,
}

impl Registry {
    pub fn insert(&self, live: Arc<Live>) {
        self.write().insert(live.info.id.clone(), live);
    }

    pub fn remove(&self, id: &ConnectionId) -> Option<Arc<Live>> {
        self.write().remove(id)
    }

    pub fn get(&self, id: &ConnectionId) -> Option<Arc<Live>> {
        self.live.read().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }

    pub fn len(&self) -> usize {
        self.live.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues `data` for the connection: a text frame if it is UTF-8, as API Gateway sends it, else
    /// a binary one.
    pub fn send(&self, id: &ConnectionId, data: Bytes) -> Result<(), SendFailure> {
        let live = self.get(id).ok_or(SendFailure::Gone)?;
        let message = match Utf8Bytes::try_from(data.clone()) {
            Ok(text) => Message::Text(text),
            Err(_) => Message::Binary(data),
        };
        live.outbox.try_push(message).map_err(|refused| match refused {
            Refused::Full => SendFailure::Full,
            Refused::Closed => SendFailure::Gone,
        })
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ConnectionId, Arc<Live>>> {
        self.live.write().unwrap_or_else(PoisonError::into_inner)
    }
}
