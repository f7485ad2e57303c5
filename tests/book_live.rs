//! The book channel (`docs/protocol.md`, "Book") against the real server
//! and its simulated market: a snapshot first, seqs that keep the
//! conflation invariant, books cut to each client's depth and alike in
//! both encodings, a slow client conflated with `n`, unsubscribe, the
//! errors, and the top level equal to the quote of the tick the same
//! event made, on the simulated market and on the LOBSTER sample.

mod common;

use common::{Client, check_seq, is_tick, lobster_path, poll, start_server};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;
use tickfeed::sequence::SeqByName;

fn is_book(event: &Value) -> bool {
    event["ev"] == "book"
}

/// `[[px, sz], ..]` as pairs.
fn levels(side: &Value) -> Vec<(f64, u64)> {
    side.as_array()
        .expect("a side is an array")
        .iter()
        .map(|level| (level[0].as_f64().unwrap(), level[1].as_u64().unwrap()))
        .collect()
}

/// Checks one book's shape: at most `depth` levels a side, best first
/// (bids falling, asks rising), not crossed.
fn check_shape(book: &Value, depth: usize) {
    let (bids, asks) = (levels(&book["bids"]), levels(&book["asks"]));
    assert!(bids.len() <= depth && asks.len() <= depth, "{book}");
    assert!(
        bids.windows(2).all(|w| w[0].0 > w[1].0),
        "bids fall: {book}"
    );
    assert!(
        asks.windows(2).all(|w| w[0].0 < w[1].0),
        "asks rise: {book}"
    );
    if let (Some(bid), Some(ask)) = (bids.first(), asks.first()) {
        assert!(bid.0 < ask.0, "not crossed: {book}");
    }
}

/// A server whose simulated market makes books of `depth` levels.
async fn market(depth: &str) -> common::TestServer {
    start_server(&[
        "--rate",
        "400",
        "--symbols",
        "2",
        "--skew",
        "0",
        "--depth",
        depth,
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_book_subscriber_gets_a_snapshot_first_then_books_that_keep_the_invariant() {
    let server = market("10").await;
    // A symbol with no book yet gets no snapshot: wait for AAPL's first.
    poll("AAPL's first book", || async {
        (server.get_json("/api/book?sym=AAPL").await["ev"] == "book").then_some(())
    })
    .await;
    let mut client = Client::connect(&server.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"channel":"book","symbols":["AAPL"]}))
        .await;
    assert_eq!(
        (ack["ev"].as_str(), ack["channel"].as_str()),
        (Some("ack"), Some("book"))
    );
    assert_eq!(ack["depth"], 10, "the server's --depth when none is asked");
    let snapshot = client.wait_event(is_book).await;
    assert_eq!(
        (snapshot["snap"].as_bool(), snapshot["n"].as_u64()),
        (Some(true), Some(0))
    );
    let mut seqs = SeqByName::new();
    check_seq(&mut seqs, &snapshot);
    let mut full = false;
    for _ in 0..200 {
        let book = client.wait_event(is_book).await;
        assert_eq!(book["sym"], "AAPL");
        assert!(book.get("snap").is_none(), "one snapshot: {book}");
        check_seq(&mut seqs, &book);
        check_shape(&book, 10);
        full |= levels(&book["bids"]).len() == 10;
    }
    assert!(full, "the default depth is the server's --depth (10)");
    let stats = server
        .wait_for_stats("books counted", |s| s["books_out"].as_u64() >= Some(200))
        .await;
    assert!(stats["books_in"].as_u64().unwrap() >= 200);
    server.shutdown_after(client).await;
}

/// Checks that 50 books `other` got at `depth` are `reference`'s books of
/// the same seq, cut to `depth`. The reference client reads up to each seq
/// the other got: the two see the same seqs, except what conflation merged
/// for either.
async fn same_books(reference: &mut Client, other: &mut Client, depth: usize) {
    let (mut by_seq, mut newest) = (HashMap::new(), 0);
    let mut compared = 0;
    while compared < 50 {
        let cut = other.wait_event(is_book).await;
        check_shape(&cut, depth);
        let seq = cut["seq"].as_u64().unwrap();
        while newest < seq {
            let book = reference.wait_event(is_book).await;
            newest = book["seq"].as_u64().unwrap();
            by_seq.insert(newest, book);
        }
        let Some(full) = by_seq.get(&seq) else {
            continue;
        };
        for side in ["bids", "asks"] {
            let expected: Vec<_> = levels(&full[side]).into_iter().take(depth).collect();
            assert_eq!(levels(&cut[side]), expected, "{side} of seq {seq}");
        }
        assert_eq!((&cut["ts"], &cut["sym"]), (&full["ts"], &full["sym"]));
        compared += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_smaller_depth_gets_the_same_books_cut_to_it() {
    let server = market("10").await;
    let mut deep = Client::connect(&server.ws_url()).await;
    let mut shallow = Client::connect(&server.ws_url()).await;
    deep.request(json!({"op":"subscribe","id":1,"channel":"book","symbols":["MSFT"],"depth":10,"snapshot":false}))
        .await;
    let ack = shallow
        .request(json!({"op":"subscribe","id":1,"channel":"book","symbols":["MSFT"],"depth":3,"snapshot":false}))
        .await;
    assert_eq!(ack["depth"], 3, "the depth granted: {ack}");
    same_books(&mut deep, &mut shallow, 3).await;
    server.shutdown_after((deep, shallow)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_messagepack_client_gets_the_same_books_as_a_json_one() {
    let server = market("10").await;
    let mut json_client = Client::connect(&server.ws_url()).await;
    let mut msgpack = Client::connect(&format!("{}?encoding=msgpack", server.ws_url())).await;
    assert_eq!(msgpack.hello["encoding"], "msgpack");
    let subscribe =
        json!({"op":"subscribe","id":1,"channel":"book","symbols":["AAPL"],"snapshot":false});
    json_client.request(subscribe.clone()).await;
    msgpack.request(subscribe).await;
    same_books(&mut json_client, &mut msgpack, 10).await;
    server.shutdown_after((json_client, msgpack)).await;
}

/// The top level of a side, `[px, sz]`, or null for an empty side.
fn top(px: &Value, sz: &Value) -> Value {
    if px.is_null() {
        Value::Null
    } else {
        json!([px, sz])
    }
}

/// Reads ticks and `books` book events from `client`, which subscribed to
/// both for the same symbols, and checks each book against the ticks of
/// its symbol that share its `ts` and `xt` (a replay stamps one `ts` on a
/// whole batch, and LOBSTER rows share times): its top level is one of
/// those ticks' quotes, or the quote in force before them (an event that
/// changed only deeper levels made the book and no tick). Books are
/// checked once a tick of a later event was read (ticks and books travel
/// apart) and while no tick was merged (a merged tick hides the quotes of
/// the events merged into it). Returns how many books met a tick of their
/// own event time.
async fn tops_meet_their_ticks(client: &mut Client, books: usize) -> usize {
    type Key = (u64, Option<u64>);
    // Per symbol, every tick's (ts, xt) and quote, in arrival (= event) order.
    let mut ticks: HashMap<String, Vec<(Key, Value)>> = HashMap::new();
    let mut tops = Vec::new();
    let mut merged_ticks = false;
    while tops.len() < books {
        let event = client.next_event().await;
        let sym = event["sym"].as_str().unwrap_or_default().to_string();
        let key = (
            event["ts"].as_u64().unwrap_or_default(),
            event["xt"].as_u64(),
        );
        if is_tick(&event) {
            merged_ticks |= event["n"].as_u64() > Some(0);
            let quote = json!([
                top(&event["bid"], &event["bsz"]),
                top(&event["ask"], &event["asz"])
            ]);
            ticks.entry(sym).or_default().push((key, quote));
        } else if is_book(&event) {
            check_shape(&event, usize::MAX);
            tops.push((sym, key, json!([event["bids"][0], event["asks"][0]])));
        }
    }
    let mut matched = 0;
    for (sym, key, top) in &tops {
        let Some(ticks) = ticks.get(sym) else {
            continue;
        };
        let all_in = ticks.last().is_some_and(|(last, _)| last > key);
        let own: Vec<&Value> = ticks
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, q)| q)
            .collect();
        if !all_in || own.is_empty() || merged_ticks {
            continue;
        }
        let before = ticks.iter().rev().find(|(k, _)| k < key).map(|(_, q)| q);
        let met = own.contains(&top);
        assert!(
            met || before == Some(top),
            "book {sym} {key:?} top {top} is none of {own:?} nor the quote before them {before:?}"
        );
        matched += usize::from(met);
    }
    matched
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_books_top_level_is_the_quote_of_the_tick_its_event_made() {
    let server = market("5").await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL","MSFT"],"snapshot":false}))
        .await;
    client
        .request(json!({"op":"subscribe","id":2,"channel":"book","symbols":["AAPL","MSFT"],"snapshot":false}))
        .await;
    let matched = tops_meet_their_ticks(&mut client, 300).await;
    assert!(matched >= 250, "{matched} of 300 books met their tick");
    server.shutdown_after(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lobster_replays_books_top_level_is_the_quote_of_its_ticks() {
    let path = lobster_path();
    let server = start_server(&["--replay", path.to_str().unwrap(), "--speed", "200"]).await;
    server
        .wait_for_stats("the symbol declared", |s| s["symbols"] == 1)
        .await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL"],"snapshot":false}))
        .await;
    client
        .request(
            json!({"op":"subscribe","id":2,"channel":"book","symbols":["AAPL"],"snapshot":false}),
        )
        .await;
    // Events that changed only deeper levels make a book and no tick.
    let matched = tops_meet_their_ticks(&mut client, 500).await;
    assert!(matched >= 100, "{matched} of 500 books met their tick");
    server.shutdown_after(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_book_reader_is_conflated_to_the_latest_with_n() {
    let server = start_server(&[
        "--rate",
        "400",
        "--symbols",
        "2",
        "--skew",
        "0",
        "--send-buffer",
        "8KiB",
        "--max-lag",
        "100ms",
    ])
    .await;
    let mut slow = Client::connect_small_buffer(&server.ws_url(), server.addr).await;
    slow.request(json!({"op":"subscribe","id":1,"channel":"book","symbols":["AAPL","MSFT"]}))
        .await;
    let (mut seqs, mut events, mut merged) = (SeqByName::new(), 0u64, 0u64);
    while events < 20 || merged == 0 {
        let frame = slow
            .read_frame()
            .await
            .expect("the slow client stays connected");
        for book in frame.iter().filter(|e| is_book(e)) {
            merged += check_seq(&mut seqs, book);
            events += 1;
        }
        // Deliberately slow reader (simulated work, not a wait).
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.shutdown_after(slow).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_book_unsubscribe_only_ticks_follow() {
    let server = market("10").await;
    let mut client = Client::connect(&server.ws_url()).await;
    client
        .request(json!({"op":"subscribe","id":1,"symbols":["AAPL"],"snapshot":false}))
        .await;
    client
        .request(json!({"op":"subscribe","id":2,"channel":"book","symbols":["AAPL"]}))
        .await;
    client.wait_event(is_book).await;
    let ack = client
        .request(json!({"op":"unsubscribe","id":3,"channel":"book","symbols":["AAPL"]}))
        .await;
    assert_eq!(
        (ack["op"].as_str(), ack["channel"].as_str()),
        (Some("unsubscribe"), Some("book"))
    );
    // Books written before the ack may still be read; none after it.
    let mut ticks = 0;
    while ticks < 200 {
        let event = client.next_event().await;
        assert!(!is_book(&event), "a book after the unsubscribe: {event}");
        ticks += u32::from(is_tick(&event));
    }
    server.shutdown_after(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_book_subscribes_are_refused_naming_what_is_wrong() {
    let server = market("5").await;
    let mut client = Client::connect(&server.ws_url()).await;
    for (request, code, says) in [
        (
            json!({"op":"subscribe","id":1,"channel":"book","symbols":["AAPL"],"depth":0}),
            "bad_request",
            "field depth",
        ),
        (
            json!({"op":"subscribe","id":2,"channel":"book","symbols":["AAPL"],"depth":51}),
            "bad_request",
            "field depth",
        ),
        (
            json!({"op":"subscribe","id":3,"channel":"book","symbols":["AAPL"],"depth":8}),
            "bad_request",
            "--depth 5",
        ),
        (
            json!({"op":"subscribe","id":4,"channel":"book","symbols":["*"]}),
            "bad_request",
            "named symbols",
        ),
        (
            json!({"op":"subscribe","id":5,"channel":"book","symbols":["NOPE"]}),
            "unknown_symbol",
            "NOPE",
        ),
        (
            json!({"op":"subscribe","id":6,"channel":"books","symbols":["AAPL"]}),
            "bad_request",
            "field channel",
        ),
    ] {
        let reply = client.request(request.clone()).await;
        assert_eq!(reply["ev"], "error", "{request}");
        assert_eq!(reply["code"], code, "{request}");
        assert!(
            reply["msg"].as_str().unwrap().contains(says),
            "{request}: {reply}"
        );
    }
    // The connection still serves.
    let ack = client
        .request(json!({"op":"subscribe","id":7,"channel":"book","symbols":["AAPL"],"depth":5}))
        .await;
    assert_eq!(ack["ev"], "ack");
    server.shutdown_after(client).await;
}
