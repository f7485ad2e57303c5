//! Human units in flag values: durations (`15s`, `500ms`), sizes (`64KiB`)
//! and rates (`20k`). A leaf: it imports nothing from the crate, and every
//! command's flags (`cli`, `bench`, `feed`) parse through it.

use std::time::Duration;

/// `15`, `15s`, `500ms`, `2m`: a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<f64>() {
        return if secs >= 0.0 && secs.is_finite() {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!("{text:?} is not a duration"))
        };
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}); try 15s or 500ms"))
}

/// `65536`, `64k`, `64KiB`, `1M`, `1MiB`: binary multiples.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let (number, multiplier) = split_unit(
        text,
        &[
            ("kib", 1 << 10),
            ("k", 1 << 10),
            ("mib", 1 << 20),
            ("m", 1 << 20),
            ("gib", 1 << 30),
            ("g", 1 << 30),
            ("b", 1),
        ],
    );
    number
        .parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .ok_or_else(|| format!("{text:?} is not a size; try 65536, 64KiB or 1MiB"))
}

/// `20000`, `20k`, `1.5M`: decimal multiples.
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let (number, multiplier) = split_unit(text, &[("k", 1_000), ("m", 1_000_000)]);
    number
        .parse::<f64>()
        .ok()
        .map(|n| n * multiplier as f64)
        .filter(|n| n.is_finite())
        .ok_or_else(|| format!("{text:?} is not a number; try 20000 or 20k"))
}

fn split_unit<'a>(text: &'a str, units: &[(&str, usize)]) -> (&'a str, usize) {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    for (unit, multiplier) in units {
        if lower.ends_with(unit) && lower.len() > unit.len() {
            return (trimmed[..trimmed.len() - unit.len()].trim(), *multiplier);
        }
    }
    (trimmed, 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units_parse() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1M"), Ok(1 << 20));
        assert_eq!(parse_duration("15"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_rate("1.5k"), Ok(1500.0));
        assert!(parse_size("lots").is_err());
    }
}
