//! Stalled clients at scale, against the real binary: 1,000 clients
//! subscribe to `*` and never read again. The server's resident memory
//! stays flat for the whole stall (conflation holds one bit per symbol per
//! client, and every write buffer is bounded), a client that reads on the
//! same server keeps receiving every seq with `n == 0`, and the stalled
//! ones are closed once their sockets have accepted nothing for the stall
//! timeout.
//!
//! The stall lasts `TICKFEED_STALL_TEST_SECS` seconds (default 60, so the
//! memory is watched over a full minute).

mod common;
mod process;
mod witness;

use common::Client;
use futures_util::future::join_all;
use process::ChildServer;
use serde_json::json;
use std::time::{Duration, Instant};
use witness::Witness;

const STALLED: u64 = 1_000;
/// Connections opened at once while setting up.
const CONNECT_BATCH: usize = 50;
/// Upper bound of what one stalled client may cost the server: its
/// WebSocket write buffer (64 KiB plus one frame of up to 256 KiB) and
/// read buffer (4 KiB), its mailbox and task. The kernel's socket buffers
/// are not in the process's RSS.
const PER_CLIENT_KIB: u64 = 256;
/// RSS the second half of the stall may add over the first half's peak
/// (allocator noise); a per-update leak or an unbounded queue is far above.
const FLAT_KIB: u64 = 8 * 1024;

fn stall_secs() -> u64 {
    std::env::var("TICKFEED_STALL_TEST_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
}

/// One RSS reading during the stall.
struct Sample {
    at: Duration,
    rss_kib: u64,
    closed: u64,
}

#[ignore = "long: runs in the long-test step of .ci/run (cargo test -- --ignored)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_stalled_clients_keep_memory_flat_and_are_closed_at_the_stall_timeout() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let stall = stall_secs();
    let stall_flag = format!("{stall}s");
    let heartbeat_flag = format!("{}s", stall * 2);
    // 1,000 updates/s over 200 symbols: about 200 KB/s to each stalled
    // client fills its buffers within a second, while each symbol trades
    // only 5 times a second, so the witness's catch-up history covers
    // seconds of scheduling delay on a loaded machine.
    let server = ChildServer::start(
        "stalled",
        &[
            "--rate",
            "1000",
            "--symbols",
            "200",
            "--skew",
            "0",
            "--stall-timeout",
            &stall_flag,
            "--heartbeat",
            &heartbeat_flag,
            // The witness must get every seq while a debug build serves a
            // thousand clients on a shared machine: updates up to 5 s old
            // are still replayed to it rather than merged.
            "--max-lag",
            "5s",
            // The history rings fill their budget within seconds at this
            // rate, before the stall is measured, so that what they retain
            // is not read as growth per stalled client.
            "--history-memory",
            "4MiB",
        ],
        &[],
    )
    .await;
    let mut witness = Witness::join(&server.ws_url()).await;
    witness.sees_every_seq(100).await;
    let rss_before = server.rss_kib();

    let first_subscribed = Instant::now();
    let mut stalled = Vec::new();
    let subscribe = json!({"op":"subscribe","id":1,"symbols":["*"]});
    for _ in 0..STALLED as usize / CONNECT_BATCH {
        let batch = (0..CONNECT_BATCH).map(|_| async {
            let mut client = Client::connect_small_buffer(&server.ws_url(), server.addr).await;
            client.send(subscribe.clone()).await;
            client
        });
        stalled.extend(join_all(batch).await);
    }
    let all_subscribed = Instant::now();

    let mut samples = Vec::new();
    let deadline = all_subscribed + Duration::from_secs(stall) + process::CHILD_DEADLINE;
    let mut pace = tokio::time::interval(Duration::from_secs(1));
    loop {
        pace.tick().await;
        let stats = server.stats().await;
        let closed = stats["slow_consumer_closes"].as_u64().unwrap();
        samples.push(Sample {
            at: first_subscribed.elapsed(),
            rss_kib: server.rss_kib(),
            closed,
        });
        if closed >= STALLED {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {closed} of {STALLED} stalled clients closed: {stats}"
        );
    }
    let tally = witness.sees_every_seq(100).await;
    server
        .wait_for_stats("only the witness left", |s| s["connections"] == 1)
        .await;

    for sample in &samples {
        println!(
            "t={:>3} s  rss={:>7} KiB  closed={}",
            sample.at.as_secs(),
            sample.rss_kib,
            sample.closed
        );
    }
    let first_close = samples.iter().find(|s| s.closed > 0).expect("a close").at;
    assert!(
        first_close >= Duration::from_secs(stall),
        "a stalled client was closed after {first_close:?}, before the {stall} s stall timeout"
    );
    let stalling: Vec<&Sample> = samples.iter().filter(|s| s.closed == 0).collect();
    let (early, late) = stalling.split_at(stalling.len() / 2);
    let peak = |part: &[&Sample]| part.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    let (early_peak, late_peak) = (peak(early), peak(late));
    println!(
        "stalled: {STALLED} clients for {stall} s; RSS {rss_before} KiB before, peak {early_peak} KiB in the first half, \
         {late_peak} KiB in the second; witness got {} events with n == 0",
        tally.events
    );
    assert!(
        early_peak.max(late_peak) <= rss_before + STALLED * PER_CLIENT_KIB,
        "RSS {} KiB exceeds {PER_CLIENT_KIB} KiB per stalled client over {rss_before} KiB",
        early_peak.max(late_peak)
    );
    assert!(
        late_peak <= early_peak + FLAT_KIB,
        "RSS grew during the stall: {early_peak} KiB then {late_peak} KiB"
    );
    // The stalled clients find the end of the stream behind the data they
    // never read.
    drop(stalled);
}
