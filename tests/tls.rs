//! TLS with a self-signed certificate made in the test (rcgen): the same
//! server serves `https://` and `wss://`; a plain-text client and a client
//! that never finishes its TLS handshake are dropped; a key that does not
//! belong to the certificate is refused at start-up, naming the flags.

mod common;

use clap::Parser;
use common::{DEADLINE, Scratch, is_tick, start_server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// A certificate for `localhost`, written as PEM files.
struct SelfSigned {
    dir: Scratch,
    cert: rcgen::CertifiedKey<rcgen::KeyPair>,
}

impl SelfSigned {
    fn new(name: &str) -> Self {
        let dir = Scratch::new(&format!("tls-{name}"));
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("certificate");
        dir.write("cert.pem", cert.cert.pem());
        dir.write("key.pem", cert.signing_key.serialize_pem());
        SelfSigned { dir, cert }
    }

    fn path(&self, file: &str) -> String {
        self.dir.file(file).to_string_lossy().into_owned()
    }

    /// A client that trusts exactly this certificate.
    fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.cert.der().clone()).unwrap();
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }

    async fn connect(&self, addr: std::net::SocketAddr) -> TlsStream<TcpStream> {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        self.connector()
            .connect(name, tcp)
            .await
            .expect("TLS handshake")
    }
}

async fn next_events(ws: &mut WebSocketStream<TlsStream<TcpStream>>) -> Vec<Value> {
    loop {
        let message = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("frame in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn https_and_wss_are_served_with_a_self_signed_certificate() {
    let cert = SelfSigned::new("serve");
    let server = start_server(&[
        "--rate",
        "200",
        "--symbols",
        "3",
        "--tls-cert",
        &cert.path("cert.pem"),
        "--tls-key",
        &cert.path("key.pem"),
    ])
    .await;

    let mut https = cert.connect(server.addr).await;
    https
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    https.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok\n"), "{response}");

    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (mut wss, _) = tokio_tungstenite::client_async(url, cert.connect(server.addr).await)
        .await
        .expect("wss handshake");
    assert_eq!(next_events(&mut wss).await[0]["ev"], "hello");
    wss.send(Message::text(
        json!({"op":"subscribe","id":1,"symbols":["*"]}).to_string(),
    ))
    .await
    .unwrap();
    let mut ticks = 0;
    while ticks < 20 {
        ticks += next_events(&mut wss)
            .await
            .iter()
            .filter(|e| is_tick(e))
            .count();
    }
    server.shutdown_after(wss).await;
}

#[tokio::test]
async fn plain_text_and_stalled_handshakes_on_the_tls_port_are_dropped() {
    let cert = SelfSigned::new("refuse");
    let server = start_server(&[
        "--rate",
        "10",
        "--tls-cert",
        &cert.path("cert.pem"),
        "--tls-key",
        &cert.path("key.pem"),
        "--handshake-timeout",
        "1s",
    ])
    .await;
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    for stream in [&mut plain, &mut silent] {
        let mut reply = Vec::new();
        let read = tokio::time::timeout(DEADLINE, stream.read_to_end(&mut reply))
            .await
            .expect("hung up in time");
        let text = String::from_utf8_lossy(&reply);
        assert!(
            read.is_err() || !text.contains("200"),
            "served without TLS: {text}"
        );
    }
    // The port still serves TLS clients.
    let mut https = cert.connect(server.addr).await;
    https
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    https.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    server.shutdown().await;
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_refused_at_start() {
    let one = SelfSigned::new("pair-a");
    let other = SelfSigned::new("pair-b");
    let argv = [
        "tickfeed",
        "serve",
        "--tls-cert",
        &one.path("cert.pem"),
        "--tls-key",
        &other.path("key.pem"),
    ];
    let cli = tickfeed::cli::Cli::try_parse_from(argv).unwrap();
    let Some(tickfeed::cli::Command::Serve(args)) = cli.command else {
        panic!("serve")
    };
    let error = args.into_config().unwrap_err().to_string();
    assert!(
        error.contains("--tls-cert") && error.contains("--tls-key"),
        "{error}"
    );
}

#[test]
fn a_certificate_without_its_key_is_a_usage_error() {
    let cert = SelfSigned::new("alone");
    let error = tickfeed::cli::Cli::try_parse_from([
        "tickfeed",
        "serve",
        "--tls-cert",
        &cert.path("cert.pem"),
    ])
    .unwrap_err();
    assert!(error.to_string().contains("--tls-key"), "{error}");
}
