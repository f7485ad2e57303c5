//! Scale-out through NATS: one source node, many edge nodes
//! (`--nats URL --role source|edge`; see `docs/scaling.md`). Without
//! `--nats` nothing here runs and a single process needs no broker.
//!
//! ```text
//! source node: source -> publisher -+-> router -> sessions
//!                                   +-> NATS tickfeed.ticks.<SYMBOL>
//!                                            tickfeed.book.<SYMBOL>
//!                                        (stream TICKFEED: last value each)
//! edge node:   NATS -> edge -> router -> sessions
//!                      ^        |
//!                      +--------+ Interest: subscribe only while wanted
//! ```
//!
//! `subject` names subjects, `payload` encodes messages, `store` is the
//! broker's last-value stream (and the source's epoch), `publisher` the
//! source role, `edge` the edge role, `book` the bytes of numbered books
//! (and an edge's reads of stored ones), `inbound` the edge's decoding and
//! `seq` filter, `history` the source's answers to edges that resume
//! clients past their own rings, and `bars` the source's bars handed to
//! edges whose clients want a symbol's bars. Both roles need the broker at start (they
//! fail with a clear error otherwise) and reconnect by themselves after
//! that.

pub mod bars;
pub mod book;
pub mod edge;
pub mod history;
pub mod inbound;
pub mod payload;
pub mod publisher;
mod responder;
pub mod store;
pub mod subject;

use crate::router::InterestSender;
use crate::session::Backfill;
use crate::shutdown::ShutdownTrigger;
use crate::source::SourceConfig;
use crate::source::{self, SourceError, SourceSender};
use crate::stats::Stats;
use crate::symbols::SymbolTable;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// What this node does in a scaled-out deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NatsRole {
    /// Runs the feed (generator or replay) and publishes every update.
    Source,
    /// Serves clients with updates taken from NATS.
    Edge,
}

impl NatsRole {
    pub fn name(self) -> &'static str {
        match self {
            NatsRole::Source => "source",
            NatsRole::Edge => "edge",
        }
    }
}

/// Where the broker is and what this node does.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port`, one or more: the servers of a NATS cluster. The
    /// client connects to one and fails over to the others (and to any the
    /// cluster announces).
    pub urls: Vec<String>,
    pub role: NatsRole,
    /// Copies of the last-value stream a cluster keeps (`--nats-replicas`).
    pub replicas: usize,
}

impl NatsConfig {
    /// The servers as the logs and `/api/stats` show them.
    pub fn servers(&self) -> String {
        self.urls.join(",")
    }
}

/// A scale-out role that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum NatsError {
    #[error(
        "cannot connect to NATS at {url}: {cause} (is nats-server running there with -js? see docs/scaling.md)"
    )]
    Connect {
        url: String,
        cause: async_nats::ConnectError,
    },
    #[error("subscribing to {subject} on NATS: {cause}")]
    Subscribe {
        subject: String,
        cause: async_nats::SubscribeError,
    },
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Longest pause between reconnect attempts, so a broker back from a
/// restart is found within about this long.
const MAX_RECONNECT_DELAY: Duration = Duration::from_millis(500);
/// Connection events queued for the role's task. When full, later events
/// are dropped: each only asks for a refresh that a queued one already asks.
const EVENT_QUEUE: usize = 16;

/// A connected client and its connection events (connected, disconnected,
/// slow consumer), which the role's task watches.
pub struct Connection {
    pub client: async_nats::Client,
    pub events: mpsc::Receiver<async_nats::Event>,
}

/// Connects as `name` (shown by the broker's `/connz`); fails if the broker
/// is unreachable now, retries forever once connected. Keeps `stats.broker`
/// (`/readyz`, `/metrics`) true to the connection's state.
async fn connect(
    urls: &[String],
    name: String,
    stats: Arc<Stats>,
) -> Result<Connection, NatsError> {
    let (tx, events) = mpsc::channel(EVENT_QUEUE);
    let health = stats.clone();
    let client = async_nats::ConnectOptions::new()
        .name(name)
        .reconnect_delay_callback(|attempts| {
            let exponent = attempts.min(4) as u32;
            (Duration::from_millis(30) * 2u32.pow(exponent)).min(MAX_RECONNECT_DELAY)
        })
        .event_callback(move |event| {
            let tx = tx.clone();
            match event {
                async_nats::Event::Connected => health.broker.regained(),
                async_nats::Event::Disconnected => health.broker.lost(),
                _ => {}
            }
            async move {
                let _ = tx.try_send(event);
            }
        })
        .connect(urls)
        .await
        .map_err(|cause| NatsError::Connect {
            url: urls.join(","),
            cause,
        })?;
    stats.broker.connected_first();
    Ok(Connection { client, events })
}

/// A node connected to the broker with what its role read at start, ready
/// to run ([`Node::spawn`]).
/// Both boxed: each holds a connection and what it read at start.
pub enum Node {
    Source(Box<publisher::Publisher>),
    Edge(Box<edge::Edge>),
}

impl Node {
    /// Connects as `tickfeed-<role>@<addr>` (the name the broker's `/connz`
    /// shows), opens the last-value stream, and reads what the role needs
    /// first: the stored `seq` of every symbol, or the universe.
    pub async fn connect(
        config: &NatsConfig,
        addr: SocketAddr,
        stats: Arc<Stats>,
    ) -> Result<Node, NatsError> {
        let connection = connect(
            &config.urls,
            format!("tickfeed-{}@{addr}", config.role.name()),
            stats,
        )
        .await?;
        let client = connection.client.clone();
        tracing::info!(url = %config.servers(), role = config.role.name(), "scale-out through NATS");
        Ok(match config.role {
            NatsRole::Source => {
                let store = store::LastValues::open_for_source(client, config.replicas).await?;
                let publisher = publisher::Publisher::prepare(connection, store).await?;
                Node::Source(Box::new(publisher))
            }
            NatsRole::Edge => {
                let store = store::LastValues::open(client, config.replicas).await?;
                let edge = edge::Edge::prepare(config.servers(), connection, store).await?;
                Node::Edge(Box::new(edge))
            }
        })
    }

    /// Where an edge's resumes and `/api/ticks` get the history its rings
    /// lack, at most `per_symbol` updates of a symbol per resume (`None`
    /// on a source, whose rings have it all).
    pub fn backfill(&self, per_symbol: usize) -> Option<Backfill> {
        let Node::Edge(edge) = self else {
            return None;
        };
        let fetch = Arc::new(history::RequestHistory::new(edge.client().clone()));
        Some(Backfill { fetch, per_symbol })
    }

    /// On a source, what answers edges' bars requests once the router
    /// runs ([`bars::Answerer::spawn`]).
    pub fn bars_answerer(&self) -> Option<bars::Answerer> {
        match self {
            Node::Source(publisher) => Some(bars::Answerer::new(publisher.client().clone())),
            Node::Edge(_) => None,
        }
    }

    /// On an edge, where `/api/bars` asks for the bars of a symbol the
    /// edge does not serve.
    pub fn source_bars(&self) -> Option<bars::SourceBars> {
        match self {
            Node::Edge(edge) => Some(bars::SourceBars::new(edge.client().clone())),
            Node::Source(_) => None,
        }
    }

    /// On an edge, where `/api/book` reads the latest book of a symbol
    /// whose books the edge does not receive.
    pub fn stored_books(&self) -> Option<book::StoredBooks> {
        match self {
            Node::Edge(edge) => Some(book::StoredBooks::new(edge.store().clone())),
            Node::Source(_) => None,
        }
    }

    /// On a source, starts answering edges' history requests from
    /// `table`'s rings, on the current runtime.
    pub fn answer_history(&self, table: Arc<SymbolTable>, trigger: &ShutdownTrigger) {
        if let Node::Source(publisher) = self {
            history::answer_requests(publisher.client().clone(), table, trigger);
        }
    }

    /// Starts the role's tasks on the current runtime: on a source, the
    /// configured source feeding the publisher, which numbers books at
    /// `depth` levels (`--depth`); on an edge, the edge in place of a
    /// source. Returns the interest hook the router must report to (edge
    /// only).
    pub fn spawn(
        self,
        source: &SourceConfig,
        depth: usize,
        out: SourceSender,
        stats: Arc<Stats>,
        trigger: &ShutdownTrigger,
    ) -> Result<Option<InterestSender>, NatsError> {
        match self {
            Node::Source(publisher) => {
                let (source_tx, source_rx) = source::channel();
                source::spawn(
                    source,
                    source_tx,
                    stats,
                    trigger.subscribe(),
                    trigger.guard(),
                )?;
                publisher.spawn(source_rx, out, depth, trigger);
                Ok(None)
            }
            Node::Edge(edge) => {
                let (interest_tx, interest_rx) = mpsc::unbounded_channel();
                edge.spawn(interest_rx, out, stats, trigger);
                Ok(Some(interest_tx))
            }
        }
    }
}
