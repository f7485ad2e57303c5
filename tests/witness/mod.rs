//! A witness: a well-behaved client that subscribes to `*` and reads
//! everything, so that a test can show a hostile or stalled client on the
//! same server hurt nobody else: the witness keeps receiving every seq of
//! every symbol with `n == 0`, and is never disconnected.
//!
//! Needs `mod common;` beside `mod witness;` in the test crate.
#![allow(dead_code)]

use crate::common::{Client, DEADLINE, is_tick};
use serde_json::{Value, json};
use tickfeed::sequence::{SeqByName, Verdict};
use tokio::sync::watch;

/// What the witness has seen so far.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Live ticks received.
    pub events: u64,
    /// Sum of `n` over them: updates the witness did not get on their own.
    pub merged: u64,
    /// Broken invariants (seq backwards, `B.seq - A.seq - 1 != B.n`).
    pub violations: Vec<String>,
    /// Set when the connection ended.
    pub closed: bool,
}

pub struct Witness {
    tally: watch::Receiver<Tally>,
    reader: tokio::task::JoinHandle<()>,
}

impl Witness {
    /// Connects to `url`, subscribes to every symbol without snapshots and
    /// starts reading in the background.
    pub async fn join(url: &str) -> Witness {
        let mut client = Client::connect(url).await;
        let ack = client
            .request(json!({"op":"subscribe","id":1,"symbols":["*"],"snapshot":false}))
            .await;
        assert_eq!(ack["ev"], "ack", "witness subscribed: {ack}");
        let (tx, tally) = watch::channel(Tally::default());
        let reader = tokio::spawn(read_all(client, tx));
        Witness { tally, reader }
    }

    pub fn tally(&self) -> Tally {
        self.tally.borrow().clone()
    }

    /// Waits for `more` live ticks beyond those seen so far, then asserts
    /// that every one so far came in order with `n == 0`.
    pub async fn sees_every_seq(&mut self, more: u64) -> Tally {
        let target = self.tally.borrow().events + more;
        let waited = tokio::time::timeout(
            DEADLINE,
            self.tally.wait_for(|t| t.events >= target || t.closed),
        )
        .await
        .map(|seen| seen.is_ok());
        let tally = self.tally();
        assert!(
            waited.is_ok(),
            "witness saw {} of {target} events in time",
            tally.events
        );
        assert!(!tally.closed, "the witness was disconnected");
        assert!(
            tally.violations.is_empty(),
            "conflation invariant broken: {:?}",
            tally.violations
        );
        assert_eq!(
            tally.merged, 0,
            "the witness missed updates (sum of n) after {} events",
            tally.events
        );
        tally
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_all(mut client: Client, tally: watch::Sender<Tally>) {
    let mut last = SeqByName::new();
    while let Some(frame) = client.read_frame_until_closed().await {
        tally.send_modify(|t| {
            for tick in frame.iter().filter(|e| is_tick(e)) {
                check(&mut last, tick, t);
            }
        });
    }
    tally.send_modify(|t| t.closed = true);
}

fn check(last: &mut SeqByName, tick: &Value, tally: &mut Tally) {
    let n = tick["n"].as_u64().unwrap_or_default();
    tally.events += 1;
    tally.merged += n;
    let verdict = last.observe_json(tick);
    if verdict != Verdict::Ok {
        tally.violations.push(format!("{verdict:?}: {tick}"));
    }
}

impl Client {
    /// Like `read_frame`, but waits as long as it takes: a witness idles
    /// while nothing trades.
    async fn read_frame_until_closed(&mut self) -> Option<Vec<Value>> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        loop {
            match self.ws.next().await?.ok()? {
                Message::Text(text) => return serde_json::from_str(&text).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }
}
