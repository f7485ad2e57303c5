//! The generic CSV format, read and written. A header row names the
//! columns, in any order: `ts` and `sym` are required; `px`, `sz`, `bid`,
//! `ask`, `bsz`, `asz` and `vol` are optional; other columns are ignored.
//!
//! Each row is one event of one symbol. A row with `px` or `sz` is a trade;
//! empty cells keep the symbol's previous value (so a quote row leaves the
//! last trade in place, as on the wire). `vol` is cumulative; without it,
//! each trade adds its `sz`. `ts` is epoch s/ms/us/ns (told by size) or
//! RFC 3339. `docs/replay.md` is the user-facing description.

use super::reader::{CsvFile, Row, TimeOrder};
use super::time::parse_ts;
use super::{BadRow, FeedError, Update};
use crate::protocol::{Quote, is_valid_symbol};
use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

/// The header [`Writer`] writes, in the order it writes.
pub const HEADER: &str = "ts,sym,px,sz,bid,ask,bsz,asz,vol";

/// Where each known column is in the file.
#[derive(Debug, Default)]
struct Columns {
    ts: usize,
    sym: usize,
    px: Option<usize>,
    sz: Option<usize>,
    bid: Option<usize>,
    ask: Option<usize>,
    bsz: Option<usize>,
    asz: Option<usize>,
    vol: Option<usize>,
}

impl Columns {
    fn find(header: &csv::StringRecord, path: &str) -> Result<Columns, FeedError> {
        let names: Vec<String> = header
            .iter()
            .map(|f| f.trim_ascii().to_ascii_lowercase())
            .collect();
        let at = |name: &str| names.iter().position(|n| n == name);
        let required = |column: &'static str| {
            at(column).ok_or_else(|| FeedError::MissingColumn {
                path: path.to_string(),
                column,
                found: names.join(", "),
            })
        };
        Ok(Columns {
            ts: required("ts")?,
            sym: required("sym")?,
            px: at("px"),
            sz: at("sz"),
            bid: at("bid"),
            ask: at("ask"),
            bsz: at("bsz"),
            asz: at("asz"),
            vol: at("vol"),
        })
    }
}

/// What a symbol looks like after its latest row.
#[derive(Debug)]
struct State {
    sym: Arc<str>,
    quote: Quote,
}

/// Every symbol's state, found by name with one hash lookup.
#[derive(Debug, Default)]
struct Symbols {
    index: HashMap<Arc<str>, usize>,
    states: Vec<State>,
}

/// One row's cells, parsed and checked before any state changes.
struct Cells<'a> {
    xt: u64,
    sym: &'a str,
    px: Option<f64>,
    sz: Option<u64>,
    quote: [Option<f64>; 2],
    sizes: [Option<u64>; 2],
    vol: Option<u64>,
}

pub struct Reader {
    pub(crate) csv: CsvFile,
    columns: Columns,
    order: TimeOrder,
    symbols: Symbols,
}

impl Reader {
    pub(crate) fn new(mut csv: CsvFile) -> Result<Reader, FeedError> {
        let header = csv.header()?;
        let columns = Columns::find(&header, &csv.path)?;
        Ok(Reader {
            csv,
            columns,
            order: TimeOrder::default(),
            symbols: Symbols::default(),
        })
    }

    pub fn next_update(&mut self) -> Option<Result<Update, FeedError>> {
        if let Err(e) = self.csv.advance()? {
            return Some(Err(e));
        }
        Some(self.update().map_err(FeedError::BadRow))
    }

    /// Parses and checks the current row, then applies it.
    fn update(&mut self) -> Result<Update, BadRow> {
        let row = self.csv.row();
        let cells = cells(&row, &self.columns)?;
        self.order.accept(cells.xt, &row, self.columns.ts)?;
        let (line, xt, traded) = (row.line, cells.xt, cells.px.is_some() || cells.sz.is_some());
        let state = apply(&mut self.symbols, cells);
        Ok(Update {
            line,
            xt,
            sym: state.sym.clone(),
            quote: state.quote,
            traded,
            tick: true,
            book: None,
        })
    }
}

/// Reads every known cell of `row`, naming the first bad one.
fn cells<'a>(row: &'a Row, columns: &Columns) -> Result<Cells<'a>, BadRow> {
    let xt = parse_ts(row.text(columns.ts))
        .map_err(|e| row.bad(columns.ts, format!("column ts: {e}")))?;
    let sym = row.text(columns.sym);
    if !is_valid_symbol(sym) {
        let what =
            format!("column sym: {sym:?} is not a symbol (1 to 32 of A-Z a-z 0-9 . - _ / : ^ =)");
        return Err(row.bad(columns.sym, what));
    }
    let price = |column: Option<usize>, name: &str| optional(row, column, name, parse_price);
    let size = |column: Option<usize>, name: &str| optional(row, column, name, parse_size);
    Ok(Cells {
        xt,
        sym,
        px: price(columns.px, "px")?,
        sz: size(columns.sz, "sz")?,
        quote: [price(columns.bid, "bid")?, price(columns.ask, "ask")?],
        sizes: [size(columns.bsz, "bsz")?, size(columns.asz, "asz")?],
        vol: size(columns.vol, "vol")?,
    })
}

/// An optional column's value: `None` when the column or the cell is empty.
fn optional<T>(
    row: &Row,
    column: Option<usize>,
    name: &str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<Option<T>, BadRow> {
    let Some(i) = column else { return Ok(None) };
    match row.text(i) {
        "" => Ok(None),
        text => parse(text)
            .map(Some)
            .map_err(|e| row.bad(i, format!("column {name}: {e}"))),
    }
}

fn parse_price(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(format!("expected a number, got {text:?}")),
    }
}

fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<u64>()
        .map_err(|_| format!("expected a whole number of shares, got {text:?}"))
}

/// Applies a checked row to its symbol's state.
fn apply<'m>(symbols: &'m mut Symbols, cells: Cells) -> &'m State {
    let index = match symbols.index.get(cells.sym) {
        Some(index) => *index,
        None => {
            let sym: Arc<str> = Arc::from(cells.sym);
            symbols.index.insert(sym.clone(), symbols.states.len());
            symbols.states.push(State {
                sym,
                quote: Quote::default(),
            });
            symbols.states.len() - 1
        }
    };
    let state = &mut symbols.states[index];
    let q = &mut state.quote;
    q.px = cells.px.or(q.px);
    q.sz = cells.sz.or(q.sz);
    q.bid = cells.quote[0].or(q.bid);
    q.ask = cells.quote[1].or(q.ask);
    q.bsz = cells.sizes[0].or(q.bsz);
    q.asz = cells.sizes[1].or(q.asz);
    q.vol = match cells.vol {
        Some(vol) => vol,
        None if cells.px.is_some() || cells.sz.is_some() => q.vol + cells.sz.unwrap_or(0),
        None => q.vol,
    };
    state
}

/// Writes updates as generic CSV: `ts` in epoch nanoseconds (exact), `px`
/// and `sz` only on trades, so reading the file back gives the same
/// updates.
pub struct Writer<W: Write> {
    out: W,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W) -> std::io::Result<Writer<W>> {
        writeln!(out, "{HEADER}")?;
        Ok(Writer { out })
    }

    pub fn write(&mut self, u: &Update) -> std::io::Result<()> {
        let q = &u.quote;
        write!(self.out, "{},{},", u.xt, u.sym)?;
        write_cell(&mut self.out, q.px.filter(|_| u.traded))?;
        write_cell(&mut self.out, q.sz.filter(|_| u.traded))?;
        write_cell(&mut self.out, q.bid)?;
        write_cell(&mut self.out, q.ask)?;
        write_cell(&mut self.out, q.bsz)?;
        write_cell(&mut self.out, q.asz)?;
        writeln!(self.out, "{}", q.vol)
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// One optional cell and its trailing comma; `Display` of `f64` is the
/// shortest text that reads back to the same number.
fn write_cell(out: &mut impl Write, value: Option<impl std::fmt::Display>) -> std::io::Result<()> {
    match value {
        Some(v) => write!(out, "{v},"),
        None => out.write_all(b","),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::{Format, reader};

    fn read(text: &str) -> Vec<Result<Update, FeedError>> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feed.csv");
        std::fs::write(&path, text).unwrap();
        reader::open(&path, &Format::Generic).unwrap().collect()
    }

    fn bad(item: &Result<Update, FeedError>) -> String {
        match item {
            Err(FeedError::BadRow(b)) => format!("{}:{}: {}", b.line, b.column, b.what),
            other => panic!("expected a bad row, got {other:?}"),
        }
    }

    #[test]
    fn columns_are_found_by_name_in_any_order_and_unknown_ones_ignored() {
        let rows = read("venue,SZ,Sym,ts,px\nX,100,AAPL,1700000000,189.5\n");
        let u = rows[0].as_ref().unwrap();
        assert_eq!(
            (&*u.sym, u.xt, u.quote.px, u.quote.sz, u.quote.vol, u.traded),
            (
                "AAPL",
                1_700_000_000_000_000_000,
                Some(189.5),
                Some(100),
                100,
                true
            )
        );
    }

    #[test]
    fn quote_rows_keep_the_last_trade_and_trades_add_to_volume() {
        let rows = read("ts,sym,px,sz,bid,ask\n1,A,10,5,,\n2,A,,,9.9,10.1\n3,A,10.1,7,,\n");
        let rows: Vec<Update> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            (
                rows[1].quote.px,
                rows[1].quote.bid,
                rows[1].quote.vol,
                rows[1].traded
            ),
            (Some(10.0), Some(9.9), 5, false)
        );
        assert_eq!(
            (rows[2].quote.px, rows[2].quote.ask, rows[2].quote.vol),
            (Some(10.1), Some(10.1), 12)
        );
    }

    #[test]
    fn bad_cells_are_named_by_line_column_and_field() {
        let rows =
            read("ts,sym,px,sz\n1,A,abc,1\n2,bad sym,1,1\nsoon,A,1,1\n3,A,1,-4\n4,A,NaN,1\n");
        assert_eq!(
            bad(&rows[0]),
            "2:5: column px: expected a number, got \"abc\""
        );
        assert!(bad(&rows[1]).starts_with("3:3: column sym: \"bad sym\" is not a symbol"));
        assert!(bad(&rows[2]).starts_with("4:1: column ts: expected epoch s/ms/us/ns"));
        assert_eq!(
            bad(&rows[3]),
            "5:7: column sz: expected a whole number of shares, got \"-4\""
        );
        assert_eq!(
            bad(&rows[4]),
            "6:5: column px: expected a number, got \"NaN\""
        );
    }

    #[test]
    fn a_row_before_its_predecessor_is_out_of_order_and_changes_nothing() {
        let rows = read("ts,sym,px,sz\n5,A,1,1\n4,A,2,2\n6,A,,\n");
        let FeedError::BadRow(b) = rows[1].as_ref().unwrap_err() else {
            panic!()
        };
        assert!(b.out_of_order && b.line == 3 && b.column == 1, "{b:?}");
        assert!(
            b.what.starts_with(
                "out of time order: 1970-01-01T00:00:04Z is before 1970-01-01T00:00:05Z on line 2"
            ),
            "{}",
            b.what
        );
        assert_eq!(
            rows[2].as_ref().unwrap().quote.px,
            Some(1.0),
            "the bad row left no trace"
        );
    }

    #[test]
    fn a_header_without_sym_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nosym.csv");
        std::fs::write(&path, "ts,price\n1,2\n").unwrap();
        let msg = reader::open(&path, &Format::Generic)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.ends_with(":1: the header has no sym column; the generic CSV needs ts and sym (found: ts, price)"), "{msg}");
    }

    #[test]
    fn written_rows_read_back_to_the_same_updates() {
        let text = "ts,sym,px,sz,bid,ask,bsz,asz\r\n1700000000,A,10.25,5,10.2,10.3,100,200\r\n1700000000.5,A,,,10.21,10.3,100,200\r\n1700000000.5,B,0.0001,1,,,,\r\n";
        let first: Vec<Update> = read(text).into_iter().map(Result::unwrap).collect();
        let mut writer = Writer::new(Vec::new()).unwrap();
        first.iter().for_each(|u| writer.write(u).unwrap());
        let second: Vec<Update> = read(&String::from_utf8(writer.into_inner()).unwrap())
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let strip = |u: &Update| Update {
            line: 0,
            ..u.clone()
        };
        assert_eq!(
            first.iter().map(strip).collect::<Vec<_>>(),
            second.iter().map(strip).collect::<Vec<_>>()
        );
    }
}
