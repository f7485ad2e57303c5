//! Slow consumers: conflation keeps the invariant `B.seq - A.seq - 1 == B.n`
//! for a client that reads slowly, while a client that keeps up on the same
//! symbols receives every seq with `n == 0`; a client that stops reading is
//! closed at the stall timeout and the others carry on. (The timing of the
//! keep-up rule itself is tested on tokio's paused clock in
//! `session::tests`.)

mod common;

use common::{Client, check_seq, is_tick, start_server};
use serde_json::{Value, json};
use std::time::Duration;
use tickfeed::sequence::SeqByName;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_client_gets_latest_price_with_merge_count_while_fast_client_gets_every_seq() {
    // 3 symbols at 100 updates/s each. A reader that spends 300 ms on each
    // frame finds the updates it missed older than `--max-lag` (100 ms), so
    // it gets the latest values with `n`; one that keeps up gets them all.
    let server = start_server(&[
        "--rate",
        "300",
        "--symbols",
        "3",
        "--skew",
        "0",
        "--send-buffer",
        "8KiB",
        "--max-lag",
        "100ms",
    ])
    .await;
    let subscribe =
        json!({"op":"subscribe","id":1,"symbols":["AAPL","MSFT","NVDA"],"snapshot":false});
    let mut fast = Client::connect(&server.ws_url()).await;
    let mut slow = Client::connect_small_buffer(&server.ws_url(), server.addr).await;
    fast.request(subscribe.clone()).await;
    slow.request(subscribe).await;

    let slow_task = tokio::spawn(async move {
        let (mut last, mut events, mut merged) = (SeqByName::new(), 0u64, 0u64);
        while events < 30 || merged == 0 {
            let frame = slow
                .read_frame()
                .await
                .expect("slow client stays connected");
            for tick in frame.iter().filter(|e| is_tick(e)) {
                merged += check_seq(&mut last, tick);
                events += 1;
            }
            // Deliberately slow reader (simulated work, not a wait).
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        (events, merged)
    });
    // The fast client reads for as long as the slow one is being conflated
    // beside it (and at least a second's worth).
    let (mut last, mut events) = (SeqByName::new(), 0u64);
    let mut gaps = 0;
    while events < 300 || !slow_task.is_finished() {
        let tick = fast.wait_event(is_tick).await;
        gaps += check_seq(&mut last, &tick);
        events += 1;
    }
    let (slow_events, slow_merged) = slow_task.await.unwrap();
    assert_eq!(gaps, 0, "the fast client received every seq with n == 0");
    assert!(
        slow_events >= 30 && slow_merged > 0,
        "slow client was conflated: {slow_events} events, {slow_merged} merged"
    );
    let stats = server
        .wait_for_stats("conflation counted", |s| {
            s["updates_merged"].as_u64().unwrap() > 0
        })
        .await;
    assert!(stats["events_conflated"].as_u64().unwrap() > 0);
    server.shutdown_after(fast).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_client_is_closed_after_the_stall_timeout_and_others_carry_on() {
    let server = start_server(&[
        "--rate",
        "400",
        "--symbols",
        "2",
        "--skew",
        "0",
        "--stall-timeout",
        "1s",
        "--send-buffer",
        "8KiB",
    ])
    .await;
    let mut stalled = Client::connect_small_buffer(&server.ws_url(), server.addr).await;
    stalled
        .request(json!({"op":"subscribe","id":1,"symbols":["*"]}))
        .await;
    let mut healthy = Client::connect(&server.ws_url()).await;
    healthy
        .request(json!({"op":"subscribe","id":1,"symbols":["*"],"snapshot":false}))
        .await;
    // The healthy client reads all along, before and after the close.
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let (mut last, mut gaps, mut after) = (SeqByName::new(), 0, 0);
        while after < 500 {
            let tick = healthy.wait_event(is_tick).await;
            gaps += check_seq(&mut last, &tick);
            if matches!(
                done_rx.try_recv(),
                Ok(()) | Err(tokio::sync::oneshot::error::TryRecvError::Closed)
            ) {
                after += 1;
            }
        }
        gaps
    });
    // The stalled client reads nothing; the server must close it as a slow
    // consumer once its socket has accepted nothing for a second.
    server
        .wait_for_stats("a slow consumer close", |s| {
            s["slow_consumer_closes"].as_u64().unwrap() >= 1
        })
        .await;
    done_tx.send(()).unwrap();
    assert_eq!(
        reader.await.unwrap(),
        0,
        "the healthy client received every seq with n == 0"
    );
    // The stalled client finds the end of the stream after the data it
    // never read.
    while stalled.read_frame().await.is_some() {}
    server.shutdown_after(stalled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_hz_paces_only_its_own_symbols() {
    let server = start_server(&["--rate", "400", "--symbols", "2", "--skew", "0"]).await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL"],"max_hz":2,"snapshot":false}))
        .await;
    client
        .request(json!({"op":"subscribe","id":2,"symbols":["MSFT"],"snapshot":false}))
        .await;
    let mut last = SeqByName::new();
    let (mut msft_merged, mut aapl_events, mut aapl_merged) = (0, 0, 0);
    let mut msft_events = 0;
    while msft_events < 600 || aapl_events < 3 {
        let tick = client.wait_event(is_tick).await;
        let n = check_seq(&mut last, &tick);
        if tick["sym"] == "MSFT" {
            msft_events += 1;
            msft_merged += n;
        } else {
            aapl_events += 1;
            aapl_merged += n;
        }
    }
    assert_eq!(msft_merged, 0, "the unpaced symbol keeps every update");
    assert!(
        aapl_merged > 0,
        "the paced symbol is conflated between its slots"
    );
    assert!(
        aapl_events < msft_events / 10,
        "AAPL {aapl_events} events vs MSFT {msft_events}"
    );
    server.shutdown_after(client).await;
}

/// The scene: a reader on the 3 busiest symbols of a skewed market
/// reads continuously beside a client on all 200 symbols and a slow one
/// (3 s per frame, small receive buffer). The readers that keep up get
/// every update of their symbols with `n == 0`; the slow one is conflated.
/// `--max-lag 2s` keeps the verdict about keeping up, not about how busy a
/// shared CI machine is (the default 500 ms is measured in the benchmarks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_readers_of_hot_symbols_lose_nothing_beside_wide_and_slow_clients() {
    let server = start_server(&[
        "--rate",
        "5000",
        "--symbols",
        "200",
        "--seed",
        "3",
        "--max-lag",
        "2s",
    ])
    .await;
    let url = server.ws_url();
    let mut hot = Client::connect(&url).await;
    let mut wide = Client::connect(&url).await;
    let mut slow = Client::connect_small_buffer(&url, server.addr).await;
    // With the default skew the universe's first symbols are the busiest.
    let listed = hot.request(json!({"op":"symbols","id":1})).await;
    let names: Vec<Value> = listed["symbols"].as_array().unwrap().clone();
    hot.request(json!({"op":"subscribe","id":2,"symbols":names[..3],"snapshot":false}))
        .await;
    wide.request(json!({"op":"subscribe","id":2,"symbols":["*"],"snapshot":false}))
        .await;
    slow.request(json!({"op":"subscribe","id":2,"symbols":["*"],"snapshot":false}))
        .await;
    let wide_task = tokio::spawn(async move {
        let (mut last, mut merged) = (SeqByName::new(), 0);
        for _ in 0..20_000 {
            merged += check_seq(&mut last, &wide.wait_event(is_tick).await);
        }
        merged
    });
    let slow_task = tokio::spawn(async move {
        let (mut last, mut merged, mut frames) = (SeqByName::new(), 0, 0);
        loop {
            let frame = slow.read_frame().await.expect("the slow client stays");
            for tick in frame.iter().filter(|e| is_tick(e)) {
                merged += check_seq(&mut last, tick);
            }
            frames += 1;
            if frames >= 2 && merged > 0 {
                return merged;
            }
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    });
    let (mut last, mut merged) = (SeqByName::new(), 0);
    for _ in 0..5_000 {
        merged += check_seq(&mut last, &hot.wait_event(is_tick).await);
    }
    assert_eq!(merged, 0, "the hot-symbol reader got every update");
    assert_eq!(wide_task.await.unwrap(), 0, "the 200-symbol reader too");
    assert!(
        slow_task.await.unwrap() > 0,
        "the slow reader was conflated"
    );
    server.shutdown_after(hot).await;
}
