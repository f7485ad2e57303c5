//! A worker drives a group of client connections in one task: it reads
//! every frame as soon as it arrives, checks each event of the measured
//! channel (ticks, or books with `--channel book`: the same seq and `n`
//! rule), and records its
//! age (receive time minus `ts`) into the worker's own histograms; slow
//! clients' ages also by second of the run, warm-up included. It sends
//! the controller a [`Summary`] once a second, never a message per event,
//! and a last one when told to stop, then hands its [`Tally`] back.

use super::args::Channel;
use super::connection::{Connection, Incoming, Pace};
use super::parse::{self, EventView, Kind};
use super::tally::{Summary, Tally};
use crate::clock::now_ns;
use crate::codec::Encoding;
use crate::sequence::{SeqCheck, Verdict};
use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};

/// How often a worker reports to the controller.
pub(super) const SUMMARY_INTERVAL: Duration = Duration::from_secs(1);

/// Where the run is; workers only record latencies while `Measuring`,
/// and slow clients' ages by second during `Warmup` too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Phase {
    Connecting = 0,
    Warmup = 1,
    Measuring = 2,
    Done = 3,
}

/// State shared by the controller and all workers of one run.
#[derive(Debug)]
pub(super) struct Shared {
    phase: AtomicU8,
    /// Start of the measured window, ns since the epoch: planned during
    /// warm-up, actual once measuring. Written before `phase`.
    window_start_ns: AtomicU64,
    /// Clients whose subscription was acknowledged.
    pub subscribed: AtomicU64,
    /// Clients that closed before their subscription was acknowledged.
    pub lost_before_ack: AtomicU64,
    /// Symbol name to universe index.
    pub symbols: HashMap<Box<str>, u32>,
    pub encoding: Encoding,
    /// The events measured: `tick`, or `book` with `--channel book`.
    pub measured: Kind,
    /// Clients per worker: client `i` is slot `i / workers` of worker
    /// `i % workers`.
    pub workers: usize,
}

impl Shared {
    pub(super) fn new(
        symbols: &[String],
        encoding: Encoding,
        channel: Channel,
        workers: usize,
    ) -> Self {
        Self {
            phase: AtomicU8::new(Phase::Connecting as u8),
            window_start_ns: AtomicU64::new(0),
            subscribed: AtomicU64::new(0),
            lost_before_ack: AtomicU64::new(0),
            symbols: symbols
                .iter()
                .enumerate()
                .map(|(i, s)| (s.as_str().into(), i as u32))
                .collect(),
            encoding,
            measured: match channel {
                Channel::Ticks => Kind::Tick,
                Channel::Book => Kind::Book,
            },
            workers,
        }
    }

    pub(super) fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Release);
    }

    /// Starts the warm-up; the window is planned to start after `warmup`.
    pub(super) fn begin_warmup(&self, warmup: Duration) {
        let start = now_ns() + warmup.as_nanos() as u64;
        self.window_start_ns.store(start, Ordering::Relaxed);
        self.set_phase(Phase::Warmup);
    }

    /// Starts the measured window now.
    pub(super) fn begin_measuring(&self) {
        self.window_start_ns.store(now_ns(), Ordering::Relaxed);
        self.set_phase(Phase::Measuring);
    }

    fn measuring(&self) -> bool {
        self.phase.load(Ordering::Relaxed) == Phase::Measuring as u8
    }

    /// The second of the run `recv_ns` falls in, counted from the measured
    /// window's start (negative in warm-up); `None` before warm-up and
    /// after the window.
    fn second_of_run(&self, recv_ns: u64) -> Option<i64> {
        let phase = self.phase.load(Ordering::Acquire);
        let since_start = recv_ns as i64 - self.window_start_ns.load(Ordering::Relaxed) as i64;
        let second = since_start.div_euclid(1_000_000_000);
        match phase {
            p if p == Phase::Warmup as u8 => Some(second.min(-1)),
            p if p == Phase::Measuring as u8 => Some(second.max(0)),
            _ => None,
        }
    }
}

/// A connected client, handed to its worker.
pub(super) struct NewClient {
    /// Index of the client in the whole run.
    pub index: usize,
    pub connection: Connection,
    pub symbols: Vec<u32>,
    /// For a slow client: where to tell its connection how many ticks each
    /// frame held, so it pauses accordingly.
    pub pace: Option<Pace>,
    /// Already subscribed (NATS confirms with a flush before handing over);
    /// otherwise the worker waits for the `ack`.
    pub subscribed: bool,
}

struct Slot {
    check: SeqCheck,
    pace: Option<Pace>,
    awaiting_ack: bool,
}

/// One worker's state.
pub(super) struct Worker {
    shared: Arc<Shared>,
    slots: Vec<Option<Slot>>,
    tally: Tally,
    /// Figures since the last summary.
    interval: Summary,
    violations_reported: u64,
    /// Why the first connection that closed did so.
    first_close: Option<String>,
}

impl Worker {
    pub(super) fn new(shared: Arc<Shared>, clients: usize) -> Self {
        let slots = (0..clients.div_ceil(shared.workers))
            .map(|_| None)
            .collect();
        Self {
            shared,
            slots,
            tally: Tally::default(),
            interval: Summary::default(),
            violations_reported: 0,
            first_close: None,
        }
    }

    /// Runs until `stop` changes; returns what was measured.
    pub(super) async fn run(
        mut self,
        mut inbox: mpsc::Receiver<NewClient>,
        summaries: mpsc::Sender<Summary>,
        mut stop: watch::Receiver<bool>,
    ) -> (Tally, Option<String>) {
        let mut connections = SelectAll::new();
        let mut report = tokio::time::interval(SUMMARY_INTERVAL);
        loop {
            tokio::select! {
                biased;
                _ = stop.changed() => break,
                Some(client) = inbox.recv() => connections.push(self.admit(client)),
                Some((client, incoming)) = connections.next(), if !connections.is_empty() => {
                    let slot = client as usize / self.shared.workers;
                    match incoming {
                        Incoming::Frame(bytes) => self.on_frame(slot, std::slice::from_ref(&bytes), now_ns()),
                        Incoming::Messages(payloads) => self.on_frame(slot, &payloads, now_ns()),
                        Incoming::Closed(why) => self.on_closed(slot, why),
                    }
                }
                _ = report.tick() => self.send_summary(&summaries),
            }
        }
        // The controller reads until every worker is done.
        let _ = summaries.send(self.take_summary()).await;
        (self.tally, self.first_close)
    }

    /// Sends the figures since the last summary without waiting; when the
    /// queue is full they are kept for the next one.
    fn send_summary(&mut self, summaries: &mpsc::Sender<Summary>) {
        if let Err(TrySendError::Full(unsent)) = summaries.try_send(self.take_summary()) {
            self.interval.merge(unsent);
        }
    }

    fn admit(&mut self, client: NewClient) -> Connection {
        if client.subscribed {
            self.shared.subscribed.fetch_add(1, Ordering::Relaxed);
        }
        self.slots[client.index / self.shared.workers] = Some(Slot {
            check: SeqCheck::new(&client.symbols),
            pace: client.pace,
            awaiting_ack: !client.subscribed,
        });
        client.connection
    }

    /// Handles one frame received at `recv_ns`: a tickfeed frame (one
    /// part), or the NATS messages read together (one event per part).
    pub(super) fn on_frame<B: AsRef<[u8]>>(&mut self, slot: usize, parts: &[B], recv_ns: u64) {
        let measuring = self.shared.measuring();
        let Some(state) = self.slots[slot].as_mut() else {
            return;
        };
        let counters = &mut self.tally.counters;
        if measuring {
            counters.frames += 1;
            counters.bytes += parts.iter().map(|p| p.as_ref().len() as u64).sum::<u64>();
        }
        let shared = &self.shared;
        let (tally, interval) = (&mut self.tally, &mut self.interval);
        let slow = state.pace.is_some();
        let second = if slow {
            shared.second_of_run(recv_ns)
        } else {
            None
        };
        let mut ticks = 0;
        let mut on_event = |event: EventView<'_>| match event.kind {
            kind if kind == shared.measured => {
                ticks += 1;
                let c = &mut tally.counters;
                let Some(&sym) = shared.symbols.get(&*event.sym) else {
                    c.unexpected_symbol += 1;
                    return;
                };
                match state.check.observe(sym, event.seq, event.n, event.snap) {
                    Verdict::Ok => {}
                    Verdict::Backwards => c.seq_backwards += 1,
                    Verdict::GapNotCounted => c.gaps_not_counted += 1,
                    Verdict::Unexpected => c.unexpected_symbol += 1,
                }
                let age = recv_ns.saturating_sub(event.ts);
                if event.snap {
                    c.snapshots += 1;
                    return;
                }
                if let Some(second) = second {
                    interval.slow_ages.record(second, age);
                }
                if measuring {
                    c.events += 1;
                    if slow {
                        c.slow_merges.add(event.n);
                        interval.slow.add(age)
                    } else {
                        c.fast_merges.add(event.n);
                        interval.fast.add(age)
                    }
                    tally.record(slow, age);
                }
            }
            Kind::Ack => {
                if std::mem::take(&mut state.awaiting_ack) {
                    shared.subscribed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Kind::Error => tally.counters.errors += 1,
            Kind::Tick | Kind::Book | Kind::Other => {}
        };
        let parsed = parts.iter().try_for_each(|part| match shared.encoding {
            Encoding::Json => parse::json_events(part.as_ref(), &mut on_event),
            Encoding::Msgpack => parse::msgpack_events(part.as_ref(), &mut on_event),
        });
        if let Some(pace) = &state.pace {
            pace.store(ticks, Ordering::Relaxed);
        }
        if let Err(e) = parsed {
            self.tally.counters.unreadable_frames += 1;
            self.first_close.get_or_insert_with(|| e.to_string());
        }
    }

    /// The figures since the previous summary.
    fn take_summary(&mut self) -> Summary {
        let violations = self.tally.counters.violations();
        self.interval.violations += violations - self.violations_reported;
        self.violations_reported = violations;
        std::mem::take(&mut self.interval)
    }

    fn on_closed(&mut self, slot: usize, why: Option<String>) {
        let Some(state) = self.slots[slot].take() else {
            return;
        };
        if state.awaiting_ack {
            self.shared.lost_before_ack.fetch_add(1, Ordering::Relaxed);
        }
        self.tally.counters.closed += 1;
        if self.first_close.is_none() {
            self.first_close = Some(why.unwrap_or_else(|| "closed without a close frame".into()));
        }
    }

    #[cfg(test)]
    fn tally(&self) -> &Tally {
        &self.tally
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> Worker {
        worker_of(Channel::Ticks)
    }

    fn worker_of(channel: Channel) -> Worker {
        let shared = Arc::new(Shared::new(
            &["AAA".into(), "BBB".into()],
            Encoding::Json,
            channel,
            1,
        ));
        let mut worker = Worker::new(shared, 1);
        worker.slots[0] = Some(Slot {
            check: SeqCheck::new(&[0, 1]),
            pace: None,
            awaiting_ack: true,
        });
        worker
    }

    #[test]
    fn ticks_are_checked_always_but_timed_only_while_measuring() {
        let mut w = worker();
        let ack = br#"[{"ev":"ack","id":1},{"ev":"tick","sym":"AAA","seq":1,"ts":100,"n":0,"snap":true}]"#;
        w.on_frame(0, &[ack], 1_000);
        assert_eq!(w.shared.subscribed.load(Ordering::Relaxed), 1);
        w.on_frame(
            0,
            &[br#"[{"ev":"tick","sym":"AAA","seq":3,"ts":100,"n":0}]"#],
            1_000,
        );
        assert_eq!(
            w.tally().counters.gaps_not_counted,
            1,
            "checked during warm-up"
        );
        assert_eq!(w.tally().counters.events, 0, "not timed during warm-up");
        w.shared.set_phase(Phase::Measuring);
        let frame = br#"[{"ev":"tick","sym":"AAA","seq":6,"ts":400,"n":2},{"ev":"tick","sym":"ZZZ","seq":1,"ts":1,"n":0}]"#;
        w.on_frame(0, &[frame], 1_400);
        let c = &w.tally().counters;
        let seen = (
            c.events,
            c.fast_merges.events_with_merges,
            c.fast_merges.updates_merged,
            c.unexpected_symbol,
            c.snapshots,
        );
        assert_eq!(seen, (1, 1, 2, 1, 1));
        assert_eq!(c.slow_merges, Default::default());
        assert_eq!(w.tally().fast.max(), 1000);
        let summary = w.take_summary();
        assert_eq!((summary.fast.events, summary.violations), (1, 2));
        assert_eq!(
            w.take_summary(),
            Summary::default(),
            "each summary covers what is new"
        );
    }

    #[test]
    fn a_book_client_checks_and_times_book_events_and_nothing_else() {
        let mut w = worker_of(Channel::Book);
        w.shared.set_phase(Phase::Measuring);
        let snapshot = br#"[{"ev":"book","sym":"AAA","seq":4,"ts":100,"bids":[[1.5,10]],"asks":[],"snap":true,"n":0}]"#;
        w.on_frame(0, &[snapshot], 1_000);
        let frame = br#"[{"ev":"tick","sym":"AAA","seq":90,"ts":100,"n":0},{"ev":"book","sym":"AAA","seq":7,"ts":600,"bids":[[1.5,10]],"asks":[[1.6,5]],"n":2},{"ev":"book","sym":"AAA","seq":9,"ts":700,"bids":[],"asks":[],"n":0}]"#;
        w.on_frame(0, &[frame], 1_000);
        let c = &w.tally().counters;
        assert_eq!(
            (c.snapshots, c.events, c.fast_merges.updates_merged),
            (1, 2, 2)
        );
        assert_eq!(c.gaps_not_counted, 1, "seq 9 after 7 with n 0");
        assert_eq!(w.tally().fast.max(), 400, "from the book's ts");
    }

    #[test]
    fn slow_ages_go_by_second_of_the_run_with_warmup_negative() {
        const S: u64 = 1_000_000_000;
        let mut w = worker();
        w.slots[0].as_mut().unwrap().pace = Some(Pace::default());
        let tick = |seq: u64, ts: u64, n: u64| {
            format!(r#"[{{"ev":"tick","sym":"AAA","seq":{seq},"ts":{ts},"n":{n}}}]"#)
        };
        w.on_frame(0, &[tick(1, 0, 0)], S / 2);
        assert!(
            w.interval.slow_ages.timeline().is_empty(),
            "not before warm-up"
        );
        w.shared.window_start_ns.store(10 * S, Ordering::Relaxed);
        w.shared.set_phase(Phase::Warmup);
        w.on_frame(0, &[tick(2, 9 * S, 0)], 9 * S + S / 2);
        w.shared.set_phase(Phase::Measuring);
        w.on_frame(0, &[tick(5, 12 * S, 2)], 12 * S + 300_000_000);
        let c = &w.tally().counters;
        assert_eq!((c.events, c.slow_merges.updates_merged), (1, 2));
        assert_eq!(c.fast_merges, Default::default());
        let timeline = w.take_summary().slow_ages.timeline();
        let seconds: Vec<(i64, &str)> = timeline.iter().map(|p| (p.t_s, p.phase)).collect();
        assert_eq!(seconds, [(-1, "warmup"), (2, "measured")]);
        let ages: Vec<f64> = timeline.iter().map(|p| p.age.max_ms).collect();
        assert!(
            (ages[0] / 500.0 - 1.0).abs() < 0.01 && (ages[1] / 300.0 - 1.0).abs() < 0.01,
            "{ages:?}"
        );
    }

    #[test]
    fn nats_messages_read_together_count_as_one_frame_of_single_events() {
        let mut w = worker();
        w.shared.set_phase(Phase::Measuring);
        let messages: [&[u8]; 2] = [
            br#"{"ev":"tick","sym":"BBB","seq":1,"ts":10,"n":0}"#,
            br#"{"ev":"tick","sym":"BBB","seq":2,"ts":20,"n":0}"#,
        ];
        w.on_frame(0, &messages, 50);
        let c = &w.tally().counters;
        assert_eq!((c.frames, c.events, c.violations()), (1, 2, 0));
    }

    #[test]
    fn unreadable_frames_count_as_violations() {
        let mut w = worker();
        w.on_frame(0, &[b"[{\"ev\":"], 1);
        assert_eq!(w.tally().counters.unreadable_frames, 1);
        assert!(w.first_close.as_deref().unwrap().contains("unreadable"));
    }
}
