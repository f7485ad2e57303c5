//! One client connection: a single `select!` loop over inbound requests,
//! outbound updates (mailbox wake-ups and pacing timers), heartbeats and
//! shutdown.
//!
//! The session is written over any `Stream + Sink` of WebSocket messages, so
//! tests can drive it with channels; `server.rs` hands it the real socket.
//! Every write is bounded by the stall timeout: a client whose socket
//! accepts nothing for that long is closed with 1008 `slow consumer`, while
//! conflation keeps its pending state at one tick per symbol meanwhile.

mod backfill;
mod close;
mod flow;
mod inbound;
pub mod limits;
pub mod outbox;
mod requests;
mod write_state;

use crate::clock::now_ns;
use crate::codec::Encoding;
use crate::conflate::Mailbox;
use crate::protocol::Event;
use crate::ratelimit::RequestBudget;
use crate::router::{ClientId, RouterHandle};
use crate::shutdown::Shutdown;
use crate::stats::{Stage, Stats, record_latencies};
use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use outbox::{Collected, Outbox, reply_frame};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;
use write_state::WriteState;

pub use backfill::{Backfill, FETCH_TIMEOUT, FetchError, HistoryFetch};
pub use close::{SocketError, Stop};

pub use limits::Limits;

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
    /// Where a resume gets the updates this node's rings lack (a NATS
    /// edge's source); `None` reads the local rings alone.
    pub backfill: Option<Backfill>,
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
    /// The table's epoch changes when `hello` named the epoch.
    epoch_changes: u64,
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
            )
            .with_bars(settings.router.bars().clone())
            .with_books(settings.router.books().clone()),
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
            epoch_changes: 0,
            settings,
        }
    }

    /// Runs the connection to its end and says why it ended.
    pub async fn run(mut self, session_id: String, mut shutdown: Shutdown) -> Stop {
        self.epoch_changes = self.settings.router.table().epoch_changes();
        let hello = Event::Hello {
            v: crate::protocol::PROTOCOL_VERSION,
            server: self.settings.server_name.clone(),
            session: session_id,
            encoding: self.encoding.name().into(),
            heartbeat_s: self.settings.heartbeat.as_secs(),
            symbols: self.settings.router.table().len(),
            epoch: self.settings.router.table().epoch(),
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
                        return Stop::SlowConsumer;
                    }
                    // The spacing ended or a paced symbol fell due.
                    if state.writes_now() { self.deliver().await } else { Ok(()) }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > 2 * heartbeat {
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

    /// Sends every pending update in as few frames as the size cap allows,
    /// with one flush.
    async fn deliver(&mut self) -> Result<(), Stop> {
        let drained_at = Instant::now();
        let collected = self
            .outbox
            .collect(drained_at, self.flow.read_delay(), &mut self.frames);
        self.check_epoch()?;
        self.write_frames(drained_at, collected, Some(Stage::Deliver))
            .await
    }

    /// Ends the connection once the epoch changed: what it would send next
    /// is of another seq space than `hello` named. Checked after reading
    /// ticks and before writing them (the router counts the change before
    /// it stores a tick of the new epoch).
    fn check_epoch(&self) -> Result<(), Stop> {
        if self.settings.router.table().epoch_changes() == self.epoch_changes {
            Ok(())
        } else {
            Err(Stop::EpochChanged)
        }
    }

    /// Writes `self.frames` (which carry `collected`) with one flush, the
    /// flow-control probe behind them, and counts them. `stage` says
    /// whether their events' delivery latency is recorded: not for the
    /// old updates a resume sends.
    async fn write_frames(
        &mut self,
        drained_at: Instant,
        collected: Collected,
        stage: Option<Stage>,
    ) -> Result<(), Stop> {
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
            Err(_) => return Err(Stop::SlowConsumer),
            Ok(Err(())) => return Err(Stop::SocketError("write failed".into())),
            Ok(Ok(())) => {}
        }
        let stats = &self.settings.stats;
        if let Some(stage) = stage {
            record_latencies(stats, stage, now_ns(), self.outbox.sent_ts.iter().copied());
        }
        stats
            .events_out
            .fetch_add(collected.events, Ordering::Relaxed);
        stats.frames_out.fetch_add(frame_count, Ordering::Relaxed);
        if collected.books > 0 {
            stats
                .books_out
                .fetch_add(collected.books, Ordering::Relaxed);
        }
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
            Err(_) => Err(Stop::SlowConsumer),
            Ok(Err(_)) => Err(Stop::SocketError("write failed".into())),
            Ok(Ok(())) => Ok(()),
        }
    }
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
