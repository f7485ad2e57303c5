//! NATS subject names: `tickfeed.ticks.<SYMBOL>` for a symbol's updates,
//! `tickfeed.book.<SYMBOL>` for its numbered books, `tickfeed.symbols` for
//! the universe, `tickfeed.epoch` for the source's
//! epoch, `tickfeed.history.<SYMBOL>` for requests of a symbol's recent
//! updates and `tickfeed.bars.<SYMBOL>` for requests of its bars. Used by the publisher (source role) and the edge, so both
//! spell subjects the same way.
//!
//! A symbol becomes one subject token. Characters that NATS gives a meaning
//! in subjects (`.` separates tokens, `*` and `>` are wildcards, whitespace
//! ends the subject) are written as `%XX`, their byte in upper-case hex, and
//! so is `%` itself, so the mapping is reversible: `BRK.B` is
//! `tickfeed.ticks.BRK%2EB`. Every other character is kept, so the common
//! symbols read as themselves in `nats sub` and in the broker's monitoring.

use std::borrow::Cow;
use std::fmt::Write;

/// Prefix of every tick subject.
pub const TICKS_PREFIX: &str = "tickfeed.ticks.";
/// Every tick subject (the edge's subscription while a client holds `*`).
pub const ALL_TICKS: &str = "tickfeed.ticks.>";
/// The universe: the list of every symbol the source declared.
pub const UNIVERSE: &str = "tickfeed.symbols";
/// The source's epoch, the name of its seq space (`epoch.rs`).
pub const EPOCH: &str = "tickfeed.epoch";
/// Prefix of the subjects on which the source answers history requests.
pub const HISTORY_PREFIX: &str = "tickfeed.history.";
/// Every history subject (the source's subscription).
pub const ALL_HISTORY: &str = "tickfeed.history.>";
/// Prefix of every book subject.
pub const BOOK_PREFIX: &str = "tickfeed.book.";
/// Every book subject (kept by the last-value stream).
pub const ALL_BOOKS: &str = "tickfeed.book.>";
/// Prefix of the subjects on which the source answers bars requests.
pub const BARS_PREFIX: &str = "tickfeed.bars.";
/// Every bars subject (the source's subscription).
pub const ALL_BARS: &str = "tickfeed.bars.>";

fn needs_escape(byte: u8) -> bool {
    matches!(byte, b'.' | b'*' | b'>' | b'%')
        || byte.is_ascii_whitespace()
        || byte.is_ascii_control()
}

/// The subject carrying `symbol`'s updates.
pub fn for_symbol(symbol: &str) -> String {
    with_prefix(TICKS_PREFIX, symbol)
}

/// The subject carrying `symbol`'s numbered books.
pub fn book_of(symbol: &str) -> String {
    with_prefix(BOOK_PREFIX, symbol)
}

/// The subject on which `symbol`'s recent updates are asked for.
pub fn history_of(symbol: &str) -> String {
    with_prefix(HISTORY_PREFIX, symbol)
}

/// The subject on which `symbol`'s bars are asked for (`bars.rs`).
pub fn bars_of(symbol: &str) -> String {
    with_prefix(BARS_PREFIX, symbol)
}

fn with_prefix(prefix: &str, symbol: &str) -> String {
    let mut subject = String::with_capacity(prefix.len() + symbol.len() + 4);
    subject.push_str(prefix);
    for ch in symbol.chars() {
        match u8::try_from(ch) {
            Ok(byte) if needs_escape(byte) => {
                write!(subject, "%{byte:02X}").expect("writing to a String")
            }
            _ => subject.push(ch),
        }
    }
    subject
}

/// The symbol a tick subject carries; `None` for any other subject or a
/// malformed escape. Borrows unless the name has escapes.
pub fn symbol_of(subject: &str) -> Option<Cow<'_, str>> {
    symbol_after(TICKS_PREFIX, subject)
}

/// The symbol a history subject asks about, as [`symbol_of`] reads it.
pub fn symbol_of_history(subject: &str) -> Option<Cow<'_, str>> {
    symbol_after(HISTORY_PREFIX, subject)
}

/// The symbol a book subject carries, as [`symbol_of`] reads it.
pub fn symbol_of_book(subject: &str) -> Option<Cow<'_, str>> {
    symbol_after(BOOK_PREFIX, subject)
}

/// The symbol a bars subject asks about, as [`symbol_of`] reads it.
pub fn symbol_of_bars(subject: &str) -> Option<Cow<'_, str>> {
    symbol_after(BARS_PREFIX, subject)
}

fn symbol_after<'s>(prefix: &str, subject: &'s str) -> Option<Cow<'s, str>> {
    let token = subject.strip_prefix(prefix)?;
    if token.is_empty() || token.contains('.') {
        return None;
    }
    if !token.contains('%') {
        return Some(Cow::Borrowed(token));
    }
    let mut bytes = Vec::with_capacity(token.len());
    let mut rest = token.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'%' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_symbols_read_as_themselves() {
        assert_eq!(for_symbol("AAPL"), "tickfeed.ticks.AAPL");
        assert_eq!(for_symbol("EUR/USD:X^=-_"), "tickfeed.ticks.EUR/USD:X^=-_");
        assert!(matches!(
            symbol_of("tickfeed.ticks.AAPL"),
            Some(Cow::Borrowed("AAPL"))
        ));
    }

    #[test]
    fn special_characters_are_escaped_reversibly() {
        assert_eq!(for_symbol("BRK.B"), "tickfeed.ticks.BRK%2EB");
        for symbol in [
            "BRK.B",
            "a*b>c",
            "with space",
            "100%",
            "%2E",
            "tab\there",
            "é.x",
        ] {
            let subject = for_symbol(symbol);
            let token = subject.strip_prefix(TICKS_PREFIX).unwrap();
            assert!(!token.contains(['.', '*', '>', ' ', '\t']), "{subject}");
            assert_eq!(symbol_of(&subject).as_deref(), Some(symbol), "{subject}");
        }
    }

    #[test]
    fn history_subjects_escape_the_same_way() {
        assert_eq!(history_of("BRK.B"), "tickfeed.history.BRK%2EB");
        assert_eq!(
            symbol_of_history(&history_of("a*b c")).as_deref(),
            Some("a*b c")
        );
        assert_eq!(symbol_of_history("tickfeed.ticks.AAPL"), None);
        assert_eq!(symbol_of(&history_of("AAPL")), None);
        assert_eq!(bars_of("BRK.B"), "tickfeed.bars.BRK%2EB");
        assert_eq!(symbol_of_bars(&bars_of("a*b c")).as_deref(), Some("a*b c"));
        assert_eq!(symbol_of_bars(&history_of("AAPL")), None);
        assert_eq!(book_of("BRK.B"), "tickfeed.book.BRK%2EB");
        assert_eq!(symbol_of_book(&book_of("a*b c")).as_deref(), Some("a*b c"));
        assert_eq!(symbol_of_book(&for_symbol("AAPL")), None);
    }

    #[test]
    fn other_subjects_and_bad_escapes_are_not_symbols() {
        for subject in [
            "tickfeed.symbols",
            "tickfeed.ticks.",
            "tickfeed.ticks.A.B",
            "other.AAPL",
            "tickfeed.ticks.A%2",
            "tickfeed.ticks.A%ZZ",
        ] {
            assert_eq!(symbol_of(subject), None, "{subject}");
        }
    }
}
