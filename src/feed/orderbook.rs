//! LOBSTER orderbook files: the book of record beside a message file. The
//! name is the message file's with `message` replaced by `orderbook`; row i
//! is the book after message i. No header; per level four columns `ask
//! price, ask size, bid price, bid size`, best level first, prices in
//! dollars x 10,000. A side with fewer levels than the file's width fills
//! the rest with empty levels: price -9999999999 (bids) or 9999999999
//! (asks) and size 0, which are not levels.
//!
//! `lobster.rs` reads this file in step with the message file and takes
//! the touch and the top levels from it; a row is checked as it is parsed
//! (numbers, positive sizes, each side in price order).

use super::book::{Level, Levels, Price};
use super::reader::{CsvFile, Row};
use super::{BadRow, FeedError};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The price LOBSTER writes in an empty level (negative on the bid side).
const EMPTY_PRICE: Price = 9_999_999_999;
/// Columns per level: ask price, ask size, bid price, bid size.
const FIELDS_PER_LEVEL: usize = 4;

/// An orderbook file being read in step with its message file.
pub struct OrderbookFile {
    csv: CsvFile,
    /// The current row's levels, after [`OrderbookFile::parse`].
    pub levels: Levels,
}

/// The orderbook file's name for a message file's, when it has one.
pub fn path_beside(message: &Path) -> Option<PathBuf> {
    let name = message.file_name()?.to_str()?;
    let at = name.rfind("_message_")?;
    let orderbook = format!(
        "{}_orderbook_{}",
        &name[..at],
        &name[at + "_message_".len()..]
    );
    Some(message.with_file_name(orderbook))
}

impl OrderbookFile {
    /// Opens the orderbook file beside `message`; `None` when there is none.
    /// Boxed: most message files have none, and their readers stay small.
    pub(crate) fn beside(message: &Path) -> Result<Option<Box<OrderbookFile>>, FeedError> {
        let Some(path) = path_beside(message).filter(|p| p.is_file()) else {
            return Ok(None);
        };
        Ok(Some(Box::new(OrderbookFile {
            csv: CsvFile::open(&path, false)?,
            levels: Levels::default(),
        })))
    }

    pub fn path(&self) -> &Arc<str> {
        &self.csv.path
    }

    /// Data rows read so far.
    pub fn rows(&self) -> u64 {
        self.csv.rows
    }

    /// Reads the next row; `None` at the end of the file.
    pub(crate) fn advance(&mut self) -> Option<Result<(), FeedError>> {
        self.csv.advance()
    }

    /// Parses the current row into `self.levels`, keeping at most `depth`
    /// levels per side (the touch is always kept).
    pub(crate) fn parse(&mut self, depth: usize) -> Result<(), BadRow> {
        self.levels.clear();
        let row = self.csv.row();
        let fields = row.record.len();
        if fields == 0 || !fields.is_multiple_of(FIELDS_PER_LEVEL) {
            return Err(row.bad(
                fields.saturating_sub(1),
                format!(
                    "expected 4 fields per level (ask price, ask size, bid price, bid size), found {fields}"
                ),
            ));
        }
        let keep = depth.max(1);
        let (mut asks, mut bids) = (SideOrder::default(), SideOrder::default());
        for level in 0..fields / FIELDS_PER_LEVEL {
            let at = level * FIELDS_PER_LEVEL;
            let ask = side_level(&row, at, level, "ask")?;
            asks.follow(&row, ask, at, level, "ask", |new, last| new > last)?;
            let bid = side_level(&row, at + 2, level, "bid")?;
            bids.follow(&row, bid, at + 2, level, "bid", |new, last| new < last)?;
            for (side, level) in [(&mut self.levels.asks, ask), (&mut self.levels.bids, bid)] {
                if side.len() < keep {
                    side.extend(level);
                }
            }
        }
        Ok(())
    }
}

/// What one side of a row has shown so far, to check its order.
#[derive(Default)]
struct SideOrder {
    last: Option<Price>,
    /// An empty level was seen: every level after it must be empty too.
    ended: bool,
}

impl SideOrder {
    /// `next` (field `at`; `None` when empty) may follow: no level after an
    /// empty one, and each `worse(price, last)` than the level before.
    fn follow(
        &mut self,
        row: &Row,
        next: Option<Level>,
        at: usize,
        level: usize,
        side: &str,
        worse: impl Fn(Price, Price) -> bool,
    ) -> Result<(), BadRow> {
        let Some((price, _)) = next else {
            self.ended = true;
            return Ok(());
        };
        let what = match self.last {
            _ if self.ended => "has an empty level before it",
            Some(last) if !worse(price, last) => "is not behind the level before it",
            _ => {
                self.last = Some(price);
                return Ok(());
            }
        };
        Err(row.bad(
            at,
            format!("column {side} price {}: {price} {what}", level + 1),
        ))
    }
}

/// One side of one level at field `at`: `None` when it is empty.
fn side_level(row: &Row, at: usize, level: usize, side: &str) -> Result<Option<Level>, BadRow> {
    let number = |i: usize, what: &str| {
        let text = row.text(i);
        text.parse::<i64>().map_err(|_| {
            row.bad(
                i,
                format!(
                    "column {side} {what} {}: expected a whole number, got {text:?}",
                    level + 1
                ),
            )
        })
    };
    let (price, size) = (number(at, "price")?, number(at + 1, "size")?);
    if price.abs() == EMPTY_PRICE {
        return match size {
            0 => Ok(None),
            _ => Err(row.bad(
                at + 1,
                format!(
                    "column {side} size {}: an empty level ({price}) has size 0, got {size}",
                    level + 1
                ),
            )),
        };
    }
    if price <= 0 || size <= 0 {
        let (i, what, value) = match price <= 0 {
            true => (at, "price", price),
            false => (at + 1, "size", size),
        };
        return Err(row.bad(
            i,
            format!(
                "column {side} {what} {}: expected a positive number or an empty level, got {value}",
                level + 1
            ),
        ));
    }
    Ok(Some((price, size as u64)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_orderbook_file_is_the_message_files_name_with_orderbook() {
        assert_eq!(
            path_beside(Path::new(
                "feeds/AAPL_2012-06-21_34200000_37800000_message_50.csv"
            )),
            Some(PathBuf::from(
                "feeds/AAPL_2012-06-21_34200000_37800000_orderbook_50.csv"
            ))
        );
        assert_eq!(path_beside(Path::new("feeds/aapl.csv")), None);
    }
}
