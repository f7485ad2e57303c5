//! Opening one tickfeed client: TCP connect, WebSocket handshake asking for
//! the encoding by subprotocol, then one `subscribe` request. Reading is
//! the worker's job (`worker.rs`); this file only sets connections up.
//!
//! Buffers are kept small so that 10,000 clients fit: tungstenite's default
//! read buffer is 128 KiB per connection, allocated up front.

use super::args::Channel;
use crate::codec::Encoding;
use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};

/// Read buffer per client: tungstenite zeroes this much before every read,
/// so it stays near a typical frame (measured: at 16 KiB the zeroing was
/// the client's largest user-space cost); larger frames take a few reads.
/// 80 MB for 10,000 clients rather than tungstenite's default 1.25 GiB.
pub(super) const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Longest wait for a TCP connect plus handshake.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// Where tickfeed clients connect, resolved once.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub url: String,
    pub addr: SocketAddr,
    pub encoding: Encoding,
    /// Sent as `Authorization: Bearer` on every handshake (`--token`).
    pub token: Option<String>,
}

/// Opens a TCP connection without Nagle delay; `recv_buffer` sets
/// `SO_RCVBUF` (before connecting, so the window is sized from the start).
pub(super) async fn tcp_connect(
    addr: SocketAddr,
    recv_buffer: Option<usize>,
) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    if let Some(bytes) = recv_buffer {
        socket.set_recv_buffer_size(bytes as u32)?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// A server's name and symbols.
#[derive(Debug, Clone)]
pub(super) struct Listing {
    pub server: String,
    pub symbols: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("{url}: not a ws://HOST:PORT/PATH address")]
    BadUrl { url: String },
    #[error("{url}: cannot resolve: {source}")]
    Resolve { url: String, source: std::io::Error },
    #[error("TCP connect: {0}")]
    Tcp(std::io::Error),
    #[error("WebSocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply: {0}")]
    Reply(String),
}

/// What each bench client asks for in its subscribe.
#[derive(Debug, Clone, Copy)]
pub(super) struct SubscribeOptions {
    /// `max_hz`; 0 = as fast as the client reads.
    pub max_hz: f64,
    /// Field deltas (`"deltas": true`).
    pub deltas: bool,
    /// Ticks, or books of `depth` levels per side.
    pub channel: Channel,
    pub depth: usize,
}

impl SubscribeOptions {
    /// The one `subscribe` request (id 1) of a client of `symbols`.
    fn request(&self, symbols: &[&str]) -> serde_json::Value {
        let mut request = serde_json::json!({"op": "subscribe", "id": 1, "symbols": symbols});
        if self.channel == Channel::Book {
            request["channel"] = "book".into();
            request["depth"] = self.depth.into();
        }
        if self.max_hz > 0.0 {
            request["max_hz"] = self.max_hz.into();
        }
        if self.deltas {
            request["deltas"] = true.into();
        }
        request
    }
}

impl Endpoint {
    /// Resolves the host of a `ws://` URL.
    pub(super) async fn resolve(url: &str, encoding: Encoding) -> Result<Self, ConnectError> {
        let authority = url
            .strip_prefix("ws://")
            .and_then(|rest| rest.split('/').next())
            .filter(|a| !a.is_empty())
            .ok_or_else(|| ConnectError::BadUrl { url: url.into() })?;
        let resolve_error = |source| ConnectError::Resolve {
            url: url.into(),
            source,
        };
        let addr = tokio::net::lookup_host(authority)
            .await
            .map_err(resolve_error)?
            .next()
            .ok_or_else(|| resolve_error(std::io::Error::other("no address")))?;
        Ok(Self {
            url: url.into(),
            addr,
            encoding,
            token: None,
        })
    }

    /// `http://HOST:PORT` of the same server, for `/api/stats`.
    pub(super) fn http_base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Connects and hand-shakes, asking for `encoding`.
    async fn open(
        &self,
        encoding: Encoding,
        recv_buffer: Option<usize>,
    ) -> Result<WebSocketStream<TcpStream>, ConnectError> {
        let tcp = tcp_connect(self.addr, recv_buffer)
            .await
            .map_err(ConnectError::Tcp)?;
        let mut request = self.url.as_str().into_client_request()?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(encoding.subprotocol()),
        );
        if let Some(token) = &self.token {
            let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| ConnectError::Reply("--token: not a valid header value".into()))?;
            request.headers_mut().insert("authorization", bearer);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER_BYTES)
            .write_buffer_size(0);
        let (ws, _) =
            tokio_tungstenite::client_async_with_config(request, tcp, Some(config)).await?;
        Ok(ws)
    }

    /// Opens a client and sends its one `subscribe` (request id 1), or
    /// nothing for an idle client without symbols.
    pub(super) async fn connect(
        &self,
        symbols: &[&str],
        options: SubscribeOptions,
        recv_buffer: Option<usize>,
    ) -> Result<Box<WebSocketStream<TcpStream>>, ConnectError> {
        let connecting = async {
            let mut ws = self.open(self.encoding, recv_buffer).await?;
            if symbols.is_empty() {
                return Ok(Box::new(ws));
            }
            let request = options.request(symbols);
            ws.send(Message::text(request.to_string())).await?;
            Ok(Box::new(ws))
        };
        tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| ConnectError::Timeout(CONNECT_TIMEOUT))?
    }

    /// Asks the server for its name (from `hello`) and its symbols
    /// (`{"op":"symbols"}`) on a JSON connection of its own.
    pub(super) async fn list_symbols(&self) -> Result<Listing, ConnectError> {
        let listing = async {
            let mut ws = self.open(Encoding::Json, None).await?;
            ws.send(Message::text(r#"{"op":"symbols","id":1}"#)).await?;
            let mut server = String::from("unnamed server");
            while let Some(message) = ws.next().await {
                let Message::Text(text) = message? else {
                    continue;
                };
                let events: Vec<serde_json::Value> = serde_json::from_str(&text)
                    .map_err(|e| ConnectError::Reply(format!("{e}: {text}")))?;
                for event in events {
                    if let (Some("hello"), Some(name)) =
                        (event["ev"].as_str(), event["server"].as_str())
                    {
                        server = name.to_string();
                    }
                    if event["ev"] == "symbols" {
                        let _ = ws.close(None).await;
                        let symbols = serde_json::from_value(event["symbols"].clone())
                            .map_err(|e| ConnectError::Reply(e.to_string()))?;
                        return Ok(Listing { server, symbols });
                    }
                }
            }
            Err(ConnectError::Reply(
                "connection closed before the symbols reply".into(),
            ))
        };
        tokio::time::timeout(CONNECT_TIMEOUT, listing)
            .await
            .map_err(|_| ConnectError::Timeout(CONNECT_TIMEOUT))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_resolve_to_an_address_and_an_http_base() {
        let endpoint = Endpoint::resolve("ws://127.0.0.1:8080/ws", Encoding::Json)
            .await
            .unwrap();
        assert_eq!(endpoint.http_base(), "http://127.0.0.1:8080");
        assert!(
            Endpoint::resolve("http://127.0.0.1:1/ws", Encoding::Json)
                .await
                .is_err()
        );
        assert!(Endpoint::resolve("ws:///ws", Encoding::Json).await.is_err());
    }

    #[test]
    fn a_book_client_names_the_channel_and_its_depth() {
        let options = SubscribeOptions {
            max_hz: 0.0,
            deltas: false,
            channel: Channel::Book,
            depth: 10,
        };
        assert_eq!(
            options.request(&["AAPL"]),
            serde_json::json!({"op": "subscribe", "id": 1, "symbols": ["AAPL"], "channel": "book", "depth": 10})
        );
        let ticks = SubscribeOptions {
            channel: Channel::Ticks,
            max_hz: 4.0,
            ..options
        };
        assert_eq!(
            ticks.request(&["AAPL"]),
            serde_json::json!({"op": "subscribe", "id": 1, "symbols": ["AAPL"], "max_hz": 4.0})
        );
    }
}
