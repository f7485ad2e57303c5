//! How a session ends: why ([`Stop`]), with which close code, and the
//! closing handshake. The socket errors that have their own close code are
//! told apart by [`SocketError`], so the session can be tested over
//! channels with errors of its own.

use super::Session;
use crate::stats::CloseReason;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite;

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Why a session ended; decides the close frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    /// The client closed or went away: nothing to send.
    ClientClosed,
    /// The socket failed: nothing can be sent.
    SocketError(String),
    /// A write made no progress for the stall timeout (1008).
    SlowConsumer,
    /// Nothing heard for two heartbeats (1008).
    HeartbeatTimeout,
    /// Refused requests outnumbered accepted ones (1008).
    Abuse,
    /// A message over `--max-message-bytes` (1009).
    FrameTooBig,
    /// A text message that is not UTF-8 (RFC 6455 section 8.1).
    InvalidUtf8,
    /// A frame that breaks RFC 6455 framing, e.g. a stray continuation.
    ProtocolViolation,
    /// The server is stopping (1001).
    ShuttingDown,
    /// The router is gone under the session (1011).
    ServerError,
    /// The seq space changed under the connection (1012): a NATS source
    /// restarted on an empty store. A new connection's `hello` names the
    /// new epoch.
    EpochChanged,
}

impl Stop {
    /// The close frame to send, if the socket is still usable.
    pub(super) fn close_frame(&self) -> Option<(u16, &'static str)> {
        match self {
            Stop::ClientClosed | Stop::SocketError(_) => None,
            Stop::SlowConsumer => Some((1008, "slow consumer")),
            Stop::HeartbeatTimeout => Some((1008, "heartbeat timeout")),
            Stop::Abuse => Some((1008, "too many refused requests")),
            Stop::FrameTooBig => Some((1009, "frame too big")),
            Stop::InvalidUtf8 => Some((1007, "invalid UTF-8 in a text frame")),
            Stop::ProtocolViolation => Some((1002, "websocket protocol error")),
            Stop::ShuttingDown => Some((1001, "server shutting down")),
            Stop::ServerError => Some((1011, "server error")),
            Stop::EpochChanged => Some((1012, "epoch changed; reconnect")),
        }
    }
}

impl Stop {
    /// The reason label of the close, for `/metrics` and the logs.
    pub fn reason(&self) -> CloseReason {
        match self {
            Stop::ClientClosed => CloseReason::ClientClosed,
            Stop::SocketError(_) => CloseReason::SocketError,
            Stop::SlowConsumer => CloseReason::SlowConsumer,
            Stop::HeartbeatTimeout => CloseReason::HeartbeatTimeout,
            Stop::Abuse => CloseReason::Abuse,
            Stop::FrameTooBig => CloseReason::FrameTooBig,
            Stop::InvalidUtf8 => CloseReason::InvalidUtf8,
            Stop::ProtocolViolation => CloseReason::ProtocolViolation,
            Stop::ShuttingDown => CloseReason::ShuttingDown,
            Stop::ServerError => CloseReason::ServerError,
            Stop::EpochChanged => CloseReason::EpochChanged,
        }
    }
}

/// Tells apart the socket errors that have their own close code; any
/// other error means the connection is gone.
pub trait SocketError: std::fmt::Display {
    fn is_too_big(&self) -> bool;
    fn is_invalid_utf8(&self) -> bool {
        false
    }
    fn is_protocol_violation(&self) -> bool {
        false
    }
}

impl SocketError for axum::Error {
    fn is_too_big(&self) -> bool {
        matches!(
            tungstenite_error(self),
            Some(tungstenite::Error::Capacity(_))
        )
    }

    fn is_invalid_utf8(&self) -> bool {
        matches!(tungstenite_error(self), Some(tungstenite::Error::Utf8(_)))
    }

    /// Bad framing from a client that is still there; a peer that vanished
    /// without a close frame is not one.
    fn is_protocol_violation(&self) -> bool {
        use tungstenite::error::ProtocolError::ResetWithoutClosingHandshake;
        matches!(tungstenite_error(self), Some(tungstenite::Error::Protocol(e)) if *e != ResetWithoutClosingHandshake)
    }
}

fn tungstenite_error(error: &axum::Error) -> Option<&tungstenite::Error> {
    use std::error::Error as _;
    error
        .source()
        .and_then(|e| e.downcast_ref::<tungstenite::Error>())
}

impl<S, E> Session<S>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: SocketError,
{
    pub(super) async fn finish(mut self, stop: Stop) -> Stop {
        self.settings.stats.outcomes.count_close(stop.reason());
        if let Some((code, reason)) = stop.close_frame() {
            let close = Message::Close(Some(CloseFrame {
                code,
                reason: Utf8Bytes::from_static(reason),
            }));
            // Then wait for the client's close frame: closing a socket with
            // unread input resets it, and the client could lose ours.
            let _ = tokio::time::timeout(CLOSE_GRACE, async {
                if self.socket.send(close).await.is_ok() {
                    while let Some(Ok(message)) = self.socket.next().await {
                        if matches!(message, Message::Close(_)) {
                            break;
                        }
                    }
                }
            })
            .await;
        }
        if self.outbox.mailbox_ref().is_some() {
            self.settings.router.leave(self.client);
        }
        self.outbox.remove_all();
        self.update_subscription_gauge();
        stop
    }
}
