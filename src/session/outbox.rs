//! One client's outgoing data: its subscriptions, conflation baselines and
//! `max_hz` pacing, and the frames built from its pending symbols.
//!
//! The router marks symbols in the client's [`Mailbox`]; [`Outbox::collect`]
//! drains them and decides, per symbol, what the client gets:
//!
//! - **every update it has not seen**, in order and with `n = 0`, read from
//!   the symbol's history ring, when the oldest of them is still retained
//!   and will be younger than `--max-lag` when the client reads it (its age
//!   now plus the client's read delay, measured by flow control): the
//!   client is keeping up, whatever the timing of its writes;
//! - otherwise **the latest value only**, with `n = seq - last_sent - 1`
//!   counting what was merged: the client fell behind, and what it gets
//!   next is fresh;
//! - for a symbol paced by `max_hz`, the latest value once per interval;
//!   a symbol not due yet is re-marked and picked up at its slot.
//!
//! Either way `B.seq - A.seq - 1 == B.n` for consecutive ticks. Nothing
//! here allocates per event: buffers are reused between frames. One
//! `collect` fills at most one frame of ticks of `--max-frame-bytes` (plus
//! one event): a long replay continues in the next write, so the ticks a
//! lagging client holds in buffers are bounded by that size, not by how
//! far behind it fell. (Final bars it is owed all go out at once: they are
//! never merged, and the store's retention bounds them.) Books ride the
//! same drain (`outbox/book.rs`): the latest book of each marked symbol.

use crate::bars::BarStore;
use crate::books::BookStore;
use crate::codec::{EncodedTick, Encoding, FrameBuilder, encode_event};
use crate::conflate::Mailbox;
use crate::protocol::Event;
use crate::router::Grant;
use crate::symbols::{SymbolCell, SymbolId, SymbolTable};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How a subscribe asks its symbols to be delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Delivery {
    /// At most this many events per second per symbol; 0: as fast as read.
    pub max_hz: f64,
    /// Field deltas (`protocol::delta`) where the client holds the
    /// previous seq.
    pub deltas: bool,
}

impl Delivery {
    /// Least time between two events (`1 / max_hz`), if paced.
    fn interval(self) -> Option<Duration> {
        (self.max_hz > 0.0).then(|| Duration::from_secs_f64(1.0 / self.max_hz))
    }
}

mod bars;
mod book;
mod resume;

/// Delivery state of one subscribed symbol.
#[derive(Debug)]
struct Subscription {
    /// Seq of the last non-snapshot tick sent, or the baseline at subscribe.
    last_seq: u64,
    /// The last event of this symbol sent on this connection was the live
    /// tick `last_seq`, so the client holds its full values and the next
    /// tick may be a delta against it.
    primed: bool,
    deltas: bool,
    /// Least time between two events (`1 / max_hz`), if paced.
    interval: Option<Duration>,
    next_due: Instant,
}

impl Subscription {
    fn new(last_seq: u64, delivery: Delivery, next_due: Instant) -> Self {
        Self {
            last_seq,
            primed: false,
            deltas: delivery.deltas,
            interval: delivery.interval(),
            next_due,
        }
    }

    /// A re-subscribe: new options; the next tick is full.
    fn renew(&mut self, delivery: Delivery) {
        self.interval = delivery.interval();
        self.deltas = delivery.deltas;
        self.primed = false;
    }
}

/// What one `collect` produced, for counters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Collected {
    pub events: u64,
    /// Events with `n > 0`.
    pub conflated: u64,
    /// Sum of `n`.
    pub merged: u64,
    /// Book events among `events`.
    pub books: u64,
}

#[derive(Debug)]
pub struct Outbox {
    table: Arc<SymbolTable>,
    mailbox: Option<Arc<Mailbox>>,
    subs: HashMap<SymbolId, Subscription>,
    /// `Some(options)` while subscribed to `*`.
    wildcard: Option<Delivery>,
    /// Symbols unsubscribed by name while `*` is held.
    excluded: HashSet<SymbolId>,
    pending: Vec<SymbolId>,
    frame: FrameBuilder,
    max_frame_bytes: usize,
    /// Missed updates older than this are merged rather than replayed;
    /// zero replays whatever the ring still holds.
    max_lag: Duration,
    /// `ts` of every event in the frames of the last `collect`.
    pub sent_ts: Vec<u64>,
    /// Earliest time a paced symbol becomes due, if any is waiting.
    pub deferred_until: Option<Instant>,
    /// Bars subscriptions by `conflate::bar_key` (`outbox/bars.rs`).
    bars: HashMap<u32, bars::BarSubscription>,
    bar_store: Option<Arc<BarStore>>,
    /// Book subscriptions by symbol (`outbox/book.rs`).
    books: HashMap<SymbolId, book::BookSubscription>,
    book_store: Option<Arc<BookStore>>,
}

impl Outbox {
    pub fn new(
        table: Arc<SymbolTable>,
        encoding: Encoding,
        max_frame_bytes: usize,
        max_lag: Duration,
    ) -> Self {
        Self {
            table,
            mailbox: None,
            subs: HashMap::new(),
            wildcard: None,
            excluded: HashSet::new(),
            pending: Vec::new(),
            frame: FrameBuilder::new(encoding),
            max_frame_bytes,
            max_lag,
            sent_ts: Vec::new(),
            deferred_until: None,
            bars: HashMap::new(),
            bar_store: None,
            books: HashMap::new(),
            book_store: None,
        }
    }

    /// Reads bars from `store` (the router's) for bars subscriptions.
    pub fn with_bars(mut self, store: Arc<BarStore>) -> Self {
        self.bar_store = Some(store);
        self
    }

    /// The client's mailbox, created on first use so that idle connections
    /// cost nothing here.
    pub fn mailbox(&mut self) -> Arc<Mailbox> {
        let capacity = self.table.capacity();
        self.mailbox
            .get_or_insert_with(|| Arc::new(Mailbox::new(capacity)))
            .clone()
    }

    pub fn mailbox_ref(&self) -> Option<&Arc<Mailbox>> {
        self.mailbox.as_ref()
    }

    /// Subscriptions held: named symbols, plus one for `*`.
    pub fn subscription_count(&self) -> usize {
        let named = if self.wildcard.is_some() {
            0
        } else {
            self.subs.len()
        };
        named + usize::from(self.wildcard.is_some()) + self.bars.len() + self.books.len()
    }

    /// How many of `names` are not yet subscribed (ticks).
    pub fn new_count(&self, names: &[String]) -> usize {
        self.not_in(self.subs.keys(), names)
    }

    /// How many of `names` are not among the symbols `held`.
    fn not_in<'a>(&self, held: impl Iterator<Item = &'a SymbolId>, names: &[String]) -> usize {
        let known: HashSet<&str> = held
            .filter_map(|id| self.table.cell(*id).name().map(|n| &**n))
            .collect();
        names.iter().filter(|n| !known.contains(n.as_str())).count()
    }

    /// Records granted symbols; appends snapshot ticks to `reply` when asked.
    /// A re-subscribe only changes pacing (and sends a fresh snapshot): the
    /// conflation baseline stays, so `n` still accounts for every update.
    pub fn add<'g>(
        &mut self,
        grants: impl IntoIterator<Item = &'g Grant>,
        delivery: Delivery,
        snapshot: bool,
        reply: &mut Vec<Event>,
        now: Instant,
    ) -> u64 {
        let mut snapshots = 0;
        for grant in grants {
            self.excluded.remove(&grant.id);
            let baseline = grant.latest.as_ref().map_or(0, |t| t.seq());
            self.subs
                .entry(grant.id)
                .or_insert_with(|| Subscription::new(baseline, delivery, now))
                .renew(delivery);
            if let (true, Some(latest)) = (snapshot, &grant.latest) {
                let mut tick = latest.tick.clone();
                tick.snap = Some(true);
                reply.push(Event::Tick(tick));
                snapshots += 1;
            }
        }
        snapshots
    }

    pub fn add_wildcard(&mut self, delivery: Delivery) {
        self.wildcard = Some(delivery);
        self.excluded.clear();
    }

    pub fn remove(&mut self, ids: &[SymbolId]) {
        for id in ids {
            self.subs.remove(id);
            if self.wildcard.is_some() {
                self.excluded.insert(*id);
            }
        }
    }

    pub fn remove_all(&mut self) {
        self.subs.clear();
        self.wildcard = None;
        self.excluded.clear();
    }

    /// Drains pending symbols into frames (pushed onto `frames`).
    /// `read_delay` is how long the client takes to read what is written
    /// now (`session::flow`); it counts toward the age of missed updates.
    pub fn collect(
        &mut self,
        now: Instant,
        read_delay: Duration,
        frames: &mut Vec<Bytes>,
    ) -> Collected {
        let mut out = Collected::default();
        self.sent_ts.clear();
        self.deferred_until = None;
        let Some(mailbox) = &self.mailbox else {
            return out;
        };
        self.pending.clear();
        mailbox.drain(|id| self.pending.push(id));
        let mut emit = Emitter {
            frame: &mut self.frame,
            frames,
            sent_ts: &mut self.sent_ts,
            out: &mut out,
            max_frame_bytes: self.max_frame_bytes,
            filled: 0,
        };
        let mut held_back = false;
        for (index, &id) in self.pending.iter().enumerate() {
            if emit.filled > 0 {
                // One full frame per write: what is left waits in the
                // mailbox for the next one, so no write (and no buffer
                // behind it) grows past `max_frame_bytes` plus one event.
                self.pending[index..]
                    .iter()
                    .for_each(|&rest| mailbox.defer(rest));
                held_back = true;
                break;
            }
            let cell = self.table.cell(id);
            let latest = cell.load();
            let Some(latest) = latest.as_ref() else {
                continue;
            };
            let sub = match self.subs.get_mut(&id) {
                Some(sub) => sub,
                None => match self.wildcard {
                    Some(delivery) if !self.excluded.contains(&id) => {
                        let baseline = latest.seq().saturating_sub(1);
                        self.subs
                            .entry(id)
                            .or_insert_with(|| Subscription::new(baseline, delivery, now))
                    }
                    _ => continue,
                },
            };
            if latest.seq() <= sub.last_seq {
                continue;
            }
            if let Some(interval) = sub.interval {
                if !take_slot(interval, &mut sub.next_due, now, &mut self.deferred_until) {
                    mailbox.defer(id);
                    continue;
                }
            } else if latest.seq() > sub.last_seq + 1 {
                let read_at = now + read_delay;
                let replay =
                    replay_missed(cell, latest.seq(), sub, read_at, self.max_lag, &mut emit);
                if replay == Replay::Cut {
                    // The rest of the replay goes in the next write.
                    mailbox.defer(id);
                    held_back = true;
                    continue;
                }
            }
            if latest.seq() > sub.last_seq {
                emit.tick(latest, sub);
            }
        }
        let mut view = bars::BarsView {
            table: &self.table,
            store: self.bar_store.as_deref(),
            subs: &mut self.bars,
            deferred_until: &mut self.deferred_until,
        };
        bars::collect_bars(&mut view, mailbox, now, &mut emit);
        let mut view = book::BooksView {
            store: self.book_store.as_deref(),
            subs: &mut self.books,
            deferred_until: &mut self.deferred_until,
        };
        book::collect_books(&mut view, mailbox, now, &mut emit);
        if !self.frame.is_empty() {
            frames.push(self.frame.finish());
        }
        if held_back {
            mailbox.rewake();
        }
        out
    }
}

/// How far [`replay_missed`] got.
#[derive(Debug, PartialEq)]
enum Replay {
    /// Sent every missed update the ring holds, or none (merged instead).
    Done,
    /// Stopped at a full frame; the rest follows in the next write.
    Cut,
}

/// Sends the updates of `cell` after `sub.last_seq` and before `latest_seq`
/// from its ring, when the oldest of them is retained and will be younger
/// than `max_lag` (zero: any age) when read at `read_at`. Otherwise sends
/// nothing, and the caller's latest value carries the merge count.
fn replay_missed(
    cell: &SymbolCell,
    latest_seq: u64,
    sub: &mut Subscription,
    read_at: Instant,
    max_lag: Duration,
    emit: &mut Emitter<'_>,
) -> Replay {
    let ring = cell.load_ring();
    let Some(ring) = ring.as_ref() else {
        return Replay::Done;
    };
    let first = sub.last_seq + 1;
    let Some(oldest) = ring.load(first) else {
        return Replay::Done;
    };
    if !max_lag.is_zero() && read_at.saturating_duration_since(oldest.routed_at) > max_lag {
        return Replay::Done;
    }
    emit.tick(&oldest, sub);
    for seq in first + 1..latest_seq {
        if emit.filled > 0 {
            return Replay::Cut;
        }
        // The router may overwrite the ring meanwhile: stop at a miss, and
        // the latest value counts what could not be sent.
        let Some(missed) = ring.load(seq) else {
            return Replay::Done;
        };
        emit.tick(&missed, sub);
    }
    Replay::Done
}

/// Appends ticks to the frame being built, splitting at the size cap.
struct Emitter<'a> {
    frame: &'a mut FrameBuilder,
    frames: &'a mut Vec<Bytes>,
    sent_ts: &'a mut Vec<u64>,
    out: &'a mut Collected,
    max_frame_bytes: usize,
    /// Frames closed because they reached `max_frame_bytes`.
    filled: usize,
}

impl Emitter<'_> {
    /// Writes `tick` with `n` = updates since `sub.last_seq`, and advances
    /// it: as a delta when the client asked for deltas and holds the
    /// previous seq, otherwise in full.
    fn tick(&mut self, tick: &EncodedTick, sub: &mut Subscription) {
        let n = u32::try_from(tick.seq() - sub.last_seq - 1).unwrap_or(u32::MAX);
        if sub.deltas && sub.primed && n == 0 {
            tick.write_delta_to(self.frame);
        } else {
            tick.write_to(self.frame, n);
        }
        sub.last_seq = tick.seq();
        sub.primed = true;
        self.sent_ts.push(tick.tick.ts);
        self.out.events += 1;
        if n > 0 {
            self.out.conflated += 1;
            self.out.merged += u64::from(n);
        }
        if self.frame.byte_len() >= self.max_frame_bytes {
            self.frames.push(self.frame.finish());
            self.filled += 1;
        }
    }
}

/// Encodes a reply frame (acks, errors, snapshots) for the control path.
pub fn reply_frame(encoding: Encoding, events: &[Event]) -> Bytes {
    let mut frame = FrameBuilder::new(encoding);
    for event in events {
        frame.push_encoded(&encode_event(encoding, event));
    }
    frame.finish()
}

/// The `max_hz` slot of a paced subscription (ticks, bars or books): true,
/// with the next slot set `interval` on, when `next_due` has come;
/// otherwise false, and `deferred_until` holds the earliest slot waited for
/// so the session wakes then.
fn take_slot(
    interval: Duration,
    next_due: &mut Instant,
    now: Instant,
    deferred_until: &mut Option<Instant>,
) -> bool {
    if now < *next_due {
        *deferred_until = Some(deferred_until.map_or(*next_due, |t| t.min(*next_due)));
        return false;
    }
    *next_due = now + interval;
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Changed, Tick};
    use crate::router::Retention;

    const MAX_LAG: Duration = Duration::from_millis(500);

    /// One symbol, AAPL (id 0), its ring, and an outbox subscribed to it.
    pub(super) struct Fixture {
        table: Arc<SymbolTable>,
        retention: Retention,
        pub(super) outbox: Outbox,
        mailbox: Arc<Mailbox>,
        pub(super) frames: Vec<Bytes>,
    }

    impl Fixture {
        pub(super) fn new(
            history: usize,
            max_hz: f64,
            snapshot: bool,
            reply: &mut Vec<Event>,
        ) -> Self {
            let table = Arc::new(SymbolTable::new(64));
            table.push("AAPL".into()).unwrap();
            let mut outbox = Outbox::new(table.clone(), Encoding::Json, 1 << 20, MAX_LAG);
            let mailbox = outbox.mailbox();
            let grant = Grant {
                id: 0,
                latest: None,
            };
            let delivery = Delivery {
                max_hz,
                deltas: false,
            };
            outbox.add(&[grant], delivery, snapshot, reply, Instant::now());
            Self {
                table,
                retention: Retention::new(history, usize::MAX),
                outbox,
                mailbox,
                frames: Vec::new(),
            }
        }

        fn subscribed() -> Self {
            Self::new(1024, 0.0, false, &mut Vec::new())
        }

        /// AAPL as the router grants it now.
        pub(super) fn grant(&self) -> Grant {
            Grant {
                id: 0,
                latest: self.table.cell(0).latest(),
            }
        }

        /// Routes AAPL's update `seq`, as the router does.
        pub(super) fn publish(&mut self, seq: u64) {
            let tick = Arc::new(EncodedTick::new(crate::protocol::Tick::test("AAPL", seq)));
            self.retention.store(&self.table, 0, &tick);
            self.table.store(0, tick);
            self.mailbox.mark(0);
        }

        fn collect_at(&mut self, now: Instant) -> Collected {
            self.outbox.collect(now, Duration::ZERO, &mut self.frames)
        }

        /// `(seq, n)` of every tick sent so far.
        pub(super) fn sent(&self) -> Vec<(u64, u32)> {
            events(&self.frames).iter().map(|t| (t.seq, t.n)).collect()
        }
    }

    fn events(frames: &[Bytes]) -> Vec<Tick> {
        frames
            .iter()
            .flat_map(|f| serde_json::from_slice::<Vec<Event>>(f).unwrap())
            .map(|e| match e {
                Event::Tick(t) => t,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_keeps_up_gets_every_update_in_order() {
        let mut fx = Fixture::subscribed();
        for seq in 1..=5 {
            fx.publish(seq);
        }
        let got = fx.collect_at(Instant::now());
        assert_eq!(fx.sent(), [(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]);
        assert_eq!(got.conflated, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_long_replay_fills_one_frame_per_write_and_continues_in_order() {
        let mut fx = Fixture::subscribed();
        fx.outbox.max_frame_bytes = 1000;
        for seq in 1..=100 {
            fx.publish(seq);
        }
        let mut writes = 0;
        loop {
            let before = fx.frames.len();
            fx.collect_at(Instant::now());
            let written = &fx.frames[before..];
            if written.is_empty() {
                break;
            }
            writes += 1;
            assert_eq!(written.len(), 1, "one frame per write");
            // A full frame holds at most one event past the cap.
            assert!(written[0].len() < 1000 + 200, "{}", written[0].len());
            if fx.sent().len() < 100 {
                // The rest is owed: the next wait returns at once.
                let waker = futures_util::task::noop_waker();
                let mut cx = std::task::Context::from_waker(&waker);
                let wait = std::pin::pin!(fx.mailbox.wait());
                assert!(wait.poll(&mut cx).is_ready());
            }
        }
        let expected: Vec<(u64, u32)> = (1..=100).map(|seq| (seq, 0)).collect();
        assert_eq!(fx.sent(), expected);
        assert!(writes > 5, "{writes} writes");
    }

    #[tokio::test(start_paused = true)]
    async fn with_deltas_a_client_gets_what_changed_once_it_holds_the_previous_seq() {
        let mut fx = Fixture::new(0, 0.0, false, &mut Vec::new());
        let grant = Grant {
            id: 0,
            latest: None,
        };
        let deltas = Delivery {
            max_hz: 0.0,
            deltas: true,
        };
        fx.outbox
            .add(&[grant], deltas, false, &mut Vec::new(), Instant::now());
        let mut previous: Option<crate::protocol::Tick> = None;
        let mut publish = |fx: &mut Fixture, seq: u64| {
            let tick = crate::protocol::Tick::test("AAPL", seq);
            let changed = previous
                .as_ref()
                .map_or(Changed::ALL, |p| Changed::between(p, &tick));
            previous = Some(tick.clone());
            let tick = Arc::new(EncodedTick::with_changes(tick, changed));
            fx.table.store(0, tick);
            fx.mailbox.mark(0);
        };
        let read = |fx: &mut Fixture| {
            fx.frames.clear();
            fx.collect_at(Instant::now());
            let frame: Vec<serde_json::Value> = serde_json::from_slice(&fx.frames[0]).unwrap();
            frame[0].clone()
        };
        publish(&mut fx, 1);
        let first = read(&mut fx);
        assert!(
            first.get("d").is_none() && first["px"] == 189.25,
            "first: full"
        );
        publish(&mut fx, 2);
        // Only the volume (and ts) changed.
        let delta = read(&mut fx);
        assert_eq!(delta["d"], 1);
        assert_eq!(delta["vol"], 200);
        assert!(delta.get("px").is_none() && delta.get("bid").is_none());
        // A merge (nothing retained): full, with n.
        publish(&mut fx, 3);
        publish(&mut fx, 4);
        let merged = read(&mut fx);
        assert!(merged.get("d").is_none() && merged["n"] == 1 && merged["px"] == 189.25);
        publish(&mut fx, 5);
        assert_eq!(read(&mut fx)["d"], 1, "deltas again once it holds seq 4");
    }

    #[tokio::test(start_paused = true)]
    async fn updates_younger_than_max_lag_are_replayed_however_late_the_write() {
        let mut fx = Fixture::subscribed();
        fx.publish(1);
        fx.collect_at(Instant::now());
        for seq in 2..=10 {
            fx.publish(seq);
            tokio::time::advance(Duration::from_millis(40)).await;
        }
        // The oldest unsent update is 360 ms old: still within max_lag.
        fx.collect_at(Instant::now());
        assert_eq!(fx.sent(), (1..=10).map(|s| (s, 0)).collect::<Vec<_>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_readers_read_delay_counts_toward_the_age() {
        let mut fx = Fixture::subscribed();
        fx.publish(1);
        fx.collect_at(Instant::now());
        fx.publish(2);
        fx.publish(3);
        tokio::time::advance(Duration::from_millis(100)).await;
        let read_delay = MAX_LAG - Duration::from_millis(50);
        fx.outbox
            .collect(Instant::now(), read_delay, &mut fx.frames);
        assert_eq!(fx.sent(), [(1, 0), (3, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_client_gets_latest_price_with_merge_count() {
        let mut fx = Fixture::subscribed();
        fx.publish(1);
        fx.collect_at(Instant::now());
        for seq in 2..=10 {
            fx.publish(seq);
        }
        tokio::time::advance(MAX_LAG + Duration::from_millis(1)).await;
        let got = fx.collect_at(Instant::now());
        assert_eq!(fx.sent(), [(1, 0), (10, 8)]);
        assert_eq!(
            got,
            Collected {
                events: 1,
                conflated: 1,
                merged: 8,
                books: 0,
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_backlog_past_the_ring_is_merged_with_its_count() {
        let mut fx = Fixture::new(16, 0.0, false, &mut Vec::new());
        for seq in 1..=40 {
            fx.publish(seq);
        }
        fx.collect_at(Instant::now());
        assert_eq!(fx.sent(), [(40, 39)], "seq 1 is no longer retained");
    }

    #[tokio::test(start_paused = true)]
    async fn without_history_missed_updates_are_merged() {
        let mut fx = Fixture::new(0, 0.0, false, &mut Vec::new());
        for seq in 1..=3 {
            fx.publish(seq);
        }
        fx.collect_at(Instant::now());
        assert_eq!(fx.sent(), [(3, 2)]);
    }

    #[tokio::test(start_paused = true)]
    async fn max_hz_defers_and_conflates_until_due() {
        let t0 = Instant::now();
        let mut fx = Fixture::new(1024, 2.0, false, &mut Vec::new());
        fx.publish(1);
        fx.collect_at(t0);
        fx.publish(2);
        fx.publish(3);
        assert_eq!(fx.collect_at(t0 + Duration::from_millis(100)).events, 0);
        assert_eq!(
            fx.outbox.deferred_until,
            Some(t0 + Duration::from_millis(500))
        );
        fx.collect_at(t0 + Duration::from_millis(500));
        assert_eq!(fx.sent(), [(1, 0), (3, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_snapshot_before_the_first_tick() {
        let mut reply = Vec::new();
        Fixture::new(1024, 0.0, true, &mut reply);
        assert!(reply.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn unsubscribed_symbols_are_dropped_even_if_marked() {
        let mut fx = Fixture::subscribed();
        fx.publish(1);
        fx.outbox.remove(&[0]);
        assert_eq!(fx.collect_at(Instant::now()).events, 0);
        assert!(fx.frames.is_empty());
    }
}
