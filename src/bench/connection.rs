//! One bench client's connection as a stream of frames, whatever the
//! target: a tickfeed WebSocket or a NATS connection over WebSocket. Workers
//! drive many of these at once with `SelectAll`.
//!
//! A slow client pauses ([`Pause`]) in one of three ways (`--slow-mode`):
//! `event` spends `--slow-delay` on every event (after a frame of `k`
//! ticks it stops reading for `k` delays); `frame` stops for one delay
//! after every frame, whatever it held; `burst` reads promptly but stops
//! for one delay once every second. While it pauses its socket is not
//! polled at all, as with a client busy drawing: the kernel buffers fill,
//! and the server's pings go unanswered, because tungstenite answers a
//! ping only while reading. For `event`, the worker tells the connection
//! how many ticks the frame held through a shared counter ([`Pace`])
//! before the connection is polled again.

use super::nats_client::{NatsStream, Read};
use bytes::Bytes;
use futures_util::Stream;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Where a client's frames come from.
pub(super) enum Wire {
    Tickfeed(Box<WebSocketStream<TcpStream>>),
    Nats(Box<NatsStream>),
}

/// What a connection yields.
#[derive(Debug)]
pub(super) enum Incoming {
    /// One WebSocket message: a tickfeed frame.
    Frame(Bytes),
    /// The NATS message payloads (one event each) of the frames read.
    Messages(Vec<Bytes>),
    /// The connection ended; with the error, if it was one.
    Closed(Option<String>),
}

/// Ticks in the frame a slow client read last, set by its worker.
pub(super) type Pace = Arc<AtomicU32>;

/// How often a `burst` reader stops: once a second, so that with a delay
/// well under a second it keeps up on average.
pub(super) const BURST_PERIOD: Duration = Duration::from_secs(1);

/// How a slow client reads (`--slow-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlowMode {
    /// Spends the delay on every event: a frame of k ticks stops it for k
    /// delays.
    Event,
    /// Reads one frame, then stops for one delay, whatever the frame held.
    Frame,
    /// Reads promptly but stops for one delay once every second.
    Burst,
}

/// What makes a client slow: the mode and its delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowReading {
    pub mode: SlowMode,
    pub delay: Duration,
}

/// The pause of a slow client: decides when it may read again, and
/// sleeps until then without touching the socket.
struct Pause {
    reading: SlowReading,
    /// Ticks in the last frame (`event` mode).
    pace: Pace,
    sleep: Pin<Box<Sleep>>,
    sleeping: bool,
    /// When the last frame was read, until its pause is decided.
    read_at: Option<Instant>,
    /// Start of the next stop of a `burst` reader; set at its first read.
    next_stop: Option<Instant>,
}

impl Pause {
    fn new(reading: SlowReading, pace: Pace) -> Self {
        Self {
            reading,
            pace,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            sleeping: false,
            read_at: None,
            next_stop: None,
        }
    }

    /// Notes that a frame was read at `at`.
    fn frame_read(&mut self, at: Instant) {
        self.read_at = Some(at);
        if self.reading.mode == SlowMode::Burst && self.next_stop.is_none() {
            self.next_stop = Some(at + BURST_PERIOD);
        }
    }

    /// When the client may read again, asked before each read at `now`;
    /// `None` (or a past instant) means at once.
    fn resume_at(&mut self, now: Instant) -> Option<Instant> {
        let delay = self.reading.delay;
        match self.reading.mode {
            SlowMode::Event => {
                let events = self.pace.swap(0, Ordering::Relaxed);
                Some(self.read_at.take()? + delay * events)
            }
            SlowMode::Frame => Some(self.read_at.take()? + delay),
            SlowMode::Burst => {
                self.read_at = None;
                let stop = self.next_stop.as_mut()?;
                // A stop that passed while there was nothing to read was
                // taken all the same.
                while *stop + delay <= now {
                    *stop += BURST_PERIOD;
                }
                if now < *stop {
                    return None;
                }
                let resume = *stop + delay;
                *stop += BURST_PERIOD;
                Some(resume)
            }
        }
    }

    /// Ready when the client may read; until then only the timer is
    /// polled, never the socket.
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.sleeping {
            let now = Instant::now();
            match self.resume_at(now) {
                Some(at) if at > now => {
                    self.sleep.as_mut().reset(at);
                    self.sleeping = true;
                }
                _ => return Poll::Ready(()),
            }
        }
        ready!(self.sleep.as_mut().poll(cx));
        self.sleeping = false;
        Poll::Ready(())
    }
}

/// A client connection yielding `(client, Incoming)`, ending after
/// `Closed`.
pub(super) struct Connection {
    client: u32,
    wire: Wire,
    pause: Option<Pause>,
    ended: bool,
}

impl Connection {
    /// `slow`: how a slow client reads, and where its worker writes how
    /// many ticks each frame held (slow clients only).
    pub(super) fn new(client: u32, wire: Wire, slow: Option<(SlowReading, Pace)>) -> Self {
        Self {
            client,
            wire,
            pause: slow.map(|(reading, pace)| Pause::new(reading, pace)),
            ended: false,
        }
    }

    fn poll_wire(&mut self, cx: &mut Context<'_>) -> Poll<Incoming> {
        match &mut self.wire {
            Wire::Tickfeed(ws) => loop {
                let message = match ready!(Pin::new(&mut **ws).poll_next(cx)) {
                    None => return Poll::Ready(Incoming::Closed(None)),
                    Some(Err(e)) => return Poll::Ready(Incoming::Closed(Some(e.to_string()))),
                    Some(Ok(message)) => message,
                };
                match message {
                    Message::Text(text) => return Poll::Ready(Incoming::Frame(text.into())),
                    Message::Binary(bytes) => return Poll::Ready(Incoming::Frame(bytes)),
                    Message::Close(frame) => {
                        let why = frame.map(|f| {
                            format!("closed by the server: {} {}", u16::from(f.code), f.reason)
                        });
                        return Poll::Ready(Incoming::Closed(why));
                    }
                    Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
                }
            },
            Wire::Nats(nats) => match ready!(nats.poll_read(cx)) {
                Read::Messages(payloads) => Poll::Ready(Incoming::Messages(payloads)),
                Read::Closed(why) => Poll::Ready(Incoming::Closed(why)),
            },
        }
    }
}

impl Stream for Connection {
    type Item = (u32, Incoming);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(pause) = &mut this.pause {
            ready!(pause.poll_ready(cx));
        }
        let incoming = ready!(this.poll_wire(cx));
        match &incoming {
            Incoming::Closed(_) => this.ended = true,
            Incoming::Frame(_) | Incoming::Messages(_) => {
                if let Some(pause) = &mut this.pause {
                    pause.frame_read(Instant::now());
                }
            }
        }
        Poll::Ready(Some((this.client, incoming)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_millis(100);

    fn pause(mode: SlowMode) -> Pause {
        Pause::new(SlowReading { mode, delay: DELAY }, Pace::default())
    }

    /// How long the client waits before its next read, in paused time.
    async fn wait(pause: &mut Pause) -> Duration {
        let started = Instant::now();
        std::future::poll_fn(|cx| pause.poll_ready(cx)).await;
        started.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn an_event_reader_stops_one_delay_per_tick_of_the_frame() {
        let mut p = pause(SlowMode::Event);
        assert_eq!(wait(&mut p).await, Duration::ZERO, "nothing read yet");
        p.frame_read(Instant::now());
        p.pace.store(3, Ordering::Relaxed);
        assert_eq!(wait(&mut p).await, 3 * DELAY);
        p.frame_read(Instant::now());
        assert_eq!(wait(&mut p).await, Duration::ZERO, "a frame without ticks");
    }

    #[tokio::test(start_paused = true)]
    async fn a_frame_reader_stops_one_delay_per_frame_whatever_it_held() {
        let mut p = pause(SlowMode::Frame);
        p.frame_read(Instant::now());
        p.pace.store(50, Ordering::Relaxed);
        assert_eq!(wait(&mut p).await, DELAY);
        p.frame_read(Instant::now());
        assert_eq!(wait(&mut p).await, DELAY, "even a frame without ticks");
        tokio::time::advance(DELAY * 2).await;
        assert_eq!(wait(&mut p).await, Duration::ZERO, "nothing read since");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_reader_stops_once_a_second_and_reads_promptly_between() {
        let mut p = pause(SlowMode::Burst);
        let first = Instant::now();
        p.frame_read(first);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(wait(&mut p).await, Duration::ZERO, "before the first stop");
        tokio::time::advance(Duration::from_millis(530)).await;
        p.frame_read(Instant::now());
        assert_eq!(
            wait(&mut p).await,
            Duration::from_millis(70),
            "the stop runs from 1.0 s to 1.1 s"
        );
        assert_eq!(wait(&mut p).await, Duration::ZERO, "one stop per second");
        tokio::time::advance(Duration::from_millis(1_100)).await;
        assert_eq!(
            wait(&mut p).await,
            Duration::ZERO,
            "at 2.2 s the stop from 2.0 s to 2.1 s has passed unread"
        );
        tokio::time::advance(Duration::from_millis(850)).await;
        assert_eq!(wait(&mut p).await, Duration::from_millis(50), "3.05 s");
        assert_eq!(first.elapsed(), Duration::from_millis(3_100));
    }
}
