//! Shared helpers for integration tests: start the real server in-process
//! on port 0, connect real WebSocket clients, and poll with deadlines
//! (never fixed sleeps).
#![allow(dead_code)]

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tickfeed::cli::{Cli, Command};
use tickfeed::sequence::{SeqByName, Verdict};
use tickfeed::server::{RunningServer, start};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Generous upper bound for anything a test waits for; tests poll and
/// return as soon as the condition holds.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct TestServer {
    pub addr: SocketAddr,
    server: RunningServer,
    /// The first `--token`, which the helpers' HTTP requests present.
    token: Option<String>,
}

/// Starts a server with `tickfeed serve` flags (plus `--listen 127.0.0.1:0`
/// unless the flags name an address).
pub async fn start_server(args: &[&str]) -> TestServer {
    let token = args
        .iter()
        .position(|arg| *arg == "--token")
        .and_then(|at| args.get(at + 1))
        .map(|tokens| tokens.split(',').next().unwrap_or_default().to_string());
    let mut argv = vec!["tickfeed", "serve"];
    if !args.contains(&"--listen") {
        argv.extend(["--listen", "127.0.0.1:0"]);
    }
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(&argv).expect("valid test flags");
    let Some(Command::Serve(serve)) = cli.command else {
        panic!("not serve")
    };
    let server = start(serve.into_config().expect("valid test config"))
        .await
        .expect("server starts");
    TestServer {
        addr: server.addr,
        server,
        token,
    }
}

impl TestServer {
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn running(&self) -> &RunningServer {
        &self.server
    }

    /// GETs `path` as JSON, with the server's token if it has one.
    pub async fn get_json(&self, path: &str) -> Value {
        let mut request = reqwest::Client::new().get(self.http_url(path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
            .send()
            .await
            .expect("GET")
            .json()
            .await
            .expect("JSON body")
    }

    pub async fn shutdown(self) {
        self.server.shutdown().await;
    }

    /// Drops `clients` (a client, or a tuple of them), then shuts down. A
    /// client still connected that is not reading would make its session
    /// wait out the closing handshake's grace (1 s) before the server can
    /// stop; a test that is not about shutdown need not spend it.
    pub async fn shutdown_after<T>(self, clients: T) {
        drop(clients);
        self.shutdown().await;
    }

    /// Polls `/api/stats` until `check` holds.
    pub async fn wait_for_stats(&self, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        poll(what, || async {
            let stats = self.get_json("/api/stats").await;
            check(&stats).then_some(stats)
        })
        .await
    }
}

/// Retries `probe` every 20 ms until it yields a value or `DEADLINE` passes.
pub async fn poll<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol client that decodes every frame into JSON values.
pub struct Client {
    pub ws: Socket,
    pub hello: Value,
    /// Events received but not yet taken.
    pub backlog: std::collections::VecDeque<Value>,
    pub protocol: Option<String>,
}

impl Client {
    /// Connects to `url` (with extra headers) and reads `hello`.
    pub async fn connect_with(
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Client, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        let (ws, response) = tokio_tungstenite::connect_async(request).await?;
        let protocol = response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap().to_string());
        let mut client = Client {
            ws,
            hello: Value::Null,
            backlog: Default::default(),
            protocol,
        };
        client.hello = client.next_event().await;
        assert_eq!(client.hello["ev"], "hello", "first frame is hello");
        Ok(client)
    }

    /// Connects with a tiny receive buffer, so that a client that stops
    /// reading fills up in kilobytes rather than megabytes.
    pub async fn connect_small_buffer(url: &str, addr: SocketAddr) -> Client {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("handshake");
        let mut client = Client {
            ws,
            hello: Value::Null,
            backlog: Default::default(),
            protocol: None,
        };
        client.hello = client.next_event().await;
        client
    }

    pub async fn connect(url: &str) -> Client {
        Self::connect_with(url, &[]).await.expect("connect")
    }

    pub async fn send(&mut self, request: Value) {
        self.ws
            .send(Message::text(request.to_string()))
            .await
            .expect("send");
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.expect("send");
    }

    /// Reads one frame and returns its events (JSON or MessagePack).
    pub async fn read_frame(&mut self) -> Option<Vec<Value>> {
        loop {
            let message = tokio::time::timeout(DEADLINE, self.ws.next())
                .await
                .expect("frame within deadline")?;
            match message.ok()? {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("frame is a JSON array"));
                }
                Message::Binary(bytes) => {
                    return Some(
                        rmp_serde::from_slice(&bytes).expect("frame is a MessagePack array"),
                    );
                }
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    pub async fn next_event(&mut self) -> Value {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                return event;
            }
            let events = self.read_frame().await.expect("connection open");
            self.backlog.extend(events);
        }
    }

    /// Skips events until one satisfies `matches`; returns it.
    pub async fn wait_event(&mut self, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            let event = tokio::time::timeout_at(deadline, self.next_event())
                .await
                .expect("expected event within deadline");
            if matches(&event) {
                return event;
            }
        }
    }

    /// Sends `request` and returns the reply events with its `id` (ack
    /// and/or error), skipping ticks; snapshots that follow stay queued.
    pub async fn request(&mut self, request: Value) -> Value {
        let id = request["id"].clone();
        self.send(request).await;
        self.wait_event(|e| e["id"] == id && e["ev"] != "tick")
            .await
    }

    /// Reads until the server closes; returns the close code and reason.
    pub async fn closed(&mut self) -> Option<(u16, String)> {
        let deadline = tokio::time::Instant::now() + DEADLINE;
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .expect("close within deadline")
            {
                Some(Ok(Message::Close(frame))) => {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}

/// A free TCP port on loopback: bound, read and released, for a child
/// process that needs a port number before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a probe socket on loopback")
        .local_addr()
        .expect("probe socket address")
        .port()
}

/// A fresh directory for one test (files, a broker store, logs): a
/// `tempfile::TempDir`, as the unit tests use, kept after a failing test
/// with its path printed, for the logs in it. Derefs to its path.
pub struct Scratch {
    pub dir: PathBuf,
    /// Removes the directory when dropped; taken and kept after a failure.
    temp: Option<tempfile::TempDir>,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let temp = tempfile::Builder::new()
            .prefix(&format!("tickfeed-{name}-"))
            .tempdir()
            .expect("create scratch directory");
        Scratch {
            dir: temp.path().to_path_buf(),
            temp: Some(temp),
        }
    }

    /// The path of `name` in the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes `content` to `name` in the directory; returns its path.
    pub fn write(&self, name: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.file(name);
        std::fs::write(&path, content).expect("write a scratch file");
        path
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Some(temp) = self.temp.take()
        {
            eprintln!(
                "test failed; its files are kept in {}",
                temp.keep().display()
            );
        }
    }
}

pub fn is_tick(event: &Value) -> bool {
    event["ev"] == "tick"
}

/// Checks the conflation invariant (`tickfeed::sequence`) on one tick
/// event and returns its `n`; panics naming the tick when `seq` went
/// backwards or a gap is not counted by `n`.
pub fn check_seq(seqs: &mut SeqByName, tick: &Value) -> u64 {
    let verdict = seqs.observe_json(tick);
    assert_eq!(
        verdict,
        Verdict::Ok,
        "conflation invariant broken at {tick}"
    );
    tick["n"].as_u64().expect("n")
}

/// The free LOBSTER sample (third-party data, never copied into the
/// repository): read from `$TICKFEED_LOBSTER` or `../shared/feeds/`.
pub const LOBSTER_NAME: &str = "AAPL_2012-06-21_34200000_37800000_message_50.csv";

/// 2012-06-21 00:00 US Eastern (EDT, UTC-4), the LOBSTER sample's day, in
/// epoch seconds, written out here so tests do not trust the library's
/// time-zone arithmetic.
pub const LOBSTER_MIDNIGHT_S: u64 = 1_340_251_200;

/// Executions (types 4 and 5) read straight from a LOBSTER file of
/// 2012-06-21: (xt, px, sz), and how many order events name an order
/// placed before the file.
pub fn lobster_executions(path: &Path) -> (Vec<(u64, f64, u64)>, u64) {
    let text = std::fs::read_to_string(path).unwrap();
    let (mut executions, mut submitted, mut unknown) = (Vec::new(), HashSet::new(), 0);
    for line in text.lines() {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        match f[1] {
            "1" => {
                submitted.insert(f[2]);
            }
            "2" | "3" | "4" if !submitted.contains(f[2]) => unknown += 1,
            _ => {}
        }
        if f[1] == "4" || f[1] == "5" {
            let (whole, fraction) = f[0].split_once('.').unwrap_or((f[0], ""));
            let nanos: u64 = format!("{fraction:0<9}")[..9].parse().unwrap();
            let xt = (LOBSTER_MIDNIGHT_S + whole.parse::<u64>().unwrap()) * 1_000_000_000 + nanos;
            executions.push((
                xt,
                f[4].parse::<f64>().unwrap() / 10_000.0,
                f[3].parse().unwrap(),
            ));
        }
    }
    (executions, unknown)
}

/// The LOBSTER sample's path; fails the test, saying where to put the
/// file, when it is absent.
pub fn lobster_path() -> PathBuf {
    let path = std::env::var_os("TICKFEED_LOBSTER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/feeds")
                .join(LOBSTER_NAME)
        });
    assert!(
        path.is_file(),
        "the LOBSTER sample is missing at {}: put {LOBSTER_NAME} (the free AAPL sample from lobsterdata.com) in ../shared/feeds/, \
         or set TICKFEED_LOBSTER to its path (keep the file name: it carries the date)",
        path.display()
    );
    path
}
