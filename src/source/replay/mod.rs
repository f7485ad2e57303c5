//! The replay source: recorded feed files (`crate::feed`) streamed into the
//! router as if live, merged in time order, at the original pace times
//! `--speed` or as fast as the router takes them (`max`), optionally in a
//! `--from`/`--to` window and in a `--loop`. Each tick keeps its original
//! time as `xt`; `ts` is the emission time, `seq` counts per symbol across
//! loops, and `vol` keeps growing across loops.
//!
//! Startup ([`ReplayConfig::prepare`]) reads every file once: a missing,
//! empty, unrecognised or out-of-order file, or with `--strict` any bad row,
//! stops `serve` before it listens, with one sentence. Otherwise bad rows
//! are warned about (the first few per file) and skipped during replay,
//! counted as `skipped_rows` in `/api/stats`. The same pass finds every
//! symbol, declared to the router before the first tick.
//!
//! The replay runs on its own thread: reading is blocking file I/O, and
//! `std::thread::sleep` paces to a fraction of a millisecond. Batches go
//! to the router with `blocking_send` on the bounded source channel, so a
//! slow router slows the replay (backpressure) and `lag_ms` shows by how
//! much. An error during replay (a file changed or vanished before a
//! `--loop`) stops it: with `--strict` the server then exits non-zero
//! through [`Failure`], which `main` awaits; without, it is logged, shown in
//! `/api/stats`, and the server goes on serving the last values.
//!
//! `config.rs` holds the flags and the startup pass, `player.rs` the
//! thread (pacing, stamping, status).

mod config;
mod player;

pub use config::{ReplayConfig, ReplayOptions, Speed};

use super::SourceSender;
use crate::shutdown::{DoneGuard, Shutdown};
use crate::stats::Stats;
use std::sync::{Arc, Mutex};

/// Where a `--strict` replay reports the error that stopped it, so that
/// `serve` can shut down and exit non-zero.
#[derive(Debug, Clone, Default)]
pub struct Failure(Arc<FailureState>);

#[derive(Debug, Default)]
struct FailureState {
    /// Reason for the lock: written once by the replay thread, read by
    /// `main`; never held across an await.
    error: Mutex<Option<String>>,
    notify: tokio::sync::Notify,
}

impl Failure {
    fn report(&self, error: String) {
        *self.0.error.lock().expect("failure lock") = Some(error);
        self.0.notify.notify_one();
    }

    pub fn error(&self) -> Option<String> {
        self.0.error.lock().expect("failure lock").clone()
    }

    /// Resolves with the error once there is one (never for a healthy replay).
    pub async fn wait(&self) -> String {
        loop {
            if let Some(error) = self.error() {
                return error;
            }
            self.0.notify.notified().await;
        }
    }
}

/// Starts the replay thread; it holds `done` until it ends.
pub fn spawn(
    config: ReplayConfig,
    out: SourceSender,
    stats: Arc<Stats>,
    shutdown: Shutdown,
    done: DoneGuard,
) -> std::io::Result<()> {
    tracing::info!(
        files = config.files.len(),
        symbols = config.symbols.len(),
        updates = config.updates,
        speed = %config.speed,
        looping = config.looping,
        "replaying {}",
        config.files.iter().map(|f| f.path.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    std::thread::Builder::new()
        .name("replay".into())
        .spawn(move || {
            let (failure, strict) = (config.failure.clone(), config.strict);
            let mut replay = player::Player::new(config, out, stats, shutdown);
            match replay.run() {
                Ok(()) => replay.publish("finished", None),
                Err(e) => {
                    tracing::error!("replay stopped: {e}");
                    replay.publish("failed", Some(e.to_string()));
                    if strict {
                        failure.report(e.to_string());
                    }
                }
            }
            drop(done);
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_failure_wakes_the_waiter() {
        let failure = Failure::default();
        assert_eq!(failure.error(), None);
        failure.clone().report("x.csv:3:1: bad".into());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(failure.wait()), "x.csv:3:1: bad");
    }
}
