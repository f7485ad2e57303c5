//! The health of what feeds this node: the broker connection (NATS roles
//! only) and the source's last event. Atomics the NATS client's event
//! callback and the router store, and `/readyz` and `/metrics` load.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// The NATS connection of a `--nats` node.
#[derive(Debug, Default)]
pub struct BrokerHealth {
    /// This node uses a broker at all (`--nats`).
    configured: AtomicBool,
    connected: AtomicBool,
    /// Connections regained after a loss.
    reconnects: AtomicU64,
}

impl BrokerHealth {
    /// Connected at start: from now on the broker's state counts.
    pub fn connected_first(&self) {
        self.configured.store(true, Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
    }

    pub fn lost(&self) {
        self.connected.store(false, Ordering::Relaxed);
    }

    /// Connected again; a reconnect if the connection had been lost (the
    /// first connection's own event, before or after `connected_first`,
    /// is none).
    pub fn regained(&self) {
        if !self.connected.swap(true, Ordering::Relaxed) && self.configured() {
            self.reconnects.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn configured(&self) -> bool {
        self.configured.load(Ordering::Relaxed)
    }

    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
}

/// When the router last routed a source update, in `clock::now_ns` time
/// (0: never). Stored once per batch.
#[derive(Debug, Default)]
pub struct SourceHealth {
    last_event_ns: AtomicU64,
}

impl SourceHealth {
    pub fn routed_at(&self, now_ns: u64) {
        self.last_event_ns.store(now_ns, Ordering::Relaxed);
    }

    /// Seconds since the last routed update at `now_ns`, if any was.
    pub fn last_event_age_s(&self, now_ns: u64) -> Option<f64> {
        match self.last_event_ns.load(Ordering::Relaxed) {
            0 => None,
            at => Some(now_ns.saturating_sub(at) as f64 / 1e9),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reconnect_counts_only_after_a_loss() {
        let broker = BrokerHealth::default();
        assert!(!broker.configured());
        broker.regained();
        broker.connected_first();
        broker.regained();
        assert_eq!(broker.reconnects(), 0);
        broker.lost();
        assert!(!broker.connected());
        broker.regained();
        assert!(broker.connected());
        assert_eq!(broker.reconnects(), 1);
    }

    #[test]
    fn source_age_is_unknown_until_an_update_is_routed() {
        let source = SourceHealth::default();
        assert_eq!(source.last_event_age_s(5_000_000_000), None);
        source.routed_at(2_000_000_000);
        assert_eq!(source.last_event_age_s(5_000_000_000), Some(3.0));
    }
}
