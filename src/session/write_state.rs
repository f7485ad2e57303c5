//! The session's write state: whether pending updates may be written now,
//! and when the session must look again. One enum, so that every
//! transition is one match arm (drawn in `docs/architecture.md`).
//!
//! ```text
//!             write done, interval set          interval over
//!   Ready ─────────────────────────► Spacing ─────────────────► Ready
//!     │  window full / probe older than max_lag        pong
//!     └──────────────────────────────────────► AwaitingAck ───► Ready
//!                                                  │ no pong for the
//!                                                  ▼ stall timeout
//!                                            closed: slow consumer
//! ```

use super::flow::AckClock;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteState {
    /// Pending updates are written as soon as the mailbox has any.
    Ready,
    /// `--min-write-interval` holds the next write until `until`.
    Spacing { until: Instant },
    /// The ack clock's window is full or its probe is overdue: writes wait
    /// for the client's pong, and the client is closed as a slow consumer
    /// if none comes by `stall_at`.
    AwaitingAck { stall_at: Instant },
}

impl WriteState {
    /// The state at `now`, from the ack clock and the write spacing.
    pub(super) fn at(
        now: Instant,
        clock: &AckClock,
        next_write_at: Instant,
        stall_timeout: Duration,
    ) -> Self {
        if let (false, Some(since)) = (clock.may_write(now), clock.unanswered_since()) {
            return WriteState::AwaitingAck {
                stall_at: since + stall_timeout,
            };
        }
        if now < next_write_at {
            return WriteState::Spacing {
                until: next_write_at,
            };
        }
        WriteState::Ready
    }

    pub(super) fn writes_now(self) -> bool {
        self == WriteState::Ready
    }

    /// When the session's timer must fire: the end of the spacing, the
    /// stall deadline, or (while ready) the slot of a paced symbol.
    pub(super) fn wake_at(self, paced_due: Option<Instant>) -> Option<Instant> {
        match self {
            WriteState::Ready => paced_due,
            WriteState::Spacing { until } => Some(until),
            WriteState::AwaitingAck { stall_at } => Some(stall_at),
        }
    }

    /// True when the client has acknowledged nothing for the stall timeout.
    pub(super) fn stalled(self, now: Instant) -> bool {
        matches!(self, WriteState::AwaitingAck { stall_at } if now >= stall_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX_LAG: Duration = Duration::from_millis(500);
    const STALL: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_client_moves_through_every_state() {
        let t0 = Instant::now();
        let mut clock = AckClock::new(MAX_LAG);
        assert_eq!(WriteState::at(t0, &clock, t0, STALL), WriteState::Ready);

        let spacing_end = t0 + Duration::from_millis(10);
        let spacing = WriteState::at(t0, &clock, spacing_end, STALL);
        assert_eq!(spacing, WriteState::Spacing { until: spacing_end });
        assert_eq!(spacing.wake_at(None), Some(spacing_end));

        let probe = clock.on_write(1, t0).expect("first write probes");
        tokio::time::advance(MAX_LAG + Duration::from_millis(1)).await;
        let waiting = WriteState::at(Instant::now(), &clock, t0, STALL);
        assert_eq!(
            waiting,
            WriteState::AwaitingAck {
                stall_at: t0 + STALL
            }
        );
        assert!(!waiting.writes_now());
        assert!(!waiting.stalled(Instant::now()));
        assert!(waiting.stalled(t0 + STALL));

        clock.on_pong(&probe, Instant::now(), Duration::ZERO);
        let ready = WriteState::at(Instant::now(), &clock, t0, STALL);
        assert!(ready.writes_now());
        let due = Instant::now() + Duration::from_millis(3);
        assert_eq!(ready.wake_at(Some(due)), Some(due));
    }
}
