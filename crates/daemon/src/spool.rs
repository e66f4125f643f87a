//! The spool: documents that cannot be sent yet, on disk, bounded in size, oldest file
//! first.
//!
//! The spool is a directory of append-only files named `<sequence>.spool`. A file is a
//! run of records `u32 length (LE) | u32 crc32 (LE) | document bytes`; the writer starts a
//! new file when the current one reaches its size, so the oldest documents are always
//! in the lowest-numbered file. Reading takes a whole file back into memory and deletes
//! it. A record cut short by a crash, or whose checksum fails, ends the reading of its
//! file and is counted; the records before it are kept.
//!
//! When the spool is full the oldest file is deleted and its documents are counted as
//! dropped (`spool_full`), so the newest data survives a long outage. Writes reach the
//! operating system at once and disk at every file switch and at shutdown
//! ([`Spool::sync`]); the spool is for outages of the endpoint and for daemon restarts,
//! not a promise against power loss of the host.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::buffer::Doc;
use crate::error::DaemonError;

const EXTENSION: &str = "spool";
const RECORD_HEADER: usize = 8;
/// Largest document a record may hold (anything larger is corruption).
const MAX_RECORD: usize = 1 << 20;

#[derive(Debug)]
struct SpoolFile {
    seq: u64,
    bytes: u64,
}

struct Writer {
    seq: u64,
    out: BufWriter<File>,
    bytes: u64,
}

struct Inner {
    /// Closed files, oldest first (the file being written is not among them).
    files: VecDeque<SpoolFile>,
    writer: Option<Writer>,
    next_seq: u64,
    total_bytes: u64,
}

/// What an append did besides writing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Appended {
    /// Documents written.
    pub written: u64,
    /// Documents of old files deleted to stay within the size bound.
    pub dropped_oldest: u64,
}

/// What a read gave back.
#[derive(Debug, Default)]
pub struct ReadBack {
    /// Documents, oldest first.
    pub docs: Vec<Doc>,
    /// Records that were cut short or failed their checksum.
    pub corrupt: u64,
}

/// The on-disk spool.
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    file_bytes: u64,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Spool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn spool_err(path: &Path, source: std::io::Error) -> DaemonError {
    DaemonError::Spool {
        path: path.to_path_buf(),
        source,
    }
}

impl Spool {
    /// Opens (creating) the spool directory and finds the files a previous run left.
    /// `file_bytes` is the size at which the writer starts a new file.
    pub fn open(dir: &Path, max_bytes: u64, file_bytes: u64) -> Result<Self, DaemonError> {
        std::fs::create_dir_all(dir).map_err(|e| spool_err(dir, e))?;
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| spool_err(dir, e))? {
            let entry = entry.map_err(|e| spool_err(dir, e))?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
                continue;
            }
            let Some(seq) = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let bytes = entry.metadata().map_err(|e| spool_err(&path, e))?.len();
            files.push(SpoolFile { seq, bytes });
        }
        files.sort_by_key(|f| f.seq);
        let next_seq = files.last().map_or(1, |f| f.seq + 1);
        let total_bytes = files.iter().map(|f| f.bytes).sum();
        Ok(Self {
            dir: dir.to_path_buf(),
            max_bytes,
            file_bytes: file_bytes.max(64 * 1024),
            inner: Mutex::new(Inner {
                files: files.into(),
                writer: None,
                next_seq,
                total_bytes,
            }),
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.{EXTENSION}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.lock().total_bytes
    }

    /// True when nothing is spooled.
    pub fn is_empty(&self) -> bool {
        self.lock().total_bytes == 0
    }

    /// Closes the file being written (synced) so readers see it.
    fn seal(&self, inner: &mut Inner) -> Result<(), DaemonError> {
        if let Some(mut w) = inner.writer.take() {
            let path = self.path(w.seq);
            w.out.flush().map_err(|e| spool_err(&path, e))?;
            w.out
                .get_ref()
                .sync_data()
                .map_err(|e| spool_err(&path, e))?;
            inner.files.push_back(SpoolFile {
                seq: w.seq,
                bytes: w.bytes,
            });
        }
        Ok(())
    }

    /// Appends documents after everything spooled so far.
    pub fn append(&self, docs: &[Doc]) -> Result<Appended, DaemonError> {
        let mut inner = self.lock();
        let mut out = Appended::default();
        for doc in docs {
            let record = doc.len() as u64 + RECORD_HEADER as u64;
            // Make room by deleting the oldest closed files.
            while inner.total_bytes + record > self.max_bytes {
                let Some(oldest) = inner.files.pop_front() else {
                    break;
                };
                let path = self.path(oldest.seq);
                out.dropped_oldest += count_records(&path);
                inner.total_bytes -= oldest.bytes;
                std::fs::remove_file(&path).map_err(|e| spool_err(&path, e))?;
            }
            if inner
                .writer
                .as_ref()
                .is_some_and(|w| w.bytes >= self.file_bytes)
            {
                self.seal(&mut inner)?;
            }
            if inner.writer.is_none() {
                let seq = inner.next_seq;
                inner.next_seq += 1;
                let path = self.path(seq);
                let file = OpenOptions::new()
                    .create_new(true)
                    .append(true)
                    .open(&path)
                    .map_err(|e| spool_err(&path, e))?;
                inner.writer = Some(Writer {
                    seq,
                    out: BufWriter::with_capacity(256 * 1024, file),
                    bytes: 0,
                });
            }
            let Some(w) = inner.writer.as_mut() else {
                continue;
            };
            let bytes = doc.as_bytes();
            let mut header = [0u8; RECORD_HEADER];
            header[..4].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
            header[4..].copy_from_slice(&crc32fast::hash(bytes).to_le_bytes());
            let seq = w.seq;
            w.out
                .write_all(&header)
                .and_then(|()| w.out.write_all(bytes))
                .map_err(|e| spool_err(&self.path(seq), e))?;
            w.bytes += record;
            inner.total_bytes += record;
            out.written += 1;
        }
        if let Some(w) = inner.writer.as_mut() {
            let seq = w.seq;
            w.out.flush().map_err(|e| spool_err(&self.path(seq), e))?;
        }
        Ok(out)
    }

    /// Takes the oldest file's documents out of the spool (deleting the file). Returns
    /// `None` when the spool is empty.
    pub fn take_oldest(&self) -> Result<Option<ReadBack>, DaemonError> {
        let mut inner = self.lock();
        if inner.files.is_empty() {
            self.seal(&mut inner)?;
        }
        let Some(oldest) = inner.files.pop_front() else {
            return Ok(None);
        };
        inner.total_bytes -= oldest.bytes;
        let path = self.path(oldest.seq);
        let read = read_records(&path).map_err(|e| spool_err(&path, e))?;
        std::fs::remove_file(&path).map_err(|e| spool_err(&path, e))?;
        Ok(Some(read))
    }

    /// Bytes of the oldest file, the amount [`Spool::take_oldest`] would bring back.
    pub fn oldest_bytes(&self) -> Option<u64> {
        let inner = self.lock();
        inner
            .files
            .front()
            .map(|f| f.bytes)
            .or(inner.writer.as_ref().map(|w| w.bytes))
    }

    /// Makes everything written durable (closes the current file).
    pub fn sync(&self) -> Result<(), DaemonError> {
        let mut inner = self.lock();
        self.seal(&mut inner)?;
        let dir = File::open(&self.dir).map_err(|e| spool_err(&self.dir, e))?;
        dir.sync_all().map_err(|e| spool_err(&self.dir, e))
    }
}

fn read_records(path: &Path) -> std::io::Result<ReadBack> {
    let mut data = Vec::new();
    File::open(path)?.read_to_end(&mut data)?;
    let mut out = ReadBack::default();
    let mut at = 0;
    while at < data.len() {
        let Some(header) = data.get(at..at + RECORD_HEADER) else {
            out.corrupt += 1;
            break;
        };
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        let start = at + RECORD_HEADER;
        let Some(body) = data.get(start..start + len).filter(|_| len <= MAX_RECORD) else {
            out.corrupt += 1;
            break;
        };
        if crc32fast::hash(body) != crc {
            out.corrupt += 1;
            break;
        }
        match std::str::from_utf8(body) {
            Ok(text) => out.docs.push(Box::from(text)),
            Err(_) => out.corrupt += 1,
        }
        at = start + len;
    }
    Ok(out)
}

/// Records in a file, for counting what a deletion drops.
fn count_records(path: &Path) -> u64 {
    match read_records(path) {
        Ok(r) => r.docs.len() as u64 + r.corrupt,
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(range: std::ops::Range<usize>) -> Vec<Doc> {
        range
            .map(|n| format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(100)).into_boxed_str())
            .collect()
    }

    #[test]
    fn round_trip_in_order_across_files_and_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path(), 1 << 30, 64 * 1024).expect("open");
        let written = docs(0..2000);
        assert_eq!(
            spool.append(&written[..1000]).expect("append").written,
            1000
        );
        spool.sync().expect("sync");
        drop(spool);
        // A restart finds the files and keeps appending after them.
        let spool = Spool::open(dir.path(), 1 << 30, 64 * 1024).expect("reopen");
        spool.append(&written[1000..]).expect("append");
        let mut back = Vec::new();
        while let Some(read) = spool.take_oldest().expect("read") {
            assert_eq!(read.corrupt, 0);
            back.extend(read.docs);
        }
        assert_eq!(back, written);
        assert!(spool.is_empty());
    }

    #[test]
    fn full_spool_drops_the_oldest_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        // Each record is ~125 bytes: 64 KiB files of ~520 records, room for 3 files.
        let spool = Spool::open(dir.path(), 3 * 64 * 1024, 64 * 1024).expect("open");
        let written = docs(0..5000);
        let mut dropped = 0;
        for chunk in written.chunks(100) {
            dropped += spool.append(chunk).expect("append").dropped_oldest;
        }
        assert!(spool.bytes() <= 3 * 64 * 1024);
        let mut back = Vec::new();
        while let Some(read) = spool.take_oldest().expect("read") {
            back.extend(read.docs);
        }
        // What is left is the newest documents, in order, and the rest was counted.
        assert_eq!(back.len() as u64 + dropped, 5000);
        assert_eq!(back[..], written[written.len() - back.len()..]);
    }

    #[test]
    fn a_torn_record_keeps_what_precedes_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spool = Spool::open(dir.path(), 1 << 30, 1 << 20).expect("open");
        spool.append(&docs(0..10)).expect("append");
        spool.sync().expect("sync");
        drop(spool);
        let file = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .next()
            .expect("one file");
        let len = std::fs::metadata(&file).expect("stat").len();
        let f = OpenOptions::new().write(true).open(&file).expect("open");
        f.set_len(len - 5).expect("truncate");
        let spool = Spool::open(dir.path(), 1 << 30, 1 << 20).expect("reopen");
        let read = spool.take_oldest().expect("read").expect("a file");
        assert_eq!(read.docs, docs(0..9));
        assert_eq!(read.corrupt, 1);
    }
}
