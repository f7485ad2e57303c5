//! Format detection from a file's first line: a CSV header naming `ts` or
//! `sym` is the generic format; six numbers and no header is a LOBSTER
//! message row. Anything else is refused rather than guessed; `--format`
//! says it outright.

use super::merge::FeedFile;
use super::{FeedError, Format, lobster};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};

/// The longest first line looked at; a header is far shorter.
const FIRST_LINE_MAX: u64 = 64 * 1024;

/// `--format`: how to read the files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatChoice {
    /// Tell from the first line (and, for LOBSTER, the file name).
    #[default]
    Auto,
    /// CSV with a header row: ts and sym, optional px sz bid ask bsz asz vol.
    Generic,
    /// LOBSTER message file, named TICKER_DATE_START_END_message_LEVELS.csv.
    Lobster,
}

/// Opens `path` enough to tell its format; refuses missing, empty and
/// unrecognised files with one sentence each.
pub fn detect(path: &Path, choice: FormatChoice) -> Result<Format, FeedError> {
    let first = first_line(path)?;
    let display = || path.display().to_string();
    match choice {
        FormatChoice::Generic => Ok(Format::Generic),
        FormatChoice::Lobster => lobster_format(path),
        FormatChoice::Auto if is_header(&first) => Ok(Format::Generic),
        FormatChoice::Auto if is_lobster_row(&first) => lobster_format(path),
        FormatChoice::Auto => Err(FeedError::UnknownFormat { path: display() }),
    }
}

/// The format of each of `paths`, in order (see [`detect`]).
pub fn detect_all(paths: &[PathBuf], choice: FormatChoice) -> Result<Vec<FeedFile>, FeedError> {
    paths
        .iter()
        .map(|path| {
            Ok(FeedFile {
                path: path.clone(),
                format: detect(path, choice)?,
            })
        })
        .collect()
}

fn lobster_format(path: &Path) -> Result<Format, FeedError> {
    lobster::FileName::parse(path)
        .map(Format::Lobster)
        .ok_or_else(|| FeedError::LobsterName {
            path: path.display().to_string(),
        })
}

/// The first non-blank line, without its line ending.
fn first_line(path: &Path) -> Result<String, FeedError> {
    let file = std::fs::File::open(path).map_err(|e| FeedError::open(path, e))?;
    let mut reader = std::io::BufReader::new(file.take(FIRST_LINE_MAX));
    let mut bytes = Vec::new();
    loop {
        bytes.clear();
        let read = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|e| FeedError::open(path, e))?;
        if read == 0 {
            return Err(FeedError::Empty {
                path: path.display().to_string(),
            });
        }
        let line = String::from_utf8_lossy(&bytes);
        if !line.trim().is_empty() {
            return Ok(line.trim().to_string());
        }
    }
}

fn fields(line: &str) -> impl Iterator<Item = &str> {
    line.split(',').map(|f| f.trim().trim_matches('"'))
}

fn is_header(line: &str) -> bool {
    fields(line).any(|f| f.eq_ignore_ascii_case("ts") || f.eq_ignore_ascii_case("sym"))
}

fn is_lobster_row(line: &str) -> bool {
    let numeric = |f: &str| {
        let f = f.strip_prefix('-').unwrap_or(f);
        !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    };
    fields(line).count() == 6 && fields(line).all(numeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_header_with_ts_or_sym_is_generic() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "quotes.csv", "\n sym , ts,px\nAAPL,1,2\n");
        assert_eq!(detect(&path, FormatChoice::Auto).unwrap(), Format::Generic);
    }

    #[test]
    fn six_numbers_and_a_lobster_name_are_lobster() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "MSFT_2012-06-21_34200000_57600000_message_10.csv",
            "34200.1,1,7,100,300000,1\r\n",
        );
        let Format::Lobster(name) = detect(&path, FormatChoice::Auto).unwrap() else {
            panic!("not LOBSTER")
        };
        assert_eq!(&*name.ticker, "MSFT");
    }

    #[test]
    fn unrecognised_empty_and_missing_files_are_refused_in_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let unknown = write(&dir, "prices.json", "{\"px\": 1}\n");
        let msg = detect(&unknown, FormatChoice::Auto)
            .unwrap_err()
            .to_string();
        assert!(msg.ends_with("prices.json: unknown format: the first line is neither a CSV header with ts and sym columns nor a LOBSTER message row (see docs/replay.md, or say --format)"), "{msg}");
        let empty = write(&dir, "empty.csv", "");
        assert!(matches!(
            detect(&empty, FormatChoice::Auto),
            Err(FeedError::Empty { .. })
        ));
        let lobster = write(&dir, "aapl.csv", "34200.1,1,7,100,300000,1\n");
        assert!(matches!(
            detect(&lobster, FormatChoice::Auto),
            Err(FeedError::LobsterName { .. })
        ));
        let missing = unknown.with_file_name("nowhere.csv");
        assert!(matches!(
            detect(&missing, FormatChoice::Generic),
            Err(FeedError::Missing { .. })
        ));
    }
}
