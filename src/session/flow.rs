//! Flow control: what may be in flight to a client, bounded by what it has
//! been seen to consume rather than by kernel buffer sizes.
//!
//! Kernel buffers on both ends hold hundreds of small frames, and data in
//! them can no longer be conflated: a reader that takes 500 ms per frame
//! would read data tens of seconds old. So the session counts the frames it
//! has written and asks the client to acknowledge them with a WebSocket
//! ping (a *probe*) sent behind the data: the client's pong comes back only
//! once it has read every frame before the ping. This is an ack clock:
//!
//! - At most `window` frames are in flight (written, not acknowledged).
//!   With the window full, writes wait for the pong; conflation meanwhile
//!   keeps one pending value per symbol, and the next frame carries the
//!   latest of each at once.
//! - A probe rides on the write that fills half the window, and at least
//!   every [`PROBE_INTERVAL`], one at a time.
//! - The window adapts to each pong. A round trip within half of `target`
//!   (a quarter of `--max-lag`) doubles it, up to [`MAX_WINDOW`]. A longer
//!   one shrinks it only when the window filled while the probe was out,
//!   that is when the client's reading set the pace: then it becomes the
//!   frames the client consumes in `target` at the rate the pong measured
//!   (frames acknowledged over the round trip), at least one
//!   (stop-and-wait: one frame, one pong). So what is in flight is read
//!   within about `target`, however the reader spends its time. A long
//!   round trip with room to spare in the window says only that something
//!   else was slow: the server's turn to read the pong (its measured
//!   `scheduling_lag` is taken off every round trip), or a client machine
//!   busy with all its connections. Shrinking then would only add waits.
//! - A probe unanswered for `--max-lag` also stops writes, however few
//!   frames are in flight; unanswered for `--stall-timeout` closes the
//!   connection as a slow consumer.
//!
//! A prompt reader answers in a millisecond or two, so its window stays at
//! the maximum and it is probed about once a second. Pausing never loses an
//! update for it: the outbox replays from the history ring whatever is
//! younger than `--max-lag` (`outbox`).

use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// Least time between two probes while the window is not filling: about
/// one pong a second per client keeps the ack clock running at little cost
/// (probing every 100 ms raised the p99 of 5,000 clients at 1M events/s
/// from about 250 ms to 640 ms on 2 cores).
pub(super) const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Frames a new client may have in flight: small, so a client that is slow
/// from the start reads only a few stale frames before the clock adapts.
pub(super) const INITIAL_WINDOW: u32 = 4;
/// Most frames in flight: a prompt reader is probed every 64 frames at
/// most, and one that turns slow has at most this many frames to read
/// before it gets fresh data.
pub(super) const MAX_WINDOW: u32 = 128;

/// Round trips remembered for [`AckClock::read_delay`].
const ROUND_TRIPS_KEPT: usize = 3;

/// The unanswered probe.
#[derive(Debug, Clone, Copy)]
struct Probe {
    id: u64,
    sent_at: Instant,
    /// Frames written when it was sent: its pong acknowledges them all.
    position: u64,
}

#[derive(Debug)]
pub(super) struct AckClock {
    max_lag: Duration,
    /// In-flight data should be consumed within this (half of `max_lag`).
    target: Duration,
    window: u32,
    written: u64,
    acknowledged: u64,
    probe: Option<Probe>,
    last_probe_at: Option<Instant>,
    /// Set when the window filled while the probe was out: the client's
    /// reading, not the data, set the pace, so its pong measures it.
    window_filled: bool,
    /// The client's own delay as the last [`ROUND_TRIPS_KEPT`] pongs
    /// measured it: a round trip that filled the window, zero otherwise.
    read_delays: [Duration; ROUND_TRIPS_KEPT],
    answered: usize,
    next_id: u64,
}

impl AckClock {
    /// `max_lag` of zero turns flow control off: writes never wait.
    pub(super) fn new(max_lag: Duration) -> Self {
        Self {
            max_lag,
            target: max_lag / 2,
            window: INITIAL_WINDOW,
            written: 0,
            acknowledged: 0,
            probe: None,
            last_probe_at: None,
            window_filled: false,
            read_delays: [Duration::ZERO; ROUND_TRIPS_KEPT],
            answered: 0,
            next_id: 0,
        }
    }

    fn enabled(&self) -> bool {
        !self.max_lag.is_zero()
    }

    fn in_flight(&self) -> u64 {
        self.written - self.acknowledged
    }

    /// Frames the client may have in flight now.
    #[cfg(test)]
    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    /// False while writes must wait for the outstanding probe's pong: the
    /// window is full, or the probe is older than `max_lag`.
    pub(super) fn may_write(&self, now: Instant) -> bool {
        match self.probe {
            Some(probe) if self.enabled() => {
                self.in_flight() < u64::from(self.window)
                    && now.saturating_duration_since(probe.sent_at) <= self.max_lag
            }
            _ => true,
        }
    }

    /// Counts `frames` about to be written and returns the payload of a
    /// probe to send right behind them, if one is due.
    pub(super) fn on_write(&mut self, frames: u64, now: Instant) -> Option<Bytes> {
        self.written += frames;
        if !self.enabled() {
            return None;
        }
        if self.in_flight() >= u64::from(self.window) {
            self.window_filled = true;
        }
        if self.probe.is_some() {
            return None;
        }
        let half_window = u64::from(self.window.div_ceil(2));
        let interval_passed = self
            .last_probe_at
            .is_none_or(|t| now.saturating_duration_since(t) >= PROBE_INTERVAL);
        if self.in_flight() < half_window && !interval_passed {
            return None;
        }
        self.next_id += 1;
        self.probe = Some(Probe {
            id: self.next_id,
            sent_at: now,
            position: self.written,
        });
        self.last_probe_at = Some(now);
        Some(Bytes::copy_from_slice(&self.next_id.to_be_bytes()))
    }

    /// Takes a pong; true when it answers the outstanding probe, which
    /// acknowledges every frame written before it and resizes the window.
    /// `server_lag` is the server's own share of the round trip
    /// (`scheduling_lag`), which is not the client's doing.
    pub(super) fn on_pong(&mut self, payload: &[u8], now: Instant, server_lag: Duration) -> bool {
        let Some(probe) = self.probe.filter(|p| payload == p.id.to_be_bytes()) else {
            return false;
        };
        let round_trip = now
            .saturating_duration_since(probe.sent_at)
            .saturating_sub(server_lag);
        let consumed = probe.position - self.acknowledged;
        self.acknowledged = probe.position;
        self.probe = None;
        let paced_by_client = std::mem::take(&mut self.window_filled);
        self.read_delays[self.answered % ROUND_TRIPS_KEPT] = if paced_by_client {
            round_trip
        } else {
            Duration::ZERO
        };
        self.answered += 1;
        let doubled = self.window.saturating_mul(2).min(MAX_WINDOW);
        if round_trip <= self.target / 2 {
            self.window = doubled;
        } else if paced_by_client {
            let rate = consumed as f64 / round_trip.as_secs_f64();
            let readable = (rate * self.target.as_secs_f64()) as u32;
            self.window = readable.clamp(1, doubled);
        }
        true
    }

    /// How long the client is expected to take to read what is written to
    /// it now: the shortest of its recent round trips that filled the
    /// window, so that one slow moment of a prompt reader does not count,
    /// nor does a round trip the client's reading did not pace (a busy
    /// machine delays every pong alike), while a reader that is slow every
    /// time does. Zero before the first pongs, and with flow control off.
    pub(super) fn read_delay(&self) -> Duration {
        self.read_delays.iter().copied().min().unwrap_or_default()
    }

    /// When the outstanding probe was sent, if one is.
    pub(super) fn unanswered_since(&self) -> Option<Instant> {
        self.probe.map(|p| p.sent_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_LAG: Duration = Duration::from_millis(500);
    const MS: Duration = Duration::from_millis(1);

    /// A writer with data always pending and a reader that spends
    /// `per_frame` on each frame, then reads the ping behind it: runs
    /// `pongs` round trips and returns the clock.
    fn run(per_frame: Duration, pongs: usize) -> AckClock {
        let mut clock = AckClock::new(MAX_LAG);
        let mut now = Instant::now();
        // When the reader is done with the frames written so far.
        let mut reader_free = now;
        let mut probes = Vec::new();
        for _ in 0..pongs {
            while clock.may_write(now) {
                reader_free = reader_free.max(now) + per_frame;
                if let Some(probe) = clock.on_write(1, now) {
                    probes.push((probe, reader_free));
                }
            }
            let (probe, answered_at) = probes.remove(0);
            now = now.max(answered_at);
            assert!(clock.on_pong(&probe, now, Duration::ZERO));
        }
        clock
    }

    #[test]
    fn a_prompt_reader_grows_to_the_largest_window() {
        let clock = run(Duration::from_micros(10), 12);
        assert_eq!(clock.window(), MAX_WINDOW);
        assert!(clock.read_delay() < MS, "{:?}", clock.read_delay());
    }

    #[test]
    fn a_reader_that_takes_500_ms_a_frame_gets_stop_and_wait() {
        let clock = run(500 * MS, 8);
        assert_eq!(clock.window(), 1, "one frame in flight");
        assert_eq!(clock.read_delay(), 500 * MS, "read 500 ms after writing");
    }

    #[test]
    fn a_reader_at_50_ms_a_frame_gets_what_it_reads_in_the_target() {
        let clock = run(50 * MS, 20);
        // 20 frames/s for 250 ms, give or take one doubling.
        assert!((4..=10).contains(&clock.window()), "{}", clock.window());
    }

    #[test]
    fn a_slow_round_trip_that_did_not_fill_the_window_changes_nothing() {
        // Two frames per probe, pongs 400 ms late: a busy client machine.
        let mut now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        let probe = clock.on_write(1, now).unwrap();
        clock.on_pong(&probe, now + MS, Duration::ZERO);
        let window = clock.window();
        for _ in 0..5 {
            now += PROBE_INTERVAL;
            let probe = clock.on_write(2, now).unwrap();
            now += 400 * MS;
            clock.on_pong(&probe, now, Duration::ZERO);
        }
        assert_eq!(clock.window(), window);
        assert_eq!(clock.read_delay(), Duration::ZERO);
    }

    #[test]
    fn one_slow_round_trip_of_a_prompt_reader_is_not_its_read_delay() {
        let mut now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        for round_trip in [MS, 400 * MS, 2 * MS] {
            let probe = clock.on_write(u64::from(clock.window()), now).unwrap();
            now += round_trip;
            clock.on_pong(&probe, now, Duration::ZERO);
        }
        assert_eq!(clock.read_delay(), MS);
    }

    #[test]
    fn the_servers_own_delay_is_not_held_against_the_client() {
        let mut now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        for _ in 0..10 {
            let probe = clock.on_write(u64::from(clock.window()), now).unwrap();
            now += 400 * MS;
            clock.on_pong(&probe, now, 398 * MS);
        }
        assert_eq!(clock.window(), MAX_WINDOW);
        assert_eq!(clock.read_delay(), 2 * MS);
    }

    #[test]
    fn a_full_window_waits_for_the_pong() {
        let now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        let probe = clock.on_write(1, now).expect("first write probes");
        for _ in 1..INITIAL_WINDOW {
            assert!(clock.may_write(now));
            assert!(clock.on_write(1, now).is_none(), "one probe at a time");
        }
        assert!(!clock.may_write(now), "window of {INITIAL_WINDOW} full");
        assert!(clock.on_pong(&probe, now + MS, Duration::ZERO));
        assert!(clock.may_write(now + MS));
    }

    #[test]
    fn an_unanswered_probe_stops_writes_after_max_lag() {
        let t0 = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        let probe = clock.on_write(1, t0).unwrap();
        assert!(clock.may_write(t0 + MAX_LAG));
        assert!(!clock.may_write(t0 + MAX_LAG + MS));
        assert_eq!(clock.unanswered_since(), Some(t0));
        assert!(
            !clock.on_pong(b"other", t0, Duration::ZERO),
            "an unrelated pong changes nothing"
        );
        assert!(clock.on_pong(&probe, t0 + MAX_LAG + MS, Duration::ZERO));
        assert!(clock.may_write(t0 + MAX_LAG + MS));
    }

    #[test]
    fn probes_go_out_at_least_every_interval() {
        let t0 = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        let probe = clock.on_write(1, t0).unwrap();
        clock.on_pong(&probe, t0 + MS, Duration::ZERO);
        assert!(clock.on_write(1, t0 + 2 * MS).is_none(), "too soon");
        assert!(clock.on_write(1, t0 + PROBE_INTERVAL).is_some());
    }

    #[test]
    fn zero_max_lag_never_probes_or_waits() {
        let now = Instant::now();
        let mut clock = AckClock::new(Duration::ZERO);
        for _ in 0..1000 {
            assert!(clock.on_write(1, now).is_none());
        }
        assert!(clock.may_write(now + Duration::from_secs(60)));
    }
}
