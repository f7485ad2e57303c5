//! Progress while the bench runs: an indicatif bar on stderr when it is a
//! terminal, nothing otherwise (logs and CI get only the final report).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

pub(super) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub(super) fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(1);
            bar.set_style(
                ProgressStyle::with_template("{prefix:>12} [{bar:30}] {pos}/{len} {msg}")
                    .expect("valid template")
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Self { bar }
    }

    /// Starts a phase counting up to `len`.
    pub(super) fn phase(&self, prefix: &str, len: u64) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(prefix.to_string());
            bar.set_length(len);
            bar.set_position(0);
            bar.set_message("");
        }
    }

    pub(super) fn update(&self, position: u64, message: impl FnOnce() -> String) {
        if let Some(bar) = &self.bar {
            bar.set_position(position);
            bar.set_message(message());
        }
    }

    pub(super) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
