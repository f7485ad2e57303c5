//! Reading a feed file as a stream of [`Update`]s, whatever its format,
//! and the CSV plumbing the format readers share: one reused record
//! buffer, `file:line:column` locations, and the time-order check.

use super::{BadRow, FeedError, Format, Update, generic, lobster};
use csv::StringRecord;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// CSV read buffer per file: large enough that reading is a few big
/// system calls per megabyte, small enough to hold many files open.
const READ_BUFFER: usize = 256 * 1024;

/// A feed file being read, yielding updates in file order. Bad rows come
/// out as `Err(FeedError::BadRow)` and reading goes on after them; any
/// other error ends the stream.
pub struct FeedReader {
    inner: Inner,
    failed: bool,
}

enum Inner {
    Generic(generic::Reader),
    Lobster(lobster::Reader),
}

/// Opens `path` in `format` (see `detect` to find it), for its ticks
/// alone: no book levels are read out.
pub fn open(path: &Path, format: &Format) -> Result<FeedReader, FeedError> {
    open_with_books(path, format, 0)
}

/// Opens `path` in `format`, also yielding the top `depth` levels of a
/// book whenever they change (formats with a book: LOBSTER). Depth 0
/// yields ticks alone.
pub fn open_with_books(
    path: &Path,
    format: &Format,
    depth: usize,
) -> Result<FeedReader, FeedError> {
    let csv = CsvFile::open(path, matches!(format, Format::Generic))?;
    let inner = match format {
        Format::Generic => Inner::Generic(generic::Reader::new(csv)?),
        Format::Lobster(name) => Inner::Lobster(lobster::Reader::open(csv, path, name, depth)?),
    };
    Ok(FeedReader {
        inner,
        failed: false,
    })
}

impl FeedReader {
    fn csv(&self) -> &CsvFile {
        match &self.inner {
            Inner::Generic(r) => &r.csv,
            Inner::Lobster(r) => &r.csv,
        }
    }

    pub fn path(&self) -> &Arc<str> {
        &self.csv().path
    }

    /// Data rows read so far, good or bad.
    pub fn rows(&self) -> u64 {
        self.csv().rows
    }

    /// How far into the file reading is, for progress bars.
    pub fn bytes_read(&self) -> u64 {
        self.csv().reader.position().byte()
    }

    /// Book figures of a LOBSTER file; `None` for other formats.
    pub fn book_stats(&self) -> Option<lobster::BookStats> {
        match &self.inner {
            Inner::Generic(_) => None,
            Inner::Lobster(r) => Some(r.stats()),
        }
    }
}

impl Iterator for FeedReader {
    type Item = Result<Update, FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let item = match &mut self.inner {
            Inner::Generic(r) => r.next_update(),
            Inner::Lobster(r) => r.next_update(),
        }?;
        if matches!(&item, Err(e) if !matches!(e, FeedError::BadRow(_))) {
            self.failed = true;
        }
        Some(item)
    }
}

/// A CSV file read one record at a time into a reused buffer. Records are
/// checked as UTF-8 once, whole, by the CSV reader.
pub(crate) struct CsvFile {
    pub path: Arc<str>,
    reader: csv::Reader<File>,
    pub record: StringRecord,
    pub rows: u64,
}

impl CsvFile {
    pub(crate) fn open(path: &Path, has_header: bool) -> Result<CsvFile, FeedError> {
        let file = File::open(path).map_err(|e| FeedError::open(path, e))?;
        let reader = csv::ReaderBuilder::new()
            .has_headers(has_header)
            .flexible(true)
            // '\n' alone ends a record: with the default CRLF terminator
            // the reader reports the line before the real one on CRLF
            // files (LOBSTER's). The '\r' left on the last field is trimmed.
            .terminator(csv::Terminator::Any(b'\n'))
            .buffer_capacity(READ_BUFFER)
            .from_reader(file);
        Ok(CsvFile {
            path: Arc::from(path.display().to_string()),
            reader,
            record: StringRecord::new(),
            rows: 0,
        })
    }

    /// The header row (generic CSV).
    pub(crate) fn header(&mut self) -> Result<StringRecord, FeedError> {
        let header = self.reader.headers().cloned();
        header.map_err(|e| self.csv_error(e).unwrap_or_else(FeedError::BadRow))
    }

    /// Reads the next record into `self.record`; `None` at the end. Blank
    /// lines are skipped by the CSV reader.
    pub(crate) fn advance(&mut self) -> Option<Result<(), FeedError>> {
        match self.reader.read_record(&mut self.record) {
            Ok(true) => {
                self.rows += 1;
                Some(Ok(()))
            }
            Ok(false) => None,
            Err(e) => {
                self.rows += 1;
                Some(Err(self.csv_error(e).unwrap_or_else(FeedError::BadRow)))
            }
        }
    }

    /// An I/O error ends the file; anything else is one bad row.
    fn csv_error(&self, e: csv::Error) -> Result<FeedError, BadRow> {
        let line = e.position().map_or(0, |p| p.line());
        let text = match e.kind() {
            csv::ErrorKind::Utf8 { err, .. } => {
                format!("field {} is not valid UTF-8", err.field() + 1)
            }
            _ => format!("not valid CSV: {e}"),
        };
        match e.into_kind() {
            csv::ErrorKind::Io(source) => Ok(FeedError::Read {
                path: self.path.to_string(),
                source,
            }),
            _ => Err(BadRow {
                path: self.path.clone(),
                line,
                column: 1,
                what: text,
                out_of_order: false,
            }),
        }
    }

    /// A view of the current record.
    pub(crate) fn row(&self) -> Row<'_> {
        Row {
            path: &self.path,
            line: self.record.position().map_or(0, |p| p.line()),
            record: &self.record,
        }
    }
}

/// The time-order rule: a row may share the previous row's time but never
/// go before it.
#[derive(Debug, Default)]
pub(crate) struct TimeOrder {
    /// Time and line of the last accepted row.
    last: Option<(u64, u64)>,
}

impl TimeOrder {
    /// Accepts row `row` at time `xt` (read from field `field`), or says
    /// why not.
    pub(crate) fn accept(&mut self, xt: u64, row: &Row, field: usize) -> Result<(), BadRow> {
        if let Some((last, line)) = self.last
            && xt < last
        {
            let mut bad = row.bad(
                field,
                format!(
                    "out of time order: {} is before {} on line {line}; sort the file by time",
                    super::time::format_rfc3339(xt),
                    super::time::format_rfc3339(last)
                ),
            );
            bad.out_of_order = true;
            return Err(bad);
        }
        self.last = Some((xt, row.line));
        Ok(())
    }
}

/// One CSV record with its location, for reading fields and naming them
/// in errors.
pub(crate) struct Row<'a> {
    pub path: &'a Arc<str>,
    pub line: u64,
    pub record: &'a StringRecord,
}

impl Row<'_> {
    /// Field `i` as trimmed text; a missing field is empty.
    pub(crate) fn text(&self, i: usize) -> &str {
        self.record.get(i).unwrap_or_default().trim_ascii()
    }

    /// 1-based character column where field `i` starts (exact for
    /// unquoted fields).
    pub(crate) fn column(&self, i: usize) -> u64 {
        let before: usize = self
            .record
            .iter()
            .take(i)
            .map(|f| f.chars().count() + 1)
            .sum();
        before as u64 + 1
    }

    pub(crate) fn bad(&self, i: usize, what: String) -> BadRow {
        BadRow {
            path: self.path.clone(),
            line: self.line,
            column: self.column(i),
            what,
            out_of_order: false,
        }
    }
}
