//! tickfeed: a live market-data fan-out server.
//!
//! Data path (see `docs/architecture.md`):
//! `source` -> `router` -> per-client `conflate::Mailbox` -> `session` -> socket.
//! `server::start` runs it all in-process; `main.rs` only parses the command
//! line and calls in here. Imports flow one way, from the leaves (`clock`,
//! `units`, `sequence`, `protocol`) up to the commands (`bench`, `cli`); the
//! order is checked by `tests/imports.rs`.
//!
//! # What the library exports, and for whom
//!
//! - **The wire, for Rust clients and the bench:** [`protocol`] (requests,
//!   events, [`protocol::Tick`] and its market fields [`protocol::Quote`]),
//!   [`codec`] (JSON and MessagePack bytes), and [`sequence`], the checker
//!   of the conflation invariant the bench and the tests share.
//! - **The contract, machine-readable:** [`contract`] (the AsyncAPI and
//!   OpenAPI documents the server serves and `docs/` keeps).
//! - **Running a server in-process** (tests, embedding, the bench):
//!   [`server::start`] / [`server::run`] with a [`config::ServeConfig`],
//!   which [`cli`] builds from `tickfeed serve` flags.
//! - **The commands**, for `main.rs`: [`cli`] (`serve`, `bench`, `feed`),
//!   [`bench::run`].
//! - **Parts the integration tests and criterion benchmarks drive
//!   directly:** [`router::Router`], [`symbols::SymbolTable`],
//!   [`conflate::Mailbox`], [`session::outbox`], [`stats::Stats`], the feed
//!   readers in [`feed`], [`clock::now_ns`] and the flag [`units`].
//!
//! The modules that only the server uses inside (HTTP API handlers,
//! assets, the accept loop, the handshake cap, the request budget, the feed
//! thread, the scheduling-lag watcher) are private to the crate, and
//! `unreachable_pub` keeps every item that is not exported `pub(crate)`.

#![warn(unreachable_pub)]

pub mod auth;
pub mod bars;
pub mod bench;
pub mod books;
pub mod cli;
pub mod clock;
pub mod codec;
pub mod config;
pub mod conflate;
pub mod contract;
pub mod epoch;
pub mod feed;
pub mod history;
pub mod nats;
pub mod origin;
pub mod protocol;
pub mod router;
pub mod sequence;
pub mod server;
pub mod session;
pub mod shutdown;
pub mod source;
pub mod stats;
pub mod symbols;
pub mod tls;
pub mod units;

pub(crate) mod api;
pub(crate) mod assets;
pub(crate) mod feed_thread;
pub(crate) mod listener;
pub(crate) mod metrics;
pub(crate) mod pending;
pub(crate) mod procfs;
pub(crate) mod ratelimit;
pub(crate) mod readiness;
pub(crate) mod scheduling_lag;

#[cfg(test)]
mod wire_bytes;
