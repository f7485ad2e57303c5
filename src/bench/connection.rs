//! One bench client's connection as a stream of frames, whatever the
//! target: a tickfeed WebSocket or a NATS connection over WebSocket. Workers
//! drive many of these at once with `SelectAll`.
//!
//! A slow client (`--slow-delay`) spends that long on every event it reads:
//! after a frame of `k` ticks it stops reading for `k` delays, so it reads
//! at most `1 / delay` events per second. While it pauses its socket is not
//! read at all, as with a client busy drawing. The worker tells the
//! connection how many ticks the frame held through a shared counter
//! ([`Pace`]) before the connection is polled again.

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
pub enum Wire {
    Tickfeed(Box<WebSocketStream<TcpStream>>),
    Nats(Box<NatsStream>),
}

/// What a connection yields.
#[derive(Debug)]
pub enum Incoming {
    /// One WebSocket message: a tickfeed frame.
    Frame(Bytes),
    /// The NATS message payloads (one event each) of the frames read.
    Messages(Vec<Bytes>),
    /// The connection ended; with the error, if it was one.
    Closed(Option<String>),
}

/// Ticks in the frame a slow client read last, set by its worker.
pub type Pace = Arc<AtomicU32>;

/// The pause of a slow client.
struct Pause {
    per_event: Duration,
    pace: Pace,
    sleep: Pin<Box<Sleep>>,
    /// When the last frame was read; `None` when no pause is owed.
    read_at: Option<Instant>,
    armed: bool,
}

/// A client connection yielding `(client, Incoming)`, ending after
/// `Closed`.
pub struct Connection {
    client: u32,
    wire: Wire,
    pause: Option<Pause>,
    ended: bool,
}

impl Connection {
    /// `slow`: time spent per event, and where the worker writes how many
    /// events each frame held (slow clients only).
    pub fn new(client: u32, wire: Wire, slow: Option<(Duration, Pace)>) -> Self {
        let pause = slow.map(|(per_event, pace)| Pause {
            per_event,
            pace,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            read_at: None,
            armed: false,
        });
        Self {
            client,
            wire,
            pause,
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
        if let Some(pause) = &mut this.pause
            && let Some(read_at) = pause.read_at
        {
            if !pause.armed {
                let events = pause.pace.swap(0, Ordering::Relaxed);
                pause
                    .sleep
                    .as_mut()
                    .reset(read_at + pause.per_event * events);
                pause.armed = true;
            }
            ready!(pause.sleep.as_mut().poll(cx));
            (pause.read_at, pause.armed) = (None, false);
        }
        let incoming = ready!(this.poll_wire(cx));
        match &incoming {
            Incoming::Closed(_) => this.ended = true,
            Incoming::Frame(_) | Incoming::Messages(_) => {
                if let Some(pause) = &mut this.pause {
                    pause.read_at = Some(Instant::now());
                }
            }
        }
        Poll::Ready(Some((this.client, incoming)))
    }
}
