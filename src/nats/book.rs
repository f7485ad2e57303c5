//! Books through NATS: the bytes of a numbered book on
//! `tickfeed.book.<SYMBOL>`, and where an edge's `/api/book` reads the
//! latest book of a symbol it does not serve books of.
//!
//! A book is a compact MessagePack array led by a format version:
//! `[1, seq, ts, xt, bids, asks]`, each side an array of `[px, sz]`, best
//! first; `xt` nil when absent. The symbol is the subject (`subject.rs`);
//! `n` and `snap` are per client and never cross the broker. The source's
//! publisher numbers books before it publishes them, so every node serves
//! the same `seq` for the same levels; the stream (`store`) keeps the last
//! book of each symbol for edges' snapshots and for a restarted publisher
//! to continue from.

use super::payload::PayloadError;
use super::store::{LastValues, StoreError};
use crate::protocol::{BookEvent, Depth, Level};
use bytes::Bytes;
use std::sync::Arc;

/// Version of the book layout; a reader refuses others rather than guess.
const FORMAT: u8 = 1;

/// Encodes a numbered book (without its symbol, which is the subject).
pub fn encode_book(book: &BookEvent) -> Bytes {
    let wire = (
        FORMAT,
        book.seq,
        book.ts,
        book.xt,
        &book.depth.bids,
        &book.depth.asks,
    );
    Bytes::from(rmp_serde::to_vec(&wire).expect("a book always encodes"))
}

/// Decodes a numbered book of `sym`.
pub fn decode_book(sym: Arc<str>, bytes: &[u8]) -> Result<BookEvent, PayloadError> {
    let (format, seq, ts, xt, bids, asks): (u8, u64, u64, Option<u64>, Vec<Level>, Vec<Level>) =
        rmp_serde::from_slice(bytes)?;
    if format != FORMAT {
        return Err(PayloadError::BookFormat(format));
    }
    Ok(BookEvent {
        sym,
        seq,
        ts,
        xt,
        depth: Depth { bids, asks },
        snap: None,
        n: 0,
    })
}

/// An edge's reader of the latest stored books, for `/api/book` of the
/// symbols whose books it does not receive.
#[derive(Clone)]
pub struct StoredBooks {
    store: LastValues,
}

impl StoredBooks {
    pub(super) fn new(store: LastValues) -> Self {
        Self { store }
    }

    /// The latest book of `symbol` the source published, if any.
    pub async fn latest(&self, symbol: &Arc<str>) -> Result<Option<BookEvent>, StoreError> {
        self.store.last_book(symbol).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn book() -> BookEvent {
        BookEvent {
            sym: "AAPL".into(),
            seq: 1566,
            ts: 1_796_200_925_140_856_217,
            xt: Some(1_700_000_000_000_000_001),
            depth: Depth {
                bids: vec![(230.02, 2300), (230.01, 2800)],
                asks: vec![(230.03, 1800)],
            },
            snap: None,
            n: 0,
        }
    }

    #[test]
    fn a_book_crosses_the_broker_unchanged_and_compact() {
        let book = book();
        let bytes = encode_book(&book);
        assert_eq!(decode_book("AAPL".into(), &bytes).unwrap(), book);
        // Three levels: 9 bytes each (f64 and array header) plus sizes.
        assert!(bytes.len() < 70, "{} bytes", bytes.len());
        let empty = BookEvent {
            xt: None,
            depth: Depth::default(),
            ..book
        };
        assert_eq!(
            decode_book("AAPL".into(), &encode_book(&empty)).unwrap(),
            empty
        );
    }

    /// The simulated market's AAPL book at depth 10 (`books.rs` pins its
    /// client event at 311 bytes of MessagePack): its size on the broker.
    #[test]
    fn a_depth_10_book_takes_277_bytes_on_the_broker() {
        let side = |first: f64, step: f64| {
            (0..10)
                .map(|i| (first + step * i as f64, 100 * (i + 1) as u64 + 1200))
                .collect()
        };
        let book = BookEvent {
            xt: None,
            depth: Depth {
                bids: side(230.02, -0.01),
                asks: side(230.03, 0.01),
            },
            ..book()
        };
        let bytes = encode_book(&book).len();
        println!("a depth-10 book: {bytes} bytes on the broker");
        // 20 levels of 13 bytes (array header, f64, u16 size) and a
        // header: the client's event less its names and the symbol.
        assert_eq!(bytes, 277);
    }

    #[test]
    fn garbage_and_future_formats_are_refused_with_a_reason() {
        assert!(decode_book("AAPL".into(), b"junk").is_err());
        let newer =
            rmp_serde::to_vec(&(2u8, 1u64, 2u64, None::<u64>, [(1.0, 1u64)], [(2.0, 1u64)]))
                .unwrap();
        let error = decode_book("AAPL".into(), &newer).unwrap_err().to_string();
        assert!(error.contains("book format 2"), "{error}");
    }
}
