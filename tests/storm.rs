//! A connection storm against the real binary: 10,000 connect, subscribe,
//! disconnect cycles from many concurrent clients, ending in three ways
//! (close handshake, abrupt drop after the ack, drop before the ack).
//! Afterwards the server's open descriptors are back to their baseline and
//! its resident memory has stopped growing: nothing leaks per connection.

mod common;
mod process;

use common::Client;
use futures_util::SinkExt;
use process::{CHILD_DEADLINE, ChildServer};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio_tungstenite::tungstenite::Message;

/// Cycles in the measured storm, and in the warm-up before the baseline
/// (which lets the allocator and the runtime reach their working size).
const CYCLES: u64 = 10_000;
const WARM_UP: u64 = 1_000;
/// Concurrent clients: enough for a storm, few enough for 2 shared cores.
const WORKERS: u64 = 40;
/// Memory the allocator may keep between two halves of the storm without
/// it being a leak; a leak of one small buffer per connection (e.g. 1 KiB
/// over 5,000 connections) is above this.
const SETTLING_KIB: u64 = 4 * 1024;

async fn cycle(url: &str, index: u64) {
    let mut client = Client::connect(url).await;
    let subscribe = match index % 3 {
        0 => json!({"op":"subscribe","id":index,"symbols":["*"]}),
        _ => json!({"op":"subscribe","id":index,"symbols":["AAPL","MSFT","NVDA"],"snapshot":false}),
    };
    match index % 3 {
        0 => {
            client.request(subscribe).await;
            client.ws.close(None).await.expect("close sent");
            client.closed().await;
        }
        1 => {
            client.request(subscribe).await;
        }
        _ => {
            client
                .ws
                .send(Message::text(subscribe.to_string()))
                .await
                .expect("sent");
        }
    }
}

/// Runs `count` cycles over `WORKERS` concurrent clients.
async fn storm(url: &str, count: u64) {
    let next = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..WORKERS)
        .map(|_| {
            let (url, next) = (url.to_string(), next.clone());
            tokio::spawn(async move {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= count {
                        break;
                    }
                    cycle(&url, index).await;
                }
            })
        })
        .collect();
    for worker in workers {
        worker.await.expect("storm worker");
    }
}

/// Waits until every connection is gone and the descriptor count is back
/// to `fds` (at most); returns (RSS KiB, open fds).
async fn settled(server: &ChildServer, fds: usize) -> (u64, usize) {
    server
        .wait_for_stats("every connection closed", |s| {
            s["connections"] == 0 && s["subscriptions"] == 0
        })
        .await;
    let deadline = tokio::time::Instant::now() + CHILD_DEADLINE;
    loop {
        let open = server.open_fds();
        if open <= fds || tokio::time::Instant::now() >= deadline {
            return (server.rss_kib(), open);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[ignore = "long: runs in the long-test step of .ci/run (cargo test -- --ignored)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_connection_cycles_leave_descriptors_and_memory_at_baseline() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let server = ChildServer::start(
        "storm",
        // The history rings are held to 1 MiB, full within seconds, so
        // that what they retain does not read as growth per connection.
        &[
            "--rate",
            "500",
            "--symbols",
            "50",
            "--skew",
            "0",
            "--history-memory",
            "1MiB",
        ],
        &[],
    )
    .await;
    let url = server.ws_url();
    storm(&url, WARM_UP).await;
    let (rss_baseline, fds_baseline) = settled(&server, usize::MAX).await;

    let started = std::time::Instant::now();
    storm(&url, CYCLES / 2).await;
    let (rss_half, fds_half) = settled(&server, fds_baseline).await;
    storm(&url, CYCLES / 2).await;
    let (rss_after, fds_after) = settled(&server, fds_baseline).await;
    let stats = server.stats().await;
    println!(
        "storm: {CYCLES} cycles in {:.1} s; RSS {rss_baseline} KiB at baseline, {rss_half} KiB half-way, {rss_after} KiB after; \
         fds {fds_baseline} at baseline, {fds_half} half-way, {fds_after} after",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        stats["connections_total"],
        WARM_UP + CYCLES,
        "every cycle was a real session"
    );
    assert!(
        fds_after <= fds_baseline,
        "open descriptors not back to the baseline: {fds_after} after, {fds_baseline} before"
    );
    assert!(
        rss_after <= rss_half + SETTLING_KIB,
        "RSS still growing: {rss_half} KiB after 5,000 cycles, {rss_after} KiB after 10,000"
    );
}
