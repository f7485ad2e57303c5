//! The server: binds the listener, starts source and router, and serves
//! HTTP (dashboard, health, API, metrics) and the WebSocket endpoint `/ws`.
//! With tokens configured, `/ws`, `/api/*` and `/metrics` need one
//! (`auth.rs`); `/healthz`, `/readyz` (`readiness.rs`) and the
//! dashboard's files do not.
//!
//! [`start`] returns a [`RunningServer`] with the bound address, so tests
//! and `tickfeed bench` run the real server in-process on port 0.

use crate::api;
use crate::auth::{self, TokenGate};
use crate::codec::Encoding;
use crate::config::{READ_BUFFER_BYTES, ServeConfig};
use crate::feed_thread::FeedThread;
use crate::listener::{self, ListenerSettings};
use crate::nats;
use crate::origin::AllowedOrigins;
use crate::readiness::{self, Readiness};
use crate::router::{Router, RouterHandle};
use crate::session::{Session, SessionSettings, Stop};
use crate::shutdown::{DoneGuard, Shutdown, ShutdownTrigger};
use crate::source;
use crate::stats::{Refusal, Stats};
use crate::symbols::SymbolTable;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rand::RngExt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How long start-up waits for the source's first message (its symbols).
const SOURCE_START_GRACE: Duration = Duration::from_secs(5);
/// How long shutdown waits for sessions to flush and close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Source(#[from] source::SourceError),
    #[error(transparent)]
    Nats(#[from] crate::nats::NatsError),
    #[error("cannot start the feed thread: {0}")]
    FeedThread(std::io::Error),
}

/// State shared by every HTTP handler.
pub struct AppState {
    pub settings: Arc<SessionSettings>,
    pub stats: Arc<Stats>,
    pub router: RouterHandle,
    origins: AllowedOrigins,
    readiness: Readiness,
    /// On a NATS edge: where `/api/bars` asks for what it does not serve.
    source_bars: Option<nats::bars::SourceBars>,
    /// On a NATS edge: where `/api/book` reads books it does not receive.
    stored_books: Option<nats::book::StoredBooks>,
    send_buffer: usize,
    next_client: AtomicU64,
    shutdown: Shutdown,
    done: DoneGuard,
}

impl axum::extract::FromRef<Arc<AppState>> for Readiness {
    fn from_ref(app: &Arc<AppState>) -> Self {
        app.readiness.clone()
    }
}

impl axum::extract::FromRef<Arc<AppState>> for crate::api::ApiState {
    fn from_ref(app: &Arc<AppState>) -> Self {
        crate::api::ApiState {
            stats: app.stats.clone(),
            router: app.router.clone(),
            backfill: app.settings.backfill.clone(),
            source_bars: app.source_bars.clone(),
            stored_books: app.stored_books.clone(),
        }
    }
}

/// A server running in this process.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    pub router: RouterHandle,
    trigger: ShutdownTrigger,
}

impl RunningServer {
    /// Closes every client with 1001 after flushing, stops every task, and
    /// returns once all are done (or the grace period ran out).
    pub async fn shutdown(mut self) {
        if tokio::time::timeout(SHUTDOWN_GRACE, self.trigger.stop_and_wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown grace period of {SHUTDOWN_GRACE:?} ran out");
        }
    }
}

/// Binds, starts every task, and returns once connections are accepted.
pub async fn start(config: ServeConfig) -> Result<RunningServer, ServeError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: config.listen,
        source,
    })?;
    let trigger = ShutdownTrigger::new();
    let stats = Arc::new(Stats::new());
    let table = Arc::new(SymbolTable::new(config.max_symbols));
    let (source_tx, source_rx) = source::channel();
    let nats = match &config.nats {
        Some(nats) => Some(nats::Node::connect(nats, addr, stats.clone()).await?),
        None => None,
    };
    // On a NATS edge, resumes and /api/ticks fetch what its rings lack
    // from the source, which answers from its own rings.
    let backfill = nats.as_ref().and_then(|node| {
        node.answer_history(table.clone(), &trigger);
        node.backfill(config.history)
    });
    // Bars: a source answers edges from its router; an edge asks it.
    let bars_answerer = nats.as_ref().and_then(nats::Node::bars_answerer);
    let source_bars = nats.as_ref().and_then(nats::Node::source_bars);
    let stored_books = nats.as_ref().and_then(nats::Node::stored_books);
    let feed = FeedThread::start(trigger.subscribe()).map_err(ServeError::FeedThread)?;
    let (router, first_message) = feed.enter(|| {
        let mut router = Router::new(table, stats.clone())
            .with_history(config.history, config.history_memory)
            .with_bars(config.bars_keep, config.bars_memory)
            .with_depth(config.depth);
        let first_message = router.first_message();
        match nats {
            None => source::spawn(
                &config.source,
                source_tx,
                stats.clone(),
                trigger.subscribe(),
                trigger.guard(),
            )?,
            Some(node) => {
                if let Some(interest) = node.spawn(
                    &config.source,
                    config.depth,
                    source_tx,
                    stats.clone(),
                    &trigger,
                )? {
                    router = router.with_interest(interest);
                }
            }
        }
        Ok::<_, ServeError>((
            router.spawn(source_rx, trigger.subscribe(), trigger.guard()),
            first_message,
        ))
    })?;
    if let Some(answerer) = bars_answerer {
        answerer.spawn(router.clone(), &trigger);
    }
    // Take clients only once the source's symbols exist, so the first
    // `hello` and `symbols` already list them (bounded for remote sources).
    if tokio::time::timeout(SOURCE_START_GRACE, first_message)
        .await
        .is_err()
    {
        tracing::warn!("the source sent nothing within {SOURCE_START_GRACE:?}; serving anyway");
    }
    crate::scheduling_lag::spawn(stats.clone(), trigger.subscribe(), trigger.guard());
    let settings = Arc::new(SessionSettings {
        router: router.clone(),
        stats: stats.clone(),
        limits: config.limits.clone(),
        heartbeat: config.heartbeat,
        stall_timeout: config.stall_timeout,
        max_frame_bytes: config.max_frame_bytes,
        min_write_interval: config.min_write_interval,
        max_lag: config.max_lag,
        server_name: format!("tickfeed {}", env!("CARGO_PKG_VERSION")),
        backfill,
    });
    let state = Arc::new(AppState {
        settings,
        stats: stats.clone(),
        router: router.clone(),
        origins: config.allowed_origins.clone(),
        source_bars,
        stored_books,
        readiness: Readiness {
            stats: stats.clone(),
            router: router.clone(),
            shutdown: trigger.subscribe(),
            edge: config
                .nats
                .as_ref()
                .is_some_and(|nats| nats.role == nats::NatsRole::Edge),
        },
        send_buffer: config.send_buffer,
        next_client: AtomicU64::new(1),
        shutdown: trigger.subscribe(),
        done: trigger.guard(),
    });
    let listening = ListenerSettings {
        send_buffer: config.send_buffer,
        tls: config.tls.clone(),
        handshake_timeout: config.handshake_timeout,
        max_pending_handshakes: config.max_pending_handshakes,
    };
    let gate = TokenGate {
        tokens: config.tokens.clone(),
        stats: stats.clone(),
    };
    tokio::spawn(listener::serve(
        listener,
        routes(state, gate),
        listening,
        stats.clone(),
        trigger.subscribe(),
        trigger.guard(),
    ));
    Ok(RunningServer {
        addr,
        stats,
        router,
        trigger,
    })
}

/// Runs until `signal` resolves, then shuts down gracefully.
pub async fn run(config: ServeConfig, signal: impl Future<Output = ()>) -> Result<(), ServeError> {
    let scheme = if config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let server = start(config).await?;
    println!("tickfeed listening on {scheme}://{}", server.addr);
    tracing::info!(addr = %server.addr, "listening on {scheme}://{}", server.addr);
    signal.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

fn routes(state: Arc<AppState>, gate: TokenGate) -> axum::Router {
    // Every route of `protected` needs a token when tokens are configured:
    // a route added here (such as /api/bars) is
    // protected without more code. CORS wraps the token check, so that a
    // browser's preflight, which never carries a token, is answered first.
    let mut protected = axum::Router::new()
        .route("/ws", get(ws_handler))
        .route("/api/symbols", get(api::symbols))
        .route("/api/ticks", get(api::ticks))
        .route("/api/bars", get(api::bars))
        .route("/api/book", get(api::book))
        .route("/api/stats", get(api::stats))
        .route("/api/asyncapi.json", get(crate::contract::serve_asyncapi))
        .route("/api/openapi.json", get(crate::contract::serve_openapi))
        .route("/metrics", get(api::metrics))
        .layer(middleware::from_fn_with_state(gate, auth::require_token));
    if let Some(cors) = state.origins.cors_layer() {
        protected = protected.layer(cors);
    }
    axum::Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readiness::readyz))
        .merge(protected)
        .fallback(crate::assets::serve)
        .with_state(state)
}

#[derive(Debug, serde::Deserialize)]
struct WsQuery {
    encoding: Option<String>,
}

/// Decrements the open-connection gauge when a connection ends, however.
struct ConnectionSlot(Arc<Stats>);

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Picks the encoding: subprotocol first (client's order), then
/// `?encoding=`, then JSON. Returns the subprotocol to echo.
fn negotiate(
    ws: &WebSocketUpgrade,
    query: Option<&str>,
) -> Result<(Encoding, Option<&'static str>), String> {
    for requested in ws.requested_protocols() {
        let Ok(text) = requested.to_str() else {
            continue;
        };
        for offered in text.split(',') {
            if let Some(encoding) = Encoding::from_subprotocol(offered) {
                return Ok((encoding, Some(encoding.subprotocol())));
            }
        }
    }
    match query {
        None => Ok((Encoding::Json, None)),
        Some(name) => Encoding::from_name(name)
            .map(|e| (e, None))
            .ok_or_else(|| format!("unknown encoding {name:?}: use json or msgpack")),
    }
}

/// Counts and logs a refused handshake and answers it.
fn refuse(app: &AppState, peer: SocketAddr, refusal: Refusal, answer: Response) -> Response {
    app.stats.outcomes.count_refusal(refusal);
    tracing::info!(%peer, reason = refusal.label(), status = answer.status().as_u16(), "handshake refused");
    answer
}

async fn ws_handler(
    State(app): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(query): Query<WsQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
    if !app.origins.allows(
        origin,
        headers.get(header::HOST).and_then(|h| h.to_str().ok()),
    ) {
        tracing::debug!(%peer, origin, "origin not in --allowed-origin");
        let answer = (
            StatusCode::FORBIDDEN,
            "forbidden: this origin is not in --allowed-origin\n",
        );
        return refuse(&app, peer, Refusal::Origin, answer.into_response());
    }
    let (encoding, protocol) = match negotiate(&ws, query.encoding.as_deref()) {
        Ok(chosen) => chosen,
        Err(msg) => {
            let answer = (StatusCode::BAD_REQUEST, format!("{msg}\n"));
            return refuse(&app, peer, Refusal::BadEncoding, answer.into_response());
        }
    };
    let limits = &app.settings.limits;
    let open = app.stats.connections.fetch_add(1, Ordering::Relaxed) + 1;
    let slot = ConnectionSlot(app.stats.clone());
    if app.shutdown.is_stopping() {
        let answer = (StatusCode::SERVICE_UNAVAILABLE, "server shutting down\n");
        return refuse(&app, peer, Refusal::ShuttingDown, answer.into_response());
    }
    if open as usize > limits.max_connections {
        let answer = (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "server full: {} connections (--max-connections)\n",
                limits.max_connections
            ),
        );
        return refuse(&app, peer, Refusal::OverCapacity, answer.into_response());
    }
    app.stats.connections_total.fetch_add(1, Ordering::Relaxed);
    let mut ws = ws
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(app.send_buffer.max(READ_BUFFER_BYTES))
        .max_write_buffer_size(4 * app.settings.max_frame_bytes + app.send_buffer + (1 << 20))
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes);
    if let Some(protocol) = protocol {
        ws.set_selected_protocol(HeaderValue::from_static(protocol));
    }
    let client = app.next_client.fetch_add(1, Ordering::Relaxed);
    ws.on_upgrade(move |socket| async move {
        let _slot = slot;
        let _done = app.done.clone();
        let session_id = new_session_id();
        tracing::debug!(session = %session_id, %peer, encoding = encoding.name(), "connection open");
        let session = Session::new(socket, app.settings.clone(), client, encoding);
        let stop = session.run(session_id.clone(), app.shutdown.clone()).await;
        let reason = stop.reason().label();
        match &stop {
            Stop::ClientClosed | Stop::ShuttingDown => {
                tracing::debug!(session = %session_id, %peer, reason, "connection closed")
            }
            Stop::SocketError(e) => {
                tracing::debug!(session = %session_id, %peer, reason, "connection closed: {e}")
            }
            _ => tracing::info!(session = %session_id, %peer, reason, "connection closed by server"),
        }
    })
}

/// A short random id for logs and `hello`.
fn new_session_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..8)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
