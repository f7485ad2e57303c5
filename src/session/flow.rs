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
//!   (a quarter of `--max-lag`) doubles it, up to [`MAX_WINDOW`]; a longer
//!   one sets it to
//!   the frames the client consumes in `target` at the rate the pong just
//!   measured (frames acknowledged over the round trip), at least one
//!   (stop-and-wait: one frame, one pong). So what is in flight is read
//!   within about `target`, however the reader spends its time. The
//!   server's own delay in reading the pong (`scheduling_lag`) is taken off
//!   the round trip first: under load it is the same for every client and
//!   says nothing about this one.
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
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Frames a new client may have in flight: small, so a client that is slow
/// from the start reads only a few stale frames before the clock adapts.
pub const INITIAL_WINDOW: u32 = 4;
/// Most frames in flight: a prompt reader is probed every 64 frames at
/// most, and one that turns slow has at most this many frames to read
/// before it gets fresh data.
pub const MAX_WINDOW: u32 = 128;

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
pub struct AckClock {
    max_lag: Duration,
    /// In-flight data should be consumed within this (half of `max_lag`).
    target: Duration,
    window: u32,
    written: u64,
    acknowledged: u64,
    probe: Option<Probe>,
    last_probe_at: Option<Instant>,
    /// The round trips of the last [`ROUND_TRIPS_KEPT`] answered probes.
    round_trips: [Duration; ROUND_TRIPS_KEPT],
    answered: usize,
    next_id: u64,
}

impl AckClock {
    /// `max_lag` of zero turns flow control off: writes never wait.
    pub fn new(max_lag: Duration) -> Self {
        Self {
            max_lag,
            target: max_lag / 2,
            window: INITIAL_WINDOW,
            written: 0,
            acknowledged: 0,
            probe: None,
            last_probe_at: None,
            round_trips: [Duration::ZERO; ROUND_TRIPS_KEPT],
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
    pub fn window(&self) -> u32 {
        self.window
    }

    /// False while writes must wait for the outstanding probe's pong: the
    /// window is full, or the probe is older than `max_lag`.
    pub fn may_write(&self, now: Instant) -> bool {
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
    pub fn on_write(&mut self, frames: u64, now: Instant) -> Option<Bytes> {
        self.written += frames;
        if !self.enabled() || self.probe.is_some() {
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
    pub fn on_pong(&mut self, payload: &[u8], now: Instant, server_lag: Duration) -> bool {
        let Some(probe) = self.probe.filter(|p| payload == p.id.to_be_bytes()) else {
            return false;
        };
        let round_trip = now
            .saturating_duration_since(probe.sent_at)
            .saturating_sub(server_lag);
        let consumed = probe.position - self.acknowledged;
        self.acknowledged = probe.position;
        self.probe = None;
        self.round_trips[self.answered % ROUND_TRIPS_KEPT] = round_trip;
        self.answered += 1;
        let doubled = self.window.saturating_mul(2).min(MAX_WINDOW);
        self.window = if round_trip <= self.target / 2 {
            doubled
        } else {
            let rate = consumed as f64 / round_trip.as_secs_f64();
            let readable = (rate * self.target.as_secs_f64()) as u32;
            readable.clamp(1, doubled)
        };
        true
    }

    /// How long the client is expected to take to read what is written to
    /// it now: the shortest of its recent round trips, so that one slow
    /// moment of a prompt reader (or of the server) does not count, while a
    /// reader that is slow every time does. Zero before the first pongs,
    /// and with flow control off.
    pub fn read_delay(&self) -> Duration {
        self.round_trips.iter().copied().min().unwrap_or_default()
    }

    /// When the outstanding probe was sent, if one is.
    pub fn unanswered_since(&self) -> Option<Instant> {
        self.probe.map(|p| p.sent_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_LAG: Duration = Duration::from_millis(500);
    const MS: Duration = Duration::from_millis(1);

    /// Writes one frame at a time until a probe goes out; returns it.
    fn write_until_probe(clock: &mut AckClock, now: Instant) -> Bytes {
        for _ in 0..MAX_WINDOW {
            if let Some(probe) = clock.on_write(1, now) {
                return probe;
            }
        }
        panic!("no probe within the window")
    }

    #[test]
    fn a_prompt_reader_grows_to_the_largest_window() {
        let mut now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        for _ in 0..10 {
            let probe = write_until_probe(&mut clock, now);
            now += MS;
            assert!(clock.on_pong(&probe, now, Duration::ZERO));
        }
        assert_eq!(clock.window(), MAX_WINDOW);
        assert!(clock.may_write(now));
    }

    #[test]
    fn one_slow_round_trip_of_a_prompt_reader_is_not_its_read_delay() {
        let mut now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        for round_trip in [MS, 400 * MS, 2 * MS] {
            let probe = write_until_probe(&mut clock, now);
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
            let probe = write_until_probe(&mut clock, now);
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
    fn a_reader_that_takes_500_ms_a_frame_gets_stop_and_wait() {
        let mut now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        let probe = write_until_probe(&mut clock, now);
        now += Duration::from_secs(1);
        clock.on_pong(&probe, now, Duration::ZERO);
        assert_eq!(clock.window(), 1);
        let probe = clock.on_write(1, now).expect("every write probes now");
        assert!(!clock.may_write(now));
        now += Duration::from_millis(500);
        clock.on_pong(&probe, now, Duration::ZERO);
        assert_eq!(clock.window(), 1, "stays at one frame in flight");
        let probe = clock.on_write(1, now).unwrap();
        now += Duration::from_millis(600);
        clock.on_pong(&probe, now, Duration::ZERO);
        assert_eq!(
            clock.read_delay(),
            Duration::from_millis(500),
            "slow every time"
        );
    }

    #[test]
    fn a_reader_at_50_ms_a_frame_gets_what_it_reads_in_the_target() {
        let mut now = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        for _ in 0..6 {
            let probe = write_until_probe(&mut clock, now);
            let frames = clock.in_flight() as u32;
            now += 50 * MS * frames;
            clock.on_pong(&probe, now, Duration::ZERO);
        }
        // 20 frames/s for 250 ms.
        assert_eq!(clock.window(), 5);
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
