//! Per-connection limits: what one client may hold and send. The session
//! enforces them; `config` gathers them with the server's other settings.
//! Every default is a named constant with the reason for its value.

/// Room for the 10,000-client benchmark with margin; each idle connection
/// costs a few KiB, so this stays far below the machine's memory.
pub const DEFAULT_MAX_CONNECTIONS: usize = 20_000;
/// Enough for a watchlist screen; `*` counts as one.
pub const DEFAULT_MAX_SUBSCRIPTIONS: usize = 1_000;
/// The protocol's default request size.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 64 * 1024;
/// Largest WebSocket message accepted at all; above it the connection is
/// closed with 1009. Between the request limit and this, the request is
/// refused with `too_large` and the connection stays.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// A dashboard sends a handful of requests per second; scripts a burst.
pub const DEFAULT_REQUESTS_PER_SEC: f64 = 50.0;
pub const DEFAULT_REQUEST_BURST: f64 = 100.0;
/// Refused requests (rate-limited or malformed) in excess of accepted ones
/// after which the connection is closed with 1008.
pub const DEFAULT_ABUSE_THRESHOLD: u32 = 200;

/// Per-connection limits (`docs/protocol.md`, "Limits and close codes").
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub max_subscriptions: usize,
    pub max_request_bytes: usize,
    pub max_message_bytes: usize,
    pub requests_per_sec: f64,
    pub request_burst: f64,
    pub abuse_threshold: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_subscriptions: DEFAULT_MAX_SUBSCRIPTIONS,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            requests_per_sec: DEFAULT_REQUESTS_PER_SEC,
            request_burst: DEFAULT_REQUEST_BURST,
            abuse_threshold: DEFAULT_ABUSE_THRESHOLD,
        }
    }
}
