//! Per-connection request budget: a token bucket for the request rate and
//! an abuse score that decides when refusals become a disconnect.
//!
//! A refused request (rate-limited or malformed) raises the score by one,
//! an accepted one lowers it by one; a connection whose score reaches the
//! threshold is sustained abuse and is closed with 1008. A single bad
//! request therefore never closes a connection by itself.

use tokio::time::Instant;

#[derive(Debug)]
pub(crate) struct RequestBudget {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    refilled_at: Instant,
    abuse_score: u32,
    abuse_threshold: u32,
}

impl RequestBudget {
    pub(crate) fn new(rate_per_sec: f64, burst: f64, abuse_threshold: u32, now: Instant) -> Self {
        Self {
            rate_per_sec,
            burst,
            tokens: burst,
            refilled_at: now,
            abuse_score: 0,
            abuse_threshold,
        }
    }

    /// Takes one request's token; false means `rate_limited`.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate_per_sec).min(self.burst);
        self.refilled_at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub(crate) fn accepted(&mut self) {
        self.abuse_score = self.abuse_score.saturating_sub(1);
    }

    /// Counts a refused request; true when the abuse is now sustained.
    pub(crate) fn refused(&mut self) -> bool {
        self.abuse_score += 1;
        self.abuse_score >= self.abuse_threshold
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_steady_rate() {
        let t0 = Instant::now();
        let mut budget = RequestBudget::new(10.0, 5.0, 100, t0);
        assert_eq!((0..10).filter(|_| budget.try_take(t0)).count(), 5);
        assert!(budget.try_take(t0 + Duration::from_millis(100)));
        assert!(!budget.try_take(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn only_sustained_refusals_are_abuse() {
        let mut budget = RequestBudget::new(1.0, 1.0, 3, Instant::now());
        assert!(!budget.refused());
        budget.accepted();
        assert!(!budget.refused());
        assert!(!budget.refused());
        assert!(budget.refused());
    }
}
