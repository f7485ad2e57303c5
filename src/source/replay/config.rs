//! The replay's settings: `--speed`, and the startup pass that reads every
//! file once before `serve` listens (see the parent module's doc).

use super::Failure;
use crate::feed::check::scan;
use crate::feed::detect::{FormatChoice, detect};
use crate::feed::merge::{FeedFile, Merge};
use crate::feed::time::{Window, WindowArgs, format_rfc3339};
use crate::feed::{FeedError, Progress, progress_bar};
use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;

/// Bad rows per file logged one by one at startup; the rest are counted.
const WARN_BAD_ROWS: u64 = 10;

/// `--speed`: a multiple of the original pace, or as fast as possible.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    Max,
    Times(f64),
}

impl FromStr for Speed {
    type Err = String;

    fn from_str(text: &str) -> Result<Speed, String> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        match text.strip_suffix(['x', 'X']).unwrap_or(text).parse::<f64>() {
            Ok(times) if times > 0.0 && times.is_finite() => Ok(Speed::Times(times)),
            _ => Err(format!(
                "{text:?} is not a speed; try 1 (original pace), 10, 0.5 or max"
            )),
        }
    }
}

impl std::fmt::Display for Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Speed::Max => write!(f, "max"),
            Speed::Times(times) => write!(f, "{times}x"),
        }
    }
}

impl Speed {
    pub(super) fn to_json(self) -> serde_json::Value {
        match self {
            Speed::Max => "max".into(),
            Speed::Times(times) => times.into(),
        }
    }
}

/// The replay flags, before the files are read.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    pub files: Vec<PathBuf>,
    pub format: FormatChoice,
    pub speed: Speed,
    pub looping: bool,
    pub window: WindowArgs,
    pub strict: bool,
    /// Book levels per side sent for files with a book (`--depth`).
    pub depth: usize,
}

/// A replay whose files have been read through once and found usable.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub files: Vec<FeedFile>,
    pub speed: Speed,
    pub looping: bool,
    pub window: Window,
    pub strict: bool,
    /// Book levels per side sent for files with a book (`--depth`).
    pub depth: usize,
    /// Every symbol of the files, declared before the first tick.
    pub symbols: Vec<Arc<str>>,
    /// Updates inside the window in one pass, for `position`.
    pub updates: u64,
    pub failure: Failure,
}

impl ReplayConfig {
    /// Detects each file's format and reads it through (see the module doc).
    pub fn prepare(options: ReplayOptions) -> Result<ReplayConfig, FeedError> {
        let files = options
            .files
            .iter()
            .map(|path| {
                Ok(FeedFile {
                    path: path.clone(),
                    format: detect(path, options.format)?,
                })
            })
            .collect::<Result<Vec<_>, FeedError>>()?;
        let start = if options.window.needs_start() {
            Merge::first_time(&files)?.unwrap_or(0)
        } else {
            0
        };
        let window = options.window.resolve(start);
        let (mut symbols, mut seen, mut updates, mut span) =
            (Vec::new(), HashSet::new(), 0, (u64::MAX, 0));
        for file in &files {
            let bar = progress_bar(
                std::fs::metadata(&file.path).map_or(0, |m| m.len()),
                Progress::Bytes,
            );
            bar.set_message(format!("checking {}", file.path.display()));
            let (mut first_bad, mut warned) = (None, 0);
            let found = scan(
                file,
                window,
                0,
                |bad| {
                    first_bad.get_or_insert_with(|| bad.clone());
                    if warned < WARN_BAD_ROWS && !options.strict {
                        bar.suspend(|| tracing::warn!("{bad} (will be skipped)"));
                        warned += 1;
                    }
                },
                &bar,
            )?;
            bar.finish_and_clear();
            if let Some(bad) = found
                .first_out_of_order
                .or(first_bad.filter(|_| options.strict))
            {
                return Err(FeedError::BadRow(bad));
            }
            if found.summary.bad_rows > warned {
                tracing::warn!(
                    "{}: {} bad rows in all will be skipped; `tickfeed feed check` lists them",
                    file.path.display(),
                    found.summary.bad_rows
                );
            }
            symbols.extend(found.symbols.into_iter().filter(|s| seen.insert(s.clone())));
            updates += found.in_window;
            span = (
                span.0.min(found.first_xt.unwrap_or(u64::MAX)),
                span.1.max(found.last_xt.unwrap_or(0)),
            );
        }
        if updates == 0 {
            let show = |ns: u64| {
                if ns == 0 || ns == u64::MAX {
                    "-".to_string()
                } else {
                    format_rfc3339(ns)
                }
            };
            return Err(FeedError::EmptyWindow {
                from: show(window.from),
                to: show(window.to),
                first: show(span.0),
                last: show(span.1),
            });
        }
        Ok(ReplayConfig {
            files,
            speed: options.speed,
            looping: options.looping,
            window,
            strict: options.strict,
            depth: options.depth,
            symbols,
            updates,
            failure: Failure::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_a_positive_multiple_or_max() {
        assert_eq!("max".parse(), Ok(Speed::Max));
        assert_eq!("10".parse(), Ok(Speed::Times(10.0)));
        assert_eq!("0.5x".parse(), Ok(Speed::Times(0.5)));
        assert!("0".parse::<Speed>().unwrap_err().contains("try 1"));
        assert!("fast".parse::<Speed>().is_err());
    }
}
