//! The conflation invariant as a client checks it, one checker for the
//! bench and every test: per symbol on one connection, `seq` never goes
//! backwards and, for consecutive ticks A then B where B is not a
//! snapshot, `B.seq - A.seq - 1 == B.n` (`docs/protocol.md`, conflation
//! invariant). A snapshot only sets the baseline: the server counts `n`
//! from the snapshot's `seq`. A leaf: it imports nothing from the crate.
//!
//! [`verdict`] is the rule; [`SeqCheck`] keeps one `(symbol, last seq)`
//! pair per subscription, sorted for a binary search (a few bytes per
//! client, so the bench's 10,000 clients stay cheap); [`SeqByName`] keys
//! by symbol name, for tests that read ticks as JSON.

use std::collections::HashMap;

/// What one tick did to the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// `seq` lower than the one before.
    Backwards,
    /// A gap not matched by `n` (updates lost or invented).
    GapNotCounted,
    /// A symbol this client never subscribed to.
    Unexpected,
}

/// The invariant for one tick (`seq`, `n`, a snapshot or not) of a symbol
/// whose previous tick on this connection had `prev` (`None`: the first).
pub fn verdict(prev: Option<u64>, seq: u64, n: u64, snap: bool) -> Verdict {
    match prev {
        None => Verdict::Ok,
        Some(prev) if seq < prev => Verdict::Backwards,
        Some(_) if snap => Verdict::Ok,
        Some(prev) if seq == prev || seq - prev - 1 != n => Verdict::GapNotCounted,
        Some(_) => Verdict::Ok,
    }
}

/// One client's subscriptions and the last `seq` seen on each.
#[derive(Debug, Clone)]
pub struct SeqCheck {
    /// `(symbol index, last seq + 1)`, 0 meaning nothing seen yet.
    last: Box<[(u32, u64)]>,
}

impl SeqCheck {
    /// `symbols` must be sorted and distinct.
    pub fn new(symbols: &[u32]) -> Self {
        debug_assert!(symbols.windows(2).all(|w| w[0] < w[1]));
        Self {
            last: symbols.iter().map(|&s| (s, 0)).collect(),
        }
    }

    /// Checks one tick of symbol `sym` and remembers its `seq`.
    pub fn observe(&mut self, sym: u32, seq: u64, n: u64, snap: bool) -> Verdict {
        let Ok(slot) = self.last.binary_search_by_key(&sym, |&(s, _)| s) else {
            return Verdict::Unexpected;
        };
        let last = &mut self.last[slot].1;
        let verdict = verdict(last.checked_sub(1), seq, n, snap);
        if verdict != Verdict::Backwards {
            *last = seq + 1;
        }
        verdict
    }
}

/// The last `seq` seen of every symbol on one connection, by name; any
/// symbol may arrive.
#[derive(Debug, Clone, Default)]
pub struct SeqByName {
    last: HashMap<String, u64>,
}

impl SeqByName {
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks one tick of `sym` and, unless it went backwards, remembers
    /// its `seq`.
    pub fn observe(&mut self, sym: &str, seq: u64, n: u64, snap: bool) -> Verdict {
        let verdict = verdict(self.last.get(sym).copied(), seq, n, snap);
        if verdict != Verdict::Backwards {
            self.last.insert(sym.to_string(), seq);
        }
        verdict
    }

    /// Checks a tick event decoded as JSON (`sym`, `seq`, `n`, `snap`).
    pub fn observe_json(&mut self, tick: &serde_json::Value) -> Verdict {
        self.observe(
            tick["sym"].as_str().unwrap_or_default(),
            tick["seq"].as_u64().unwrap_or_default(),
            tick["n"].as_u64().unwrap_or_default(),
            tick["snap"] == true,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ticks_and_counted_merges_pass() {
        let mut c = SeqCheck::new(&[3, 9]);
        assert_eq!(
            c.observe(3, 10, 0, true),
            Verdict::Ok,
            "snapshot sets the baseline"
        );
        assert_eq!(c.observe(3, 11, 0, false), Verdict::Ok);
        assert_eq!(
            c.observe(3, 15, 3, false),
            Verdict::Ok,
            "3 merged updates counted"
        );
        assert_eq!(
            c.observe(9, 1, 0, false),
            Verdict::Ok,
            "first tick without snapshot"
        );
    }

    #[test]
    fn gaps_without_n_and_backwards_seq_are_violations() {
        let mut c = SeqCheck::new(&[1]);
        c.observe(1, 5, 0, false);
        assert_eq!(c.observe(1, 7, 0, false), Verdict::GapNotCounted);
        assert_eq!(
            c.observe(1, 8, 4, false),
            Verdict::GapNotCounted,
            "n claims more than the gap"
        );
        assert_eq!(
            c.observe(1, 8, 0, false),
            Verdict::GapNotCounted,
            "repeated outside a snapshot"
        );
        assert_eq!(c.observe(1, 2, 0, false), Verdict::Backwards);
        assert_eq!(
            c.observe(1, 9, 0, false),
            Verdict::Ok,
            "baseline kept after a backwards tick"
        );
    }

    #[test]
    fn a_snapshot_may_repeat_but_not_go_back() {
        let mut c = SeqCheck::new(&[1]);
        c.observe(1, 5, 0, false);
        assert_eq!(c.observe(1, 5, 0, true), Verdict::Ok);
        assert_eq!(c.observe(1, 4, 0, true), Verdict::Backwards);
    }

    #[test]
    fn by_name_any_symbol_follows_the_same_rule() {
        let mut c = SeqByName::new();
        assert_eq!(c.observe("A", 5, 0, true), Verdict::Ok);
        assert_eq!(c.observe("B", 1, 0, false), Verdict::Ok);
        assert_eq!(c.observe("A", 8, 2, false), Verdict::Ok);
        assert_eq!(c.observe("A", 10, 0, false), Verdict::GapNotCounted);
        assert_eq!(c.observe("A", 3, 0, false), Verdict::Backwards);
        let tick = serde_json::json!({"ev": "tick", "sym": "B", "seq": 3, "n": 1});
        assert_eq!(c.observe_json(&tick), Verdict::Ok);
    }

    #[test]
    fn symbols_not_subscribed_are_flagged() {
        assert_eq!(
            SeqCheck::new(&[1, 2]).observe(7, 1, 0, false),
            Verdict::Unexpected
        );
    }
}
