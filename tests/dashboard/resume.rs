//! The dashboard across reconnects: a dropped socket resumes where it
//! stopped (the badge says "resumed · 0 missed", no snapshot, every seq
//! accounted for across the two connections); one kept away longer than
//! the server's history says how many updates it missed and counts them in
//! `n`; and a restarted server is a new session (the badge says so, snapshots are taken although their seqs
//! are lower than the ones held, and the time & sales tape starts over
//! from the new server's history). Part of `tests/dashboard.rs`.

use super::timesales::{assert_rows_match_history, assert_rows_well_formed, tape_rows};
use super::{open_with, restart_at, take_down, wait_live, wait_received};
use crate::browser::Browser;
use crate::common::{TestServer, poll};
use serde_json::{Value, json};

async fn sym(b: &Browser, sym: &str) -> Value {
    b.js_with("return tickfeed.sym(arguments[0]);", vec![json!(sym)])
        .await
}

fn field(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

/// Checks that every update of a symbol between two readings of
/// `tickfeed.sym` was received or counted in `n` (the invariant across
/// whatever happened in between), and returns how many were counted in `n`.
fn assert_every_update_accounted(before: &Value, after: &Value) -> u64 {
    let events = field(after, "count") - field(before, "count");
    let merged = field(after, "nSum") - field(before, "nSum");
    assert_eq!(
        events + merged,
        field(after, "seq") - field(before, "seq"),
        "every update received or counted in n: {before} then {after}"
    );
    merged
}

/// The page's own check (web/js/resume.js) found no seq jump that `n`
/// did not count and dropped no tick as a repeat.
async fn assert_no_gaps_or_repeats(b: &Browser) {
    let stats = b.js("return tickfeed.stats();").await;
    assert_eq!(stats["gaps"], 0, "the invariant held throughout: {stats}");
    assert_eq!(stats["dups"], 0, "no seq came twice: {stats}");
}

/// The server's latest seq of `sym`.
async fn server_seq(server: &TestServer, sym: &str) -> u64 {
    let latest = server.get_json("/api/symbols").await;
    let tick = latest
        .as_array()
        .expect("an array of ticks")
        .iter()
        .find(|t| t["sym"] == sym)
        .unwrap_or_else(|| panic!("{sym} in /api/symbols"));
    field(tick, "seq")
}

/// Snapshots the page has taken of AAPL and MSFT.
/// Snapshots the page took: ticks of both symbols and the ladder's books
/// (the server counts both in `snapshots_out`).
async fn snapshots_taken(b: &Browser) -> u64 {
    let n = b
        .js("return tickfeed.sym('AAPL').snaps + tickfeed.sym('MSFT').snaps + tickfeed.book().snaps;")
        .await;
    n.as_u64().expect("a count")
}

/// Waits for the badge's note to say something, and returns it.
async fn wait_note(b: &Browser, what: &str) -> String {
    let note = b
        .wait_for(
            what,
            "const n = document.querySelector('#status .note'); \
             return !n.hidden && n.textContent !== 'resuming…' && n.textContent;",
        )
        .await;
    note.as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_without_snapshots_and_says_zero_missed() {
    // History for minutes of AAPL, so the reconnect's gap is surely all there.
    let (server, b) = open_with(
        &["--rate", "500", "--history", "100000"],
        "/?symbols=AAPL,MSFT",
    )
    .await;
    wait_received(&b, "AAPL", 20).await;
    wait_received(&b, "MSFT", 5).await;
    let hidden = b
        .js("return document.querySelector('#status .note').hidden;")
        .await;
    assert_eq!(hidden, json!(true), "a first connection has nothing to say");
    let before = sym(&b, "AAPL").await;

    b.js("tickfeed.dropSocket(); return true;").await;
    b.wait_for(
        "a second connection",
        "return tickfeed.stats().connects === 2;",
    )
    .await;
    wait_live(&b).await;
    assert_eq!(wait_note(&b, "the resume note").await, "resumed · 0 missed");
    let resume = b.js("return tickfeed.resume();").await;
    assert_eq!(resume["kind"], "same", "{resume}");
    assert_eq!(resume["resumed"], 2, "AAPL and MSFT resumed: {resume}");
    assert_eq!(resume["snapshots"], 0, "{resume}");

    wait_received(&b, "AAPL", field(&before, "count") + 20).await;
    let after = sym(&b, "AAPL").await;
    assert_eq!(after["snaps"], before["snaps"], "no snapshot on a resume");
    assert_every_update_accounted(&before, &after);
    assert_no_gaps_or_repeats(&b).await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_away_longer_than_the_history_says_how_many_it_missed_and_counts_them_in_n() {
    // 64 updates of history: under half a second of AAPL at 1,000 updates/s.
    let (server, b) = open_with(
        &["--rate", "1000", "--history", "64"],
        "/?symbols=AAPL,MSFT",
    )
    .await;
    wait_received(&b, "AAPL", 20).await;
    wait_received(&b, "MSFT", 5).await;
    b.js("tickfeed.dropSocket(true); return true;").await;
    b.wait_for(
        "the page offline",
        "return tickfeed.stats().state === 'offline';",
    )
    .await;
    let before = [sym(&b, "AAPL").await, sym(&b, "MSFT").await];
    // Away until AAPL has moved on by far more than the server keeps.
    let held = field(&before[0], "seq");
    poll("AAPL 200 updates further on the server", || async {
        (server_seq(&server, "AAPL").await > held + 200).then_some(())
    })
    .await;
    b.js("tickfeed.reconnect(); return true;").await;
    wait_live(&b).await;
    let note = wait_note(&b, "the resume note").await;
    let resume = b.js("return tickfeed.resume();").await;
    let missed = field(&resume, "missed");
    assert!(missed > 136, "AAPL alone lost 200 - 64 updates: {resume}");
    assert_eq!(note, format!("resumed · {} missed", fmt_thousands(missed)));
    assert_eq!(resume["resumed"], 2, "{resume}");

    wait_received(&b, "AAPL", field(&before[0], "count") + 5).await;
    wait_received(&b, "MSFT", field(&before[1], "count") + 1).await;
    let mut counted = 0;
    for (sym_name, before) in ["AAPL", "MSFT"].iter().zip(&before) {
        let after = sym(&b, sym_name).await;
        assert_eq!(after["snaps"], before["snaps"], "no snapshot on a resume");
        counted += assert_every_update_accounted(before, &after);
    }
    assert!(
        counted >= missed,
        "the {missed} updates missed are counted in n ({counted} in all)"
    );
    assert_no_gaps_or_repeats(&b).await;
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}

/// 1234567 as "1,234,567", as the badge writes it.
fn fmt_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_a_new_session_with_snapshots_and_a_new_tape() {
    let (server, b) = open_with(&[], "/?symbols=AAPL,MSFT").await;
    // The old seqs climb high (AAPL makes hundreds a second at the default
    // rate); the new server's, at 100 updates/s, stay far below them.
    b.wait_for(
        "AAPL past seq 1000",
        "return tickfeed.sym('AAPL').seq >= 1000;",
    )
    .await;
    b.wait_for(
        "AAPL trades on the tape",
        "return tickfeed.tape().trades.length > 0;",
    )
    .await;
    let addr = take_down(server, &b).await;
    let old = sym(&b, "AAPL").await;
    let old_snaps = snapshots_taken(&b).await;

    let server = restart_at(addr, &["--rate", "100"]).await;
    wait_live(&b).await;
    assert_eq!(
        wait_note(&b, "the new-session note").await,
        "new session · snapshots"
    );
    b.wait_for(
        "both acks, each with a null (no resume)",
        "return tickfeed.resume().snapshots === 2;",
    )
    .await;
    let resume = b.js("return tickfeed.resume();").await;
    assert_eq!(resume["kind"], "new", "{resume}");
    assert_eq!(resume["resumed"], 0, "{resume}");

    // Every snapshot the new server sent is taken (one per symbol that had
    // a value when the page subscribed), and the live ticks after it,
    // though their seqs are lower than the ones held.
    let taken = snapshots_taken(&b).await - old_snaps;
    server
        .wait_for_stats(&format!("{taken} snapshots sent, as many as taken"), |s| {
            s["snapshots_out"] == taken
        })
        .await;
    wait_received(&b, "AAPL", field(&old, "count") + 10).await;
    let now = sym(&b, "AAPL").await;
    assert!(
        field(&now, "seq") < field(&old, "seq"),
        "the new server's seqs: {now} after {old}"
    );
    assert_no_gaps_or_repeats(&b).await;

    // The tape starts over from the new server's history.
    b.wait_for(
        "AAPL trades from the new server",
        "const t = tickfeed.tape(); return t.state === 'live' && t.drawn \
         && document.querySelectorAll('#tape tbody tr').length >= 2;",
    )
    .await;
    let rows = tape_rows(&b).await;
    assert_rows_well_formed(&rows);
    let compared = assert_rows_match_history(&server, "AAPL", &rows).await;
    assert!(compared > 0, "rows compared with the new server's history");
    b.assert_no_page_errors().await;
    b.release().await;
    server.shutdown().await;
}
