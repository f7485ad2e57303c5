//! Why connections end and why requests are refused: the reasons, as the
//! `reason` label of `tickfeed_connections_closed_total` and
//! `tickfeed_refusals_total`, and one atomic counter per reason. A session
//! counts its close once, when it finishes; each refusal is counted where
//! it is answered (`server.rs`, `auth.rs`, `listener.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a WebSocket connection ended (the session's `Stop`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    ClientClosed = 0,
    SocketError,
    SlowConsumer,
    HeartbeatTimeout,
    Abuse,
    FrameTooBig,
    InvalidUtf8,
    ProtocolViolation,
    ShuttingDown,
    ServerError,
    EpochChanged,
}

impl CloseReason {
    pub const ALL: [CloseReason; 11] = [
        CloseReason::ClientClosed,
        CloseReason::SocketError,
        CloseReason::SlowConsumer,
        CloseReason::HeartbeatTimeout,
        CloseReason::Abuse,
        CloseReason::FrameTooBig,
        CloseReason::InvalidUtf8,
        CloseReason::ProtocolViolation,
        CloseReason::ShuttingDown,
        CloseReason::ServerError,
        CloseReason::EpochChanged,
    ];

    /// The `reason` label and the log field.
    pub fn label(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client_closed",
            CloseReason::SocketError => "socket_error",
            CloseReason::SlowConsumer => "slow_consumer",
            CloseReason::HeartbeatTimeout => "heartbeat_timeout",
            CloseReason::Abuse => "abuse",
            CloseReason::FrameTooBig => "frame_too_big",
            CloseReason::InvalidUtf8 => "invalid_utf8",
            CloseReason::ProtocolViolation => "protocol_violation",
            CloseReason::ShuttingDown => "shutting_down",
            CloseReason::ServerError => "server_error",
            CloseReason::EpochChanged => "epoch_changed",
        }
    }
}

/// Why a connection or request was turned away before it was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `/ws` from a browser origin not in `--allowed-origin` (403).
    Origin = 0,
    /// `/ws` over `--max-connections` (503).
    OverCapacity,
    /// `/ws` while the server stops (503).
    ShuttingDown,
    /// Any protected path without a valid token (401).
    Unauthorized,
    /// A connection still in its handshake, closed to make room under
    /// `--max-pending-handshakes`.
    HandshakeShed,
    /// `/ws?encoding=` naming no encoding (400).
    BadEncoding,
}

impl Refusal {
    pub const ALL: [Refusal; 6] = [
        Refusal::Origin,
        Refusal::OverCapacity,
        Refusal::ShuttingDown,
        Refusal::Unauthorized,
        Refusal::HandshakeShed,
        Refusal::BadEncoding,
    ];

    /// The `reason` label and the log field.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::Origin => "origin",
            Refusal::OverCapacity => "over_capacity",
            Refusal::ShuttingDown => "shutting_down",
            Refusal::Unauthorized => "unauthorized",
            Refusal::HandshakeShed => "handshake_shed",
            Refusal::BadEncoding => "bad_encoding",
        }
    }
}

/// One counter per close reason and per refusal.
#[derive(Debug, Default)]
pub struct Outcomes {
    closes: [AtomicU64; CloseReason::ALL.len()],
    refusals: [AtomicU64; Refusal::ALL.len()],
}

impl Outcomes {
    pub fn count_close(&self, reason: CloseReason) {
        self.closes[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_refusal(&self, refusal: Refusal) {
        self.refusals[refusal as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn closes(&self, reason: CloseReason) -> u64 {
        self.closes[reason as usize].load(Ordering::Relaxed)
    }

    pub fn refusals(&self, refusal: Refusal) -> u64 {
        self.refusals[refusal as usize].load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_reason_has_its_own_counter_and_label() {
        let outcomes = Outcomes::default();
        outcomes.count_close(CloseReason::SlowConsumer);
        outcomes.count_refusal(Refusal::HandshakeShed);
        outcomes.count_refusal(Refusal::HandshakeShed);
        for reason in CloseReason::ALL {
            let expected = u64::from(reason == CloseReason::SlowConsumer);
            assert_eq!(outcomes.closes(reason), expected, "{}", reason.label());
        }
        assert_eq!(outcomes.refusals(Refusal::HandshakeShed), 2);
        assert_eq!(outcomes.refusals(Refusal::Origin), 0);
        let labels: std::collections::HashSet<_> =
            CloseReason::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), CloseReason::ALL.len());
    }
}
