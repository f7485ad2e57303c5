//! A minimal NATS client over WebSocket, just enough for bench clients:
//! CONNECT, SUB, PING/PONG, and reading MSG payloads.
//!
//! Why not async-nats: measured here at 1,000 clients x 10 of 1,000
//! symbols and 20k updates/s, its WebSocket clients delivered 21.6k of the
//! 200k messages/s while their threads were three quarters idle, with 10 MB
//! waiting unread in the clients' socket buffers: its connection tasks did
//! not read as fast as data arrived. This client uses the same WebSocket
//! stack as the tickfeed clients (tokio-tungstenite, same buffers), so the
//! two targets are measured with the same client.

use super::client::{CONNECT_TIMEOUT, READ_BUFFER_BYTES, tcp_connect};
use bytes::{Buf, Bytes, BytesMut};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

#[derive(Debug, thiserror::Error)]
pub(super) enum NatsError {
    #[error("{url}: not a ws://HOST:PORT address")]
    BadUrl { url: String },
    #[error("TCP connect: {0}")]
    Tcp(std::io::Error),
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("nats-server: {0}")]
    Server(String),
    #[error("connection closed during the handshake")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
}

/// One protocol operation from the server.
#[derive(Debug, PartialEq)]
enum ServerOp {
    Msg(Bytes),
    Ping,
    Pong,
    Err(String),
    /// INFO, +OK: nothing to do.
    Other,
}

/// A subscribed NATS connection yielding message payloads.
pub(super) struct NatsStream {
    ws: WebSocketStream<TcpStream>,
    /// Bytes received and not yet parsed: operations can span frames.
    buf: BytesMut,
    /// PONGs owed to the server's PINGs.
    pongs_owed: usize,
}

/// What one read yields.
#[derive(Debug)]
pub(super) enum Read {
    /// Every complete message payload of the frames read.
    Messages(Vec<Bytes>),
    Closed(Option<String>),
}

/// Connects to nats-server's WebSocket listener, subscribes to `subjects`
/// and waits for the PONG that confirms every SUB was processed.
pub(super) async fn connect(
    url: &str,
    subjects: &[String],
    recv_buffer: Option<usize>,
) -> Result<NatsStream, NatsError> {
    let authority = url
        .strip_prefix("ws://")
        .map(|rest| rest.trim_end_matches('/'))
        .filter(|a| !a.is_empty() && !a.contains('/'))
        .ok_or_else(|| NatsError::BadUrl { url: url.into() })?;
    let handshake = async {
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(NatsError::Tcp)?
            .next()
            .ok_or_else(|| NatsError::BadUrl { url: url.into() })?;
        let tcp = tcp_connect(addr, recv_buffer)
            .await
            .map_err(NatsError::Tcp)?;
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(
            format!("ws://{authority}/"),
            tcp,
            Some(config),
        )
        .await?;
        let mut stream = NatsStream {
            ws,
            buf: BytesMut::new(),
            pongs_owed: 0,
        };
        let mut hello = String::from(
            r#"CONNECT {"verbose":false,"pedantic":false,"lang":"rust","version":"tickfeed-bench","protocol":1,"headers":false}"#,
        );
        hello.push_str("\r\n");
        for (sid, subject) in subjects.iter().enumerate() {
            hello.push_str(&format!("SUB {subject} {}\r\n", sid + 1));
        }
        hello.push_str("PING\r\n");
        stream.ws.send(Message::binary(hello)).await?;
        stream.wait_for_pong().await?;
        Ok(stream)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, handshake)
        .await
        .map_err(|_| NatsError::Timeout(CONNECT_TIMEOUT))?
}

impl NatsStream {
    async fn wait_for_pong(&mut self) -> Result<(), NatsError> {
        loop {
            while let Some(op) = parse_op(&mut self.buf) {
                match op {
                    ServerOp::Pong => return Ok(()),
                    ServerOp::Err(e) => return Err(NatsError::Server(e)),
                    ServerOp::Ping => self.ws.send(Message::binary("PONG\r\n")).await?,
                    ServerOp::Msg(_) | ServerOp::Other => {}
                }
            }
            match self.ws.next().await.ok_or(NatsError::Closed)?? {
                Message::Binary(bytes) => self.buf.extend_from_slice(&bytes),
                Message::Text(text) => self.buf.extend_from_slice(text.as_bytes()),
                Message::Close(_) => return Err(NatsError::Closed),
                _ => {}
            }
        }
    }

    /// Sends owed PONGs as far as the socket takes them now.
    fn poll_pongs(&mut self, cx: &mut Context<'_>) -> Result<(), tungstenite::Error> {
        while self.pongs_owed > 0 {
            let mut ws = Pin::new(&mut self.ws);
            if ws.as_mut().poll_ready(cx).is_pending() {
                return Ok(());
            }
            ws.as_mut().start_send(Message::binary("PONG\r\n"))?;
            self.pongs_owed -= 1;
        }
        let _ = Pin::new(&mut self.ws).poll_flush(cx)?;
        Ok(())
    }

    /// Reads until at least one message payload is complete.
    pub(super) fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<Read> {
        if let Err(e) = self.poll_pongs(cx) {
            return Poll::Ready(Read::Closed(Some(e.to_string())));
        }
        loop {
            let message = match ready!(Pin::new(&mut self.ws).poll_next(cx)) {
                None => return Poll::Ready(Read::Closed(None)),
                Some(Err(e)) => return Poll::Ready(Read::Closed(Some(e.to_string()))),
                Some(Ok(message)) => message,
            };
            match message {
                Message::Binary(bytes) => self.buf.extend_from_slice(&bytes),
                Message::Text(text) => self.buf.extend_from_slice(text.as_bytes()),
                Message::Close(_) => {
                    return Poll::Ready(Read::Closed(Some("closed by nats-server".into())));
                }
                _ => continue,
            }
            let mut payloads = Vec::new();
            while let Some(op) = parse_op(&mut self.buf) {
                match op {
                    ServerOp::Msg(payload) => payloads.push(payload),
                    ServerOp::Ping => self.pongs_owed += 1,
                    ServerOp::Err(e) => {
                        return Poll::Ready(Read::Closed(Some(format!("nats-server: {e}"))));
                    }
                    ServerOp::Pong | ServerOp::Other => {}
                }
            }
            if self.pongs_owed > 0
                && let Err(e) = self.poll_pongs(cx)
            {
                return Poll::Ready(Read::Closed(Some(e.to_string())));
            }
            if !payloads.is_empty() {
                return Poll::Ready(Read::Messages(payloads));
            }
        }
    }
}

/// Takes one complete operation off the front of `buf`, if there is one.
fn parse_op(buf: &mut BytesMut) -> Option<ServerOp> {
    let line_end = buf.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&buf[..line_end])
        .unwrap_or("")
        .trim_end_matches('\r');
    if let Some(args) = line.strip_prefix("MSG ") {
        // MSG <subject> <sid> [reply-to] <#bytes>
        let size: usize = args.rsplit(' ').next()?.parse().ok()?;
        if buf.len() < line_end + 1 + size + 2 {
            return None;
        }
        buf.advance(line_end + 1);
        let payload = buf.split_to(size).freeze();
        buf.advance(2);
        return Some(ServerOp::Msg(payload));
    }
    let op = match line {
        "PING" => ServerOp::Ping,
        "PONG" => ServerOp::Pong,
        l if l.starts_with("-ERR") => ServerOp::Err(
            l.trim_start_matches("-ERR")
                .trim()
                .trim_matches('\'')
                .to_string(),
        ),
        _ => ServerOp::Other,
    };
    buf.advance(line_end + 1);
    Some(op)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_parsed_only_once_complete() {
        let mut buf =
            BytesMut::from(&b"INFO {\"server_id\":\"x\"}\r\nPING\r\nMSG a.b 1 5\r\nhel"[..]);
        assert_eq!(parse_op(&mut buf), Some(ServerOp::Other));
        assert_eq!(parse_op(&mut buf), Some(ServerOp::Ping));
        assert_eq!(parse_op(&mut buf), None, "payload incomplete");
        buf.extend_from_slice(
            b"lo\r\nMSG a.b 2 reply.to 2\r\nhi\r\n-ERR 'Unknown Protocol Operation'\r\n",
        );
        assert_eq!(
            parse_op(&mut buf),
            Some(ServerOp::Msg(Bytes::from_static(b"hello")))
        );
        assert_eq!(
            parse_op(&mut buf),
            Some(ServerOp::Msg(Bytes::from_static(b"hi")))
        );
        assert_eq!(
            parse_op(&mut buf),
            Some(ServerOp::Err("Unknown Protocol Operation".into()))
        );
        assert!(buf.is_empty());
    }

    #[test]
    fn payloads_may_hold_line_breaks() {
        let mut buf = BytesMut::from(&b"MSG s 1 4\r\na\r\nb\r\n"[..]);
        assert_eq!(
            parse_op(&mut buf),
            Some(ServerOp::Msg(Bytes::from_static(b"a\r\nb")))
        );
    }
}
