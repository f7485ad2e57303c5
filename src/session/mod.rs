//! One client connection: a single `select!` loop over inbound requests,
//! outbound updates (mailbox wake-ups and pacing timers), heartbeats and
//! shutdown.
//!
//! The session is written over any `Stream + Sink` of WebSocket messages, so
//! tests can drive it with channels; `server.rs` hands it the real socket.
//! Every write is bounded by the stall timeout: a client whose socket
//! accepts nothing for that long is closed with 1008 `slow consumer`, while
//! conflation keeps its pending state at one tick per symbol meanwhile.

mod flow;
pub mod outbox;
mod requests;
mod write_state;

use crate::clock::now_ns;
use crate::codec::Encoding;
use crate::config::Limits;
use crate::conflate::Mailbox;
use crate::protocol::{ErrorCode, Event, RequestError, parse_json_request, parse_msgpack_request};
use crate::ratelimit::RequestBudget;
use crate::router::{ClientId, RouterHandle};
use crate::shutdown::Shutdown;
use crate::stats::{Stage, Stats, record_latencies};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use outbox::{Outbox, reply_frame};
use requests::RequestContext;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use write_state::WriteState;

/// How long a closing handshake may take before the socket is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Settings and shared handles every session of a server uses.
#[derive(Debug)]
pub struct SessionSettings {
    pub router: RouterHandle,
    pub stats: Arc<Stats>,
    pub limits: Limits,
    pub heartbeat: Duration,
    pub stall_timeout: Duration,
    pub max_frame_bytes: usize,
    pub min_write_interval: Duration,
    /// Oldest a missed update may be and still be sent rather than merged;
    /// also the longest a client may leave a probe unanswered before writes
    /// to it wait (`--max-lag`; zero turns flow control off).
    pub max_lag: Duration,
    pub server_name: String,
}

/// Why a session ended; decides the close frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Stop {
    ClientClosed,
    SocketError(String),
    SlowConsumer,
    HeartbeatTimeout,
    Abuse,
    FrameTooBig,
    /// A text message that is not UTF-8 (RFC 6455 section 8.1).
    InvalidUtf8,
    /// A frame that breaks RFC 6455 framing, e.g. a stray continuation.
    ProtocolViolation,
    ShuttingDown,
    ServerError,
}

impl Stop {
    /// The close frame to send, if the socket is still usable.
    fn close_frame(&self) -> Option<(u16, &'static str)> {
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

pub struct Session<S> {
    socket: S,
    settings: Arc<SessionSettings>,
    client: ClientId,
    encoding: Encoding,
    outbox: Outbox,
    budget: RequestBudget,
    frames: Vec<Bytes>,
    last_heard: Instant,
    next_write_at: Instant,
    /// Subscriptions this session added to the shared gauge.
    counted_subscriptions: i64,
    /// What is in flight to the client, by what it has consumed.
    flow: flow::AckClock,
}

impl<S, E> Session<S>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message> + Unpin,
    E: SocketError,
{
    pub fn new(
        socket: S,
        settings: Arc<SessionSettings>,
        client: ClientId,
        encoding: Encoding,
    ) -> Self {
        let now = Instant::now();
        let limits = &settings.limits;
        Self {
            socket,
            client,
            encoding,
            outbox: Outbox::new(
                settings.router.table().clone(),
                encoding,
                settings.max_frame_bytes,
                settings.max_lag,
            ),
            budget: RequestBudget::new(
                limits.requests_per_sec,
                limits.request_burst,
                limits.abuse_threshold,
                now,
            ),
            frames: Vec::new(),
            last_heard: now,
            next_write_at: now,
            counted_subscriptions: 0,
            flow: flow::AckClock::new(settings.max_lag),
            settings,
        }
    }

    /// Runs the connection to its end and says why it ended.
    pub async fn run(mut self, session_id: String, mut shutdown: Shutdown) -> Stop {
        let hello = Event::Hello {
            v: crate::protocol::PROTOCOL_VERSION,
            server: self.settings.server_name.clone(),
            session: session_id,
            encoding: self.encoding.name().into(),
            heartbeat_s: self.settings.heartbeat.as_secs(),
            symbols: self.settings.router.table().len(),
        };
        let stop = match Box::pin(self.send_control(&[hello])).await {
            Ok(()) => self.event_loop(&mut shutdown).await,
            Err(stop) => stop,
        };
        Box::pin(self.finish(stop)).await
    }

    async fn event_loop(&mut self, shutdown: &mut Shutdown) -> Stop {
        let heartbeat = self.settings.heartbeat;
        let mut ping = tokio::time::interval_at(Instant::now() + heartbeat, heartbeat);
        let wake = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(wake);
        // Created once: re-creating it per iteration would take the watch
        // channel's lock on every wake-up of every session.
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let mut state = WriteState::Ready;
        let mut armed_at = None;
        loop {
            let now = Instant::now();
            let next = self.write_state(now);
            if matches!(next, WriteState::AwaitingAck { .. })
                && !matches!(state, WriteState::AwaitingAck { .. })
            {
                self.settings
                    .stats
                    .flow_pauses
                    .fetch_add(1, Ordering::Relaxed);
            }
            state = next;
            let wake_at = state.wake_at(self.outbox.deferred_until);
            if let (Some(at), true) = (wake_at, wake_at != armed_at) {
                wake.as_mut().reset(at);
            }
            armed_at = wake_at;
            let mailbox = self.outbox.mailbox_ref().cloned();
            let result = tokio::select! {
                biased;
                _ = &mut stop => {
                    let _ = self.deliver().await;
                    return Stop::ShuttingDown;
                }
                inbound = self.socket.next() => match inbound {
                    None => return Stop::ClientClosed,
                    Some(Err(e)) if e.is_too_big() => return Stop::FrameTooBig,
                    Some(Err(e)) if e.is_invalid_utf8() => return Stop::InvalidUtf8,
                    Some(Err(e)) if e.is_protocol_violation() => return Stop::ProtocolViolation,
                    Some(Err(e)) => return Stop::SocketError(e.to_string()),
                    Some(Ok(message)) => {
                        self.last_heard = Instant::now();
                        // Boxed: requests are rare, and inlining their
                        // futures would grow every idle connection's task.
                        Box::pin(self.on_message(message)).await
                    }
                },
                _ = wait_for(mailbox.as_deref()), if state.writes_now() => {
                    self.deliver_if_ready().await
                }
                _ = &mut wake, if wake_at.is_some() => {
                    armed_at = None;
                    let now = Instant::now();
                    let state = self.write_state(now);
                    if state.stalled(now) {
                        self.settings.stats.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
                        return Stop::SlowConsumer;
                    }
                    // The spacing ended or a paced symbol fell due.
                    if state.writes_now() { self.deliver().await } else { Ok(()) }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > 2 * heartbeat {
                        self.settings.stats.heartbeat_closes.fetch_add(1, Ordering::Relaxed);
                        return Stop::HeartbeatTimeout;
                    }
                    // An unanswered probe already asks for a pong; a second
                    // ping could be answered in its place (RFC 6455 lets a
                    // client answer only the latest ping).
                    if self.flow.unanswered_since().is_some() {
                        Ok(())
                    } else {
                        self.send_timed(Message::Ping(Bytes::new())).await
                    }
                }
            };
            if let Err(stop) = result {
                return stop;
            }
        }
    }

    fn write_state(&self, now: Instant) -> WriteState {
        WriteState::at(
            now,
            &self.flow,
            self.next_write_at,
            self.settings.stall_timeout,
        )
    }

    /// Writes what the mailbox woke the session for, unless the write state
    /// changed since the wait began (time passes): then the wake-up is kept
    /// for when writing is allowed again.
    async fn deliver_if_ready(&mut self) -> Result<(), Stop> {
        if self.write_state(Instant::now()).writes_now() {
            return self.deliver().await;
        }
        if let Some(mailbox) = self.outbox.mailbox_ref() {
            mailbox.rewake();
        }
        Ok(())
    }

    async fn on_message(&mut self, message: Message) -> Result<(), Stop> {
        let max = self.settings.limits.max_request_bytes;
        let parsed = match message {
            Message::Text(text) => {
                check_size(text.len(), max).and_then(|()| parse_json_request(text.as_bytes()))
            }
            Message::Binary(bytes) if self.encoding == Encoding::Msgpack => {
                check_size(bytes.len(), max).and_then(|()| parse_msgpack_request(&bytes))
            }
            Message::Binary(_) => Err(RequestError::new(
                None,
                ErrorCode::BadRequest,
                "binary frames are accepted only in msgpack mode; send JSON text",
            )),
            Message::Close(_) => return Err(Stop::ClientClosed),
            Message::Pong(payload)
                if self.flow.on_pong(
                    &payload,
                    Instant::now(),
                    self.settings.stats.scheduling_lag(),
                ) =>
            {
                return Ok(());
            }
            Message::Ping(_) | Message::Pong(_) => return self.on_control_frame(),
        };
        // Every request costs a token, valid or not; the refusal names the
        // request's id when it could be read, so clients can match it.
        let parsed = if self.budget.try_take(Instant::now()) {
            parsed
        } else {
            let id = match &parsed {
                Ok(request) => request.id(),
                Err(error) => error.id,
            };
            Err(RequestError::new(
                id,
                ErrorCode::RateLimited,
                format!(
                    "more than {} requests per second",
                    self.settings.limits.requests_per_sec
                ),
            ))
        };
        let stats = &self.settings.stats;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        let reply = match parsed {
            Ok(request) => {
                let mut context = RequestContext {
                    client: self.client,
                    router: &self.settings.router,
                    limits: &self.settings.limits,
                    outbox: &mut self.outbox,
                };
                context
                    .handle(request)
                    .await
                    .map_err(|_| Stop::ServerError)?
            }
            Err(error) => requests::Reply {
                events: vec![error.into_event()],
                refused: true,
                snapshots: 0,
            },
        };
        if reply.refused {
            stats.request_errors.fetch_add(1, Ordering::Relaxed);
            if self.budget.refused() {
                stats.abuse_closes.fetch_add(1, Ordering::Relaxed);
                return Err(Stop::Abuse);
            }
        } else {
            self.budget.accepted();
        }
        stats
            .snapshots_out
            .fetch_add(reply.snapshots, Ordering::Relaxed);
        self.update_subscription_gauge();
        self.send_control(&reply.events).await
    }

    /// Pings and pongs cost a request token, as requests do, so a ping
    /// flood (which tungstenite answers on its own) counts as abuse and is
    /// closed with 1008; within the budget they cost nothing more.
    fn on_control_frame(&mut self) -> Result<(), Stop> {
        if self.budget.try_take(Instant::now()) {
            self.budget.accepted();
        } else if self.budget.refused() {
            self.settings
                .stats
                .abuse_closes
                .fetch_add(1, Ordering::Relaxed);
            return Err(Stop::Abuse);
        }
        Ok(())
    }

    fn update_subscription_gauge(&mut self) {
        let now = self.outbox.subscription_count() as i64;
        let delta = now - self.counted_subscriptions;
        if delta != 0 {
            self.settings
                .stats
                .subscriptions
                .fetch_add(delta, Ordering::Relaxed);
            self.counted_subscriptions = now;
        }
    }

    /// Sends every pending update in as few frames as the size cap allows,
    /// with one flush.
    async fn deliver(&mut self) -> Result<(), Stop> {
        let drained_at = Instant::now();
        let collected = self
            .outbox
            .collect(drained_at, self.flow.read_delay(), &mut self.frames);
        if self.frames.is_empty() {
            return Ok(());
        }
        let mut bytes = 0;
        let frame_count = self.frames.len() as u64;
        let mut frames = std::mem::take(&mut self.frames);
        // A probe rides in the same write, behind the data it acknowledges.
        let probe = self.flow.on_write(frame_count, drained_at);
        let result = tokio::time::timeout(self.settings.stall_timeout, async {
            for frame in frames.drain(..) {
                bytes += frame.len() as u64;
                let message = self.data_message(frame);
                self.socket.feed(message).await.map_err(|_| ())?;
            }
            if let Some(probe) = probe {
                self.socket
                    .feed(Message::Ping(probe))
                    .await
                    .map_err(|_| ())?;
            }
            self.socket.flush().await.map_err(|_| ())
        })
        .await;
        self.frames = frames;
        match result {
            Err(_) => {
                self.settings
                    .stats
                    .slow_consumer_closes
                    .fetch_add(1, Ordering::Relaxed);
                return Err(Stop::SlowConsumer);
            }
            Ok(Err(())) => return Err(Stop::SocketError("write failed".into())),
            Ok(Ok(())) => {}
        }
        let stats = &self.settings.stats;
        record_latencies(
            stats,
            Stage::Deliver,
            now_ns(),
            self.outbox.sent_ts.iter().copied(),
        );
        stats
            .events_out
            .fetch_add(collected.events, Ordering::Relaxed);
        stats.frames_out.fetch_add(frame_count, Ordering::Relaxed);
        stats.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        if collected.conflated > 0 {
            stats
                .events_conflated
                .fetch_add(collected.conflated, Ordering::Relaxed);
            stats
                .updates_merged
                .fetch_add(collected.merged, Ordering::Relaxed);
        }
        self.next_write_at = Instant::now() + self.settings.min_write_interval;
        Ok(())
    }

    fn data_message(&self, frame: Bytes) -> Message {
        match self.encoding {
            Encoding::Json => {
                Message::Text(Utf8Bytes::try_from(frame).expect("JSON frames are UTF-8"))
            }
            Encoding::Msgpack => Message::Binary(frame),
        }
    }

    async fn send_control(&mut self, events: &[Event]) -> Result<(), Stop> {
        if events.is_empty() {
            return Ok(());
        }
        let frame = reply_frame(self.encoding, events);
        self.send_timed(self.data_message(frame)).await
    }

    async fn send_timed(&mut self, message: Message) -> Result<(), Stop> {
        match tokio::time::timeout(self.settings.stall_timeout, self.socket.send(message)).await {
            Err(_) => {
                self.settings
                    .stats
                    .slow_consumer_closes
                    .fetch_add(1, Ordering::Relaxed);
                Err(Stop::SlowConsumer)
            }
            Ok(Err(_)) => Err(Stop::SocketError("write failed".into())),
            Ok(Ok(())) => Ok(()),
        }
    }

    async fn finish(mut self, stop: Stop) -> Stop {
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

/// Refuses a request over the size limit before parsing it.
fn check_size(len: usize, max: usize) -> Result<(), RequestError> {
    if len > max {
        return Err(RequestError::new(
            None,
            ErrorCode::TooLarge,
            format!("request of {len} bytes exceeds the limit of {max} bytes"),
        ));
    }
    Ok(())
}

/// Waits for the mailbox, or forever when the client has none yet.
async fn wait_for(mailbox: Option<&Mailbox>) {
    match mailbox {
        Some(mailbox) => mailbox.wait().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
