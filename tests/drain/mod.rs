//! Collecting an outbox dry, as a session's successive writes do, for the
//! property tests that drive an `Outbox` directly.

use bytes::Bytes;
use proptest::prelude::*;
use std::time::Duration;
use tickfeed::session::outbox::Outbox;
use tokio::time::Instant;

/// Collects until nothing is left. Each collection is one write, which
/// carries at most one full frame (and the one event that may follow it);
/// what did not fit waits in the mailbox for the next.
pub fn collect_all(
    outbox: &mut Outbox,
    now: Instant,
    read_delay: Duration,
    frames: &mut Vec<Bytes>,
) -> Result<(), TestCaseError> {
    for _ in 0..10_000 {
        let before = frames.len();
        outbox.collect(now, read_delay, frames);
        let written = frames.len() - before;
        prop_assert!(written <= 2, "{written} frames in one write");
        if written == 0 {
            return Ok(());
        }
    }
    Err(TestCaseError::fail("collections never ran dry"))
}
