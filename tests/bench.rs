//! `tickfeed bench` end to end: against the in-process server, against a
//! deliberately broken server, as a sweep with plot and histogram files,
//! and against a real nats-server. Every run is a few seconds with small
//! settings; assertions are about sanity and correctness, never timing.

mod common;

use clap::Parser;
use common::{Scratch, free_port};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use tickfeed::cli::{Cli, Command};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{
    Callback, ErrorResponse, Request, Response,
};
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Runs `tickfeed bench ARGS` in-process and returns its JSON report.
async fn bench(args: &[&str], json: &Path) -> Value {
    let mut argv = vec!["tickfeed", "bench", "--json", json.to_str().unwrap()];
    argv.extend_from_slice(args);
    let cli = Cli::try_parse_from(&argv).expect("valid bench flags");
    let Some(Command::Bench(args)) = cli.command else {
        panic!("not bench")
    };
    tickfeed::bench::run(args).await.expect("bench runs");
    serde_json::from_slice(&std::fs::read(json).expect("JSON report written"))
        .expect("JSON report parses")
}

fn number(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

fn assert_percentiles_ordered(latency: &Value) {
    let p: Vec<f64> = [
        "p50_ms", "p90_ms", "p99_ms", "p999_ms", "p9999_ms", "max_ms",
    ]
    .iter()
    .map(|k| number(&latency[k]))
    .collect();
    assert!(
        p[0] > 0.0 && p.windows(2).all(|w| w[0] <= w[1]),
        "percentiles out of order: {latency}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_against_the_in_process_server_reports_sane_figures() {
    let scratch = Scratch::new("in-process");
    let report = bench(
        &[
            "--clients",
            "20",
            "--symbols",
            "50",
            "--symbols-per-client",
            "5",
            "--rate",
            "2k",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--slow-fraction",
            "0.2",
            "--slow-delay",
            "20ms",
            "--encoding",
            "msgpack",
        ],
        &scratch.file("report.json"),
    )
    .await;
    let point = &report["points"][0];
    assert_eq!(point["connections"]["opened"], 20, "{point}");
    assert_eq!(point["connections"]["subscribed"], 20);
    assert_eq!(point["settings"]["slow_clients"], 4);
    assert!(number(&point["delivery"]["events"]) > 0.0);
    assert!(number(&point["source"]["achieved_per_s"]) > 0.0);
    assert_percentiles_ordered(&point["latency_fast"]);
    assert_percentiles_ordered(&point["latency_slow"]);
    assert_eq!(point["violations"]["total"], 0, "{}", point["violations"]);
    assert!(point["server_stages"]["deliver"]["count"].as_u64().unwrap() > 0);
    assert!(number(&point["resources"]["client_cpu_cores"]) > 0.0);
    assert!(!point["timeline"].as_array().unwrap().is_empty());
}

/// `--channel book`: every client subscribes to books of 10 levels, and
/// the report's events, latency and bytes are of book events, whose seq
/// and `n` pass the same check as ticks'.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_of_the_book_channel_reports_book_latency_and_bytes_per_event() {
    let scratch = Scratch::new("book");
    let args = |channel: &'static str| {
        [
            "--clients",
            "10",
            "--symbols",
            "20",
            "--symbols-per-client",
            "5",
            "--rate",
            "1k",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--channel",
            channel,
        ]
    };
    let report = bench(&args("book"), &scratch.file("book.json")).await;
    let point = &report["points"][0];
    assert_eq!(point["settings"]["channel"], "book", "{point}");
    assert_eq!(point["settings"]["depth"], 10);
    assert_eq!(point["connections"]["subscribed"], 10);
    assert!(number(&point["delivery"]["events"]) > 0.0, "{point}");
    assert_percentiles_ordered(&point["latency_fast"]);
    assert_eq!(point["violations"]["total"], 0, "{}", point["violations"]);
    assert_eq!(point["errors_received"], 0);
    // Ten levels a side are many more bytes than a tick.
    let ticks = bench(&args("ticks"), &scratch.file("ticks.json")).await;
    let ticks = &ticks["points"][0];
    assert_eq!(ticks["settings"]["channel"], "ticks");
    assert!(ticks["settings"]["depth"].is_null());
    let book_bytes = number(&point["delivery"]["bytes_per_event"]);
    let tick_bytes = number(&ticks["delivery"]["bytes_per_event"]);
    assert!(
        book_bytes > tick_bytes,
        "a book event of 20 levels ({book_bytes} bytes) against a tick ({tick_bytes})"
    );
}

/// Ticks of one symbol with a gap not counted in `n` (seq 4 after 2) and a
/// step backwards (3 after 4): one of each violation per symbol.
fn broken_ticks(symbol: &str) -> String {
    let tick =
        |seq: u64| json!({"ev": "tick", "sym": symbol, "seq": seq, "ts": 1, "vol": 0, "n": 0});
    json!([tick(1), tick(2), tick(4), tick(3)]).to_string()
}

/// Accepts the first subprotocol the client offers, as a real server must
/// for a client that asks for one.
struct EchoProtocol;

impl Callback for EchoProtocol {
    fn on_request(
        self,
        request: &Request,
        mut response: Response,
    ) -> Result<Response, ErrorResponse> {
        if let Some(protocol) = request.headers().get("sec-websocket-protocol") {
            let first = protocol
                .to_str()
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .trim()
                .to_string();
            response.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_str(&first).unwrap(),
            );
        }
        Ok(response)
    }
}

/// Ticks of one symbol whose deltas lie: the full stream moves the bid
/// from 10 to 12, the deltas stream says 11.
fn lying_deltas(symbol: &str, deltas: bool) -> String {
    let first =
        json!({"ev": "tick", "sym": symbol, "seq": 1, "ts": 1, "bid": 10.0, "vol": 0, "n": 0});
    let second = if deltas {
        json!({"ev": "tick", "sym": symbol, "seq": 2, "ts": 2, "bid": 11.0, "d": 1, "n": 0})
    } else {
        json!({"ev": "tick", "sym": symbol, "seq": 2, "ts": 2, "bid": 12.0, "vol": 0, "n": 0})
    };
    json!([first, second]).to_string()
}

/// A tiny server speaking just enough protocol: hello, `symbols`, `ack`,
/// then `ticks(symbol, deltas asked)` for every symbol subscribed.
async fn broken_server(ticks: fn(&str, bool) -> String) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, EchoProtocol).await
                else {
                    return;
                };
                let hello = json!([{"ev": "hello", "v": 1, "server": "broken 0.0", "session": "x", "encoding": "json", "heartbeat_s": 15, "symbols": 2}]);
                let _ = ws.send(Message::text(hello.to_string())).await;
                while let Some(Ok(Message::Text(text))) = ws.next().await {
                    let request: Value = serde_json::from_str(&text).unwrap();
                    let id = request["id"].clone();
                    let replies = match request["op"].as_str() {
                        Some("symbols") => vec![
                            json!([{"ev": "symbols", "id": id, "symbols": ["AAA", "BBB"]}])
                                .to_string(),
                        ],
                        Some("subscribe") => {
                            let symbols: Vec<String> =
                                serde_json::from_value(request["symbols"].clone()).unwrap();
                            let ack = json!([{"ev": "ack", "id": id, "op": "subscribe", "symbols": symbols}]).to_string();
                            std::iter::once(ack)
                                .chain(symbols.iter().map(|s| ticks(s, request["deltas"] == true)))
                                .collect()
                        }
                        _ => vec![],
                    };
                    for reply in replies {
                        let _ = ws.send(Message::text(reply)).await;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_with_uncounted_gaps_is_reported_as_violations() {
    let scratch = Scratch::new("broken");
    let addr = broken_server(|symbol, _| broken_ticks(symbol)).await;
    let url = format!("ws://{addr}/ws");
    let report = bench(
        &[
            "--url",
            &url,
            "--clients",
            "2",
            "--symbols",
            "2",
            "--symbols-per-client",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "0s",
        ],
        &scratch.file("report.json"),
    )
    .await;
    let point = &report["points"][0];
    assert_eq!(point["target"], format!("broken 0.0 at {url}"));
    let violations = &point["violations"];
    assert_eq!(
        violations["gaps_not_counted"], 4,
        "2 clients x 2 symbols: {violations}"
    );
    assert_eq!(violations["seq_backwards"], 4, "{violations}");
    assert_eq!(violations["total"], 8);
    assert!(
        point["server_stages"].is_null(),
        "no /api/stats on this server"
    );
    assert!(point["resources"]["server_cpu_cores"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_writes_one_plot_line_and_one_histogram_per_point() {
    let scratch = Scratch::new("sweep");
    let (plot, hdr) = (scratch.file("latency.svg"), scratch.file("latency.hgrm"));
    let report = bench(
        &[
            "--clients",
            "2,4",
            "--symbols",
            "20",
            "--symbols-per-client",
            "3",
            "--rate",
            "1k",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--plot",
            plot.to_str().unwrap(),
            "--hdr",
            hdr.to_str().unwrap(),
        ],
        &scratch.file("report.json"),
    )
    .await;
    let points = report["points"].as_array().unwrap();
    let labels: Vec<&str> = points
        .iter()
        .map(|p| p["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["2 clients", "4 clients"]);
    for point in points {
        assert!(number(&point["delivery"]["events"]) > 0.0, "{point}");
        assert_eq!(point["violations"]["total"], 0);
    }
    let svg = std::fs::read_to_string(&plot).expect("plot written");
    assert!(svg.starts_with("<svg") && svg.contains("2 clients") && svg.contains("4 clients"));
    for label in ["2-clients", "4-clients"] {
        let text = std::fs::read_to_string(scratch.file(&format!("latency-{label}.hgrm")))
            .expect("one histogram per point");
        assert!(
            text.contains("Percentile") && text.contains("#[Max"),
            "{text}"
        );
    }
}

/// A nats-server on free loopback ports with its WebSocket listener on,
/// killed when dropped.
struct NatsServer {
    child: std::process::Child,
    client_port: u16,
    ws_port: u16,
    _dir: Scratch,
}

impl NatsServer {
    async fn start() -> Self {
        let dir = Scratch::new("nats");
        let (client_port, ws_port) = (free_port(), free_port());
        let config = dir.file("nats.conf");
        std::fs::write(&config, format!("listen: 127.0.0.1:{client_port}\nwebsocket {{\n  listen: \"127.0.0.1:{ws_port}\"\n  no_tls: true\n}}\n")).unwrap();
        let child = std::process::Command::new("nats-server")
            .arg("-c")
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run nats-server ({e}): install it with `apt-get install -y nats-server` (.ci/run does)"));
        let server = Self {
            child,
            client_port,
            ws_port,
            _dir: dir,
        };
        for port in [client_port, ws_port] {
            common::poll("nats-server to listen", || async move {
                tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .ok()
            })
            .await;
        }
        server
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_target_runs_end_to_end_beside_tickfeed() {
    let nats = NatsServer::start().await;
    let scratch = Scratch::new("nats-run");
    let (nats_url, ws_url, pid) = (
        format!("nats://127.0.0.1:{}", nats.client_port),
        format!("ws://127.0.0.1:{}", nats.ws_port),
        nats.child.id().to_string(),
    );
    let report = bench(
        &[
            "--target",
            "tickfeed,nats",
            "--nats-url",
            &nats_url,
            "--nats-ws-url",
            &ws_url,
            "--nats-pid",
            &pid,
            "--clients",
            "10",
            "--symbols",
            "20",
            "--symbols-per-client",
            "3",
            "--rate",
            "2k",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
        ],
        &scratch.file("report.json"),
    )
    .await;
    let points = report["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    let nats_point = &points[1];
    assert!(
        nats_point["target"]
            .as_str()
            .unwrap()
            .starts_with("nats-server"),
        "{nats_point}"
    );
    for point in points {
        assert_eq!(point["connections"]["opened"], 10, "{point}");
        assert!(number(&point["delivery"]["events"]) > 0.0, "{point}");
        assert_percentiles_ordered(&point["latency_fast"]);
        assert_eq!(point["violations"]["total"], 0, "{point}");
    }
    assert!(number(&nats_point["source"]["achieved_per_s"]) > 0.0);
    assert!(
        nats_point["resources"]["server_rss_bytes"]
            .as_u64()
            .unwrap()
            > 0,
        "read from /proc/<--nats-pid>"
    );
    assert!(nats_point["resources"]["publisher_cpu_cores"].is_number());
}

/// Fast and slow clients' merges, which must add up to the totals.
fn assert_merges_add_up(point: &Value) {
    let conflation = &point["conflation"];
    for field in ["events_with_merges", "updates_merged"] {
        let (fast, slow, total) = (
            conflation["fast"][field].as_u64(),
            conflation["slow"][field].as_u64(),
            conflation[field].as_u64(),
        );
        assert!(fast.is_some() && slow.is_some(), "{conflation}");
        assert_eq!(
            fast.zip(slow).map(|(f, s)| f + s),
            total,
            "{field}: {conflation}"
        );
    }
}

/// Checks every second of `slow_age_timeline`: in order, tagged by phase,
/// with ticks and percentiles in order; returns the seconds.
fn slow_age_seconds(point: &Value) -> Vec<i64> {
    let timeline = point["slow_age_timeline"].as_array().unwrap();
    let seconds: Vec<i64> = timeline
        .iter()
        .map(|s| s["t_s"].as_i64().unwrap())
        .collect();
    assert!(seconds.windows(2).all(|w| w[0] < w[1]), "{seconds:?}");
    for second in timeline {
        let phase = if second["t_s"].as_i64().unwrap() < 0 {
            "warmup"
        } else {
            "measured"
        };
        assert_eq!(second["phase"], phase, "{second}");
        assert!(second["events"].as_u64().unwrap() > 0, "{second}");
        let (p50, p99, max) = (
            number(&second["p50_ms"]),
            number(&second["p99_ms"]),
            number(&second["max_ms"]),
        );
        assert!(p50 <= p99 && p99 <= max, "{second}");
    }
    seconds
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frame_by_frame_slow_readers_get_a_data_age_timeline_and_merges_by_group() {
    let scratch = Scratch::new("slow-frame");
    let report = bench(
        &[
            "--clients",
            "20",
            "--symbols",
            "50",
            "--symbols-per-client",
            "5",
            "--rate",
            "2k",
            "--duration",
            "2s",
            "--warmup",
            "1s",
            "--slow-fraction",
            "0.2",
            "--slow-mode",
            "frame",
            "--slow-delay",
            "50ms",
        ],
        &scratch.file("report.json"),
    )
    .await;
    let point = &report["points"][0];
    assert_eq!(point["settings"]["slow_mode"], "frame", "{point}");
    assert_eq!(point["settings"]["slow_clients"], 4);
    let seconds = slow_age_seconds(point);
    assert!(seconds.contains(&-1), "warm-up shown: {seconds:?}");
    assert!(seconds.iter().any(|&t| t >= 0), "window shown: {seconds:?}");
    assert!(
        point["slow_after_5s"].is_null(),
        "a 2 s window has nothing after 5 s"
    );
    assert_merges_add_up(point);
    assert_eq!(point["violations"]["total"], 0, "{}", point["violations"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursty_readers_run_beside_fast_clients_on_the_hottest_symbols_of_a_skewed_market() {
    let scratch = Scratch::new("slow-burst");
    let report = bench(
        &[
            "--clients",
            "10",
            "--symbols",
            "50",
            "--symbols-per-client",
            "5",
            "--hot-symbols",
            "3",
            "--skew",
            "1",
            "--rate",
            "2k",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--slow-fraction",
            "0.2",
            "--slow-mode",
            "burst",
            "--slow-delay",
            "100ms",
        ],
        &scratch.file("report.json"),
    )
    .await;
    let point = &report["points"][0];
    let settings = &point["settings"];
    assert_eq!(settings["slow_mode"], "burst", "{settings}");
    assert_eq!(
        settings["subscriptions"], 34,
        "8 fast clients x 3 hot symbols + 2 slow x 5 picks: {settings}"
    );
    assert_eq!(
        (settings["skew"].as_f64(), settings["hot_symbols"].as_u64()),
        (Some(1.0), Some(3))
    );
    assert!(
        point["delivery"]["expected_events_per_s"].is_null(),
        "unknown without an even spread"
    );
    assert!(number(&point["delivery"]["events"]) > 0.0);
    assert!(!slow_age_seconds(point).is_empty());
    assert_merges_add_up(point);
    assert_eq!(point["violations"]["total"], 0, "{}", point["violations"]);
}

#[test]
fn an_unknown_slow_mode_is_refused_with_the_choices() {
    let error = Cli::try_parse_from(["tickfeed", "bench", "--slow-mode", "nope"])
        .expect_err("nope is not a slow mode")
        .to_string();
    assert!(
        error.contains("invalid value 'nope' for '--slow-mode")
            && error.contains("[possible values: event, frame, burst]"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_deltas_the_bench_applies_them_and_holds_the_full_streams_values() {
    let scratch = Scratch::new("deltas");
    let report = bench(
        &[
            "--clients",
            "4",
            "--symbols",
            "20",
            "--symbols-per-client",
            "5",
            "--rate",
            "2k",
            "--duration",
            "2s",
            "--warmup",
            "500ms",
            "--deltas",
        ],
        &scratch.file("report.json"),
    )
    .await;
    let point = &report["points"][0];
    let check = &point["delta_check"];
    assert_eq!(check["symbols"], 16, "{check}");
    assert!(check["compared"].as_u64().unwrap() > 0, "{check}");
    assert!(check["as_deltas"].as_u64().unwrap() > 0, "{check}");
    assert_eq!(check["mismatches"], 0, "{check}");
    assert_eq!(point["violations"]["total"], 0, "{}", point["violations"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_that_disagree_with_the_full_stream_are_violations() {
    let scratch = Scratch::new("lying-deltas");
    let addr = broken_server(lying_deltas).await;
    let url = format!("ws://{addr}/ws");
    let report = bench(
        &[
            "--url",
            &url,
            "--clients",
            "1",
            "--symbols",
            "2",
            "--symbols-per-client",
            "2",
            "--duration",
            "500ms",
            "--warmup",
            "0s",
            "--deltas",
        ],
        &scratch.file("report.json"),
    )
    .await;
    let point = &report["points"][0];
    let check = &point["delta_check"];
    assert_eq!(check["compared"], 4, "2 symbols x seq 1 and 2: {check}");
    assert_eq!(check["mismatches"], 2, "seq 2 of each symbol: {check}");
    assert!(
        check["first_mismatch"].as_str().unwrap().contains("seq 2"),
        "{check}"
    );
    assert_eq!(point["violations"]["delta_mismatches"], 2);
    assert_eq!(point["violations"]["total"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_with_tokens_is_measured_with_token_and_refused_without() {
    let scratch = Scratch::new("token");
    let server =
        common::start_server(&["--token", "s3cret", "--symbols", "20", "--rate", "1k"]).await;
    let url = server.ws_url();
    let args = [
        "--url",
        url.as_str(),
        "--clients",
        "4",
        "--symbols",
        "20",
        "--symbols-per-client",
        "5",
        "--duration",
        "1s",
        "--warmup",
        "0s",
    ];
    let mut with_token = args.to_vec();
    with_token.extend(["--token", "s3cret"]);
    let report = bench(&with_token, &scratch.file("report.json")).await;
    let point = &report["points"][0];
    assert_eq!(point["connections"]["subscribed"], 4, "{point}");
    assert!(
        point["server_stages"]["deliver"]["count"].as_u64().unwrap() > 0,
        "/api/stats read with the token: {point}"
    );

    let argv: Vec<&str> = ["tickfeed", "bench"].into_iter().chain(args).collect();
    let Some(Command::Bench(args)) = Cli::try_parse_from(&argv).unwrap().command else {
        panic!("not bench")
    };
    let refused = tickfeed::bench::run(args)
        .await
        .expect_err("no token, no run");
    assert!(format!("{refused:#}").contains("401"), "{refused:#}");
    server.shutdown().await;
}
