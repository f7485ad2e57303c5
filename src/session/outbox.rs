//! One client's outgoing data: its subscriptions, conflation baselines and
//! `max_hz` pacing, and the frames built from its pending symbols.
//!
//! The router marks symbols in the client's [`Mailbox`]; [`Outbox::collect`]
//! drains them, reads each symbol's latest tick from the symbol table, and
//! appends it to one frame with `n = seq - last_sent - 1`. Paced symbols
//! that are not due yet are re-marked and picked up at their next slot.
//! Nothing here allocates per event: buffers are reused between frames.

use crate::codec::{EncodedTick, Encoding, FrameBuilder, encode_event};
use crate::conflate::Mailbox;
use crate::protocol::Event;
use crate::router::Grant;
use crate::symbols::{HISTORY, SymbolId, SymbolTable};
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Delivery state of one subscribed symbol.
#[derive(Debug)]
struct Subscription {
    /// Seq of the last non-snapshot tick sent, or the baseline at subscribe.
    last_seq: u64,
    /// Least time between two events (`1 / max_hz`), if paced.
    interval: Option<Duration>,
    next_due: Instant,
}

/// What one `collect` produced, for counters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Collected {
    pub events: u64,
    /// Events with `n > 0`.
    pub conflated: u64,
    /// Sum of `n`.
    pub merged: u64,
}

#[derive(Debug)]
pub struct Outbox {
    table: Arc<SymbolTable>,
    mailbox: Option<Arc<Mailbox>>,
    subs: HashMap<SymbolId, Subscription>,
    /// `Some(interval)` while subscribed to `*`.
    wildcard: Option<Option<Duration>>,
    /// Symbols unsubscribed by name while `*` is held.
    excluded: HashSet<SymbolId>,
    pending: Vec<SymbolId>,
    frame: FrameBuilder,
    max_frame_bytes: usize,
    /// `ts` of every event in the frames of the last `collect`.
    pub sent_ts: Vec<u64>,
    /// Earliest time a paced symbol becomes due, if any is waiting.
    pub deferred_until: Option<Instant>,
}

fn interval_of(max_hz: f64) -> Option<Duration> {
    (max_hz > 0.0).then(|| Duration::from_secs_f64(1.0 / max_hz))
}

impl Outbox {
    pub fn new(table: Arc<SymbolTable>, encoding: Encoding, max_frame_bytes: usize) -> Self {
        Self {
            table,
            mailbox: None,
            subs: HashMap::new(),
            wildcard: None,
            excluded: HashSet::new(),
            pending: Vec::new(),
            frame: FrameBuilder::new(encoding),
            max_frame_bytes,
            sent_ts: Vec::new(),
            deferred_until: None,
        }
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
        named + usize::from(self.wildcard.is_some())
    }

    /// How many of `ids` are not yet subscribed.
    pub fn new_count(&self, names: &[String]) -> usize {
        let known: HashSet<&str> = self
            .subs
            .keys()
            .filter_map(|id| self.table.cell(*id).name().map(|n| &**n))
            .collect();
        names.iter().filter(|n| !known.contains(n.as_str())).count()
    }

    /// Records granted symbols; appends snapshot ticks to `reply` when asked.
    /// A re-subscribe only changes pacing (and sends a fresh snapshot): the
    /// conflation baseline stays, so `n` still accounts for every update.
    pub fn add(
        &mut self,
        grants: &[Grant],
        max_hz: f64,
        snapshot: bool,
        reply: &mut Vec<Event>,
        now: Instant,
    ) -> u64 {
        let interval = interval_of(max_hz);
        let mut snapshots = 0;
        for grant in grants {
            self.excluded.remove(&grant.id);
            let baseline = grant.latest.as_ref().map_or(0, |t| t.seq());
            let sub = self.subs.entry(grant.id).or_insert(Subscription {
                last_seq: baseline,
                interval,
                next_due: now,
            });
            sub.interval = interval;
            if let (true, Some(latest)) = (snapshot, &grant.latest) {
                let mut tick = latest.tick.clone();
                tick.snap = Some(true);
                reply.push(Event::Tick(tick));
                snapshots += 1;
            }
        }
        snapshots
    }

    pub fn add_wildcard(&mut self, max_hz: f64) {
        self.wildcard = Some(interval_of(max_hz));
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
    ///
    /// `ready_since` is when the client's last write completed: updates
    /// routed after it arrived while the client was keeping up, so each is
    /// sent (from the symbol's history) rather than merged. Updates routed
    /// while a write was blocked are merged into the latest, with `n`.
    pub fn collect(
        &mut self,
        now: Instant,
        ready_since: Instant,
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
        };
        for &id in &self.pending {
            let cell = self.table.cell(id);
            let latest = cell.load();
            let Some(latest) = latest.as_ref() else {
                continue;
            };
            let sub = match self.subs.get_mut(&id) {
                Some(sub) => sub,
                None => match self.wildcard {
                    Some(interval) if !self.excluded.contains(&id) => {
                        self.subs.entry(id).or_insert(Subscription {
                            last_seq: latest.seq().saturating_sub(1),
                            interval,
                            next_due: now,
                        })
                    }
                    _ => continue,
                },
            };
            if latest.seq() <= sub.last_seq {
                continue;
            }
            if let Some(interval) = sub.interval {
                if now < sub.next_due {
                    mailbox.defer(id);
                    self.deferred_until = Some(
                        self.deferred_until
                            .map_or(sub.next_due, |t| t.min(sub.next_due)),
                    );
                    continue;
                }
                sub.next_due = now + interval;
            } else {
                let first = (sub.last_seq + 1).max(latest.seq().saturating_sub(HISTORY as u64 - 1));
                for seq in first..latest.seq() {
                    if let Some(missed) = cell.historic(seq).filter(|t| t.routed_at >= ready_since)
                    {
                        emit.tick(&missed, &mut sub.last_seq);
                    }
                }
            }
            emit.tick(latest, &mut sub.last_seq);
        }
        if !self.frame.is_empty() {
            frames.push(self.frame.finish());
        }
        out
    }
}

/// Appends ticks to the frame being built, splitting at the size cap.
struct Emitter<'a> {
    frame: &'a mut FrameBuilder,
    frames: &'a mut Vec<Bytes>,
    sent_ts: &'a mut Vec<u64>,
    out: &'a mut Collected,
    max_frame_bytes: usize,
}

impl Emitter<'_> {
    /// Writes `tick` with `n` = updates since `last_seq`, and advances it.
    fn tick(&mut self, tick: &EncodedTick, last_seq: &mut u64) {
        let n = u32::try_from(tick.seq() - *last_seq - 1).unwrap_or(u32::MAX);
        *last_seq = tick.seq();
        tick.write_to(self.frame, n);
        self.sent_ts.push(tick.tick.ts);
        self.out.events += 1;
        if n > 0 {
            self.out.conflated += 1;
            self.out.merged += u64::from(n);
        }
        if self.frame.byte_len() >= self.max_frame_bytes {
            self.frames.push(self.frame.finish());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Tick;

    fn table_with(sym: &str) -> Arc<SymbolTable> {
        let table = Arc::new(SymbolTable::new(64));
        table.push(sym.into()).unwrap();
        table
    }

    /// An outbox subscribed to AAPL (id 0) at `now`, with its mailbox.
    fn subscribed(
        max_hz: f64,
        snapshot: bool,
        reply: &mut Vec<Event>,
        now: Instant,
    ) -> (Arc<SymbolTable>, Outbox, Arc<Mailbox>) {
        let table = table_with("AAPL");
        let mut outbox = Outbox::new(table.clone(), Encoding::Json, 1 << 20);
        let mailbox = outbox.mailbox();
        let grant = Grant {
            id: 0,
            latest: None,
        };
        outbox.add(&[grant], max_hz, snapshot, reply, now);
        (table, outbox, mailbox)
    }

    fn publish(table: &SymbolTable, mailbox: &Mailbox, seq: u64) {
        let tick = Tick {
            sym: "AAPL".into(),
            seq,
            ts: seq,
            xt: None,
            px: Some(1.0),
            sz: Some(1),
            bid: None,
            ask: None,
            bsz: None,
            asz: None,
            vol: seq,
            snap: None,
            n: 0,
        };
        table.store(0, Arc::new(EncodedTick::new(tick)));
        mailbox.mark(0);
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

    #[test]
    fn slow_client_gets_latest_price_with_merge_count() {
        let now = Instant::now();
        let mut reply = Vec::new();
        let (table, mut outbox, mailbox) = subscribed(0.0, true, &mut reply, now);
        assert!(reply.is_empty(), "no snapshot before the first tick");
        let mut frames = Vec::new();
        publish(&table, &mailbox, 1);
        outbox.collect(now, now + Duration::from_secs(1), &mut frames);
        for seq in 2..=10 {
            publish(&table, &mailbox, seq);
        }
        let got = outbox.collect(now, now + Duration::from_secs(1), &mut frames);
        let ticks = events(&frames);
        assert_eq!(
            ticks.iter().map(|t| (t.seq, t.n)).collect::<Vec<_>>(),
            [(1, 0), (10, 8)]
        );
        assert_eq!(
            got,
            Collected {
                events: 1,
                conflated: 1,
                merged: 8
            }
        );
    }

    #[test]
    fn max_hz_defers_and_conflates_until_due() {
        let t0 = Instant::now();
        let (table, mut outbox, mailbox) = subscribed(2.0, false, &mut Vec::new(), t0);
        let mut frames = Vec::new();
        publish(&table, &mailbox, 1);
        outbox.collect(t0, t0, &mut frames);
        publish(&table, &mailbox, 2);
        publish(&table, &mailbox, 3);
        assert_eq!(
            outbox
                .collect(t0 + Duration::from_millis(100), t0, &mut frames)
                .events,
            0
        );
        assert_eq!(outbox.deferred_until, Some(t0 + Duration::from_millis(500)));
        outbox.collect(t0 + Duration::from_millis(500), t0, &mut frames);
        assert_eq!(
            events(&frames)
                .iter()
                .map(|t| (t.seq, t.n))
                .collect::<Vec<_>>(),
            [(1, 0), (3, 1)]
        );
    }

    #[test]
    fn ready_client_gets_every_update_of_a_burst_in_order() {
        let ready_since = Instant::now();
        let (table, mut outbox, mailbox) = subscribed(0.0, false, &mut Vec::new(), ready_since);
        for seq in 1..=5 {
            publish(&table, &mailbox, seq);
        }
        let mut frames = Vec::new();
        outbox.collect(Instant::now(), ready_since, &mut frames);
        let got: Vec<_> = events(&frames).iter().map(|t| (t.seq, t.n)).collect();
        assert_eq!(got, [(1, 0), (2, 0), (3, 0), (4, 0), (5, 0)]);
    }

    #[test]
    fn a_burst_longer_than_the_history_is_merged_with_its_count() {
        let ready_since = Instant::now();
        let (table, mut outbox, mailbox) = subscribed(0.0, false, &mut Vec::new(), ready_since);
        let last = HISTORY as u64 + 10;
        for seq in 1..=last {
            publish(&table, &mailbox, seq);
        }
        let mut frames = Vec::new();
        outbox.collect(Instant::now(), ready_since, &mut frames);
        let ticks = events(&frames);
        assert_eq!(ticks.len(), HISTORY);
        assert_eq!((ticks[0].seq, ticks[0].n), (11, 10));
        assert!(
            ticks
                .windows(2)
                .all(|w| w[1].seq - w[0].seq - 1 == u64::from(w[1].n))
        );
    }

    #[test]
    fn unsubscribed_symbols_are_dropped_even_if_marked() {
        let now = Instant::now();
        let (table, mut outbox, mailbox) = subscribed(0.0, false, &mut Vec::new(), now);
        publish(&table, &mailbox, 1);
        outbox.remove(&[0]);
        let mut frames = Vec::new();
        assert_eq!(
            outbox
                .collect(now, now + Duration::from_secs(1), &mut frames)
                .events,
            0
        );
        assert!(frames.is_empty());
    }
}
