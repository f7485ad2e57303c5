//! Protocol checks for one client: per subscribed symbol, `seq` never goes
//! backwards and, for consecutive ticks A then B where B is not a
//! snapshot, `B.seq - A.seq - 1 == B.n` (`docs/protocol.md`, conflation
//! invariant). A snapshot only sets the baseline: the bench subscribes to
//! each symbol once, so the server counts `n` from the snapshot's `seq`.
//!
//! State is one `(symbol, last seq)` pair per subscription, sorted for a
//! binary search: a few bytes per client, so 10,000 clients stay cheap.

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
        let verdict = match last.checked_sub(1) {
            None => Verdict::Ok,
            Some(prev) if seq < prev => Verdict::Backwards,
            Some(_) if snap => Verdict::Ok,
            Some(prev) if seq == prev || seq - prev - 1 != n => Verdict::GapNotCounted,
            Some(_) => Verdict::Ok,
        };
        if verdict != Verdict::Backwards {
            *last = seq + 1;
        }
        verdict
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
    fn symbols_not_subscribed_are_flagged() {
        assert_eq!(
            SeqCheck::new(&[1, 2]).observe(7, 1, 0, false),
            Verdict::Unexpected
        );
    }
}
