//! The depth ladder beside the chart (`web/js/book.js`, `web/js/ladder.js`):
//! first the page's book model alone, then the ladder on a live server. It
//! shows the charted symbol's book, level for level the book event of the
//! seq it drew (as a reference client of the book channel received it),
//! best first, with the spread ask1 - bid1 and the last trade price
//! marked; choosing another symbol fills it with that symbol's book, and so
//! does a reconnect; a symbol without a book gets a note and the watchlist
//! keeps its rows; the page asks for the book at its display rate, the
//! server merges in between (`n`), and the ladder is drawn at most once per
//! animation frame and only when something changed; on a phone it stacks
//! under the chart. Part of `tests/dashboard.rs`.

use super::{open, open_with, wait_live};
use crate::browser::Browser;
use crate::common::TestServer;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// One side of a book: `[px, sz]`, best first.
type Levels = Vec<(f64, u64)>;
/// Book events by symbol and seq: their bids and asks.
type Books = HashMap<(String, u64), (Levels, Levels)>;

/// The ladder as drawn: `#ladder`'s symbol and seq, its rows by side and
/// level, the spread and last-trade cells, and the marked rows' prices.
#[derive(Debug, Deserialize)]
struct Ladder {
    sym: String,
    seq: u64,
    bids: Levels,
    asks: Levels,
    spread: String,
    last: String,
    marked: Vec<f64>,
}

const LADDER_JS: &str = "const t = document.querySelector('#ladder'); \
    const side = (s) => [...t.querySelectorAll(`tr[data-side=\"${s}\"][data-px]`)] \
      .sort((a, b) => a.dataset.i - b.dataset.i) \
      .map(r => [Number(r.dataset.px), Number(r.dataset.sz)]); \
    return { sym: t.dataset.sym || '', seq: Number(t.dataset.seq || 0), bids: side('b'), asks: side('a'), \
      spread: document.querySelector('#book-spread').textContent, \
      last: document.querySelector('#book-last').textContent, \
      marked: [...t.querySelectorAll('tr[data-last]')].map(r => Number(r.dataset.px)) };";

async fn ladder(b: &Browser) -> Ladder {
    serde_json::from_value(b.js(LADDER_JS).await).expect("the ladder")
}

/// Every book event a client of the book channel received, by symbol and
/// seq: a prompt reader (no `max_hz`), so it holds nearly every seq.
struct Reference {
    books: Arc<Mutex<Books>>,
    reader: JoinHandle<()>,
}

impl Reference {
    async fn subscribe(server: &TestServer, symbols: &[&str]) -> Reference {
        let mut client = crate::common::Client::connect(&server.ws_url()).await;
        let ack = client
            .request(json!({"op": "subscribe", "id": 1, "channel": "book", "symbols": symbols, "depth": 10}))
            .await;
        assert_eq!(ack["ev"], "ack", "the reference's book subscribe: {ack}");
        let books = Arc::new(Mutex::new(HashMap::new()));
        let held = books.clone();
        let mut keep = move |event: &Value| {
            if event["ev"] != "book" {
                return;
            }
            let sym = event["sym"].as_str().expect("sym").to_string();
            let seq = event["seq"].as_u64().expect("seq");
            let levels = |side: &str| -> Levels {
                serde_json::from_value(event[side].clone()).expect("[[px, sz], ...]")
            };
            let book = (levels("bids"), levels("asks"));
            held.lock().unwrap().insert((sym, seq), book);
        };
        for event in std::mem::take(&mut client.backlog) {
            keep(&event);
        }
        let reader = tokio::spawn(async move {
            while let Some(Ok(message)) = client.ws.next().await {
                if let Message::Text(text) = message {
                    let events: Vec<Value> = serde_json::from_str(&text).expect("a JSON frame");
                    events.iter().for_each(&mut keep);
                }
            }
        });
        Reference { books, reader }
    }

    fn book(&self, sym: &str, seq: u64) -> Option<(Levels, Levels)> {
        self.books
            .lock()
            .unwrap()
            .get(&(sym.to_string(), seq))
            .cloned()
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Waits until the ladder shows a book of `sym` whose seq the reference
/// holds, checks it against that event, and returns it.
async fn ladder_matching(b: &Browser, reference: &Reference, sym: &str, after_seq: u64) -> Ladder {
    let deadline = std::time::Instant::now() + crate::browser::PATIENCE;
    loop {
        let shown = ladder(b).await;
        if shown.sym == sym
            && shown.seq > after_seq
            && let Some((bids, asks)) = reference.book(sym, shown.seq)
        {
            assert_eq!(
                (&shown.bids, &shown.asks),
                (&bids, &asks),
                "the ladder of {sym} at seq {} is its book event",
                shown.seq
            );
            return shown;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no ladder of {sym} after seq {after_seq} that the reference holds; last: {shown:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Best first on both sides, not crossed, the spread cell ask1 - bid1 at
/// the ladder's decimals, at most one level marked and only the last
/// trade's price.
fn assert_well_drawn(l: &Ladder) {
    assert!(
        !l.bids.is_empty() && !l.asks.is_empty(),
        "both sides: {l:?}"
    );
    assert!(l.bids.len() <= 10 && l.asks.len() <= 10, "10 levels: {l:?}");
    assert!(
        l.bids.windows(2).all(|w| w[0].0 > w[1].0),
        "bids falling: {l:?}"
    );
    assert!(
        l.asks.windows(2).all(|w| w[0].0 < w[1].0),
        "asks rising: {l:?}"
    );
    let (bid1, ask1) = (l.bids[0].0, l.asks[0].0);
    assert!(bid1 < ask1, "not crossed: {l:?}");
    let decimals = if ask1 < 1.0 { 4 } else { 2 };
    assert_eq!(l.spread, format!("{:.*}", decimals, ask1 - bid1), "{l:?}");
    assert!(l.marked.len() <= 1, "one level marked at most: {l:?}");
    for px in &l.marked {
        assert_eq!(
            format!("{px:.*}", decimals),
            l.last,
            "the last trade's level: {l:?}"
        );
    }
}

/// The page's book model alone: what it asks the server for when it
/// follows a symbol, which events it keeps, and the seq check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_book_feed_subscribes_keeps_the_latest_book_and_counts_gaps() {
    let (server, b) = open("/?symbols=").await;
    let got = b
        .js_with(
            "const sent = []; const feed = new tickfeed.BookFeed((r) => { sent.push(r); return true; }); \
             feed.follow('A'); \
             for (const ev of arguments[0]) feed.record(ev); \
             feed.trade({ sym: 'A', px: 5.1 }); feed.trade({ sym: 'B', px: 9 }); \
             const held = feed.snapshot(); feed.follow('B'); \
             const after = feed.snapshot(); \
             const answers = [feed.answered({ ev: 'ack', id: 999 }), \
               feed.answered({ ev: 'error', id: sent[2].id, code: 'bad_request', msg: 'field depth' }), \
               feed.answered({ ev: 'error', id: sent[3].id, code: 'unknown_symbol', symbols: ['B'] })]; \
             return { held, after, answers, refusal: feed.snapshot().refusal, \
               spread: Math.round(held.asks[0][0] * 100 - held.bids[0][0] * 100), \
               sent: sent.map(({ id, ...r }) => r) };",
            vec![json!([
                {"ev": "book", "sym": "A", "seq": 5, "ts": 1, "bids": [[5.0, 100]], "asks": [[5.2, 300]], "snap": true, "n": 0},
                {"ev": "book", "sym": "A", "seq": 5, "ts": 1, "bids": [[1.0, 1]], "asks": [[2.0, 1]], "n": 0},
                {"ev": "book", "sym": "B", "seq": 9, "ts": 2, "bids": [[1.0, 1]], "asks": [[2.0, 1]], "n": 0},
                {"ev": "book", "sym": "A", "seq": 8, "ts": 3, "bids": [[5.0, 200]], "asks": [[5.1, 100]], "n": 2},
                {"ev": "book", "sym": "A", "seq": 10, "ts": 4, "bids": [[4.95, 200], [4.9, 700]], "asks": [[5.1, 100]], "n": 0},
            ])],
        )
        .await;
    let held = &got["held"];
    assert_eq!(
        (&held["seq"], &held["events"], &held["nSum"], &held["gaps"]),
        (&json!(10), &json!(3), &json!(2), &json!(1)),
        "the repeat and B's book left out, 10 after 8 with n 0 a gap: {held}"
    );
    assert_eq!(held["bids"], json!([[4.95, 200], [4.9, 700]]));
    assert_eq!((&held["last"], &got["spread"]), (&json!(5.1), &json!(15)));
    assert_eq!(
        got["sent"],
        json!([
            {"op": "subscribe", "channel": "book", "symbols": ["A"], "depth": 10, "max_hz": 10},
            {"op": "unsubscribe", "channel": "book", "symbols": ["A"]},
            {"op": "subscribe", "channel": "book", "symbols": ["B"], "depth": 10, "max_hz": 10},
            {"op": "subscribe", "channel": "book", "symbols": ["B"], "max_hz": 10},
        ]),
        "a depth the server refuses is asked again without one"
    );
    assert_eq!(
        (&got["answers"], &got["refusal"]),
        (&json!([false, true, true]), &json!("no such symbol")),
        "only its own replies are the feed's; a refusal is noted"
    );
    let after = &got["after"];
    assert_eq!(
        (
            &after["sym"],
            &after["seq"],
            &after["bids"],
            &after["subscribes"]
        ),
        (&json!("B"), &json!(0), &json!([]), &json!(2)),
        "B starts empty: {after}"
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ladder_shows_the_charted_book_and_refills_on_a_switch_and_a_reconnect() {
    let (server, b) = open_with(&["--rate", "500"], "/?symbols=AAPL,MSFT").await;
    let reference = Reference::subscribe(&server, &["AAPL", "MSFT"]).await;
    let shown = ladder_matching(&b, &reference, "AAPL", 0).await;
    assert_well_drawn(&shown);

    // The last trade: the page's last AAPL price, on its level when a
    // level holds it.
    let marked = b
        .wait_for(
            "the last AAPL trade marked on a level",
            "const x = tickfeed.book(), held = tickfeed.held('AAPL'); \
             const row = document.querySelector('#ladder tr[data-last]'); \
             return row && held && x.last === held.px \
               && row.cells[1].textContent === document.querySelector('#book-last').textContent ? x.last : null;",
        )
        .await;
    assert!(marked.as_f64().is_some(), "{marked}");
    assert_well_drawn(&ladder(&b).await);
    b.screenshot(&super::target_dir().join("dashboard-book.png"))
        .await;

    // Another symbol: the ladder fills with MSFT's book.
    b.client
        .find(fantoccini::Locator::Css(
            "#watchlist tr[data-sym=\"MSFT\"] td.sym",
        ))
        .await
        .expect("the MSFT row")
        .click()
        .await
        .expect("click MSFT");
    let msft = ladder_matching(&b, &reference, "MSFT", 0).await;
    assert_well_drawn(&msft);
    assert_eq!(
        b.js("return document.querySelector('#book-sym').textContent;")
            .await,
        "MSFT"
    );

    // A dropped connection subscribes again and the ladder moves on.
    let page = b.js("return tickfeed.book();").await;
    b.js("tickfeed.dropSocket(); return true;").await;
    wait_live(&b).await;
    b.wait_for(
        "the book subscribed again",
        &format!(
            "return tickfeed.book().subscribes > {};",
            page["subscribes"]
        ),
    )
    .await;
    let again = ladder_matching(&b, &reference, "MSFT", msft.seq).await;
    assert_well_drawn(&again);
    let page = b.js("return tickfeed.book();").await;
    assert_eq!(page["gaps"], 0, "every book event kept seq and n: {page}");

    // A symbol without a book: the ladder says so; the watchlist stays.
    b.js("tickfeed.select('NOSUCH'); return true;").await;
    b.wait_for(
        "the ladder's note",
        "return document.querySelector('#book-note').textContent === 'no such symbol' \
         && document.querySelectorAll('#ladder tr[data-px]').length === 0;",
    )
    .await;
    assert_eq!(super::row_symbols(&b).await, ["AAPL", "MSFT"]);
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

/// On the feed's busiest symbol the book changes far more often than the
/// ladder's display rate: the page subscribes with that `max_hz`, the
/// server merges the rest into `n` (and the seqs still add up), and the
/// ladder is drawn no more often than the page paints, never twice for
/// one change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ladder_updates_at_its_display_rate_not_at_the_feeds() {
    let (server, b) = open("/?symbols=AAPL").await;
    let start = b
        .wait_for(
            "AAPL's book on the ladder",
            "const x = tickfeed.book(); return x.events > 0 && x.draws > 0 ? x : null;",
        )
        .await;
    assert_eq!(start["maxHz"], 10, "the ladder's display rate: {start}");
    let at = |v: &Value, k: &str| v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"));
    let end = b
        .wait_for(
            "30 more book events",
            &format!(
                "const x = tickfeed.book(); return x.events >= {} ? x : null;",
                at(&start, "events") + 30
            ),
        )
        .await;
    assert!(
        at(&end, "nSum") > at(&start, "nSum"),
        "book updates merged at the display rate: {start} then {end}"
    );
    assert_eq!(end["gaps"], 0, "seq and n add up: {end}");
    let draws = at(&end, "draws") - at(&start, "draws");
    let frames = at(&end, "frames") - at(&start, "frames");
    let changes = at(&end, "generation") - at(&start, "generation");
    assert!(
        draws <= frames && draws <= changes + 1,
        "drawn {draws} times in {frames} frames for {changes} changes"
    );
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

/// At a phone's width the ladder stacks under the chart, full width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_ladder_stacks_under_the_chart() {
    let (server, b) = open("/?symbols=AAPL").await;
    super::phone_width(&b).await;
    b.wait_for(
        "AAPL's book on the ladder",
        "return document.querySelectorAll('#ladder tr[data-px]').length > 0;",
    )
    .await;
    let boxes = b
        .js("const r = (s) => document.querySelector(s).getBoundingClientRect(); \
             const c = r('.chartp'), k = r('#book'); \
             return { below: k.top >= c.bottom, width: k.width, chart: c.width, page: document.documentElement.scrollWidth, inner: innerWidth };")
        .await;
    assert_eq!(boxes["below"], true, "under the chart: {boxes}");
    assert_eq!(
        boxes["width"], boxes["chart"],
        "as wide as the chart: {boxes}"
    );
    assert!(
        boxes["page"].as_f64() <= boxes["inner"].as_f64(),
        "nothing wider than the screen: {boxes}"
    );
    let shot = super::target_dir().join("dashboard-book-phone.png");
    b.screenshot(&shot).await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
