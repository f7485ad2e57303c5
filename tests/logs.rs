//! The binary's log output (stderr of a child process): with
//! `--log-format json` every line is one JSON object, and connection
//! opens, closes and refusals carry the peer's address and the reason;
//! text logs written to a file carry no ANSI colour codes.

mod common;
mod process;

use common::Client;
use process::{CHILD_DEADLINE, ChildServer};
use serde_json::Value;
use std::net::SocketAddr;
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;

/// Every line of the log as JSON; panics naming a line that is not.
fn json_lines(log: &str) -> Vec<Value> {
    log.lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"))
        })
        .collect()
}

/// Polls the child's log until a line matches `wanted`.
async fn wait_for_line(server: &ChildServer, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + CHILD_DEADLINE;
    loop {
        if let Some(line) = json_lines(&server.log()).into_iter().find(&wanted) {
            return line;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no log line for {what} in:\n{}",
            server.log()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn local_addr(client: &Client) -> SocketAddr {
    match client.ws.get_ref() {
        MaybeTlsStream::Plain(tcp) => tcp.local_addr().unwrap(),
        _ => panic!("a plain TCP test client"),
    }
}

#[tokio::test]
async fn json_logs_name_the_peer_and_reason_of_every_connection() {
    let server = ChildServer::start(
        "json-logs",
        &[
            "--log-format",
            "json",
            "--rate",
            "50",
            "--allowed-origin",
            "https://dash.example.com",
        ],
        &[("RUST_LOG", "tickfeed=debug")],
    )
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let peer = local_addr(&client).to_string();
    let opened = wait_for_line(&server, "the open", |l| {
        l["message"] == "connection open" && l["peer"] == peer.as_str()
    })
    .await;
    assert_eq!(opened["level"], "DEBUG");
    client.send_raw(Message::Close(None)).await;
    let _ = client.closed().await;
    let closed = wait_for_line(&server, "the close", |l| {
        l["message"] == "connection closed" && l["peer"] == peer.as_str()
    })
    .await;
    assert_eq!(closed["reason"], "client_closed", "{closed}");

    let refused =
        Client::connect_with(&server.ws_url(), &[("origin", "https://evil.example")]).await;
    assert!(refused.is_err(), "a foreign origin is refused");
    let refusal = wait_for_line(&server, "the refusal", |l| {
        l["message"] == "handshake refused"
    })
    .await;
    assert_eq!(refusal["reason"], "origin", "{refusal}");
    assert_eq!(refusal["status"], 403, "{refusal}");
    let refused_peer: SocketAddr = refusal["peer"].as_str().unwrap().parse().unwrap();
    assert!(refused_peer.ip().is_loopback(), "{refusal}");
    // Every line so far parses, the start-up lines included.
    let lines = json_lines(&server.log());
    assert!(lines.iter().any(|l| {
        l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("listening on"))
    }));
}

#[tokio::test]
async fn text_logs_to_a_file_have_no_colour_codes() {
    // An empty NO_COLOR counts as unset (no-color.org): the file, not
    // NO_COLOR, is what turns colour off here.
    let server = ChildServer::start("text-logs", &["--rate", "50"], &[("NO_COLOR", "")]).await;
    let deadline = tokio::time::Instant::now() + CHILD_DEADLINE;
    while !server.log().contains("listening on") {
        assert!(tokio::time::Instant::now() < deadline, "{}", server.log());
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let log = server.log();
    assert!(!log.contains('\u{1b}'), "ANSI escape in the log:\n{log:?}");
    assert!(log.contains(" INFO "), "{log}");
}
