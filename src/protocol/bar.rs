//! Bars on the wire: the timeframes and the OHLCV value of one bar
//! (`docs/protocol.md`, "Bars"). The `bars` module builds and keeps them;
//! this is only their shape.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The length of a bar.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
    clap::ValueEnum,
)]
pub enum Timeframe {
    #[serde(rename = "1s")]
    #[value(name = "1s")]
    S1,
    #[serde(rename = "1m")]
    #[value(name = "1m")]
    M1,
    #[serde(rename = "5m")]
    #[value(name = "5m")]
    M5,
    #[serde(rename = "1h")]
    #[value(name = "1h")]
    H1,
    #[serde(rename = "1d")]
    #[value(name = "1d")]
    D1,
}

const NS_PER_SEC: u64 = 1_000_000_000;

impl Timeframe {
    /// Every timeframe, shortest first; [`index`](Self::index) is the
    /// position here.
    pub const ALL: [Timeframe; 5] = [
        Timeframe::S1,
        Timeframe::M1,
        Timeframe::M5,
        Timeframe::H1,
        Timeframe::D1,
    ];

    /// Length in ns.
    pub const fn ns(self) -> u64 {
        NS_PER_SEC
            * match self {
                Timeframe::S1 => 1,
                Timeframe::M1 => 60,
                Timeframe::M5 => 300,
                Timeframe::H1 => 3_600,
                Timeframe::D1 => 86_400,
            }
    }

    pub const fn index(self) -> usize {
        self as usize
    }

    /// The wire name: `1s`, `1m`, `5m`, `1h` or `1d`.
    pub const fn name(self) -> &'static str {
        match self {
            Timeframe::S1 => "1s",
            Timeframe::M1 => "1m",
            Timeframe::M5 => "5m",
            Timeframe::H1 => "1h",
            Timeframe::D1 => "1d",
        }
    }

    /// Start of the bar that holds `time` (ns since the epoch): aligned to
    /// the timeframe in UTC, so days start at 00:00 UTC.
    pub const fn start(self, time: u64) -> u64 {
        time - time % self.ns()
    }

    pub fn parse(name: &str) -> Option<Timeframe> {
        Timeframe::ALL.into_iter().find(|tf| tf.name() == name)
    }
}

impl std::fmt::Display for Timeframe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One bar of one symbol: what traded in `[t, t + timeframe)`.
///
/// A symbol that has never traded (a quote-only feed) gets bars of its mid
/// price `(bid + ask) / 2` instead, with `v` and `trades` 0 and `vwap` the
/// mean of the mids. An interval with nothing in it has no bar.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Bar {
    /// Start, ns since the epoch, a multiple of the timeframe.
    pub t: u64,
    /// Price of the first trade (or mid).
    pub o: f64,
    /// Highest price.
    pub h: f64,
    /// Lowest price.
    pub l: f64,
    /// Price of the last trade (or mid).
    pub c: f64,
    /// Shares traded.
    pub v: u64,
    /// Trades counted.
    pub trades: u64,
    /// Volume-weighted average price.
    pub vwap: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeframes_align_in_utc_and_parse_by_name() {
        let t = 1_340_285_400_123_456_789; // 2012-06-21T13:30:00.123456789Z
        assert_eq!(Timeframe::S1.start(t), 1_340_285_400_000_000_000);
        assert_eq!(Timeframe::H1.start(t), 1_340_283_600_000_000_000);
        assert_eq!(Timeframe::D1.start(t), 1_340_236_800_000_000_000);
        for tf in Timeframe::ALL {
            assert_eq!(Timeframe::parse(tf.name()), Some(tf));
            assert_eq!(Timeframe::ALL[tf.index()], tf);
        }
        assert_eq!(Timeframe::parse("2m"), None);
    }
}
