//! What the router's history rings retain, as atomics the router stores
//! after each batch and stats readers load (`/api/stats`' `history`).

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the rings hold, for `/api/stats` and the docs.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct HistoryStatus {
    /// Updates retained over all symbols.
    pub updates: u64,
    /// Bytes counted against `--history-memory`.
    pub bytes: u64,
    pub budget_bytes: u64,
    /// Updates dropped early to stay within the budget (not by `--history`).
    pub evicted_for_budget: u64,
}

/// The history rings' figures as atomics: the router stores them after
/// each batch, stats readers load them.
#[derive(Debug, Default)]
pub struct HistoryGauges {
    updates: AtomicU64,
    bytes: AtomicU64,
    budget_bytes: AtomicU64,
    evicted_for_budget: AtomicU64,
}

impl HistoryGauges {
    pub fn publish(&self, status: &HistoryStatus) {
        self.updates.store(status.updates, Ordering::Relaxed);
        self.bytes.store(status.bytes, Ordering::Relaxed);
        self.budget_bytes
            .store(status.budget_bytes, Ordering::Relaxed);
        self.evicted_for_budget
            .store(status.evicted_for_budget, Ordering::Relaxed);
    }

    pub(super) fn snapshot(&self) -> HistoryStatus {
        HistoryStatus {
            updates: self.updates.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            budget_bytes: self.budget_bytes.load(Ordering::Relaxed),
            evicted_for_budget: self.evicted_for_budget.load(Ordering::Relaxed),
        }
    }
}
