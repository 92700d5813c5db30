//! The bounded outbound queue between a session actor and its socket writer, with the
//! back-pressure rules of ARCHITECTURE.md: a newer param update replaces a queued one for
//! the same address, streams and gestures are shed oldest-first, and anything else that does
//! not fit is reported so the session can tell the client and, if it stays behind, drop it.

use std::collections::VecDeque;
use std::sync::Mutex;

use actix_ws::CloseReason;
use bytes::Bytes;
use clasp_proto::Address;
use tokio::sync::Notify;

use crate::messages::DeliveryClass;

/// One item for the writer.
#[derive(Debug)]
pub enum Outgoing {
    /// A CLASP frame.
    Frame {
        /// Bytes.
        frame: Bytes,
        /// Back-pressure class.
        class: DeliveryClass,
        /// Address, for param conflation.
        address: Option<Address>,
    },
    /// WS ping (liveness).
    Ping,
    /// WS pong (answer to the client's ping).
    Pong(Bytes),
    /// Close the socket after everything before it was written.
    Close(Option<CloseReason>),
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Replaced a queued update for the same address (counts as a drop of the old one).
    Conflated,
    /// Queue full: a stream/gesture frame was shed (counts as a drop).
    Shed,
    /// Queue full of frames that may not be dropped: queued beyond the soft limit.
    Overflow,
    /// Past the hard limit: the session must disconnect.
    Disconnect,
}

struct State {
    items: VecDeque<Outgoing>,
    frames: usize,
    closed: bool,
}

/// The queue; shared by the session actor (producer) and the writer task (consumer).
pub struct OutboundQueue {
    state: Mutex<State>,
    notify: Notify,
    /// Woken when the queue drops below its soft limit or closes.
    drained: Notify,
    soft_limit: usize,
}

impl OutboundQueue {
    /// A queue that starts applying back-pressure at `soft_limit` frames and disconnects at
    /// twice that.
    pub fn new(soft_limit: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                frames: 0,
                closed: false,
            }),
            notify: Notify::new(),
            drained: Notify::new(),
            soft_limit: soft_limit.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.lock().frames
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits while the queue is at its soft limit: the session's reader stops taking the
    /// client's input, since its replies would only pile up (a pipelining client is slowed
    /// down by TCP instead of cut off). Returns at once when the queue is closed.
    pub async fn wait_until_drained(&self) {
        loop {
            let drained = self.drained.notified();
            {
                let s = self.lock();
                if s.closed || s.frames < self.soft_limit {
                    return;
                }
            }
            drained.await;
        }
    }

    /// Queues a control item or an urgent frame (never subject to limits).
    pub fn push_control(&self, item: Outgoing) {
        let mut s = self.lock();
        if s.closed {
            return;
        }
        match item {
            Outgoing::Close(_) => s.closed = true,
            Outgoing::Frame { .. } => s.frames += 1,
            _ => {}
        }
        let closing = s.closed;
        s.items.push_back(item);
        drop(s);
        self.notify.notify_one();
        if closing {
            self.drained.notify_waiters();
        }
    }

    /// Queues a frame under the back-pressure rules.
    pub fn push(&self, frame: Bytes, class: DeliveryClass, address: Option<Address>) -> Pushed {
        let mut s = self.lock();
        if s.closed {
            return Pushed::Queued;
        }
        let mut outcome = Pushed::Queued;
        if s.frames >= self.soft_limit {
            match class {
                DeliveryClass::Param => {
                    let slot = s.items.iter_mut().rev().find(|i| {
                        matches!(i, Outgoing::Frame { class: DeliveryClass::Param, address: Some(a), .. }
                            if Some(a) == address.as_ref())
                    });
                    if let Some(Outgoing::Frame { frame: queued, .. }) = slot {
                        *queued = frame;
                        return Pushed::Conflated;
                    }
                    outcome = Self::shed_one(&mut s).unwrap_or(Pushed::Overflow);
                }
                DeliveryClass::Lossy => match Self::shed_one(&mut s) {
                    Some(p) => outcome = p,
                    None => return Pushed::Shed,
                },
                DeliveryClass::Reliable => {
                    outcome = Self::shed_one(&mut s).unwrap_or(Pushed::Overflow)
                }
            }
        }
        if s.frames >= self.soft_limit * 2 {
            return Pushed::Disconnect;
        }
        s.items.push_back(Outgoing::Frame {
            frame,
            class,
            address,
        });
        s.frames += 1;
        drop(s);
        self.notify.notify_one();
        outcome
    }

    fn shed_one(s: &mut State) -> Option<Pushed> {
        let pos = s.items.iter().position(|i| {
            matches!(
                i,
                Outgoing::Frame {
                    class: DeliveryClass::Lossy,
                    ..
                }
            )
        })?;
        s.items.remove(pos);
        s.frames = s.frames.saturating_sub(1);
        Some(Pushed::Shed)
    }

    /// Next item; `None` once closed and empty.
    pub async fn pop(&self) -> Option<Outgoing> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(item) = s.items.pop_front() {
                    if matches!(item, Outgoing::Frame { .. }) {
                        s.frames = s.frames.saturating_sub(1);
                        if s.frames + 1 == self.soft_limit {
                            self.drained.notify_waiters();
                        }
                    }
                    return Some(item);
                }
                if s.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Stops the writer once the queue is empty.
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
        self.drained.notify_waiters();
    }
}

/// Writes queued items to the socket until the queue closes or the socket does.
pub async fn run_writer(queue: std::sync::Arc<OutboundQueue>, mut ws: actix_ws::Session) {
    while let Some(item) = queue.pop().await {
        let result = match item {
            Outgoing::Frame { frame, .. } => ws.binary(frame).await,
            Outgoing::Ping => ws.ping(b"").await,
            Outgoing::Pong(data) => ws.pong(&data).await,
            Outgoing::Close(reason) => {
                let _ = ws.close(reason).await;
                return;
            }
        };
        if result.is_err() {
            break;
        }
    }
    queue.close();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<Address> {
        Some(Address::parse(s).expect("valid"))
    }

    #[test]
    fn params_conflate_streams_shed_events_overflow_then_disconnect() {
        let q = OutboundQueue::new(2);
        assert_eq!(
            q.push(Bytes::from_static(b"p1"), DeliveryClass::Param, addr("/p")),
            Pushed::Queued
        );
        assert_eq!(
            q.push(Bytes::from_static(b"s1"), DeliveryClass::Lossy, addr("/s")),
            Pushed::Queued
        );
        // Full: a newer /p replaces the queued one.
        assert_eq!(
            q.push(Bytes::from_static(b"p2"), DeliveryClass::Param, addr("/p")),
            Pushed::Conflated
        );
        // Full: an event sheds the stream frame to make room.
        assert_eq!(
            q.push(Bytes::from_static(b"e1"), DeliveryClass::Reliable, None),
            Pushed::Shed
        );
        // Full of undroppable frames: queued beyond the soft limit, reported.
        assert_eq!(
            q.push(Bytes::from_static(b"e2"), DeliveryClass::Reliable, None),
            Pushed::Overflow
        );
        assert_eq!(
            q.push(Bytes::from_static(b"s2"), DeliveryClass::Lossy, addr("/s")),
            Pushed::Shed
        );
        assert_eq!(
            q.push(Bytes::from_static(b"e3"), DeliveryClass::Reliable, None),
            Pushed::Overflow
        );
        assert_eq!(
            q.push(Bytes::from_static(b"e4"), DeliveryClass::Reliable, None),
            Pushed::Disconnect
        );
        assert_eq!(q.len(), 4);
    }

    #[actix::test]
    async fn a_full_queue_holds_the_reader_until_one_frame_is_written() {
        let q = std::sync::Arc::new(OutboundQueue::new(2));
        q.push(Bytes::from_static(b"a"), DeliveryClass::Reliable, None);
        q.push(Bytes::from_static(b"b"), DeliveryClass::Reliable, None);
        let waiter = tokio::spawn({
            let q = q.clone();
            async move { q.wait_until_drained().await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!waiter.is_finished(), "held while full");
        assert!(q.pop().await.is_some());
        tokio::time::timeout(std::time::Duration::from_secs(1), waiter)
            .await
            .expect("released after a pop")
            .expect("joins");
    }

    #[actix::test]
    async fn pop_returns_in_order_then_none_after_close() {
        let q = OutboundQueue::new(8);
        q.push(Bytes::from_static(b"a"), DeliveryClass::Reliable, None);
        q.push(Bytes::from_static(b"b"), DeliveryClass::Reliable, None);
        q.close();
        let mut got = Vec::new();
        while let Some(Outgoing::Frame { frame, .. }) = q.pop().await {
            got.push(frame);
        }
        assert_eq!(
            got,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
    }
}
