//! How late the runtime runs a task that asked to wake at a given time:
//! the server-side part of every client's round trip.
//!
//! Flow control (`session::flow`) times how long a client takes to answer
//! a probe. Under load, part of that time is the server's own: the pong
//! waits in the socket until the client's session task gets a turn, and at
//! 1M events/s on two cores that can take a few hundred milliseconds for
//! every client alike. Counting it as the client's would shrink every
//! window at once. So a small task wakes every [`TICK`], measures how late
//! it ran, and publishes the largest lateness of the last one to two
//! seconds in [`Stats`]; sessions subtract it from the round trips they
//! measure. It costs one timer wake-up every 10 ms.

use crate::shutdown::{DoneGuard, Shutdown};
use crate::stats::Stats;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{Instant, MissedTickBehavior};

/// How often the watcher wakes.
const TICK: Duration = Duration::from_millis(10);
/// Lateness is kept as the largest of this window and the one before.
const WINDOW: Duration = Duration::from_secs(1);

/// Starts the watcher on the current runtime; it ends with the server.
pub(crate) fn spawn(stats: Arc<Stats>, mut shutdown: Shutdown, done: DoneGuard) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut window = LatenessWindow::new(Instant::now());
        loop {
            tokio::select! {
                _ = shutdown.wait() => break,
                due = ticks.tick() => {
                    let now = Instant::now();
                    let lag = window.record(now, now.saturating_duration_since(due));
                    stats.set_scheduling_lag(lag);
                }
            }
        }
        drop(done);
    });
}

/// The largest lateness over the current and the previous [`WINDOW`].
#[derive(Debug)]
struct LatenessWindow {
    started: Instant,
    current: Duration,
    previous: Duration,
}

impl LatenessWindow {
    fn new(now: Instant) -> Self {
        Self {
            started: now,
            current: Duration::ZERO,
            previous: Duration::ZERO,
        }
    }

    /// Adds one measurement; returns the lateness to publish.
    fn record(&mut self, now: Instant, late: Duration) -> Duration {
        if now.saturating_duration_since(self.started) >= WINDOW {
            self.previous = self.current;
            self.current = Duration::ZERO;
            self.started = now;
        }
        self.current = self.current.max(late);
        self.current.max(self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_late_wake_up_counts_for_one_to_two_windows() {
        let t0 = Instant::now();
        let mut window = LatenessWindow::new(t0);
        assert_eq!(window.record(t0, 300 * MS), 300 * MS);
        assert_eq!(window.record(t0 + 500 * MS, MS), 300 * MS);
        assert_eq!(
            window.record(t0 + WINDOW, MS),
            300 * MS,
            "the previous window"
        );
        assert_eq!(window.record(t0 + 2 * WINDOW, 2 * MS), 2 * MS, "forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn the_watcher_publishes_how_late_it_ran() {
        let trigger = crate::shutdown::ShutdownTrigger::new();
        let stats = Arc::new(Stats::new());
        spawn(stats.clone(), trigger.subscribe(), trigger.guard());
        tokio::time::sleep(5 * TICK).await;
        // On the paused clock every wake-up is exactly on time.
        assert_eq!(stats.scheduling_lag(), Duration::ZERO);
    }
}
