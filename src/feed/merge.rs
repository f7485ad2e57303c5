//! Several feed files merged into one stream in time order, holding one
//! pending update per file. Equal times keep the files' command-line order,
//! and each file keeps its own row order (LOBSTER files repeat timestamps,
//! and their order matters).

use super::reader::{self, FeedReader};
use super::{FeedError, Format, Update};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::PathBuf;

/// A file to read and its format (see `detect`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeedFile {
    pub path: PathBuf,
    pub format: Format,
}

pub struct Merge {
    readers: Vec<FeedReader>,
    pending: Vec<Option<Update>>,
    /// (time, file index) of each pending update, earliest first.
    heap: BinaryHeap<Reverse<(u64, usize)>>,
    /// Files whose next update must be read before the heap is complete.
    refill: Vec<usize>,
}

impl Merge {
    /// Merges the ticks of `files`.
    pub fn open(files: &[FeedFile]) -> Result<Merge, FeedError> {
        Merge::open_with_books(files, 0)
    }

    /// Merges the ticks of `files` and the top `depth` levels of their
    /// books (see [`reader::open_with_books`]).
    pub fn open_with_books(files: &[FeedFile], depth: usize) -> Result<Merge, FeedError> {
        let readers = files
            .iter()
            .map(|f| reader::open_with_books(&f.path, &f.format, depth))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Merge {
            pending: vec![None; readers.len()],
            heap: BinaryHeap::with_capacity(readers.len()),
            refill: (0..readers.len()).rev().collect(),
            readers,
        })
    }

    /// The reader of file `index` (its path, rows read, progress).
    pub fn reader(&self, index: usize) -> &FeedReader {
        &self.readers[index]
    }

    /// Time of the first good row of `files`, to resolve `+10m` bounds.
    pub fn first_time(files: &[FeedFile]) -> Result<Option<u64>, FeedError> {
        for item in Merge::open(files)? {
            match item {
                Ok((_, update)) => return Ok(Some(update.xt)),
                Err(FeedError::BadRow(_)) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    pub fn bytes_read(&self) -> u64 {
        self.readers.iter().map(FeedReader::bytes_read).sum()
    }
}

impl Iterator for Merge {
    /// The next update and the index of its file, or a file's error (a bad
    /// row, after which merging can go on).
    type Item = Result<(usize, Update), FeedError>;

    fn next(&mut self) -> Option<Self::Item> {
        while let Some(index) = self.refill.pop() {
            match self.readers[index].next() {
                Some(Ok(update)) => {
                    self.heap.push(Reverse((update.xt, index)));
                    self.pending[index] = Some(update);
                }
                Some(Err(e)) => {
                    self.refill.push(index);
                    return Some(Err(e));
                }
                None => {}
            }
        }
        let Reverse((_, index)) = self.heap.pop()?;
        self.refill.push(index);
        let update = self.pending[index]
            .take()
            .expect("a pending update per heap entry");
        Some(Ok((index, update)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &tempfile::TempDir, name: &str, text: &str) -> FeedFile {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        FeedFile {
            path,
            format: Format::Generic,
        }
    }

    #[test]
    fn files_merge_by_time_then_by_command_line_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = file(&dir, "a.csv", "ts,sym,px\n1,A,1\n3,A,3\n3,A,4\n");
        let b = file(&dir, "b.csv", "ts,sym,px\n2,B,2\n3,B,3\n5,B,5\n");
        let merged: Vec<(usize, f64)> = Merge::open(&[a, b])
            .unwrap()
            .map(|r| r.map(|(i, u)| (i, u.quote.px.unwrap())).unwrap())
            .collect();
        assert_eq!(
            merged,
            [(0, 1.0), (1, 2.0), (0, 3.0), (0, 4.0), (1, 3.0), (1, 5.0)]
        );
    }

    #[test]
    fn a_bad_row_is_reported_and_merging_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let a = file(&dir, "bad.csv", "ts,sym,px\n1,A,1\n2,A,x\n3,A,3\n");
        let items: Vec<_> = Merge::open(&[a]).unwrap().collect();
        assert_eq!(items.len(), 3);
        assert!(matches!(&items[1], Err(FeedError::BadRow(b)) if b.line == 3));
        assert_eq!(items[2].as_ref().unwrap().1.quote.px, Some(3.0));
    }
}
