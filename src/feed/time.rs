//! Times in feed files, all turned into nanoseconds since the Unix epoch
//! (`u64`, the unit of `ts` and `xt` on the wire): epoch numbers whose unit
//! is told by their size, RFC 3339 text, LOBSTER's decimal seconds after
//! midnight in US Eastern time, and the `--from`/`--to` bounds of a replay.
//!
//! Decimals are parsed as text, never through `f64`, so a nanosecond
//! timestamp survives exactly.

use std::str::FromStr;
use std::time::Duration;

pub const NS_PER_SEC: u64 = 1_000_000_000;

/// The time zone of LOBSTER's (NASDAQ's) clock.
const LOBSTER_ZONE: &str = "America/New_York";

/// Epoch numbers below this many whole units are seconds (up to the year
/// 5138); below 1e14 milliseconds, below 1e17 microseconds, else nanoseconds.
/// The ranges do not overlap for any date after 1973.
const SECONDS_BELOW: u64 = 100_000_000_000;
const MILLIS_BELOW: u64 = 100_000_000_000_000;
const MICROS_BELOW: u64 = 100_000_000_000_000_000;

/// Parses a generic CSV `ts` cell: epoch seconds, ms, us or ns (whole or
/// decimal, unit told by size), or RFC 3339 such as `2024-01-02T14:30:00Z`.
pub fn parse_ts(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if let Some(ns) = parse_epoch(text) {
        return Ok(ns);
    }
    let stamp = jiff::Timestamp::from_str(text).map_err(|_| bad_time(text))?;
    u64::try_from(stamp.as_nanosecond()).map_err(|_| format!("{text:?} is before 1970"))
}

fn bad_time(text: &str) -> String {
    format!("expected epoch s/ms/us/ns or an RFC 3339 time like 2024-01-02T14:30:00Z, got {text:?}")
}

/// An epoch number whose unit is told by the size of its whole part.
fn parse_epoch(text: &str) -> Option<u64> {
    let whole = digits_value(text.split_once('.').map_or(text, |(whole, _)| whole))?;
    let digits = match whole {
        w if w < SECONDS_BELOW => 9,
        w if w < MILLIS_BELOW => 6,
        w if w < MICROS_BELOW => 3,
        _ => 0,
    };
    decimal_to_units(text, digits)
}

/// `whole.fraction` scaled by 10^`digits`, the fraction cut (not rounded)
/// after `digits` places: `decimal_to_units("1.5", 3) == Some(1500)`.
fn decimal_to_units(text: &str, digits: u32) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut units = digits_value(whole)?.checked_mul(10u64.pow(digits))?;
    let mut scale = 10u64.pow(digits);
    for digit in fraction.bytes().take(digits as usize) {
        scale /= 10;
        units += u64::from(digit - b'0') * scale;
    }
    Some(units)
}

/// The value of a non-empty run of ASCII digits.
fn digits_value(text: &str) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.bytes().try_fold(0u64, |value, b| {
        if !b.is_ascii_digit() {
            return None;
        }
        value.checked_mul(10)?.checked_add(u64::from(b - b'0'))
    })
}

/// LOBSTER's time column: decimal seconds after midnight with any number of
/// decimals (`34200.0052317`, `36000.123456789004`), as ns after midnight.
pub fn parse_seconds(text: &str) -> Option<u64> {
    decimal_to_units(text, 9)
}

/// Midnight at the start of `date` (`YYYY-MM-DD`) in US Eastern time.
pub fn eastern_midnight(date: &str) -> Option<u64> {
    let date = jiff::civil::Date::from_str(date).ok()?;
    let zone = jiff::tz::TimeZone::get(LOBSTER_ZONE).ok()?;
    let start = date.to_zoned_datetime(zone).ok()?.timestamp();
    u64::try_from(start.as_nanosecond()).ok()
}

/// RFC 3339 in UTC with as many decimals as needed.
pub fn format_rfc3339(ns: u64) -> String {
    jiff::Timestamp::from_nanosecond(i128::from(ns))
        .map_or_else(|_| ns.to_string(), |t| t.to_string())
}

/// One end of a replay window, as given on the command line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeBound {
    /// A time: RFC 3339 or an epoch number, as in the `ts` column.
    At(u64),
    /// `+10m`: this long after the first row of the feed.
    AfterStart(Duration),
}

impl FromStr for TimeBound {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().strip_prefix('+') {
            Some(after) => humantime::parse_duration(after)
                .map(TimeBound::AfterStart)
                .map_err(|e| format!("{text:?} is not a duration after the start ({e}); try +10m")),
            None => parse_ts(text)
                .map(TimeBound::At)
                .map_err(|e| format!("{e}, or +10m for ten minutes after the start")),
        }
    }
}

impl TimeBound {
    fn resolve(self, start: u64) -> u64 {
        match self {
            TimeBound::At(ns) => ns,
            TimeBound::AfterStart(after) => {
                start.saturating_add(after.as_nanos().try_into().unwrap_or(u64::MAX))
            }
        }
    }
}

/// The `--from`/`--to` flags before the feed's start is known.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowArgs {
    pub from: Option<TimeBound>,
    pub to: Option<TimeBound>,
}

impl WindowArgs {
    /// True when relative bounds need the first row's time.
    pub fn needs_start(&self) -> bool {
        [self.from, self.to]
            .iter()
            .any(|b| matches!(b, Some(TimeBound::AfterStart(_))))
    }

    pub fn resolve(&self, start: u64) -> Window {
        Window {
            from: self.from.map_or(0, |b| b.resolve(start)),
            to: self.to.map_or(u64::MAX, |b| b.resolve(start)),
        }
    }
}

/// Replayed rows have `from <= xt < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: u64,
    pub to: u64,
}

impl Window {
    pub const ALL: Window = Window {
        from: 0,
        to: u64::MAX,
    };

    pub fn contains(&self, xt: u64) -> bool {
        self.from <= xt && xt < self.to
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_units_are_told_by_size() {
        let ns = 1_700_000_000_123_456_789;
        assert_eq!(parse_ts("1700000000.123456789"), Ok(ns));
        assert_eq!(parse_ts("1700000000123.456789"), Ok(ns));
        assert_eq!(parse_ts("1700000000123456.789"), Ok(ns));
        assert_eq!(parse_ts("1700000000123456789"), Ok(ns));
        assert_eq!(parse_ts("1700000000"), Ok(1_700_000_000 * NS_PER_SEC));
    }

    #[test]
    fn rfc3339_with_any_offset_parses() {
        assert_eq!(
            parse_ts("2023-11-14T22:13:20.123456789Z"),
            Ok(1_700_000_000_123_456_789)
        );
        assert_eq!(
            parse_ts("2023-11-14T17:13:20.123456789-05:00"),
            Ok(1_700_000_000_123_456_789)
        );
        assert!(parse_ts("yesterday").unwrap_err().contains("RFC 3339"));
        assert!(parse_ts("12.3.4").is_err());
    }

    #[test]
    fn lobster_seconds_keep_every_nanosecond_and_drop_float_noise() {
        assert_eq!(parse_seconds("34200.123456789"), Some(34_200_123_456_789));
        assert_eq!(parse_seconds("34200.0052317"), Some(34_200_005_231_700));
        assert_eq!(parse_seconds("35000.25"), Some(35_000_250_000_000));
        assert_eq!(
            parse_seconds("36000.123456789004"),
            Some(36_000_123_456_789)
        );
        assert_eq!(parse_seconds("-1"), None);
    }

    #[test]
    fn eastern_midnight_follows_daylight_saving() {
        // 2012-06-21 is EDT (UTC-4); 2012-01-03 is EST (UTC-5).
        assert_eq!(
            eastern_midnight("2012-06-21"),
            Some(1_340_251_200 * NS_PER_SEC)
        );
        assert_eq!(
            eastern_midnight("2012-01-03"),
            Some(1_325_566_800 * NS_PER_SEC)
        );
        assert_eq!(eastern_midnight("2012-13-01"), None);
    }

    #[test]
    fn window_bounds_may_be_relative_to_the_start() {
        let args = WindowArgs {
            from: Some("+1s".parse().unwrap()),
            to: Some("1700000010".parse().unwrap()),
        };
        assert!(args.needs_start());
        let window = args.resolve(1_700_000_000 * NS_PER_SEC);
        assert_eq!(
            window,
            Window {
                from: 1_700_000_001 * NS_PER_SEC,
                to: 1_700_000_010 * NS_PER_SEC
            }
        );
        assert!(
            window.contains(1_700_000_001 * NS_PER_SEC)
                && !window.contains(1_700_000_010 * NS_PER_SEC)
        );
        assert!("+soon".parse::<TimeBound>().unwrap_err().contains("+10m"));
    }
}
