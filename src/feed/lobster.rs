//! LOBSTER message files (lobsterdata.com), read in their native form: no
//! header, six columns `time,type,order id,size,price,direction`, time in
//! decimal seconds after midnight US Eastern on the date in the file name,
//! prices in dollars x 10,000.
//!
//! Executions (types 4 and 5) and cross trades (6) are trades. The best
//! bid and ask come from a [`Book`] rebuilt from the order events, so a row
//! yields a tick only when it trades or changes the touch (price or size).
//! Read with a depth, a row that changes only deeper levels of the top
//! `depth` yields a book update without a tick. While reading, the book is
//! checked: the bid must stay below the ask, and a trade price must lie at
//! or inside the touch. Violations are counted, not fatal, because the file
//! starts with orders this book never saw.
//!
//! When the orderbook file lies beside the message file (`orderbook.rs`),
//! it is read in step and is the book of record: the touch, the levels and
//! the checks come from its rows, and the rebuilt book only counts events
//! on orders placed before the file. A row count that differs between the
//! two files is an error that ends the file.

use super::book::{Book, Levels, Price, Side, Touch};
use super::orderbook::OrderbookFile;
use super::reader::{CsvFile, Row, TimeOrder};
use super::time::{eastern_midnight, parse_seconds};
use super::{BadRow, FeedError, Update};
use crate::protocol::{Quote, is_valid_symbol};
use std::path::Path;
use std::sync::Arc;

/// LOBSTER prices are dollars times this.
const PRICE_SCALE: f64 = 10_000.0;
const FIELDS: usize = 6;

/// What a LOBSTER file name says: `TICKER_DATE_START_END_message_LEVELS.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileName {
    pub ticker: Arc<str>,
    pub date: String,
    /// Midnight US Eastern of `date`, ns since the epoch.
    pub midnight: u64,
}

impl FileName {
    pub fn parse(path: &Path) -> Option<FileName> {
        let name = path.file_name()?.to_str()?.strip_suffix(".csv")?;
        let parts: Vec<&str> = name.split('_').collect();
        let [ticker @ .., date, start, end, "message", levels] = parts.as_slice() else {
            return None;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let ticker = ticker.join("_");
        if !(digits(start) && digits(end) && digits(levels) && is_valid_symbol(&ticker)) {
            return None;
        }
        Some(FileName {
            ticker: Arc::from(ticker),
            date: date.to_string(),
            midnight: eastern_midnight(date)?,
        })
    }
}

/// How well the rebuilt book held up, for `feed check` and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct BookStats {
    /// Cancels, deletes and executions of orders placed before the file.
    pub unknown_orders: u64,
    /// Events after which the bid was at or above the ask.
    pub crossed_quotes: u64,
    /// Executions priced outside the bid and ask just before them.
    pub trades_outside_touch: u64,
    /// Trading-halt rows (type 7).
    pub halts: u64,
    /// The book of record came from the orderbook file beside the messages.
    pub orderbook_file: bool,
    /// Levels per side read out (0: ticks alone).
    pub depth: usize,
    /// Events that changed the top `depth` levels.
    pub book_updates: u64,
}

/// One message row, parsed.
struct Message {
    time: u64,
    kind: u8,
    id: u64,
    size: u64,
    price: Price,
    side: Side,
}

pub struct Reader {
    pub(crate) csv: CsvFile,
    /// The book of record, when its file lies beside the messages.
    orderbook: Option<Box<OrderbookFile>>,
    order: TimeOrder,
    name: FileName,
    book: Book,
    /// The touch after the last event.
    touch: Touch,
    /// The top levels last yielded, and the buffer the next are read into.
    shown: Levels,
    next: Levels,
    last_trade: Option<(Price, u64)>,
    vol: u64,
    stats: BookStats,
}

impl Reader {
    /// Reads the messages in `csv` (the file at `path`) and, when it lies
    /// beside them, its orderbook file; yields the top `depth` levels when
    /// they change (0: ticks alone).
    pub(crate) fn open(
        csv: CsvFile,
        path: &Path,
        name: &FileName,
        depth: usize,
    ) -> Result<Reader, FeedError> {
        let orderbook = OrderbookFile::beside(path)?;
        Ok(Reader {
            csv,
            stats: BookStats {
                orderbook_file: orderbook.is_some(),
                depth,
                ..BookStats::default()
            },
            orderbook,
            order: TimeOrder::default(),
            name: name.clone(),
            book: Book::default(),
            touch: Touch::default(),
            shown: Levels::default(),
            next: Levels::default(),
            last_trade: None,
            vol: 0,
        })
    }

    pub fn stats(&self) -> BookStats {
        BookStats {
            unknown_orders: self.book.unknown_orders,
            ..self.stats
        }
    }

    /// The next row that trades, moves the touch or changes the top levels.
    pub fn next_update(&mut self) -> Option<Result<Update, FeedError>> {
        loop {
            if let Err(e) = self.advance()? {
                return Some(Err(e));
            }
            match self.event() {
                Ok(Some(update)) => return Some(Ok(update)),
                Ok(None) => continue,
                Err(bad) => return Some(Err(FeedError::BadRow(bad))),
            }
        }
    }

    /// Reads the next message row and its orderbook row; `None` when both
    /// files end together.
    fn advance(&mut self) -> Option<Result<(), FeedError>> {
        let message = self.csv.advance();
        let Some(orderbook) = &mut self.orderbook else {
            return message;
        };
        let recorded = orderbook.advance();
        let rows = orderbook.rows() - u64::from(recorded.is_some());
        match (message, recorded) {
            (None, None) => None,
            (Some(_), None) => Some(Err(FeedError::OrderbookShort {
                orderbook: orderbook.path().to_string(),
                rows,
                messages: self.csv.path.to_string(),
                line: self.csv.row().line,
            })),
            (None, Some(_)) => Some(Err(FeedError::OrderbookLong {
                orderbook: orderbook.path().to_string(),
                rows,
                messages: self.csv.path.to_string(),
            })),
            (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
            (Some(Ok(())), Some(Ok(()))) => Some(Ok(())),
        }
    }

    fn event(&mut self) -> Result<Option<Update>, BadRow> {
        let row = self.csv.row();
        let message = parse(&row)?;
        let xt = self.name.midnight + message.time;
        self.order.accept(xt, &row, 0)?;
        let line = row.line;
        if matches!(message.kind, 4 | 5) && !self.touch.admits(message.price) {
            self.stats.trades_outside_touch += 1;
        }
        let traded = self.apply(&message);
        let touch = self.read_book()?;
        if touch.crossed() {
            self.stats.crossed_quotes += 1;
        }
        let book = self.stats.depth > 0 && self.next != self.shown;
        let tick = traded || touch != self.touch;
        self.touch = touch;
        if !tick && !book {
            return Ok(None);
        }
        let book = book.then(|| {
            std::mem::swap(&mut self.shown, &mut self.next);
            self.stats.book_updates += 1;
            self.shown.to_depth(PRICE_SCALE)
        });
        let dollars = |p: Price| p as f64 / PRICE_SCALE;
        Ok(Some(Update {
            line,
            xt,
            sym: self.name.ticker.clone(),
            quote: Quote {
                px: self.last_trade.map(|(p, _)| dollars(p)),
                sz: self.last_trade.map(|(_, s)| s),
                bid: touch.bid.map(|(p, _)| dollars(p)),
                ask: touch.ask.map(|(p, _)| dollars(p)),
                bsz: touch.bid.map(|(_, s)| s),
                asz: touch.ask.map(|(_, s)| s),
                vol: self.vol,
            },
            traded,
            tick,
            book,
        }))
    }

    /// The book after the current event, from the orderbook row when there
    /// is one, else from the rebuilt book: its touch, and its top levels
    /// into `self.next` (when reading with a depth).
    fn read_book(&mut self) -> Result<Touch, BadRow> {
        let depth = self.stats.depth;
        match &mut self.orderbook {
            Some(orderbook) => {
                orderbook.parse(depth)?;
                if depth > 0 {
                    self.next.clone_from(&orderbook.levels);
                }
                Ok(orderbook.levels.touch())
            }
            None => {
                if depth > 0 {
                    self.book.top(depth, &mut self.next);
                }
                Ok(self.book.touch())
            }
        }
    }

    /// Applies one message to the rebuilt book; true when it is a trade.
    fn apply(&mut self, m: &Message) -> bool {
        match m.kind {
            1 => self.book.add(m.id, m.side, m.price, m.size),
            2 => self.book.reduce(m.id, m.size),
            3 => self.book.delete(m.id),
            4 | 5 => {
                if m.kind == 4 {
                    self.book.reduce(m.id, m.size);
                }
                return self.trade(m);
            }
            6 => return self.trade(m),
            _ => self.stats.halts += 1,
        }
        false
    }

    fn trade(&mut self, m: &Message) -> bool {
        self.last_trade = Some((m.price, m.size));
        self.vol += m.size;
        true
    }
}

fn parse(row: &Row) -> Result<Message, BadRow> {
    if row.record.len() < FIELDS {
        let what = format!(
            "expected 6 fields (time,type,order id,size,price,direction), found {}",
            row.record.len()
        );
        return Err(row.bad(row.record.len().saturating_sub(1), what));
    }
    let field = |i: usize, name: &str, expected: &str, ok: &dyn Fn(&str) -> Option<i128>| {
        let text = row.text(i);
        ok(text).ok_or_else(|| {
            row.bad(
                i,
                format!("column {name}: expected {expected}, got {text:?}"),
            )
        })
    };
    let time = row.text(0);
    let time = parse_seconds(time).ok_or_else(|| {
        row.bad(
            0,
            format!("column time: expected seconds after midnight like 34200.125, got {time:?}"),
        )
    })?;
    let number = |t: &str| t.parse::<i128>().ok();
    let kind = field(1, "type", "an event type from 1 to 7", &|t| {
        number(t).filter(|k| (1..=7).contains(k))
    })?;
    let id = field(2, "order id", "a whole number", &|t| {
        number(t).filter(|v| *v >= 0 && *v <= i128::from(u64::MAX))
    })?;
    let size = field(3, "size", "a whole number of shares", &|t| {
        number(t).filter(|v| *v >= 0 && *v <= i128::from(u64::MAX))
    })?;
    let price = field(4, "price", "dollars x 10000 as a whole number", &|t| {
        number(t).filter(|v| v.unsigned_abs() <= i64::MAX as u128)
    })?;
    let side = match field(5, "direction", "1 (buy) or -1 (sell)", &|t| {
        number(t).filter(|d| d.abs() == 1)
    })? {
        1 => Side::Bid,
        _ => Side::Ask,
    };
    Ok(Message {
        time,
        kind: kind as u8,
        id: id as u64,
        size: size as u64,
        price: price as Price,
        side,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{Format, reader};

    /// A tiny hand-written file: two resting orders, a deep order, a
    /// partial execution, a hidden execution and an event on an order
    /// placed before the file.
    const MESSAGES: &str = "34200.5,1,1,100,1000000,1\r\n34200.5,1,2,50,1000500,-1\r\n34201,1,3,10,990000,1\r\n34201.25,4,2,20,1000500,-1\r\n34202,5,0,7,1000200,1\r\n34203,3,77,100,1001000,-1\r\n";

    fn updates(text: &str) -> (Vec<Result<Update, FeedError>>, BookStats) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir
            .path()
            .join("TEST_2012-06-21_34200000_37800000_message_5.csv");
        std::fs::write(&path, text).unwrap();
        let format = Format::Lobster(FileName::parse(&path).unwrap());
        let mut reader = reader::open(&path, &format).unwrap();
        let items = reader.by_ref().collect();
        (items, reader.book_stats().unwrap())
    }

    #[test]
    fn file_names_carry_ticker_and_eastern_date() {
        let name = FileName::parse(Path::new(
            "x/AAPL_2012-06-21_34200000_37800000_message_50.csv",
        ))
        .unwrap();
        assert_eq!(
            (&*name.ticker, name.date.as_str(), name.midnight),
            ("AAPL", "2012-06-21", 1_340_251_200_000_000_000)
        );
        assert!(
            FileName::parse(Path::new(
                "AAPL_2012-06-21_34200000_37800000_orderbook_50.csv"
            ))
            .is_none()
        );
        assert!(FileName::parse(Path::new("aapl.csv")).is_none());
    }

    #[test]
    fn trades_and_touch_changes_become_updates_and_deep_orders_do_not() {
        let (items, stats) = updates(MESSAGES);
        let u: Vec<Update> = items.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            u.iter().map(|u| u.line).collect::<Vec<_>>(),
            [1, 2, 4, 5],
            "line 3 is deep, line 6 unknown"
        );
        assert_eq!(
            (
                u[1].quote.bid,
                u[1].quote.ask,
                u[1].quote.bsz,
                u[1].quote.asz
            ),
            (Some(100.0), Some(100.05), Some(100), Some(50))
        );
        assert_eq!(u[1].xt, 1_340_251_200_000_000_000 + 34_200_500_000_000);
        assert_eq!(
            (
                u[2].quote.px,
                u[2].quote.sz,
                u[2].quote.asz,
                u[2].quote.vol,
                u[2].traded
            ),
            (Some(100.05), Some(20), Some(30), 20, true)
        );
        assert_eq!(
            (u[3].quote.px, u[3].quote.sz, u[3].quote.vol),
            (Some(100.02), Some(7), 27)
        );
        assert_eq!(
            stats,
            BookStats {
                unknown_orders: 1,
                ..BookStats::default()
            }
        );
    }

    #[test]
    fn bad_message_rows_name_the_field() {
        let (items, _) = updates(
            "34200.5,1,1,100,1000000,2\r\n34200.5,9,1,100,1000000,1\r\nnoon,1,1,1,1,1\r\n34201,1,1\r\n",
        );
        let what: Vec<String> = items
            .iter()
            .map(|i| i.as_ref().unwrap_err().to_string())
            .map(|m| m.split_once(".csv:").unwrap().1.to_string())
            .collect();
        assert_eq!(
            what[0],
            "1:25: column direction: expected 1 (buy) or -1 (sell), got \"2\""
        );
        assert_eq!(
            what[1],
            "2:9: column type: expected an event type from 1 to 7, got \"9\""
        );
        assert_eq!(
            what[2],
            "3:1: column time: expected seconds after midnight like 34200.125, got \"noon\""
        );
        assert_eq!(
            what[3],
            "4:9: expected 6 fields (time,type,order id,size,price,direction), found 3"
        );
    }
}
