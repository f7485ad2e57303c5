//! Epochs: the name of a seq space. A client that holds `seq` 1542 of a
//! symbol can resume after it only in the same epoch; a new epoch means
//! the numbers restarted and mean other updates. A leaf: it imports
//! nothing from the crate.
//!
//! A server without NATS starts its own seq space, so it makes a new epoch
//! at start. A NATS source node continues `seq` across restarts and keeps
//! the epoch stored in the broker; its edges announce the source's.

use std::time::{SystemTime, UNIX_EPOCH};

/// A new epoch: the start time in milliseconds since the Unix epoch and 32
/// random bits, both in hex (`19ad1c2e3f0-9a3b4c5d`), so two starts in the
/// same millisecond still differ and a log reader can date the epoch.
pub fn new_epoch() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:x}-{:08x}", rand::random::<u32>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_new_epoch_differs() {
        let a = new_epoch();
        let b = new_epoch();
        assert_ne!(a, b);
        assert!(a.len() <= 24 && a.contains('-'));
    }
}
