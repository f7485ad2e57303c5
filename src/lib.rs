//! tickfeed: a live market-data fan-out server.
//!
//! Data path (see `docs/architecture.md`):
//! `source` -> `router` -> per-client `conflate::Mailbox` -> `session` -> socket.
//! `server::start` runs it all in-process; `main.rs` only parses the command
//! line and calls in here.

pub mod api;
pub mod assets;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod conflate;
pub mod feed;
pub mod feed_thread;
pub mod history;
pub mod listener;
pub mod metrics;
pub mod nats;
pub mod origin;
pub mod pending;
pub mod protocol;
pub mod ratelimit;
pub mod router;
pub mod scheduling_lag;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod source;
pub mod stats;
pub mod symbols;
pub mod tls;
pub mod units;
#[cfg(test)]
mod wire_bytes;
