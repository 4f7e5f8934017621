//! A connection's outbound buffer, bounded in bytes.
//!
//! `@connections` posts and route responses wait here until the connection's writer has handed them
//! to the socket. A client that stops reading fills it; from then on posts are refused (API Gateway's
//! 429 for a client that does not keep up) and the connection stops reading the client's own messages
//! until there is room again, so a stuck client holds at most the bound plus one message of the
//! gateway's memory, never more.

use std::sync::atomic::{AtomicUsize, Ordering};

use axum::extract::ws::Message;
use tokio::sync::{Notify, mpsc};

/// One frame for the writer, with its size for the accounting.
#[derive(Debug)]
pub struct Outgoing {
    pub message: Message,
    pub bytes: usize,
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The buffer holds its bound already.
    Full,
    /// The writer has gone: the connection is closing.
    Closed,
}

/// The sending side; the writer holds the receiver.
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Outgoing>,
    queued: AtomicUsize,
    limit: usize,
    room: Notify,
}

impl Outbox {
    pub fn new(limit: usize) -> (Self, mpsc::UnboundedReceiver<Outgoing>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Self { tx, queued: AtomicUsize::new(0), limit, room: Notify::new() }, rx)
    }

    /// Queues `message` if it fits under the bound; an empty buffer takes any one message.
    pub fn try_push(&self, message: Message) -> Result<(), Refused> {
        let bytes = payload_len(&message);
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |queued| {
                (queued == 0 || queued + bytes <= self.limit).then_some(queued + bytes)
            })
            .map_err(|_| Refused::Full)?;
        self.send(Outgoing { message, bytes })
    }

    /// Queues `message` whatever the buffer holds: a route response, whose sender waits for
    /// [`Outbox::has_room`] before reading the next message, so at most one goes past the bound.
    pub fn push(&self, message: Message) -> Result<(), Refused> {
        let bytes = payload_len(&message);
        self.queued.fetch_add(bytes, Ordering::AcqRel);
        self.send(Outgoing { message, bytes })
    }

    fn send(&self, outgoing: Outgoing) -> Result<(), Refused> {
        let bytes = outgoing.bytes;
        self.tx.send(outgoing).map_err(|_| {
            self.queued.fetch_sub(bytes, Ordering::AcqRel);
            Refused::Closed
        })
    }

    /// The writer has handed `bytes` to the socket.
    pub fn sent(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Ordering::AcqRel);
        self.room.notify_waiters();
    }

    pub fn has_room(&self) -> bool {
        self.queued.load(Ordering::Acquire) < self.limit
    }

    /// Resolves once the buffer is below its bound.
    pub async fn room(&self) {
        loop {
            let notified = self.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_room() {
                return;
            }
            notified.await;
        }
    }

    pub fn queued_bytes(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

fn payload_len(message: &Message) -> usize {
    match message {
        Message::Text(text) => text.len(),
        Message::Binary(bytes) | Message::Ping(bytes) | Message::Pong(bytes) => bytes.len(),
        Message::Close(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: usize) -> Message {
        Message::Text("x".repeat(bytes).into())
    }

    #[test]
    fn posts_are_refused_once_the_bytes_reach_the_bound_and_accepted_again_as_they_drain() {
        let (outbox, mut rx) = Outbox::new(100);
        assert_eq!(outbox.try_push(text(60)), Ok(()));
        assert_eq!(outbox.try_push(text(40)), Ok(()));
        assert_eq!(outbox.try_push(text(1)), Err(Refused::Full));
        assert!(!outbox.has_room());

        let first = rx.try_recv().expect("queued");
        outbox.sent(first.bytes);
        assert!(outbox.has_room());
        assert_eq!(outbox.try_push(text(61)), Err(Refused::Full), "40 + 61 > 100");
        assert_eq!(outbox.try_push(text(60)), Ok(()));
    }

    #[test]
    fn an_empty_buffer_takes_one_message_larger_than_the_bound() {
        let (outbox, _rx) = Outbox::new(10);
        assert_eq!(outbox.try_push(text(50)), Ok(()));
        assert_eq!(outbox.try_push(text(1)), Err(Refused::Full));
    }

    #[test]
    fn a_closed_writer_refuses_and_releases_what_it_counted() {
        let (outbox, rx) = Outbox::new(100);
        drop(rx);
        assert_eq!(outbox.try_push(text(10)), Err(Refused::Closed));
        assert_eq!(outbox.push(text(10)), Err(Refused::Closed));
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn room_resolves_when_the_writer_drains_below_the_bound() {
        let (outbox, mut rx) = Outbox::new(10);
        outbox.push(text(30)).expect("queued");
        let outbox = std::sync::Arc::new(outbox);
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.room().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        let sent = rx.recv().await.expect("queued");
        outbox.sent(sent.bytes);
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("room in time")
            .expect("no panic");
    }
}
