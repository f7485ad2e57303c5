//! The cap on connections still in their handshake (`--max-pending-handshakes`).
//!
//! A connection is *pending* from the moment it is accepted until hyper has
//! read its first request head, TLS handshake included: until then it has
//! proven nothing and costs a socket and a task. `--handshake-timeout` bounds
//! how long each may stay pending; this bounds how many may be pending at
//! once, so a slow-loris flood holds at most the cap, not (connection rate x
//! handshake timeout) sockets.
//!
//! `listener.rs` admits every accepted socket. When the cap is reached, the
//! *oldest* pending connection is told to close ([`Eviction`]) and the new
//! one takes its place: a well-behaved client needs its slot for a round
//! trip or two, a silent one holds it as long as it can, so the oldest is
//! the likeliest to be an attacker's, and a flood cannot lock new clients
//! out unless it opens more than the cap within a client's handshake time.
//! (Closing the newcomer instead would let a hundred silent connections a
//! second keep the default cap full and turn every new client away.)
//!
//! A slot is given back when the first request reaches the app
//! ([`ReleaseOnFirstRequest`]) or when its connection ends before that.
//! Later request heads on a kept-alive connection take no slot: hyper
//! bounds each of them, and an idle keep-alive, by `--handshake-timeout`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// The pending connections, oldest first, and their cap; shared by the
/// accept loop and every connection task.
#[derive(Debug, Clone)]
pub(crate) struct PendingHandshakes {
    /// Reason for the lock: taken once per accept and once per release to
    /// push, pop or remove one entry; never held across an `.await`.
    queue: Arc<Mutex<Queue>>,
    cap: usize,
}

#[derive(Debug, Default)]
struct Queue {
    next_id: u64,
    /// Each pending connection's id and the sender that evicts it.
    oldest_first: VecDeque<(u64, oneshot::Sender<()>)>,
}

/// What admitting a connection gives its task, and whether another
/// connection was evicted to make room.
#[derive(Debug)]
pub(crate) struct Admitted {
    pub slot: PendingSlot,
    pub eviction: Eviction,
    pub evicted_oldest: bool,
}

impl PendingHandshakes {
    /// `cap` must be at least 1 (the CLI checks it).
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            queue: Arc::default(),
            cap,
        }
    }

    /// Admits a newly accepted connection, evicting the oldest pending one
    /// if `cap` are pending already.
    pub(crate) fn admit(&self) -> Admitted {
        let (evict, told) = oneshot::channel();
        let mut queue = self.queue.lock().expect("pending lock");
        let oldest = if queue.oldest_first.len() >= self.cap {
            queue.oldest_first.pop_front()
        } else {
            None
        };
        let id = queue.next_id;
        queue.next_id += 1;
        queue.oldest_first.push_back((id, evict));
        drop(queue);
        let evicted_oldest = oldest.is_some();
        if let Some((_, evict)) = oldest {
            // Fails only if that connection has just ended by itself.
            let _ = evict.send(());
        }
        Admitted {
            slot: PendingSlot {
                id,
                queue: self.queue.clone(),
            },
            eviction: Eviction { told: Some(told) },
            evicted_oldest,
        }
    }
}

/// One pending connection's slot: given back by [`PendingSlot::release`]
/// or, at the latest, when dropped with its connection.
#[derive(Debug)]
pub(crate) struct PendingSlot {
    id: u64,
    queue: Arc<Mutex<Queue>>,
}

impl PendingSlot {
    /// Gives the slot back; the connection can no longer be evicted. Later
    /// calls do nothing.
    pub(crate) fn release(&self) {
        let mut queue = self.queue.lock().expect("pending lock");
        // Slots are mostly released in the order they were taken, so the
        // search ends near the front.
        if let Some(at) = queue.oldest_first.iter().position(|(id, _)| *id == self.id) {
            queue.oldest_first.remove(at);
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        self.release();
    }
}

/// Tells a pending connection's task that it was evicted.
#[derive(Debug)]
pub(crate) struct Eviction {
    told: Option<oneshot::Receiver<()>>,
}

impl Eviction {
    /// Resolves when the connection is evicted; never, once its slot has
    /// been released. Safe to cancel and to call again after a cancel.
    pub(crate) async fn evicted(&mut self) {
        if let Some(told) = self.told.as_mut() {
            let evicted = told.await.is_ok();
            self.told = None;
            if evicted {
                return;
            }
        }
        std::future::pending().await
    }
}

/// A hyper service that gives back its connection's pending slot as soon
/// as a request head has been read, then hands the request to `inner`.
pub(crate) struct ReleaseOnFirstRequest<S> {
    pub inner: S,
    pub slot: PendingSlot,
}

impl<S, R> hyper::service::Service<R> for ReleaseOnFirstRequest<S>
where
    S: hyper::service::Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, request: R) -> Self::Future {
        self.slot.release();
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// True when `eviction` has fired (checked without waiting).
    async fn is_evicted(eviction: &mut Eviction) -> bool {
        tokio::time::timeout(Duration::ZERO, eviction.evicted())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn over_the_cap_the_oldest_pending_connection_is_evicted() {
        let pending = PendingHandshakes::new(2);
        let mut first = pending.admit();
        let mut second = pending.admit();
        assert!(!first.evicted_oldest && !second.evicted_oldest);
        let mut third = pending.admit();
        assert!(third.evicted_oldest);
        assert!(is_evicted(&mut first.eviction).await, "the oldest goes");
        assert!(!is_evicted(&mut second.eviction).await);
        assert!(!is_evicted(&mut third.eviction).await);
    }

    #[tokio::test]
    async fn a_released_slot_makes_room_and_is_never_evicted() {
        let pending = PendingHandshakes::new(2);
        let mut first = pending.admit();
        let _second = pending.admit();
        first.slot.release();
        first.slot.release();
        let third = pending.admit();
        assert!(!third.evicted_oldest, "the released slot is free");
        let fourth = pending.admit();
        assert!(fourth.evicted_oldest, "one slot was given back, not two");
        assert!(!is_evicted(&mut first.eviction).await);
    }

    #[tokio::test]
    async fn a_dropped_slot_makes_room() {
        let pending = PendingHandshakes::new(1);
        drop(pending.admit());
        assert!(!pending.admit().evicted_oldest);
    }
}
