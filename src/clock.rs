//! The wall clock of every `ts`: nanoseconds since the Unix epoch. A leaf:
//! it imports nothing from the crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch: the clock of every `ts`.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}
