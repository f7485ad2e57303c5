//! Books through NATS edges (`docs/scaling.md`, "Books through edges"):
//! the source's publisher numbers books before it publishes them, so a
//! client of a brand-new edge gets the source's books, same `seq`, same
//! levels, same `ts`: its snapshot is the last book the broker stored, its
//! live books keep the conflation invariant, and the edge's `/api/book`
//! answers as the source's, for symbols it receives books of and for those
//! it does not (read from the broker). The edge subscribes to a symbol's
//! book subject only while a local client holds its books.

use super::cluster::{Broker, Node};
use super::common::{Client, Scratch, check_seq, poll};
use serde_json::{Value, json};
use std::collections::HashMap;
use tickfeed::sequence::SeqByName;

fn is_book(event: &Value) -> bool {
    event["ev"] == "book"
}

/// What every node must agree on about a book: all but `snap` and `n`,
/// which are per client.
fn identity(book: &Value) -> Value {
    let fields = ["sym", "seq", "ts", "xt", "bids", "asks"];
    fields
        .iter()
        .map(|f| (f.to_string(), book.get(*f).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// The books a client of the source node got, by symbol and seq.
#[derive(Default)]
struct Reference {
    by_seq: HashMap<(String, u64), Value>,
    newest: HashMap<String, u64>,
}

impl Reference {
    /// Reads `client`'s books until one of `sym` at or past `seq` came;
    /// then the source's book `seq` of `sym`, unless conflation merged it
    /// for this client.
    async fn book(&mut self, client: &mut Client, sym: &str, seq: u64) -> Option<&Value> {
        while self.newest.get(sym).copied().unwrap_or(0) < seq {
            let book = client.wait_event(is_book).await;
            let (name, at) = (
                book["sym"].as_str().unwrap().to_string(),
                book["seq"].as_u64().unwrap(),
            );
            self.newest.insert(name.clone(), at);
            self.by_seq.insert((name, at), book);
        }
        self.by_seq.get(&(sym.to_string(), seq))
    }
}

/// The edge's NATS subjects for books, from its `/api/stats`.
async fn book_subjects(edge: &Node) -> Vec<String> {
    let stats = edge.get_json("/api/stats").await;
    stats["source"]["subjects"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|s| s.starts_with("tickfeed.book."))
        .map(String::from)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_edges_books_are_the_sources_with_the_same_seqs() {
    let scratch = Scratch::new("book");
    let broker = Broker::start(&scratch).await;
    let market = ["--rate", "400", "--symbols", "2", "--skew", "0"];
    let source = Node::start(&scratch, "source", "source", &broker.url(), &market).await;
    poll("AAPL's and MSFT's first books on the source", || async {
        let aapl = source.get_json("/api/book?sym=AAPL").await;
        let msft = source.get_json("/api/book?sym=MSFT").await;
        (aapl["ev"] == "book" && msft["ev"] == "book").then_some(())
    })
    .await;
    let mut on_source = Client::connect(&source.ws_url()).await;
    let ack = on_source
        .request(json!({"op":"subscribe","id":1,"channel":"book","symbols":["AAPL","MSFT"],"snapshot":false}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    let mut reference = Reference::default();

    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;
    assert!(
        book_subjects(&edge).await.is_empty(),
        "no book subscriber yet"
    );

    // /api/book of a symbol whose books the edge does not receive: the
    // last book the source stored.
    let stored = edge.get_json("/api/book?sym=MSFT").await;
    assert_eq!(stored["ev"], "book", "{stored}");
    let seq = stored["seq"].as_u64().unwrap();
    if let Some(book) = reference.book(&mut on_source, "MSFT", seq).await {
        assert_eq!(identity(&stored), identity(book), "edge /api/book of MSFT");
    }

    let mut client = Client::connect(&edge.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"channel":"book","symbols":["AAPL"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    let snapshot = client.wait_event(is_book).await;
    assert_eq!(snapshot["snap"], true, "{snapshot}");
    let mut seqs = SeqByName::new();
    check_seq(&mut seqs, &snapshot);
    let mut compared = 0;
    let seq = snapshot["seq"].as_u64().unwrap();
    if let Some(book) = reference.book(&mut on_source, "AAPL", seq).await {
        assert_eq!(identity(&snapshot), identity(book), "the edge's snapshot");
        compared += 1;
    }
    assert_eq!(
        book_subjects(&edge).await,
        ["tickfeed.book.AAPL"],
        "a book subscriber: the edge receives AAPL's books"
    );

    for _ in 0..200 {
        let book = client.wait_event(is_book).await;
        assert_eq!(book["sym"], "AAPL");
        assert!(book.get("snap").is_none(), "one snapshot: {book}");
        check_seq(&mut seqs, &book);
        let seq = book["seq"].as_u64().unwrap();
        if let Some(source_book) = reference.book(&mut on_source, "AAPL", seq).await {
            assert_eq!(identity(&book), identity(source_book), "book seq {seq}");
            compared += 1;
        }
    }
    assert!(
        compared >= 100,
        "only {compared} of 201 edge books were also the source client's (conflation merged the rest)"
    );

    // /api/book of a symbol the edge receives books of: its own latest.
    let served = edge.get_json("/api/book?sym=AAPL").await;
    let seq = served["seq"].as_u64().unwrap();
    if let Some(book) = reference.book(&mut on_source, "AAPL", seq).await {
        assert_eq!(identity(&served), identity(book), "edge /api/book of AAPL");
    }

    // The last book subscriber leaves: the edge stops receiving them.
    let ack = client
        .request(json!({"op":"unsubscribe","id":2,"channel":"book","symbols":["AAPL"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    poll("the edge unsubscribes from AAPL's books", || async {
        book_subjects(&edge).await.is_empty().then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_source_continues_each_books_seq_and_an_edges_client_sees_no_reset() {
    let scratch = Scratch::new("book-restart");
    let broker = Broker::start(&scratch).await;
    let market = ["--rate", "400", "--symbols", "2", "--skew", "0"];
    let first = Node::start(&scratch, "source1", "source", &broker.url(), &market).await;
    poll("AAPL's first book on the source", || async {
        (first.get_json("/api/book?sym=AAPL").await["ev"] == "book").then_some(())
    })
    .await;
    let edge = Node::start(&scratch, "edge", "edge", &broker.url(), &[]).await;
    let mut client = Client::connect(&edge.ws_url()).await;
    let ack = client
        .request(json!({"op":"subscribe","id":1,"channel":"book","symbols":["AAPL"]}))
        .await;
    assert_eq!(ack["ev"], "ack", "{ack}");
    let mut seqs = SeqByName::new();
    let mut before = 0;
    for _ in 0..20 {
        let book = client.wait_event(is_book).await;
        check_seq(&mut seqs, &book);
        before = book["seq"].as_u64().unwrap();
    }
    first.kill().await;
    let second = Node::start(&scratch, "source2", "source", &broker.url(), &market).await;
    let restarted = poll("AAPL's first book on the restarted source", || async {
        let book = second.get_json("/api/book?sym=AAPL").await;
        book["seq"].as_u64()
    })
    .await;
    // The edge's client stays connected (same epoch) and its books go on
    // from where they were: seqs never go back (check_seq), and the
    // restarted source numbers after the stored book.
    let mut last = 0;
    for _ in 0..50 {
        let book = client.wait_event(is_book).await;
        check_seq(&mut seqs, &book);
        last = book["seq"].as_u64().unwrap();
    }
    assert!(
        last >= restarted,
        "{last} follows the restarted source's {restarted}"
    );
    assert!(
        restarted > before,
        "seq {restarted} continues the first source's, past the {before} the edge had"
    );
}
