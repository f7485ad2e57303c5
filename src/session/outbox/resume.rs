//! Resuming a symbol on a new connection (`subscribe` with `from`): the
//! updates after the client's last seq, from the updates fetched elsewhere
//! (`session::backfill`, on a NATS edge) and then this node's ring, each
//! with `n` counting what neither holds, then live.
//!
//! `resume` emits every update in seq order through the outbox's
//! [`Emitter`], so a seq is sent at most once whatever the two sources
//! overlap, and `resumed` is exactly what the ticks' `n` add up to.

use super::{Collected, Delivery, Emitter, Outbox, Subscription};
use crate::codec::EncodedTick;
use crate::router::Grant;
use crate::symbols::SymbolCell;
use bytes::Bytes;
use std::sync::Arc;
use tokio::time::Instant;

impl Outbox {
    /// Where this node's ring cannot serve a resume of `grant` from
    /// `from`: the last seq to fetch elsewhere, the one before the unbroken
    /// run of retained updates that ends at the latest. `None` when nothing
    /// needs fetching: the ring reaches back to `from + 1`, or the resume
    /// sends no history (`from` at or beyond the latest, a symbol paced by
    /// `max_hz`, or one this connection already streams).
    pub fn backfill_until(&self, grant: &Grant, from: u64, max_hz: f64) -> Option<u64> {
        let granted_seq = grant.latest.as_ref().map_or(0, |t| t.seq());
        if from >= granted_seq || max_hz > 0.0 || self.subs.contains_key(&grant.id) {
            return None;
        }
        let cell = self.table.cell(grant.id);
        let latest_seq = cell.latest_seq();
        // The latest itself is always at hand, ring or not.
        let held_from = cell
            .ring()
            .map_or(latest_seq, |ring| ring.unbroken_since(from, latest_seq))
            .min(latest_seq);
        (held_from > from + 1).then(|| held_from - 1)
    }

    /// Resumes `grant` for a client that holds every update up to `from`
    /// (its previous connection's last seq, in this epoch): writes every
    /// update after `from` into `frames`, in order, each with `n = 0`
    /// except where neither `fetched` (updates after `from` from elsewhere,
    /// oldest first) nor the ring reaches back (there `n` counts what
    /// cannot be sent), and then streams live from the last one sent. A
    /// symbol paced by `max_hz` gets the latest value only.
    ///
    /// Returns the updates after `from` that could not be sent, or `None`
    /// when `from` is beyond the latest seq, which no client of this seq
    /// space can hold: the caller subscribes it afresh. A symbol this
    /// connection already streams continues as it was (`Some(0)`).
    #[allow(clippy::too_many_arguments)]
    pub fn resume(
        &mut self,
        grant: &Grant,
        from: u64,
        fetched: &[Arc<EncodedTick>],
        delivery: Delivery,
        now: Instant,
        frames: &mut Vec<Bytes>,
        out: &mut Collected,
    ) -> Option<u64> {
        let latest_seq = grant.latest.as_ref().map_or(0, |t| t.seq());
        if from > latest_seq {
            return None;
        }
        self.excluded.remove(&grant.id);
        if let Some(sub) = self.subs.get_mut(&grant.id) {
            sub.renew(delivery);
            return Some(0);
        }
        let mut sub = Subscription::new(from, delivery, now);
        let mut sent_ts = Vec::new();
        let mut emit = Emitter {
            frame: &mut self.frame,
            frames,
            sent_ts: &mut sent_ts,
            out,
            max_frame_bytes: self.max_frame_bytes,
            filled: 0,
        };
        let events_before = emit.out.events;
        let cell = self.table.cell(grant.id);
        // Up to the latest read once: later updates are marked in the
        // mailbox and follow live.
        let latest = cell.load();
        if let Some(latest) = latest.as_ref().filter(|t| t.seq() > from) {
            if sub.interval.is_none() {
                for tick in fetched {
                    if tick.seq() > sub.last_seq && tick.seq() <= latest.seq() {
                        emit.tick(tick, &mut sub);
                    }
                }
                replay_retained(cell, latest.seq(), &mut sub, &mut emit);
            }
            if latest.seq() > sub.last_seq {
                emit.tick(latest, &mut sub);
            }
        }
        let sent = emit.out.events - events_before;
        if let Some(interval) = sub.interval.filter(|_| sent > 0) {
            sub.next_due = now + interval;
        }
        let lost = sub.last_seq - from - sent;
        self.subs.insert(grant.id, sub);
        Some(lost)
    }

    /// Closes the frame [`resume`](Self::resume) was filling.
    pub fn finish_frame(&mut self, frames: &mut Vec<Bytes>) {
        if !self.frame.is_empty() {
            frames.push(self.frame.finish());
        }
    }
}

/// Sends every update of `cell` the ring still holds after `sub.last_seq`,
/// up to `latest_seq`, whatever its age (a resume asked for them).
/// `latest_seq` must have been read before the ring, so the ring holds
/// every retained update up to it.
fn replay_retained(
    cell: &SymbolCell,
    latest_seq: u64,
    sub: &mut Subscription,
    emit: &mut Emitter<'_>,
) {
    let ring = cell.load_ring();
    let Some(ring) = ring.as_ref() else {
        return;
    };
    for seq in ring.candidates_after(sub.last_seq, latest_seq) {
        if let Some(retained) = ring.load(seq) {
            emit.tick(&retained, sub);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Fixture;
    use super::*;
    use crate::protocol::Tick;

    fn fetched(seqs: impl IntoIterator<Item = u64>) -> Vec<Arc<EncodedTick>> {
        seqs.into_iter()
            .map(|seq| Arc::new(EncodedTick::new(Tick::test("AAPL", seq))))
            .collect()
    }

    /// A new connection (no subscription yet) on a node whose ring holds
    /// AAPL's `held` updates.
    fn node(history: usize, held: impl IntoIterator<Item = u64>) -> Fixture {
        let mut fx = Fixture::new(history, 0.0, false, &mut Vec::new());
        for seq in held {
            fx.publish(seq);
        }
        fx.outbox.remove_all();
        fx
    }

    fn resume(fx: &mut Fixture, from: u64, fetched: &[Arc<EncodedTick>]) -> Option<u64> {
        let grant = fx.grant();
        let mut out = Collected::default();
        let lost = fx.outbox.resume(
            &grant,
            from,
            fetched,
            Delivery::default(),
            Instant::now(),
            &mut fx.frames,
            &mut out,
        );
        fx.outbox.finish_frame(&mut fx.frames);
        lost
    }

    #[tokio::test(start_paused = true)]
    async fn a_ring_that_reaches_back_needs_no_backfill() {
        let fx = node(1024, 1..=50);
        assert_eq!(fx.outbox.backfill_until(&fx.grant(), 10, 0.0), None);
        assert_eq!(fx.outbox.backfill_until(&fx.grant(), 50, 0.0), None);
        assert_eq!(
            fx.outbox.backfill_until(&fx.grant(), 10, 4.0),
            None,
            "paced: latest only"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_or_broken_ring_asks_for_what_comes_before_its_unbroken_end() {
        // A new edge: the snapshot (40), then live from 41.
        let fx = node(1024, 40..=45);
        assert_eq!(fx.outbox.backfill_until(&fx.grant(), 10, 0.0), Some(39));
        assert_eq!(fx.outbox.backfill_until(&fx.grant(), 38, 0.0), Some(39));
        assert_eq!(fx.outbox.backfill_until(&fx.grant(), 39, 0.0), None);
        // An edge that served the symbol before, then again from 30.
        let fx = node(1024, (1..=10).chain(30..=35));
        assert_eq!(fx.outbox.backfill_until(&fx.grant(), 5, 0.0), Some(29));
        // Without a ring only the latest is held.
        let fx = node(0, 1..=20);
        assert_eq!(fx.outbox.backfill_until(&fx.grant(), 5, 0.0), Some(19));
    }

    #[tokio::test(start_paused = true)]
    async fn fetched_updates_go_first_then_the_ring_with_no_seq_twice() {
        let mut fx = node(1024, 40..=45);
        // Overlaps the ring at 40 and 41; 35 is not retained at the source.
        let lost = resume(&mut fx, 30, &fetched((31..=34).chain(36..=41)));
        let mut expected = vec![(31, 0), (32, 0), (33, 0), (34, 0), (36, 1)];
        expected.extend((37..=45).map(|s| (s, 0)));
        assert_eq!(fx.sent(), expected);
        assert_eq!(lost, Some(1), "exactly seq 35");
    }

    #[tokio::test(start_paused = true)]
    async fn without_what_was_fetched_the_gap_is_counted() {
        let mut fx = node(1024, 40..=45);
        let lost = resume(&mut fx, 30, &[]);
        assert_eq!(fx.sent()[0], (40, 9));
        assert_eq!(lost, Some(9));
    }

    #[tokio::test(start_paused = true)]
    async fn fetched_updates_beyond_the_latest_are_left_to_the_live_stream() {
        let mut fx = node(1024, 40..=41);
        let lost = resume(&mut fx, 38, &fetched(39..=43));
        assert_eq!(fx.sent(), [(39, 0), (40, 0), (41, 0)]);
        assert_eq!(lost, Some(0));
    }
}
