//! Validated server settings. The CLI (`cli.rs`) parses and checks flags
//! once into a [`ServeConfig`]; the rest of the server only sees valid
//! values. Every default is a named constant with the reason for its value.

pub use crate::session::limits::{
    DEFAULT_ABUSE_THRESHOLD, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_REQUEST_BYTES, DEFAULT_MAX_SUBSCRIPTIONS, DEFAULT_REQUEST_BURST,
    DEFAULT_REQUESTS_PER_SEC, Limits,
};
pub use crate::source::SourceConfig;
pub use crate::source::generator::DEFAULT_SKEW;
use std::net::SocketAddr;
use std::time::Duration;

/// Loopback only unless told otherwise: a fresh server is never exposed.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Lively dashboard, a fraction of one core.
pub const DEFAULT_RATE: f64 = 5_000.0;
/// The protocol's `heartbeat_s` example; idle proxies keep 30-60 s.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);
/// The protocol's default (`docs/protocol.md`).
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Symbol table capacity; each subscribing connection holds one bit per
/// symbol of it (16,384 = 2 KiB).
pub const DEFAULT_MAX_SYMBOLS: usize = 16_384;
/// Kernel send buffer per connection. Small on purpose: on loopback Linux
/// would otherwise buffer up to 4 MiB per socket, hiding a slow client for
/// seconds before conflation starts (measured: docs/benchmarks.md).
pub const DEFAULT_SEND_BUFFER: usize = 64 * 1024;
/// The largest frame the server builds; a larger batch is split.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 256 * 1024;
/// Time allowed for a TLS handshake and for an HTTP request head: a real
/// client needs a few round trips, so 10 s is generous even on a poor
/// mobile link, yet frees a slow-loris connection quickly.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections at once between accept and their first request head. A
/// well-behaved client leaves that state within a few round trips, so a
/// flood must open over 1,024 connections per client round trip to crowd
/// one out, while it holds at most 1,024 sockets (a few KiB each) however
/// fast it connects.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 1024;
/// How old a missed update may be when read and still be sent rather than
/// merged: half a second keeps a slow screen fresh while a reader that
/// keeps up never loses an update to scheduling hiccups.
pub const DEFAULT_MAX_LAG: Duration = Duration::from_millis(500);
/// Per-connection read buffer. Requests are tiny, and this buffer is what
/// an idle connection costs most: tungstenite's default of 128 KiB would
/// cost 1.25 GiB at 10,000 connections; 4 KiB measured 12.9 KB per idle
/// connection, 512 B measured 4.9 KB. Larger requests still work: the
/// buffer grows while one is read.
pub const READ_BUFFER_BYTES: usize = 512;

/// Everything `serve` needs, already validated.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub source: SourceConfig,
    pub limits: Limits,
    pub heartbeat: Duration,
    pub stall_timeout: Duration,
    /// Bearer tokens; empty means no authentication.
    pub tokens: crate::auth::Tokens,
    pub max_symbols: usize,
    pub send_buffer: usize,
    pub max_frame_bytes: usize,
    /// Least time between two data frames to one client; 0 writes as soon
    /// as the client is ready. Larger values trade latency for fewer writes.
    pub min_write_interval: Duration,
    /// Missed updates older than this when read are merged, not sent; a
    /// client's probe unanswered this long holds its writes (zero: off).
    pub max_lag: Duration,
    /// Recent updates kept per symbol (`history`).
    pub history: usize,
    /// Bytes all symbols' recent updates may take together.
    pub history_memory: usize,
    /// Final bars kept per symbol and timeframe (`bars`).
    pub bars_keep: crate::bars::Retention,
    /// Bytes all symbols' final bars may take together.
    pub bars_memory: usize,
    /// Book levels per side kept and served (`--depth`).
    pub depth: usize,
    /// Scale-out through NATS (`--nats`); `None` is one process, no broker.
    pub nats: Option<crate::nats::NatsConfig>,
    /// Serve `https://` and `wss://` with this certificate; `None` is plain.
    pub tls: Option<crate::tls::TlsConfig>,
    /// Browser origins allowed to open `/ws`; empty allows every origin.
    pub allowed_origins: crate::origin::AllowedOrigins,
    /// Bound on the TLS handshake and on reading an HTTP request head.
    pub handshake_timeout: Duration,
    /// Most connections at once still in their TLS handshake or first
    /// request head; over it the oldest of them is closed.
    pub max_pending_handshakes: usize,
}

impl ServeConfig {
    /// Defaults with the given source, for tests and embedding.
    pub fn with_source(source: SourceConfig) -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            source,
            limits: Limits::default(),
            heartbeat: DEFAULT_HEARTBEAT,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            tokens: crate::auth::Tokens::default(),
            max_symbols: DEFAULT_MAX_SYMBOLS,
            send_buffer: DEFAULT_SEND_BUFFER,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            min_write_interval: Duration::ZERO,
            max_lag: DEFAULT_MAX_LAG,
            history: crate::history::DEFAULT_HISTORY,
            history_memory: crate::history::DEFAULT_HISTORY_MEMORY,
            bars_keep: crate::bars::Retention::default(),
            bars_memory: crate::bars::DEFAULT_BARS_MEMORY,
            depth: crate::protocol::DEFAULT_DEPTH,
            nats: None,
            tls: None,
            allowed_origins: crate::origin::AllowedOrigins::default(),
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
        }
    }
}
