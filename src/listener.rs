//! The accept loop: takes TCP connections, tunes their sockets, runs the
//! TLS handshake when `--tls-cert` is set, and serves HTTP/1.1 (with
//! WebSocket upgrades) on each through hyper, until shutdown.
//!
//! `server.rs` hands it the bound listener and the axum app. Every step
//! before the app sees a request is bounded by `--handshake-timeout`: the
//! TLS handshake here, and reading the request head through hyper's
//! `header_read_timeout`. A client that opens a connection and trickles a
//! partial request (slow-loris) is therefore dropped, holding one socket
//! and one small task until then. Each connection runs in its own task, so
//! a slow handshake never delays accepting the next one. At most
//! `--max-pending-handshakes` connections may be in that state at once
//! (`pending.rs`): over the cap the oldest of them is closed to make room,
//! and counted in `handshakes_shed`.
//!
//! Every request carries its peer's address as axum's `ConnectInfo`
//! ([`WithPeer`]), so handlers can log who they refused or served.

use crate::pending::{Admitted, Eviction, PendingHandshakes, PendingSlot, ReleaseOnFirstRequest};
use crate::shutdown::{DoneGuard, Shutdown};
use crate::stats::{Refusal, Stats};
use crate::tls::TlsConfig;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

/// Pause after an accept error such as "too many open files", so that a
/// full descriptor table does not turn the loop into a busy spin; closing
/// connections free descriptors within this time.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// How connections are accepted.
#[derive(Debug, Clone)]
pub(crate) struct ListenerSettings {
    /// Kernel send buffer per connection (`SO_SNDBUF`); 0 keeps the default.
    pub send_buffer: usize,
    pub tls: Option<TlsConfig>,
    /// Longest time for the TLS handshake and for the HTTP request head.
    pub handshake_timeout: Duration,
    /// Most connections at once between accept and their first request head.
    pub max_pending_handshakes: usize,
}

/// Accepts and serves connections until `stop` fires, then lets each open
/// HTTP connection finish its current request. Upgraded WebSocket sessions
/// run on their own tasks and close themselves on the same signal.
pub(crate) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    settings: ListenerSettings,
    stats: Arc<Stats>,
    mut stop: Shutdown,
    done: DoneGuard,
) {
    let pending = PendingHandshakes::new(settings.max_pending_handshakes);
    let settings = Arc::new(settings);
    loop {
        let accepted = tokio::select! {
            _ = stop.wait() => break,
            accepted = listener.accept() => accepted,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                tracing::warn!("accept failed: {e}; retrying in {ACCEPT_BACKOFF:?}");
                tokio::select! {
                    _ = stop.wait() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        let admitted = pending.admit();
        if admitted.evicted_oldest {
            stats.outcomes.count_refusal(Refusal::HandshakeShed);
        }
        tune_socket(&tcp, settings.send_buffer);
        tokio::spawn(connection(
            tcp,
            peer,
            admitted,
            app.clone(),
            settings.clone(),
            stop.clone(),
            done.clone(),
        ));
    }
}

/// Errors that concern one connection only, not the listener.
fn is_per_connection(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

/// Per-connection socket options: no Nagle delay (the server batches
/// itself) and a bounded kernel send buffer so conflation, not the kernel,
/// decides what a slow client sees.
fn tune_socket(tcp: &TcpStream, send_buffer: usize) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    if send_buffer > 0
        && let Err(e) = socket2::SockRef::from(tcp).set_send_buffer_size(send_buffer)
    {
        tracing::debug!("SO_SNDBUF: {e}");
    }
}

/// One connection, from the TLS handshake (if any) to its last request.
/// Until its first request head is read it holds a pending slot and ends
/// when evicted from it.
async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    admitted: Admitted,
    app: axum::Router,
    settings: Arc<ListenerSettings>,
    mut stop: Shutdown,
    _done: DoneGuard,
) {
    let Admitted {
        slot, mut eviction, ..
    } = admitted;
    let app = WithPeer { inner: app, peer };
    let Some(tls) = &settings.tls else {
        return serve_http(tcp, slot, eviction, app, &settings, stop).await;
    };
    let handshake = tokio::time::timeout(settings.handshake_timeout, tls.acceptor().accept(tcp));
    let stream = tokio::select! {
        _ = stop.wait() => return,
        _ = eviction.evicted() => return evicted(peer),
        result = handshake => match result {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return tracing::debug!(%peer, "TLS handshake failed: {e}"),
            Err(_) => return tracing::debug!(%peer, "TLS handshake timed out after {:?}", settings.handshake_timeout),
        },
    };
    serve_http(stream, slot, eviction, app, &settings, stop).await;
}

/// Logs the end of a connection evicted from its pending slot.
fn evicted(peer: SocketAddr) {
    tracing::info!(
        %peer,
        reason = Refusal::HandshakeShed.label(),
        "pending connection closed: --max-pending-handshakes reached"
    );
}

/// The app with the connection's peer address put into every request, as
/// axum's `ConnectInfo`.
#[derive(Clone)]
struct WithPeer {
    inner: axum::Router,
    peer: SocketAddr,
}

impl hyper::service::Service<hyper::Request<hyper::body::Incoming>> for WithPeer {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = <TowerToHyperService<axum::Router> as hyper::service::Service<
        hyper::Request<hyper::body::Incoming>,
    >>::Future;

    fn call(&self, mut request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        TowerToHyperService::new(self.inner.clone()).call(request)
    }
}

/// Serves HTTP/1.1 requests on one connection; a WebSocket upgrade hands
/// the connection over to its session and ends this.
async fn serve_http<IO>(
    io: IO,
    slot: PendingSlot,
    mut eviction: Eviction,
    app: WithPeer,
    settings: &ListenerSettings,
    mut stop: Shutdown,
) where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.handshake_timeout);
    let peer = app.peer;
    let service = ReleaseOnFirstRequest { inner: app, slot };
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = eviction.evicted() => return evicted(peer),
        _ = stop.wait() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!("HTTP connection ended: {e}");
    }
}
