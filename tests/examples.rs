//! The example clients of `examples/` (Python, Node, Rust) against a real
//! server: each runs as a child process through a TCP proxy that cuts its
//! first connection after a few dozen kilobytes, mid-stream, as a
//! network failure would. A client passes when it reconnects, resumes
//! with `from` and `epoch` (the ack says `resumed`), keeps the conflation
//! invariant across both connections (it exits 1 otherwise) and exits 0
//! after its tick count.
//!
//! The interpreters are not optional: without `/usr/bin/python3` and its
//! `websockets` (Debian's python3-websockets) or `node` (20 or later)
//! the test fails saying what to install; `.ci/run` installs both.
//! `TICKFEED_PYTHON` and `TICKFEED_NODE` name other interpreters.

mod common;

use common::{TestServer, start_server};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Ticks each client reads before it exits.
const TICKS: &str = "3000";
/// The client's own bound on its run, in seconds.
const CLIENT_SECONDS: &str = "40";
/// The test's bound on a client process (it exits long before).
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);
/// Bytes of server data the proxy forwards before it cuts the first
/// connection: a few hundred ticks.
const CUT_AFTER_BYTES: u64 = 48 * 1024;

/// A TCP proxy to the server whose first connection is cut after
/// [`CUT_AFTER_BYTES`] from the server; later ones pass untouched.
struct CuttingProxy {
    addr: SocketAddr,
    cuts: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CuttingProxy {
    async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cuts = Arc::new(AtomicUsize::new(0));
        let counter = cuts.clone();
        let task = tokio::spawn(async move {
            let mut first = true;
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let limit = std::mem::take(&mut first).then_some(CUT_AFTER_BYTES);
                tokio::spawn(forward(client, server, limit, counter.clone()));
            }
        });
        Self { addr, cuts, task }
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Forwards both ways; with a `limit`, drops both sockets once that many
/// bytes went from server to client.
async fn forward(client: TcpStream, server: TcpStream, limit: Option<u64>, cuts: Arc<AtomicUsize>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream =
        tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
    let mut forwarded = 0u64;
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = match server_read.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if client_write.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        forwarded += n as u64;
        if limit.is_some_and(|limit| forwarded >= limit) {
            cuts.fetch_add(1, Ordering::Relaxed);
            break;
        }
    }
    upstream.abort();
}

/// Runs `program args` to completion within [`CLIENT_DEADLINE`]; returns
/// its summary line, failing with its output unless it exited 0.
async fn run_client(program: &Path, args: &[String]) -> Value {
    let child = tokio::process::Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let output = tokio::time::timeout(CLIENT_DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "{} {args:?} still running after {CLIENT_DEADLINE:?}",
                program.display()
            )
        })
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} {args:?} failed with {}\nstdout: {stdout}\nstderr: {stderr}",
        program.display(),
        output.status
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|_| panic!("no summary line: {stdout}\n{stderr}"))
}

/// Starts a server and the proxy; returns the client's arguments too.
async fn server_and_proxy() -> (TestServer, CuttingProxy, Vec<String>) {
    let server = start_server(&["--symbols", "8", "--rate", "2000"]).await;
    let proxy = CuttingProxy::start(server.addr).await;
    let symbols = server.get_json("/api/symbols").await;
    let names: Vec<&str> = symbols
        .as_array()
        .unwrap()
        .iter()
        .take(3)
        .map(|t| t["sym"].as_str().unwrap())
        .collect();
    let names = if names.len() == 3 {
        names.join(",")
    } else {
        "*".into()
    };
    let args = [
        &format!("ws://{}/ws", proxy.addr),
        "--symbols",
        &names,
        "--count",
        TICKS,
        "--seconds",
        CLIENT_SECONDS,
    ]
    .map(String::from)
    .to_vec();
    (server, proxy, args)
}

/// Checks a client's summary: it read its ticks, reconnected and resumed.
fn assert_reconnected_and_resumed(summary: &Value, proxy: &CuttingProxy) {
    assert_eq!(
        proxy.cuts.load(Ordering::Relaxed),
        1,
        "the proxy cut the first connection"
    );
    assert!(summary["ticks"].as_u64() >= TICKS.parse().ok(), "{summary}");
    assert!(
        summary["reconnects"].as_u64() >= Some(1),
        "no reconnect: {summary}"
    );
    assert!(
        summary["resumed"].as_u64() >= Some(1),
        "no resume: {summary}"
    );
}

/// An interpreter from `variable`, or `default`; fails with `install`
/// unless `probe` runs with it.
fn interpreter(variable: &str, default: &str, probe: &[&str], install: &str) -> PathBuf {
    let program = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    let works = std::process::Command::new(&program)
        .args(probe)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        works,
        "{} {probe:?} failed: {install} (bash .ci/run installs it), or set {variable}",
        program.display()
    );
    program
}

fn example(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(path)
        .display()
        .to_string()
}

#[tokio::test]
async fn the_python_client_reconnects_resumes_and_keeps_the_invariant() {
    let python = interpreter(
        "TICKFEED_PYTHON",
        "/usr/bin/python3",
        &["-c", "import websockets"],
        "install Debian's python3-websockets for /usr/bin/python3",
    );
    let (server, proxy, args) = server_and_proxy().await;
    let mut argv = vec![example("examples/python/subscribe.py")];
    argv.extend(args);
    let summary = run_client(&python, &argv).await;
    assert_reconnected_and_resumed(&summary, &proxy);
    server.shutdown().await;
}

#[tokio::test]
async fn the_node_client_reconnects_resumes_and_keeps_the_invariant() {
    let node = interpreter(
        "TICKFEED_NODE",
        "node",
        &["--version"],
        "install nodejs (20 or later)",
    );
    let version = std::process::Command::new(&node)
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        major >= 20,
        "node {version} has no WebSocket; install Node 20 or later"
    );
    let (server, proxy, args) = server_and_proxy().await;
    let mut argv = Vec::new();
    if major < 22 {
        argv.push("--experimental-websocket".to_string());
    }
    argv.push(example("examples/js/subscribe.mjs"));
    argv.extend(args);
    let summary = run_client(&node, &argv).await;
    assert_reconnected_and_resumed(&summary, &proxy);
    assert!(summary["max_age_ms"].as_f64().is_some(), "{summary}");
    server.shutdown().await;
}

/// Builds `examples/subscribe.rs` with the cargo that runs this test and
/// returns the executable's path.
fn build_rust_example() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = std::process::Command::new(cargo);
    // Cargo sets these for the test it runs; build scripts that watch
    // them (ring's) would rebuild in the nested cargo, then again in the
    // next outer one.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_for_this_test = [
            "CARGO_PKG_",
            "CARGO_MANIFEST_",
            "CARGO_CRATE_",
            "CARGO_BIN_",
        ]
        .iter()
        .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
            ]
            .contains(&&*name);
        if set_for_this_test {
            command.env_remove(&*name);
        }
    }
    let output = command
        .args(["build", "--example", "subscribe", "--message-format=json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build --example subscribe");
    assert!(
        output.status.success(),
        "cargo build --example subscribe failed"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == "subscribe")
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the example's executable")
}

#[tokio::test]
async fn the_rust_client_reconnects_resumes_and_keeps_the_invariant() {
    let program = tokio::task::spawn_blocking(build_rust_example)
        .await
        .unwrap();
    let (server, proxy, args) = server_and_proxy().await;
    let summary = run_client(&program, &args).await;
    assert_reconnected_and_resumed(&summary, &proxy);
    server.shutdown().await;
}
