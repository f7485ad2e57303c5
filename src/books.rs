//! Every symbol's latest book: the last-value cache of the `book` channel.
//!
//! Written by one owner, the router (`router/book.rs`), which numbers each
//! change of a symbol's top `--depth` levels and stores it here; read
//! lock-free by sessions (the book of a marked symbol) and by `/api/book`.
//! Like the symbol table it has a fixed capacity (`--max-symbols`), so
//! readers never race a reallocation.
//!
//! Each stored book is encoded at most once per encoding and depth, on
//! first use, and the bytes are shared by every client that asked for that
//! depth ([`EncodedBook`]); a client's merge count is written after them
//! (`FrameBuilder::push_with_n`), as for ticks.

use crate::codec::{Encoding, FrameBuilder, encode_event};
use crate::protocol::{BookEvent, BookUpdate, Event};
use crate::symbols::SymbolId;
use arc_swap::{ArcSwapOption, Guard};
use bytes::Bytes;
use std::sync::{Arc, OnceLock};

/// One numbered book, with its encodings made lazily, once per encoding
/// and depth, and shared.
#[derive(Debug)]
pub struct EncodedBook {
    /// At the store's depth, with `n == 0` and no `snap` (both per client).
    pub book: BookEvent,
    /// By encoding, then by depth - 1: made at the first client of that
    /// encoding, so a book no one reads costs nothing more.
    encoded: [OnceLock<Box<[OnceLock<Bytes>]>>; 2],
}

impl EncodedBook {
    pub fn new(book: BookEvent) -> Self {
        debug_assert!(book.n == 0 && book.snap.is_none());
        Self {
            book,
            encoded: Default::default(),
        }
    }

    pub fn seq(&self) -> u64 {
        self.book.seq
    }

    /// The book cut to `depth` levels per side (`n == 0`, no `snap`).
    pub fn at_depth(&self, depth: usize) -> BookEvent {
        BookEvent {
            depth: self.book.depth.truncated(depth),
            ..self.book.clone()
        }
    }

    /// The shared encoding of this book at `depth` levels per side.
    pub fn bytes(&self, encoding: Encoding, depth: usize) -> &Bytes {
        // A cut at or past the levels the book has is the whole book: one
        // encoding serves every such depth.
        let depth = depth.clamp(1, self.book.depth.levels().max(1));
        let by_depth = self.encoded[encoding as usize].get_or_init(|| {
            (0..self.book.depth.levels().max(1))
                .map(|_| OnceLock::new())
                .collect()
        });
        by_depth[depth - 1]
            .get_or_init(|| Bytes::from(encode_event(encoding, &Event::Book(self.at_depth(depth)))))
    }

    /// Appends this book at `depth` to `frame` with merge count `n`.
    pub fn write_to(&self, frame: &mut FrameBuilder, depth: usize, n: u32) {
        let bytes = self.bytes(frame.encoding(), depth);
        frame.push_with_n(bytes, n);
    }
}

/// The book `update` makes after `previous` (its symbol's latest), cut to
/// `depth` levels per side and numbered `previous.seq + 1` (or 1); `None`
/// when those levels are `previous`'s, which is then no change. The one
/// numbering rule, used by the router and by a NATS source's publisher
/// (which numbers books before it publishes them).
pub fn number(previous: Option<&BookEvent>, update: BookUpdate, depth: usize) -> Option<BookEvent> {
    let depth = update.depth.truncated(depth);
    let seq = match previous {
        Some(previous) if previous.depth == depth => return None,
        Some(previous) => previous.seq + 1,
        None => 1,
    };
    Some(BookEvent {
        sym: update.sym,
        seq,
        ts: update.ts,
        xt: update.xt,
        depth,
        snap: None,
        n: 0,
    })
}

/// The latest book of every symbol, shared as `Arc<BookStore>`.
#[derive(Debug)]
pub struct BookStore {
    cells: Box<[ArcSwapOption<EncodedBook>]>,
    /// Levels per side kept (`--depth`): the most a client may ask for.
    depth: usize,
}

impl BookStore {
    /// A store for symbol ids below `capacity`, keeping `depth` levels.
    pub fn new(capacity: usize, depth: usize) -> Self {
        Self {
            cells: (0..capacity).map(|_| ArcSwapOption::empty()).collect(),
            depth,
        }
    }

    /// Levels per side kept (`--depth`).
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The latest book of `id`, if it has had one.
    pub fn latest(&self, id: SymbolId) -> Option<Arc<EncodedBook>> {
        self.cells.get(id as usize)?.load_full()
    }

    /// The latest book without touching its reference count (hot path).
    pub fn load(&self, id: SymbolId) -> Guard<Option<Arc<EncodedBook>>> {
        self.cells[id as usize].load()
    }

    /// Stores the latest book of `id` (router only).
    pub(crate) fn store(&self, id: SymbolId, book: Arc<EncodedBook>) {
        self.cells[id as usize].store(Some(book));
    }

    /// Forgets the latest book of `id` (router only): it is of an old seq
    /// space, or an edge no longer receives it.
    pub(crate) fn clear(&self, id: SymbolId) {
        self.cells[id as usize].store(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Depth;

    fn book() -> EncodedBook {
        EncodedBook::new(BookEvent {
            sym: "AAPL".into(),
            seq: 7,
            ts: 1_764_000_000_123_456_789,
            xt: None,
            depth: Depth {
                bids: vec![(189.24, 300), (189.23, 500), (189.2, 100)],
                asks: vec![(189.26, 200), (189.27, 400)],
            },
            snap: None,
            n: 0,
        })
    }

    #[test]
    fn a_book_is_encoded_once_per_depth_and_cut_to_it() {
        let book = book();
        let json = book.bytes(Encoding::Json, 1);
        assert_eq!(
            std::str::from_utf8(json).unwrap(),
            r#"{"ev":"book","sym":"AAPL","seq":7,"ts":1764000000123456789,"bids":[[189.24,300]],"asks":[[189.26,200]],"n":0}"#
        );
        assert!(std::ptr::eq(json, book.bytes(Encoding::Json, 1)), "shared");
        // Past the levels the book has, every depth is the whole book.
        assert!(std::ptr::eq(
            book.bytes(Encoding::Msgpack, 3),
            book.bytes(Encoding::Msgpack, 50)
        ));
    }

    #[test]
    fn a_merge_count_is_written_after_the_shared_bytes_in_both_encodings() {
        let book = book();
        for encoding in Encoding::ALL {
            for n in [0u32, 1, 300, u32::MAX] {
                let mut frame = FrameBuilder::new(encoding);
                book.write_to(&mut frame, 2, n);
                let expected = BookEvent {
                    n,
                    ..book.at_depth(2)
                };
                let bytes = frame.finish();
                let events: Vec<Event> = match encoding {
                    Encoding::Json => serde_json::from_slice(&bytes).unwrap(),
                    Encoding::Msgpack => rmp_serde::from_slice(&bytes).unwrap(),
                };
                assert_eq!(events, [Event::Book(expected)], "{encoding:?} n={n}");
            }
        }
    }

    /// A simulated market's AAPL book at depth 10, as `/api/book` served
    /// it: its size on the wire (`docs/protocol.md`, "Book").
    #[test]
    fn a_depth_10_book_event_takes_360_bytes_of_json_and_311_of_messagepack() {
        let bids = [
            (230.02, 2300),
            (230.01, 2800),
            (230.0, 2400),
            (229.99, 600),
            (229.98, 3100),
            (229.97, 2200),
            (229.96, 2900),
            (229.95, 9400),
            (229.94, 4000),
            (229.93, 800),
        ];
        let asks = [
            (230.03, 1800),
            (230.04, 400),
            (230.05, 1400),
            (230.06, 4800),
            (230.07, 2700),
            (230.08, 3000),
            (230.09, 6000),
            (230.1, 2200),
            (230.11, 3400),
            (230.12, 200),
        ];
        let book = EncodedBook::new(BookEvent {
            sym: "AAPL".into(),
            seq: 1566,
            ts: 1_796_200_925_140_856_217,
            xt: None,
            depth: Depth {
                bids: bids.to_vec(),
                asks: asks.to_vec(),
            },
            snap: None,
            n: 0,
        });
        let json = book.bytes(Encoding::Json, 10).len();
        let msgpack = book.bytes(Encoding::Msgpack, 10).len();
        assert_eq!((json, msgpack), (360, 311));
    }
}
