//! The embedded store: fjall keyspaces under `--data-dir`, one set per UTC day.
//!
//! Document writes are serialized by one lock and committed as one atomic fjall batch
//! (documents and their traces' dirty markers): with `PersistMode::SyncData` when a
//! client waits on them, with `PersistMode::Buffer` (in the operating system's hands,
//! synced within [`SYNC_INTERVAL`] by a background thread) when nobody does. The
//! indexer derives summaries, the service index and the rollups from marked traces. fjall poisons the database after a failed sync and refuses later writes
//! (`Error::Poisoned`), which is the fail-stop behaviour we want.
//!
//! Beside each summary the indexer writes its scan block ([`crate::scan`]) into the
//! day's scan packs ([`crate::pack`]): one value per indexing round and trace-id
//! second, which time-range scans read instead of one entry per trace. Service-index
//! candidates are judged on their summary records.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable};
use foldhash::{HashMap, HashMapExt};
use roentgen_model::document::parse_segment;
use roentgen_model::{Document, GraphKey, Segment, SegmentId, Stats, TraceId, derive};

use crate::keys::{
    TenantId, day_of, day_start, doc_key, pack_key, rollup_prefix, service_key, split_tenant,
    time_key, trace_key,
};
use crate::{
    ConfigKind, RollupRow, Store, StoreError, StoredSummary, StoredTrace, SummaryPage,
    SummaryQuery, WriteOutcome,
};

/// How far before a query's start a trace may have started and still be found by an
/// `Event` or `Service` time range (those read update and end times, not the trace id).
pub const EVENT_LOOKBACK_SECONDS: u64 = 86_400;

/// Options of the embedded store.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedOptions {
    /// Block cache size in bytes.
    pub cache_bytes: u64,
    /// Journal size past which memtables are flushed (bounds memory and recovery time).
    pub journal_bytes: u64,
    /// Free space the data directory's file system keeps: below it, document writes
    /// are refused with [`StoreError::DiskFull`] (nothing written, nothing damaged)
    /// and succeed again once space is freed. The engine's flushes and compactions,
    /// and the indexer, write into this reserve.
    pub min_free_bytes: u64,
    /// Most traces of one tenant and one trace-id second whose scan blocks go into
    /// packs while the process runs; the rest are stored one by one. A time-range scan
    /// holds one second's packs in memory (about 200 bytes per trace), so this bounds a
    /// query's memory when clients stamp many traces with one second. Counts restart
    /// with the process, so a second can hold a multiple of it after restarts.
    pub pack_second_cap: u32,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        Self {
            cache_bytes: 32 * 1024 * 1024,
            journal_bytes: 128 * 1024 * 1024,
            min_free_bytes: 256 * 1024 * 1024,
            pack_second_cap: 16_384,
        }
    }
}

/// Bytes an unprivileged process may still write on the file system of `path`.
fn available_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[derive(Clone)]
struct DayParts {
    docs: Keyspace,
    sums: Keyspace,
    svcs: Keyspace,
    roll: Keyspace,
    /// Hour rollups: the sums of the minute rows of each hour, so that long windows
    /// read hours instead of minutes.
    hour: Keyspace,
    /// Loose scan blocks ([`crate::scan`]) under their summary's key: those of days
    /// written before packs existed, and those of seconds past
    /// [`EmbeddedOptions::pack_second_cap`].
    scan: Keyspace,
    /// Scan packs: the scan blocks one indexing round wrote for one second of trace ids,
    /// under tenant + second + pack number ([`pack_key`]). A trace re-derived later has
    /// a newer copy in a later pack (or in `scan`); readers keep the highest revision.
    packs: Keyspace,
}

/// Most seconds whose packed traces are counted (against
/// [`EmbeddedOptions::pack_second_cap`]) before the counts start over.
const PACK_COUNTED_SECONDS: usize = 65_536;
/// Key in `meta` of the count of opens, the high bits of pack numbers: pack keys of
/// one run never collide with another's.
const PACK_RUN: &[u8] = b"pack_run";

/// Key, in a day's scan keyspace, of the marker that says every summary of the day has
/// its scan block (days written before scan blocks get them when opened). Tenant
/// prefixes start with a length byte of at most 64, so no summary key equals it and no
/// tenant's range holds it.
const SCAN_COMPLETE: &[u8] = &[0xff];

const PART_PREFIXES: [&str; 7] = [
    "docs_", "sums_", "svcs_", "roll_", "rolh_", "scan_", "pack_",
];

struct Inner {
    db: Database,
    meta: Keyspace,
    /// Traces whose documents changed and whose summary is not yet re-derived:
    /// tenant + trace id → the write sequence number that last marked it.
    dirty: Keyspace,
    days: RwLock<BTreeMap<u32, DayParts>>,
    /// Serializes document writes (and marker removal).
    write_lock: Mutex<()>,
    /// Serializes indexing rounds with retention.
    index_lock: Mutex<()>,
    /// Taken before `write_lock` and held until a write's notes are sent.
    notify_lock: Mutex<()>,
    seq: AtomicU64,
    /// Number of the next scan pack (the run count in the high bits, see [`PACK_RUN`]).
    pack_seq: AtomicU64,
    /// Traces packed per tenant prefix and second in this run (see
    /// [`EmbeddedOptions::pack_second_cap`]); only the indexer touches it.
    pack_counts: Mutex<HashMap<(Vec<u8>, u32), u32>>,
    pack_second_cap: u32,
    /// Set by unsynced writes, cleared by the syncer thread when it syncs.
    unsynced: std::sync::atomic::AtomicBool,
    dropped_before: AtomicU64,
    indexer: Indexer,
    indexer_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: PathBuf,
    min_free_bytes: u64,
}

/// Longest time documents written with [`Store::write_unacknowledged`] stay unsynced
/// while the process runs.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// How long the indexer waits after a trace's first new document before deriving it,
/// so that the segments of one request arriving together are derived once.
pub const INDEX_DELAY: Duration = Duration::from_millis(100);
/// Most traces waiting for the indexer before it stops waiting out [`INDEX_DELAY`].
const MAX_PENDING_TRACES: usize = 50_000;
/// Most traces derived in one indexing batch.
const INDEX_ROUND: usize = 1_000;

/// Parsed documents of one trace handed to the indexer with the note, so it need not
/// parse them again from the store: document id → typed view. Boxed: a map's node has
/// room for eleven values, and eleven segments inline made ~3.9 KB per trace.
type Parsed = BTreeMap<u64, Box<Segment>>;

/// Parsed documents' share of [`MAX_PARSED_IN_MEMORY`], given back when they are
/// dropped: a trace's as soon as the indexer is done with it, not at the end of its
/// round.
struct Held<'a> {
    out: &'a AtomicUsize,
    docs: usize,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        if self.docs > 0 {
            self.out.fetch_sub(self.docs, Ordering::AcqRel);
        }
    }
}

/// One trace of an indexing round.
struct RoundTrace<'a> {
    tenant: TenantId,
    trace: TraceId,
    /// Its documents as the notes carried them (`None`: read them from the store).
    parsed: Option<Parsed>,
    /// The newest write sequence number among its notes.
    max_seq: u64,
    /// The documents' share of the budget, given back when the round is done with
    /// the trace (after `parsed`, so it is dropped after it).
    _held: Held<'a>,
}

/// Most parsed documents in flight to the indexer (in notes, its queue and the traces
/// of its round not yet derived); past it, notes carry none and the indexer parses from
/// the store. A parsed ~1.2 KB segment with two embedded subsegments takes ~2.6 KB.
const MAX_PARSED_IN_MEMORY: usize = 10_000;

enum IndexMsg {
    /// Documents of traces were written by one write; `Some` carries every one of a
    /// trace's documents in that write (parsed), `None` (after a restart) says to read
    /// them from the store. The `u64` is the write's sequence number, the value its
    /// dirty markers hold. One message per write, not per trace: a full channel then
    /// costs the writer one wake-up per write instead of one per trace.
    Dirty(TenantId, Vec<(TraceId, Option<Parsed>)>, u64),
    Flush(std::sync::mpsc::Sender<()>),
    Stop,
}

/// Most writes' notes waiting in the indexer's channel. Writes never wait for the
/// indexer: what it cannot take at once it finds later, so storing runs at the speed
/// of the disk and a burst the indexer cannot follow is indexed once it has passed.
/// - Parsed documents ride along only while those in flight (in notes, in the
///   indexer's queue and in the round it is deriving) fit [`MAX_PARSED_IN_MEMORY`];
///   past it a note names its traces only and the indexer reads them from the store.
/// - A note that finds the channel full is not sent: its traces' dirty markers are on
///   disk, and the indexer scans the markers for them once its queue is empty. Until
///   then it trusts no note to hold the whole of a new trace.
const INDEX_CHANNEL: usize = 512;

/// The indexer thread's nice value (Linux, per thread): under CPU contention the
/// scheduler gives it about a third of the share of the threads that store.
#[cfg(target_os = "linux")]
const INDEXER_NICE: i32 = 5;

/// What the indexer counted (`/metrics`, through [`Store::counters`]).
#[derive(Debug, Default)]
struct IndexCounters {
    /// Trace derivations (one per trace per round).
    derived: AtomicU64,
    /// Traces noted without their parsed documents (memory budget reached).
    unparsed: AtomicU64,
    /// Traces whose note found the channel full (found again from their markers).
    deferred: AtomicU64,
}

/// The handle on the indexer thread.
struct Indexer {
    tx: Mutex<std::sync::mpsc::SyncSender<IndexMsg>>,
    /// Set when traces are waiting on disk only (after a restart, or when a note found
    /// the channel full): the indexer scans the dirty markers for them.
    missed: Arc<std::sync::atomic::AtomicBool>,
    /// Parsed documents in notes, in the indexer's queue and in its current round.
    parsed_out: Arc<AtomicUsize>,
    counters: Arc<IndexCounters>,
}

impl Indexer {
    /// Hands the traces of a committed write to the indexer without waiting (see
    /// [`INDEX_CHANNEL`]). Called in commit order.
    fn notify(&self, tenant: &TenantId, traces: Vec<(TraceId, Parsed)>, seq: u64) {
        let tx = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let docs: usize = traces.iter().map(|(_, p)| p.len()).sum();
        let with_docs = self.parsed_out.load(Ordering::Acquire) + docs <= MAX_PARSED_IN_MEMORY;
        let count = traces.len() as u64;
        let traces = if with_docs {
            self.parsed_out.fetch_add(docs, Ordering::AcqRel);
            traces.into_iter().map(|(t, p)| (t, Some(p))).collect()
        } else {
            traces.into_iter().map(|(t, _)| (t, None)).collect()
        };
        match tx.try_send(IndexMsg::Dirty(tenant.clone(), traces, seq)) {
            Ok(()) if with_docs => {}
            Ok(()) => {
                self.counters.unparsed.fetch_add(count, Ordering::Relaxed);
            }
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                if with_docs {
                    self.parsed_out.fetch_sub(docs, Ordering::AcqRel);
                }
                self.counters.deferred.fetch_add(count, Ordering::Relaxed);
                // After the commit (the markers are on disk), before any later write's
                // note: no round from now on trusts notes until the markers are read.
                self.missed.store(true, Ordering::Release);
            }
            // The store is closing; the markers remain on disk.
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {}
        }
    }

    fn flush(&self) -> std::sync::mpsc::Receiver<()> {
        let (tx, rx) = std::sync::mpsc::channel();
        // Waits for room: a flush must not be lost.
        let sender = self.tx.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let _ = sender.send(IndexMsg::Flush(tx));
        rx
    }
}

fn indexer_loop(
    store: Weak<Inner>,
    rx: std::sync::mpsc::Receiver<IndexMsg>,
    missed: Arc<std::sync::atomic::AtomicBool>,
    parsed_out: Arc<AtomicUsize>,
) {
    use std::collections::VecDeque;
    use std::sync::mpsc::RecvTimeoutError;

    type Key = (TenantId, TraceId);
    type Queue = VecDeque<(Key, Instant)>;
    struct Pending {
        queue: Queue,
        /// Queued traces with the parsed documents known so far (`None`: read them all
        /// from the store) and the newest write sequence number among their notes.
        parsed: HashMap<Key, (Option<Parsed>, u64)>,
        in_memory: usize,
        waiters: Vec<std::sync::mpsc::Sender<()>>,
        stop: bool,
    }
    /// Takes a message; returns how many of the parsed documents it carried were not
    /// kept (for the writers' budget, [`Indexer::parsed_out`]).
    fn take(msg: IndexMsg, p: &mut Pending) -> usize {
        let mut released = 0;
        match msg {
            IndexMsg::Dirty(t, traces, seq) => {
                for (id, docs) in traces {
                    let (n, before) = (docs.as_ref().map_or(0, BTreeMap::len), p.in_memory);
                    take_trace(p, (t.clone(), id), docs, seq);
                    // Kept documents raised `in_memory`; dropped ones (no room, a trace
                    // now read from the store, a repeated id) did not, or lowered it.
                    released += (n + before).saturating_sub(p.in_memory);
                }
            }
            IndexMsg::Flush(w) => p.waiters.push(w),
            IndexMsg::Stop => p.stop = true,
        }
        released
    }
    fn take_trace(p: &mut Pending, key: Key, docs: Option<Parsed>, seq: u64) {
        let n = docs.as_ref().map_or(0, BTreeMap::len);
        let room = docs.is_some() && p.in_memory + n <= MAX_PARSED_IN_MEMORY;
        match p.parsed.get_mut(&key) {
            Some((known, max_seq)) => {
                *max_seq = (*max_seq).max(seq);
                match (known.as_mut(), docs) {
                    (Some(known), Some(docs)) if room => {
                        for (k, v) in docs {
                            if known.insert(k, v).is_none() {
                                p.in_memory += 1;
                            }
                        }
                    }
                    (Some(k), _) => {
                        p.in_memory -= k.len();
                        *known = None;
                    }
                    (None, _) => {}
                }
            }
            None => {
                p.queue.push_back((key.clone(), Instant::now()));
                if room {
                    p.in_memory += n;
                    p.parsed.insert(key, (docs, seq));
                } else {
                    p.parsed.insert(key, (None, seq));
                }
            }
        }
    }
    // The last scan of the dirty markers failed: a flush then answers once the queue is
    // empty instead of waiting for a store that cannot be read (a close would hang).
    let mut scan_failed = false;
    let mut p = Pending {
        queue: VecDeque::new(),
        parsed: HashMap::new(),
        in_memory: 0,
        waiters: Vec::new(),
        stop: false,
    };
    loop {
        let timeout = match p.queue.front() {
            Some((_, at)) => (*at + INDEX_DELAY).saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        let rescan_due = p.queue.is_empty() && missed.load(Ordering::Acquire);
        let wait = if p.waiters.is_empty() && !rescan_due {
            timeout
        } else {
            Duration::ZERO
        };
        let release = |n: usize| {
            if n > 0 {
                parsed_out.fetch_sub(n, Ordering::AcqRel);
            }
        };
        match rx.recv_timeout(wait) {
            Ok(m) => release(take(m, &mut p)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        // Take notes while the queue has room; the rest wait in the bounded channel, and
        // notes that find it full are found again from their markers.
        while p.queue.len() < MAX_PENDING_TRACES {
            match rx.try_recv() {
                Ok(m) => release(take(m, &mut p)),
                Err(_) => break,
            }
        }
        // Notes were dropped for lack of room: once caught up with the queue, find their
        // traces on disk (a bounded number at a time, so a backlog never makes a scan
        // per note or an unbounded queue).
        if p.queue.is_empty() && missed.swap(false, Ordering::AcqRel) {
            let Some(inner) = store.upgrade() else {
                return;
            };
            match (EmbeddedStore { inner }).dirty_traces(MAX_PENDING_TRACES) {
                Ok((keys, more)) => {
                    scan_failed = false;
                    for (t, id) in keys {
                        // A queued trace's parsed documents go: it is read from disk.
                        let before = p.in_memory;
                        take_trace(&mut p, (t, id), None, 0);
                        release(before - p.in_memory);
                    }
                    if more {
                        missed.store(true, Ordering::Release);
                    }
                }
                Err(e) => {
                    tracing::error!("failed to scan traces waiting for indexing: {e}");
                    missed.store(true, Ordering::Release);
                    scan_failed = true;
                    // Not a busy loop while the store cannot be read.
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        loop {
            let now = Instant::now();
            let flushing = !p.waiters.is_empty();
            let mut round = Vec::new();
            while round.len() < INDEX_ROUND {
                let due = match p.queue.front() {
                    Some((_, at)) => {
                        flushing
                            || p.queue.len() >= MAX_PENDING_TRACES
                            || p.in_memory > MAX_PARSED_IN_MEMORY / 2
                            || *at + INDEX_DELAY <= now
                    }
                    None => false,
                };
                if !due {
                    break;
                }
                if let Some((key, _)) = p.queue.pop_front() {
                    // Taken out before indexing, so a write during the round queues it
                    // again.
                    let (parsed, max_seq) = p.parsed.remove(&key).unwrap_or((None, 0));
                    let n = parsed.as_ref().map_or(0, BTreeMap::len);
                    p.in_memory -= n;
                    round.push(RoundTrace {
                        tenant: key.0,
                        trace: key.1,
                        parsed,
                        max_seq,
                        _held: Held {
                            out: &parsed_out,
                            docs: n,
                        },
                    });
                }
            }
            if round.is_empty() {
                break;
            }
            let Some(inner) = store.upgrade() else {
                return;
            };
            // While traces from before a restart may still be waiting on disk only, no
            // note can be trusted to hold a whole trace.
            let notes_complete = !missed.load(Ordering::Acquire);
            if let Err(e) = (EmbeddedStore { inner }).index_blocking(round, notes_complete) {
                // The markers stay on disk; the next start retries them.
                tracing::error!("failed to index traces: {e}");
            }
        }
        // Caught up: nothing queued and nothing left on disk only (or no way to read it).
        if p.queue.is_empty() && (!missed.load(Ordering::Acquire) || scan_failed) {
            for w in p.waiters.drain(..) {
                let _ = w.send(());
            }
        }
        if p.stop {
            return;
        }
    }
}

/// Where rollup rows go while a window is read: a list, or one row per node and edge.
struct RollupSink {
    merge: bool,
    /// A window holds the same few hundred nodes and edges in every minute: each
    /// distinct key is decoded once (for a list; merged rows hold theirs).
    keys: HashMap<Vec<u8>, GraphKey>,
    rows: Vec<RollupRow>,
    merged: HashMap<Vec<u8>, RollupRow>,
}

impl RollupSink {
    fn push(
        &mut self,
        raw_key: &[u8],
        first: u64,
        last: u64,
        stats: Stats,
    ) -> Result<(), StoreError> {
        if self.merge
            && let Some(row) = self.merged.get_mut(raw_key)
        {
            row.stats.add(&stats, 1);
            row.minute = row.minute.min(first);
            row.last_minute = row.last_minute.max(last);
            return Ok(());
        }
        let decode = |raw: &[u8]| -> Result<GraphKey, StoreError> {
            serde_json::from_slice(raw).map_err(|e| corrupt("rollup key", e))
        };
        // Merged rows are keyed by the raw key already: each is decoded once there.
        let key = if self.merge {
            decode(raw_key)?
        } else if let Some(key) = self.keys.get(raw_key) {
            key.clone()
        } else {
            let key = decode(raw_key)?;
            self.keys.insert(raw_key.to_vec(), key.clone());
            key
        };
        let row = RollupRow {
            minute: first,
            last_minute: last,
            key,
            stats,
        };
        if self.merge {
            self.merged.insert(raw_key.to_vec(), row);
        } else {
            self.rows.push(row);
        }
        Ok(())
    }
}

/// Syncs the journal every [`SYNC_INTERVAL`] when unsynced writes happened since the
/// last time; ends with the store.
fn syncer_loop(store: Weak<Inner>) {
    loop {
        std::thread::sleep(SYNC_INTERVAL);
        let Some(inner) = store.upgrade() else {
            return;
        };
        if inner.unsynced.swap(false, Ordering::AcqRel)
            && let Err(e) = inner.db.persist(PersistMode::SyncData)
        {
            // fjall poisons the database after a failed sync: later writes fail too.
            tracing::error!("failed to sync the journal: {e}");
            inner.unsynced.store(true, Ordering::Release);
        }
    }
}

/// Keyspace options for point reads at scale: bloom filters stay in memory at every
/// level (about 1.25 bytes per key), and index blocks are partitioned, so a lookup
/// never loads a whole multi-megabyte filter or index block of a large table (which is
/// what made `BatchGetTraces` take milliseconds at 10 million segments).
fn point_read_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default()
        .filter_block_pinning_policy(fjall::config::PinningPolicy::all(true))
        .index_block_partitioning_policy(fjall::config::PartitioningPolicy::all(true))
        .filter_block_partitioning_policy(fjall::config::PartitioningPolicy::all(false))
}

/// Options of the per-day scan keyspace. Filtered queries read it end to end (a
/// million traces are ~190 MB of blocks), so its data blocks are large: a block costs a
/// read, a cache lookup and a decompression whatever its size, and 64 KiB blocks
/// make that 16 times fewer than the default 4 KiB. The pushdown's point reads of
/// single blocks still use the pinned filters and partitioned index.
fn scan_options() -> KeyspaceCreateOptions {
    point_read_options()
        .max_memtable_size(8 * 1024 * 1024)
        .data_block_size_policy(fjall::config::BlockSizePolicy::all(SCAN_BLOCK_BYTES))
        .data_block_compression_policy(fjall::config::CompressionPolicy::disabled())
}

/// See [`scan_options`].
const SCAN_BLOCK_BYTES: u32 = 64 * 1024;

/// The file that marks a directory as a Roentgen embedded store.
pub const MARKER_FILE: &str = "ROENTGEN_STORE";

/// Refuses a directory that holds anything but a Roentgen store (say, `--data-dir`
/// pointed at a home directory): opening would write the engine's files among the
/// user's. Missing or empty directories, and stores written before the marker file
/// (they hold the engine's `version` file and `keyspaces` directory), are fine; the
/// marker is written for them.
fn check_directory(path: &Path) -> Result<(), StoreError> {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Directory {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let has = |n: &str| names.iter().any(|x| x == n);
    let is_store = names.is_empty() || has(MARKER_FILE) || (has("version") && has("keyspaces"));
    if !is_store {
        let mut found: Vec<String> = names.iter().take(3).cloned().collect();
        if names.len() > 3 {
            found.push(format!("and {} more", names.len() - 3));
        }
        return Err(StoreError::ForeignDirectory {
            path: path.display().to_string(),
            found: found.join(", "),
        });
    }
    if !has(MARKER_FILE) {
        std::fs::create_dir_all(path)
            .and_then(|()| {
                std::fs::write(
                    path.join(MARKER_FILE),
                    "Roentgen embedded store (fjall). Keep other files out of this directory.\n",
                )
            })
            .map_err(|source| StoreError::Directory {
                path: path.display().to_string(),
                source,
            })?;
    }
    Ok(())
}

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedStore")
            .field("path", &self.inner.path)
            .finish()
    }
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        message: e.to_string(),
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Summary record value: the summary (4-byte length first; MessagePack with named
/// fields, JSON in earlier records, see [`decode_stored`]), the ids of the documents it
/// was derived from (4-byte count, then 8 bytes each), then the trace's graph
/// contribution (binary, [`crate::codec::encode_graph`]; JSON in earlier records).
/// Queries read only the summary; the ids let the indexer and `get_traces` use point
/// reads instead of prefix scans (which cannot use bloom filters and touch every
/// table).
fn encode_record(stored: &StoredSummary, ids: &[u64], graph: &[(u64, GraphKey, Stats)]) -> Vec<u8> {
    let g = crate::codec::encode_graph(graph);
    let mut out = Vec::with_capacity(2048 + ids.len() * 8 + g.len());
    out.extend_from_slice(&[0; 4]);
    // Serializing plain data structures into a Vec cannot fail.
    let _ = rmp_serde::encode::write_named(&mut out, stored);
    let len = (out.len() - 4) as u32;
    out[..4].copy_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&(ids.len() as u32).to_be_bytes());
    for id in ids {
        out.extend_from_slice(&id.to_be_bytes());
    }
    out.extend_from_slice(&g);
    out
}

/// Reads a record's summary part: MessagePack since 2026-12, JSON (always an object,
/// so its first byte is `{`, which no MessagePack map starts with) before.
fn decode_stored(summary: &[u8]) -> Result<StoredSummary, StoreError> {
    if summary.first() == Some(&b'{') {
        serde_json::from_slice(summary).map_err(|e| corrupt("summary", e))
    } else {
        rmp_serde::from_slice(summary).map_err(|e| corrupt("summary", e))
    }
}

/// The three parts of a summary record.
struct RecordParts<'a> {
    summary: &'a [u8],
    ids: &'a [u8],
    graph: &'a [u8],
}

fn split_record(v: &[u8]) -> Result<RecordParts<'_>, StoreError> {
    let short = || corrupt("summary", "record shorter than its lengths");
    let len_at = |at: usize| -> Result<usize, StoreError> {
        let b: [u8; 4] = v
            .get(at..at + 4)
            .ok_or_else(short)?
            .try_into()
            .map_err(|_| short())?;
        Ok(u32::from_be_bytes(b) as usize)
    };
    let n = len_at(0)?;
    let summary = v.get(4..4 + n).ok_or_else(short)?;
    let count = len_at(4 + n)?;
    let ids_start = 8 + n;
    let ids = v.get(ids_start..ids_start + count * 8).ok_or_else(short)?;
    let graph = v.get(ids_start + count * 8..).ok_or_else(short)?;
    Ok(RecordParts {
        summary,
        ids,
        graph,
    })
}

fn decode_summary(v: &[u8]) -> Result<StoredSummary, StoreError> {
    decode_stored(split_record(v)?.summary)
}

fn scan_block(stored: &StoredSummary) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    crate::scan::encode_scan(&mut out, stored);
    out
}

fn decode_ids(ids: &[u8]) -> Vec<u64> {
    ids.chunks_exact(8)
        .filter_map(|c| <[u8; 8]>::try_from(c).ok().map(u64::from_be_bytes))
        .collect()
}

use crate::codec::GraphRows;

fn decode_record(v: &[u8]) -> Result<(StoredSummary, Vec<u64>, GraphRows), StoreError> {
    let parts = split_record(v)?;
    let stored = decode_stored(parts.summary)?;
    let graph = crate::codec::decode_graph(parts.graph).map_err(|e| corrupt("summary graph", e))?;
    Ok((stored, decode_ids(parts.ids), graph))
}

/// Every document of one trace (`tk` is the tenant + trace key prefix) by prefix scan,
/// as `(document id, value)`. Documents whose id `skip` accepts come back without their
/// value, which is then never read from the blob files. A prefix scan touches every
/// table, so readers prefer the point reads the summary record's id list allows.
fn scan_trace_docs(
    docs: &Keyspace,
    tk: &[u8],
    skip: impl Fn(u64) -> bool,
) -> Result<Vec<(u64, Option<fjall::UserValue>)>, StoreError> {
    let doc_id = |k: &[u8]| {
        <[u8; 8]>::try_from(k.get(tk.len()..)?)
            .ok()
            .map(u64::from_be_bytes)
    };
    let mut out = Vec::new();
    for kv in docs.prefix(tk) {
        let (k, v) = kv.into_inner_if(|k| !doc_id(k).is_some_and(&skip))?;
        if let Some(id) = doc_id(&k) {
            out.push((id, v));
        }
    }
    Ok(out)
}

fn config_key(tenant: &TenantId, kind: ConfigKind, name: Option<&str>) -> Vec<u8> {
    let mut k = tenant.prefix();
    k.push(match kind {
        ConfigKind::SamplingRule => b'r',
        ConfigKind::Group => b'g',
    });
    if let Some(n) = name {
        k.extend_from_slice(n.as_bytes());
    }
    k
}

impl EmbeddedStore {
    /// Opens (or creates) the store under `path`, recovering from its journal.
    pub fn open(path: impl AsRef<Path>, options: EmbeddedOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        check_directory(&path)?;
        let db = Database::builder(&path)
            .cache_size(options.cache_bytes)
            .max_journaling_size(options.journal_bytes)
            // Journal entries are short-lived (they go with the next flush, where tables
            // are compressed anyway): compressing them cost the indexer an eighth of its
            // time.
            .journal_compression(fjall::CompressionType::None)
            .open()?;
        let meta = db.keyspace("meta", KeyspaceCreateOptions::default)?;
        let run = match meta.get(PACK_RUN)? {
            Some(v) => <[u8; 8]>::try_from(&*v)
                .map(u64::from_be_bytes)
                .map_err(|_| corrupt("pack run count", "not 8 bytes"))?
                .saturating_add(1),
            None => 1,
        };
        meta.insert(PACK_RUN, run.to_be_bytes())?;
        db.persist(PersistMode::SyncAll)?;
        let mut days = BTreeMap::new();
        let names: Vec<String> = db
            .list_keyspace_names()
            .into_iter()
            .map(|n| n.to_string())
            .collect();
        for name in names {
            if let Some(day) = name
                .strip_prefix("docs_")
                .and_then(|d| d.parse::<u32>().ok())
            {
                days.insert(day, Self::open_day(&db, day)?);
            }
        }
        // Markers come and go: a small memtable keeps their tombstones from holding memory.
        let dirty = db.keyspace("dirty", || {
            point_read_options().max_memtable_size(4 * 1024 * 1024)
        })?;
        let (tx, rx) = std::sync::mpsc::sync_channel(INDEX_CHANNEL);
        let missed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let parsed_out = Arc::new(AtomicUsize::new(0));
        let seq = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let store = Self {
            inner: Arc::new(Inner {
                db,
                meta,
                dirty,
                days: RwLock::new(days),
                write_lock: Mutex::new(()),
                index_lock: Mutex::new(()),
                notify_lock: Mutex::new(()),
                seq: AtomicU64::new(seq),
                pack_seq: AtomicU64::new(run << 40),
                pack_counts: Mutex::new(HashMap::new()),
                pack_second_cap: options.pack_second_cap,
                unsynced: std::sync::atomic::AtomicBool::new(false),
                dropped_before: AtomicU64::new(0),
                indexer: Indexer {
                    tx: Mutex::new(tx),
                    missed: Arc::clone(&missed),
                    parsed_out: Arc::clone(&parsed_out),
                    counters: Arc::default(),
                },
                indexer_thread: Mutex::new(None),
                path,
                min_free_bytes: options.min_free_bytes,
            }),
        };
        // Traces written but not indexed before the last stop.
        let (recovered, more) = store.dirty_traces(MAX_PENDING_TRACES)?;
        if !recovered.is_empty() {
            store
                .inner
                .indexer
                .missed
                .store(true, std::sync::atomic::Ordering::Release);
            tracing::info!(
                traces = recovered.len(),
                more,
                "re-indexing traces written before the last stop"
            );
        }
        let weak = Arc::downgrade(&store.inner);
        let handle = std::thread::Builder::new()
            .name("roentgen-indexer".into())
            .spawn(move || {
                // Storing comes first when the cores are short: what the indexer does not
                // get now it catches up on later, while a datagram the UDP thread is too
                // late for is gone. Failing to lower the priority changes nothing else.
                #[cfg(target_os = "linux")]
                let _ = rustix::process::setpriority_process(
                    Some(rustix::thread::gettid()),
                    INDEXER_NICE,
                );
                indexer_loop(weak, rx, missed, parsed_out)
            })
            .map_err(|e| StoreError::Task(format!("start the indexer: {e}")))?;
        *store
            .inner
            .indexer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(handle);
        let weak = Arc::downgrade(&store.inner);
        std::thread::Builder::new()
            .name("roentgen-syncer".into())
            .spawn(move || syncer_loop(weak))
            .map_err(|e| StoreError::Task(format!("start the syncer: {e}")))?;
        Ok(store)
    }

    /// Indexes everything written so far, stops the indexer and persists the journal.
    /// Writes after `close` are stored but indexed only after the next open.
    pub fn close_blocking(&self) -> Result<(), StoreError> {
        self.sync_index_blocking();
        let sender = self
            .inner
            .indexer
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let _ = sender.send(IndexMsg::Stop);
        let handle = self
            .inner
            .indexer_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            h.join()
                .map_err(|_| StoreError::Task("the indexer thread panicked".into()))?;
        }
        self.inner.db.persist(PersistMode::SyncAll)?;
        Ok(())
    }

    /// Every trace with a durable dirty marker.
    /// Up to `limit` traces with a durable dirty marker, and whether there are more.
    fn dirty_traces(&self, limit: usize) -> Result<(Vec<(TenantId, TraceId)>, bool), StoreError> {
        let mut out = Vec::new();
        for kv in self.inner.dirty.iter() {
            if out.len() >= limit {
                return Ok((out, true));
            }
            let k = kv.key()?;
            let Some((tp, rest)) = split_tenant(&k) else {
                continue;
            };
            let Ok(tb) = <[u8; 16]>::try_from(rest) else {
                continue;
            };
            let tenant = TenantId::new(String::from_utf8_lossy(&tp[1..]).into_owned())?;
            out.push((tenant, TraceId::from_bytes(tb)));
        }
        Ok((out, false))
    }

    /// Waits until every trace written before the call is indexed (summaries and
    /// rollups derived). Indexing otherwise follows writes within [`INDEX_DELAY`].
    pub fn sync_index_blocking(&self) {
        // The indexer answers once its queue is empty; a gone indexer means closing.
        let _ = self.inner.indexer.flush().recv();
    }

    fn open_day(db: &Database, day: u32) -> Result<DayParts, StoreError> {
        let ks = |p: &str| {
            db.keyspace(&format!("{p}{day}"), || {
                point_read_options().max_memtable_size(8 * 1024 * 1024)
            })
        };
        // Documents are large and written once: keep them out of the LSM's compactions.
        let docs = db.keyspace(&format!("{}{day}", PART_PREFIXES[0]), || {
            point_read_options()
                .max_memtable_size(16 * 1024 * 1024)
                .with_kv_separation(Some(fjall::KvSeparationOptions::default()))
        })?;
        let hour_name = format!("{}{day}", PART_PREFIXES[4]);
        // Days written before hour rollups existed get them from their minute rows.
        let backfill = !db.keyspace_exists(&hour_name);
        let parts = DayParts {
            docs,
            sums: ks(PART_PREFIXES[1])?,
            svcs: ks(PART_PREFIXES[2])?,
            roll: ks(PART_PREFIXES[3])?,
            hour: ks(PART_PREFIXES[4])?,
            scan: db.keyspace(&format!("{}{day}", PART_PREFIXES[5]), scan_options)?,
            packs: db.keyspace(&format!("{}{day}", PART_PREFIXES[6]), scan_options)?,
        };
        if backfill {
            Self::backfill_hours(db, &parts)?;
        }
        if !parts.scan.contains_key(SCAN_COMPLETE)? {
            Self::backfill_scan(db, &parts)?;
        }
        Ok(parts)
    }

    /// Writes the scan block of every summary of a day that has none yet (days
    /// written before scan blocks existed; a new day has no summaries), then the
    /// marker. Batches stay small; an interrupted backfill runs again on the next open.
    fn backfill_scan(db: &Database, parts: &DayParts) -> Result<(), StoreError> {
        const BATCH: usize = 10_000;
        let mut batch = db.batch().durability(Some(PersistMode::SyncData));
        let (mut pending, mut total) = (0, 0usize);
        for kv in parts.sums.iter() {
            let (k, v) = kv.into_inner()?;
            let stored = decode_summary(&v)?;
            batch.insert(&parts.scan, k, scan_block(&stored));
            pending += 1;
            if pending == BATCH {
                batch.commit()?;
                batch = db.batch().durability(Some(PersistMode::SyncData));
                total += pending;
                pending = 0;
            }
        }
        total += pending;
        if total > 0 {
            tracing::info!(summaries = total, "writing scan blocks of stored summaries");
        }
        batch.insert(&parts.scan, SCAN_COMPLETE, []);
        batch.commit()?;
        Ok(())
    }

    /// Writes the hour rows of a day from its minute rows.
    fn backfill_hours(db: &Database, parts: &DayParts) -> Result<(), StoreError> {
        let mut hours: BTreeMap<Vec<u8>, (Stats, crate::codec::MinuteCounts)> = BTreeMap::new();
        for kv in parts.roll.iter() {
            let (k, v) = kv.into_inner()?;
            let Some((tp, rest)) = split_tenant(&k) else {
                continue;
            };
            let Some((mb, graph_key)) = rest.split_first_chunk::<8>() else {
                continue;
            };
            let minute = u64::from_be_bytes(*mb);
            let mut hk = rollup_prefix(tp, minute / 60 * 60);
            hk.extend_from_slice(graph_key);
            let stats = crate::codec::decode_stats(&v).map_err(|e| corrupt("rollup", e))?;
            let (sum, counts) = hours
                .entry(hk)
                .or_insert_with(|| (Stats::default(), [0; 60]));
            sum.add(&stats, 1);
            counts[(minute % 60) as usize] += stats.count;
        }
        if hours.is_empty() {
            return Ok(());
        }
        tracing::info!(
            rows = hours.len(),
            "writing hour rollups from minute rollups"
        );
        let mut batch = db.batch().durability(Some(PersistMode::SyncData));
        for (k, (stats, counts)) in hours {
            batch.insert(&parts.hour, k, crate::codec::encode_hour(&stats, &counts));
        }
        batch.commit()?;
        Ok(())
    }

    fn day(&self, day: u32) -> Option<DayParts> {
        self.inner
            .days
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&day)
            .cloned()
    }

    fn day_or_create(&self, day: u32) -> Result<DayParts, StoreError> {
        if let Some(p) = self.day(day) {
            return Ok(p);
        }
        let mut days = self.inner.days.write().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = days.get(&day) {
            return Ok(p.clone());
        }
        let parts = Self::open_day(&self.inner.db, day)?;
        days.insert(day, parts.clone());
        Ok(parts)
    }

    fn days_between(&self, lo: u32, hi: u32) -> Vec<(u32, DayParts)> {
        self.inner
            .days
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .range(lo..=hi)
            .rev()
            .map(|(d, p)| (*d, p.clone()))
            .collect()
    }

    /// Day partitions present, oldest first (`YYYYMMDD`).
    pub fn days(&self) -> Vec<u32> {
        self.inner
            .days
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .copied()
            .collect()
    }

    /// Bytes on disk.
    pub fn disk_space(&self) -> u64 {
        self.inner.db.disk_space().unwrap_or(0)
    }

    fn write_blocking(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
        sync: bool,
    ) -> Result<WriteOutcome, StoreError> {
        if docs.is_empty() {
            return Ok(WriteOutcome::default());
        }
        // A write that would eat into the reserve is refused whole, before fjall sees
        // it: fjall stops for good after a failed write, and the reserve is what its
        // flushes and the indexer still need.
        if let Ok(available) = available_bytes(&self.inner.path)
            && available < self.inner.min_free_bytes
        {
            return Err(StoreError::DiskFull {
                path: self.inner.path.display().to_string(),
                available,
                reserve: self.inner.min_free_bytes,
            });
        }
        let tp = tenant.prefix();
        let doc_count = docs.len();
        let mut traces: Vec<(TraceId, Parsed)> = Vec::new();
        let mut slots: HashMap<TraceId, usize> = HashMap::new();
        let _notify = self
            .inner
            .notify_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let _guard = self
            .inner
            .write_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let seq_no = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let seq = seq_no.to_be_bytes();
        let mut batch = self.inner.db.batch().durability(Some(if sync {
            PersistMode::SyncData
        } else {
            PersistMode::Buffer
        }));
        let mut day: Option<(u32, DayParts)> = None;
        for d in docs {
            let (trace, id) = (d.trace_id(), d.id());
            let dn = day_of(u64::from(trace.epoch_seconds()));
            let parts = match &day {
                Some((n, p)) if *n == dn => p.clone(),
                _ => {
                    let p = self.day_or_create(dn)?;
                    day = Some((dn, p.clone()));
                    p
                }
            };
            let (raw, segment) = d.into_parts();
            batch.insert(&parts.docs, doc_key(&tp, &trace, id.0), raw.into_bytes());
            let slot = *slots.entry(trace).or_insert_with(|| {
                traces.push((trace, Parsed::new()));
                traces.len() - 1
            });
            traces[slot].1.insert(id.0, Box::new(segment));
        }
        for (t, _) in &traces {
            batch.insert(&self.inner.dirty, trace_key(&tp, t), seq);
        }
        batch.commit()?;
        if !sync {
            self.inner.unsynced.store(true, Ordering::Release);
        }
        let trace_count = traces.len();
        // Notes go out in commit order (the notify lock is held from before the write
        // lock), but without the write lock, which the indexer needs to finish a round.
        drop(_guard);
        self.inner.indexer.notify(tenant, traces, seq_no);
        drop(_notify);
        Ok(WriteOutcome {
            documents: doc_count,
            traces: trace_count,
        })
    }

    /// Re-derives the summaries and rollups of `traces` (the indexer's work).
    fn index_blocking(
        &self,
        traces: Vec<RoundTrace<'_>>,
        notes_complete: bool,
    ) -> Result<(), StoreError> {
        let _index = self
            .inner
            .index_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let now = now_seconds();
        let dropped_before = self.inner.dropped_before.load(Ordering::Relaxed);
        let mut batch = self.inner.db.batch();
        // Rollup changes by tenant prefix, then by minute and node or edge.
        let mut deltas: BTreeMap<Vec<u8>, BTreeMap<(u64, GraphKey), Stats>> = BTreeMap::new();
        // (key, marker as read, whether this round may clear it)
        let mut markers: Vec<(Vec<u8>, Option<fjall::UserValue>, bool)> = Vec::new();
        // This round's scan blocks by day, tenant prefix and second: one pack each.
        let mut packs: HashMap<(u32, Vec<u8>, u32), crate::pack::Blocks> = HashMap::new();
        let mut derivations = 0u64;
        let mut pack_counts = self
            .inner
            .pack_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if pack_counts.len() > PACK_COUNTED_SECONDS {
            pack_counts.clear();
        }
        for mut t in traces {
            // Everything made from the trace's documents is declared after `t`, so it is
            // dropped first; then `t._held` gives their share of the budget back.
            let parsed = t.parsed.take();
            let (trace, max_seq) = (&t.trace, t.max_seq);
            let tp = t.tenant.prefix();
            let tk = trace_key(&tp, trace);
            let marker = self.inner.dirty.get(&tk)?;
            let marker_seq = marker
                .as_deref()
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map(u64::from_be_bytes);
            let marker_at = markers.len();
            // Traces of dropped days have nothing left to index: their markers go.
            markers.push((tk.clone(), marker, true));
            let day = day_of(u64::from(trace.epoch_seconds()));
            if day_start(day) + 86_400 <= dropped_before {
                continue;
            }
            let Some(parts) = self.day(day) else {
                continue;
            };
            let old = match parts.sums.get(&tk)? {
                Some(v) => Some(decode_record(&v)?),
                None => None,
            };
            // The documents of the trace, by id: from the notes when they are known to
            // be complete (with the record's ids for what earlier rounds saw), else from
            // a prefix scan of the store.
            let mut current = Parsed::new();
            let clears = match (notes_complete, parsed) {
                (true, Some(notes)) => {
                    current = notes;
                    if let Some((_, ids, _)) = &old {
                        for id in ids {
                            if current.contains_key(id) {
                                continue;
                            }
                            if let Some(v) = parts.docs.get(doc_key(&tp, trace, *id))? {
                                let raw =
                                    std::str::from_utf8(&v).map_err(|e| corrupt("document", e))?;
                                let seg = parse_segment(raw).map_err(|e| corrupt("document", e))?;
                                current.insert(*id, Box::new(seg));
                            }
                        }
                    }
                    // A write whose note is not in this round (it was sent after the
                    // round began) keeps the marker for the next round.
                    marker_seq.is_none_or(|m| m <= max_seq)
                }
                (_, mut known) => {
                    // Documents already parsed in memory are not read back.
                    let in_memory = |id: u64| known.as_ref().is_some_and(|p| p.contains_key(&id));
                    for (id, v) in scan_trace_docs(&parts.docs, &tk, in_memory)? {
                        match v {
                            None => {
                                if let Some(seg) = known.as_mut().and_then(|p| p.remove(&id)) {
                                    current.insert(id, seg);
                                }
                            }
                            Some(v) => {
                                let raw =
                                    std::str::from_utf8(&v).map_err(|e| corrupt("document", e))?;
                                let seg = parse_segment(raw).map_err(|e| corrupt("document", e))?;
                                current.insert(id, Box::new(seg));
                            }
                        }
                    }
                    // The scan saw every write committed before the marker was read.
                    true
                }
            };
            markers[marker_at].2 = clears;
            let ids: Vec<u64> = current.keys().copied().collect();
            let segs: Vec<&Segment> = current.values().map(|s| &**s).collect();
            let Some(derived) = derive(*trace, &segs) else {
                continue;
            };
            derivations += 1;
            let (revision, old_graph, old_services) = match &old {
                Some((s, _, g)) => (
                    s.revision.saturating_add(1),
                    g.as_slice(),
                    s.summary.services.as_slice(),
                ),
                None => (1, &[][..], &[][..]),
            };
            for svc in &derived.summary.services {
                if !old_services.iter().any(|o| o.name == svc.name) {
                    batch.insert(&parts.svcs, service_key(&tp, &svc.name, Some(trace)), []);
                }
            }
            let tenant_deltas = deltas.entry(tp.clone()).or_default();
            for (m, k, s) in old_graph {
                tenant_deltas.entry((*m, k.clone())).or_default().add(s, -1);
            }
            let new_graph: GraphRows = derived
                .graph
                .into_iter()
                .map(|((m, k), s)| (m, k, s))
                .collect();
            for (m, k, s) in &new_graph {
                tenant_deltas.entry((*m, k.clone())).or_default().add(s, 1);
            }
            let stored = StoredSummary {
                summary: derived.summary,
                revision,
                updated_at: now,
            };
            let block = scan_block(&stored);
            let sec = trace.epoch_seconds();
            let packed = pack_counts.entry((tp.clone(), sec)).or_insert(0);
            if *packed < self.inner.pack_second_cap {
                *packed += 1;
                packs
                    .entry((day, tp.clone(), sec))
                    .or_default()
                    .push((trace.to_bytes(), block));
            } else {
                batch.insert(&parts.scan, tk.clone(), block);
            }
            batch.insert(&parts.sums, tk, encode_record(&stored, &ids, &new_graph));
        }
        drop(pack_counts);
        for ((day, tp, sec), mut entries) in packs {
            let Some(parts) = self.day(day) else {
                continue;
            };
            let seq = self.inner.pack_seq.fetch_add(1, Ordering::Relaxed);
            batch.insert(
                &parts.packs,
                pack_key(&tp, sec, seq),
                crate::pack::encode(&mut entries),
            );
        }
        // Rollups are only ever changed here, by the one indexer, so read-modify-write
        // is safe. Each minute's change goes to its hour row too.
        type HourDelta = (Stats, crate::codec::MinuteCounts);
        let mut hour_deltas: BTreeMap<(Vec<u8>, u64, Vec<u8>), HourDelta> = BTreeMap::new();
        let deltas = deltas.into_iter().flat_map(|(tp, by_key)| {
            by_key
                .into_iter()
                .map(move |((minute, key), delta)| (tp.clone(), minute, key, delta))
        });
        for (tp, minute, key, delta) in deltas {
            if delta.is_empty() && delta.total_response_time == 0.0 {
                continue;
            }
            let parts = self.day_or_create(day_of(minute * 60))?;
            let mut rk = rollup_prefix(&tp, minute);
            // Serializing a plain struct cannot fail.
            let key_bytes = serde_json::to_vec(&key).unwrap_or_default();
            rk.extend_from_slice(&key_bytes);
            let mut cur: Stats = match parts.roll.get(&rk)? {
                Some(v) => crate::codec::decode_stats(&v).map_err(|e| corrupt("rollup", e))?,
                None => Stats::default(),
            };
            cur.add(&delta, 1);
            if cur.is_empty() {
                batch.remove(&parts.roll, rk);
            } else {
                batch.insert(&parts.roll, rk, crate::codec::encode_stats(&cur));
            }
            let (sum, counts) = hour_deltas
                .entry((tp, minute / 60 * 60, key_bytes))
                .or_insert_with(|| (Stats::default(), [0; 60]));
            sum.add(&delta, 1);
            counts[(minute % 60) as usize] += delta.count;
        }
        for ((tp, hour, key_bytes), (delta, delta_counts)) in hour_deltas {
            let parts = self.day_or_create(day_of(hour * 60))?;
            let mut hk = rollup_prefix(&tp, hour);
            hk.extend_from_slice(&key_bytes);
            let (mut cur, mut counts) = match parts.hour.get(&hk)? {
                Some(v) => crate::codec::decode_hour(&v).map_err(|e| corrupt("rollup", e))?,
                None => (Stats::default(), [0; 60]),
            };
            cur.add(&delta, 1);
            for (c, d) in counts.iter_mut().zip(delta_counts) {
                *c += d;
            }
            if cur.is_empty() && counts.iter().all(|c| *c == 0) {
                batch.remove(&parts.hour, hk);
            } else {
                batch.insert(&parts.hour, hk, crate::codec::encode_hour(&cur, &counts));
            }
        }
        // The derivation is committed first, without the write lock, so writers do not
        // wait for it. The markers go after it: a crash in between leaves them, and
        // deriving those traces again changes nothing (the rollups move by the
        // difference to the stored record, which is then the same).
        batch.commit()?;
        // A marker rewritten by a write since it was read stays: that write's documents
        // may not be in this derivation, and the marker is what survives a crash.
        let mut cleared = self.inner.db.batch();
        let _guard = self
            .inner
            .write_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (key, seen, clears) in markers {
            if clears && self.inner.dirty.get(&key)? == seen {
                cleared.remove(&self.inner.dirty, key);
            }
        }
        cleared.commit()?;
        self.inner
            .indexer
            .counters
            .derived
            .fetch_add(derivations, Ordering::Relaxed);
        Ok(())
    }

    fn get_traces_blocking(
        &self,
        tenant: &TenantId,
        ids: &[TraceId],
    ) -> Result<Vec<StoredTrace>, StoreError> {
        let tp = tenant.prefix();
        let mut out = Vec::new();
        for id in ids {
            let Some(parts) = self.day(day_of(u64::from(id.epoch_seconds()))) else {
                continue;
            };
            let tk = trace_key(&tp, id);
            let record = parts.sums.get(&tk)?;
            let mut documents = Vec::new();
            let raw_doc =
                |v: &[u8]| String::from_utf8(v.to_vec()).map_err(|e| corrupt("document", e));
            match &record {
                // Indexed and nothing written since: the record lists every document,
                // and point reads (bloom-filtered) beat a prefix scan of every table.
                Some(rec) if !self.inner.dirty.contains_key(&tk)? => {
                    for doc in decode_ids(split_record(rec)?.ids) {
                        if let Some(v) = parts.docs.get(doc_key(&tp, id, doc))? {
                            documents.push((SegmentId(doc), raw_doc(&v)?));
                        }
                    }
                }
                _ => {
                    for (doc, v) in scan_trace_docs(&parts.docs, &tk, |_| false)? {
                        if let Some(v) = v {
                            documents.push((SegmentId(doc), raw_doc(&v)?));
                        }
                    }
                }
            }
            if documents.is_empty() {
                continue;
            }
            let summary = match &record {
                Some(v) => Some(decode_summary(v)?),
                None => None,
            };
            out.push(StoredTrace {
                trace_id: *id,
                documents,
                summary,
            });
        }
        Ok(out)
    }

    fn query_blocking(
        &self,
        tenant: &TenantId,
        q: &SummaryQuery,
    ) -> Result<SummaryPage, StoreError> {
        let tp = tenant.prefix();
        let compiled = match &q.filter {
            Some(text) => crate::CompiledFilter::with_groups(text, &q.groups)?,
            None => None,
        };
        if compiled
            .as_ref()
            .is_some_and(|c| c.pushdown.matches_nothing)
        {
            return Ok(SummaryPage::default());
        }
        let service = q
            .service
            .clone()
            .or_else(|| compiled.as_ref().and_then(|c| c.service.clone()));
        let crate::QueryWindow { lo_sec, hi_sec, .. } = q.window();
        let cursor = q.cursor_bytes()?;
        let hi_day = match cursor {
            Some(c) => day_of(u64::from(TraceId::from_bytes(c).epoch_seconds())),
            None => day_of(u64::from(hi_sec)),
        };
        let lo_day = day_of(u64::from(lo_sec));

        let mut page = SummaryPage::default();
        let limit = q.limit.max(1);
        let budget = q.scan_budget.max(limit);
        let mut last_examined: Option<[u8; 16]> = None;

        // The summary parts a time-range scan's checks read (the service-index path
        // judges whole summaries). When the scan blocks hold them all, a scan reads
        // those and decodes a whole summary only to return it.
        let needs = if q.predicate.is_some() {
            roentgen_filter::Needs::ALL
        } else {
            compiled
                .as_ref()
                .map_or(roentgen_filter::Needs::NONE, |c| c.needs)
        };
        let use_scan = crate::scan::SCANNABLE.contains(needs);
        let annotation_keys = compiled.as_ref().and_then(|c| c.annotation_keys.as_deref());
        // One snapshot for the page: plain reads see a batch while it is being applied
        // (fjall reads at the newest sequence number), so a scan block could be seen
        // before the summary written beside it.
        let snap = self.inner.db.snapshot();
        // The summary of a scan block; `None` only when the day is being dropped.
        let whole = |parts: &DayParts, tk: &[u8]| -> Result<Option<StoredSummary>, StoreError> {
            snap.get(&parts.sums, tk)?
                .map(|v| decode_summary(&v))
                .transpose()
        };
        let accept = |s: &StoredSummary| q.accepts(s, service.as_deref(), compiled.as_ref());

        // The summary each scan block is decoded into, reused from block to block.
        let mut scratch = crate::scan::empty();
        // Judges the scan block `v` of trace `tid` and adds the trace's whole summary to
        // `out` when the query accepts it.
        let mut judge = |parts: &DayParts,
                         v: &[u8],
                         tid: TraceId,
                         out: &mut Vec<StoredSummary>|
         -> Result<(), StoreError> {
            crate::scan::decode_scan_into(v, tid, needs, annotation_keys, &mut scratch)
                .map_err(|e| corrupt("scan block", e))?;
            if accept(&scratch) {
                out.extend(whole(parts, &trace_key(&tp, &tid))?);
            }
            Ok(())
        };
        // One second's packs at a time, reused.
        let mut second: crate::pack::Second<fjall::UserValue> = crate::pack::Second::default();
        'days: for (_, parts) in self.days_between(lo_day, hi_day) {
            let lower = time_key(&tp, lo_sec);
            let mut upper = match cursor {
                Some(c) => {
                    let mut k = tp.clone();
                    k.extend_from_slice(&c);
                    k
                }
                None => time_key(&tp, hi_sec.saturating_add(1)),
            };
            if cursor.is_none() && hi_sec == u32::MAX {
                upper = tp.clone();
                upper.extend_from_slice(&[0xff; 17]);
            }
            // Candidates: the service index when a service is pushed down, else the
            // scan blocks (packs and loose ones) or the summaries themselves.
            if let Some(name) = service.as_deref() {
                let base = service_key(&tp, name, None);
                let mut lo_k = base.clone();
                lo_k.extend_from_slice(&lower[tp.len()..]);
                let mut hi_k = base.clone();
                hi_k.extend_from_slice(&upper[tp.len()..]);
                for kv in snap.range(&parts.svcs, lo_k..hi_k).rev() {
                    let k = kv.key()?;
                    let Ok(tb) = <[u8; 16]>::try_from(&k[base.len()..]) else {
                        continue;
                    };
                    let tid = TraceId::from_bytes(tb);
                    last_examined = Some(tb);
                    page.scanned += 1;
                    // A point read of the summary: scan blocks are in packs of a second,
                    // too large to read for one trace.
                    if let Some(v) = snap.get(&parts.sums, trace_key(&tp, &tid))? {
                        let s = decode_summary(&v)?;
                        if accept(&s) {
                            page.summaries.push(s);
                        }
                    }
                    if page.summaries.len() >= limit || page.scanned >= budget {
                        break 'days;
                    }
                }
            } else if use_scan {
                // Packs hold one second each, so their range ends past the cursor's
                // second (its packs' entries are cut at the cursor).
                let pack_upper = match cursor {
                    Some(c) => match TraceId::from_bytes(c).epoch_seconds().checked_add(1) {
                        Some(next) => time_key(&tp, next),
                        None => {
                            let mut k = tp.clone();
                            k.extend_from_slice(&[0xff; 13]);
                            k
                        }
                    },
                    None => upper.clone(),
                };
                let mut packs = snap.range(&parts.packs, lower.clone()..pack_upper).rev();
                let mut next_pack = || -> Result<Option<(u32, fjall::UserValue)>, StoreError> {
                    for kv in packs.by_ref() {
                        let (k, v) = kv.into_inner()?;
                        let Some(sec) = k
                            .get(tp.len()..tp.len() + 4)
                            .filter(|_| k.len() == tp.len() + 12)
                            .and_then(|b| <[u8; 4]>::try_from(b).ok())
                        else {
                            continue;
                        };
                        return Ok(Some((u32::from_be_bytes(sec), v)));
                    }
                    Ok(None)
                };
                let mut loose = snap.range(&parts.scan, lower..upper).rev();
                let mut next_loose =
                    || -> Result<Option<([u8; 16], fjall::UserValue)>, StoreError> {
                        for kv in loose.by_ref() {
                            let (k, v) = kv.into_inner()?;
                            if let Ok(tb) = <[u8; 16]>::try_from(&k[tp.len()..]) {
                                return Ok(Some((tb, v)));
                            }
                        }
                        Ok(None)
                    };
                // Two streams by trace id, highest first: the packs, a second at a
                // time, and the loose blocks. Of a trace in both, the higher revision
                // is judged.
                let mut ahead = next_pack()?;
                let mut l = next_loose()?;
                second.clear();
                loop {
                    second.refill(&mut ahead, &mut next_pack, cursor.as_ref(), |e| {
                        corrupt("scan pack", e)
                    })?;
                    let from_pack = match (second.peek(), &l) {
                        (None, None) => break,
                        (Some(_), None) => true,
                        (None, Some(_)) => false,
                        (Some(p), Some((lt, lv))) => match p.tid.cmp(lt) {
                            std::cmp::Ordering::Greater => true,
                            std::cmp::Ordering::Less => false,
                            std::cmp::Ordering::Equal => {
                                let loose_revision = crate::scan::revision_of(lv)
                                    .map_err(|e| corrupt("scan block", e))?;
                                if p.revision >= loose_revision {
                                    l = next_loose()?;
                                    true
                                } else {
                                    second.pop();
                                    false
                                }
                            }
                        },
                    };
                    let tb = if from_pack {
                        let Some(e) = second.pop() else { break };
                        let tid = TraceId::from_bytes(e.tid);
                        judge(&parts, second.block(&e), tid, &mut page.summaries)?;
                        e.tid
                    } else {
                        let Some((tb, v)) = l.take() else { break };
                        judge(&parts, &v, TraceId::from_bytes(tb), &mut page.summaries)?;
                        l = next_loose()?;
                        tb
                    };
                    last_examined = Some(tb);
                    page.scanned += 1;
                    if page.summaries.len() >= limit || page.scanned >= budget {
                        break 'days;
                    }
                }
            } else {
                for kv in snap.range(&parts.sums, lower..upper).rev() {
                    let (k, v) = kv.into_inner()?;
                    let Ok(tb) = <[u8; 16]>::try_from(&k[tp.len()..]) else {
                        continue;
                    };
                    last_examined = Some(tb);
                    page.scanned += 1;
                    let s = decode_summary(&v)?;
                    if accept(&s) {
                        page.summaries.push(s);
                    }
                    if page.summaries.len() >= limit || page.scanned >= budget {
                        break 'days;
                    }
                }
            }
            last_examined = None;
        }
        // Stopped early (limit or budget) → resume strictly below the last key examined.
        page.next = last_examined.map(hex::encode);
        Ok(page)
    }

    /// Rollup rows of `[start_minute, end_minute]`: minute rows; with `step >= 60`
    /// hour rows for the hours wholly inside the window and minute rows at its ends;
    /// with `step` beyond the window, one row per node and edge.
    fn rollups_blocking(
        &self,
        tenant: &TenantId,
        start_minute: u64,
        end_minute: u64,
        step: u64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let tp = tenant.prefix();
        let merge = step > end_minute.saturating_sub(start_minute);
        let mut sink = RollupSink {
            merge,
            keys: HashMap::new(),
            rows: Vec::new(),
            merged: HashMap::new(),
        };
        let (first_hour, end_hour) = (start_minute.div_ceil(60) * 60, (end_minute + 1) / 60 * 60);
        if step < 60 || first_hour >= end_hour {
            self.scan_rollups(&tp, start_minute, end_minute, false, &mut sink)?;
        } else {
            if start_minute < first_hour {
                self.scan_rollups(&tp, start_minute, first_hour - 1, false, &mut sink)?;
            }
            self.scan_rollups(&tp, first_hour, end_hour - 60, true, &mut sink)?;
            if end_hour <= end_minute {
                self.scan_rollups(&tp, end_hour, end_minute, false, &mut sink)?;
            }
        }
        Ok(if merge {
            sink.merged.into_values().collect()
        } else {
            sink.rows
        })
    }

    /// Passes the minute rows (or, with `hours`, the hour rows) of
    /// `[lo_minute, hi_minute]` to `sink`.
    fn scan_rollups(
        &self,
        tp: &[u8],
        lo_minute: u64,
        hi_minute: u64,
        hours: bool,
        sink: &mut RollupSink,
    ) -> Result<(), StoreError> {
        let lo_day = day_of(lo_minute * 60);
        let hi_day = day_of(hi_minute * 60);
        for (_, parts) in self.days_between(lo_day, hi_day).into_iter().rev() {
            let lo = rollup_prefix(tp, lo_minute);
            let hi = rollup_prefix(tp, hi_minute.saturating_add(1));
            let keyspace = if hours { &parts.hour } else { &parts.roll };
            for kv in keyspace.range(lo..hi) {
                let (k, v) = kv.into_inner()?;
                // The range is within the tenant's prefix; a key too short for a
                // minute is corrupt.
                let Some((mb, raw_key)) =
                    k.get(tp.len()..).and_then(<[u8]>::split_first_chunk::<8>)
                else {
                    return Err(corrupt("rollup key", "shorter than its minute"));
                };
                let minute = u64::from_be_bytes(*mb);
                let (first, last, stats) = if hours {
                    let (stats, counts) =
                        crate::codec::decode_hour(&v).map_err(|e| corrupt("rollup", e))?;
                    let active = |i: Option<usize>| minute + i.unwrap_or(0) as u64;
                    (
                        active(counts.iter().position(|c| *c > 0)),
                        active(counts.iter().rposition(|c| *c > 0)),
                        stats,
                    )
                } else {
                    let stats = crate::codec::decode_stats(&v).map_err(|e| corrupt("rollup", e))?;
                    (minute, minute, stats)
                };
                sink.push(raw_key, first, last, stats)?;
            }
        }
        Ok(())
    }

    fn drop_before_blocking(&self, epoch_seconds: u64) -> Result<Vec<u32>, StoreError> {
        let _index = self
            .inner
            .index_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.inner
            .dropped_before
            .fetch_max(epoch_seconds, Ordering::Relaxed);
        let _guard = self
            .inner
            .write_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let expired: Vec<(u32, DayParts)> = {
            let mut days = self.inner.days.write().unwrap_or_else(|e| e.into_inner());
            let old: Vec<u32> = days
                .keys()
                .copied()
                .filter(|d| day_start(*d) + 86_400 <= epoch_seconds)
                .collect();
            old.into_iter()
                .filter_map(|d| days.remove(&d).map(|p| (d, p)))
                .collect()
        };
        let mut dropped = Vec::new();
        for (day, parts) in expired {
            for ks in [
                parts.docs,
                parts.sums,
                parts.svcs,
                parts.roll,
                parts.hour,
                parts.scan,
                parts.packs,
            ] {
                self.inner.db.delete_keyspace(ks)?;
            }
            dropped.push(day);
        }
        Ok(dropped)
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
}

#[async_trait]
impl Store for EmbeddedStore {
    async fn write(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
    ) -> Result<WriteOutcome, StoreError> {
        let (s, t) = (self.clone(), tenant.clone());
        blocking(move || s.write_blocking(&t, docs, true)).await
    }

    async fn write_unacknowledged(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
    ) -> Result<WriteOutcome, StoreError> {
        let (s, t) = (self.clone(), tenant.clone());
        blocking(move || s.write_blocking(&t, docs, false)).await
    }

    async fn get_traces(
        &self,
        tenant: &TenantId,
        ids: &[TraceId],
    ) -> Result<Vec<StoredTrace>, StoreError> {
        let (s, t, ids) = (self.clone(), tenant.clone(), ids.to_vec());
        blocking(move || s.get_traces_blocking(&t, &ids)).await
    }

    async fn query_summaries(
        &self,
        tenant: &TenantId,
        query: SummaryQuery,
    ) -> Result<SummaryPage, StoreError> {
        let (s, t) = (self.clone(), tenant.clone());
        blocking(move || s.query_blocking(&t, &query)).await
    }

    async fn rollups(
        &self,
        tenant: &TenantId,
        start_minute: u64,
        end_minute: u64,
        step: u64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let (s, t) = (self.clone(), tenant.clone());
        blocking(move || s.rollups_blocking(&t, start_minute, end_minute, step)).await
    }

    async fn put_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError> {
        let s = self.clone();
        let key = config_key(tenant, kind, Some(name));
        blocking(move || {
            let mut b = s.inner.db.batch().durability(Some(PersistMode::SyncData));
            b.insert(
                &s.inner.meta,
                key,
                serde_json::to_vec(&value).unwrap_or_default(),
            );
            b.commit()?;
            Ok(())
        })
        .await
    }

    async fn list_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let s = self.clone();
        let prefix = config_key(tenant, kind, None);
        blocking(move || {
            let mut out = Vec::new();
            for kv in s.inner.meta.prefix(&prefix) {
                let (k, v) = kv.into_inner()?;
                let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                let value = serde_json::from_slice(&v).map_err(|e| corrupt("config", e))?;
                out.push((name, value));
            }
            Ok(out)
        })
        .await
    }

    async fn delete_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: &str,
    ) -> Result<bool, StoreError> {
        let s = self.clone();
        let key = config_key(tenant, kind, Some(name));
        blocking(move || {
            if !s.inner.meta.contains_key(&key)? {
                return Ok(false);
            }
            let mut b = s.inner.db.batch().durability(Some(PersistMode::SyncData));
            b.remove(&s.inner.meta, key);
            b.commit()?;
            Ok(true)
        })
        .await
    }

    async fn close(&self) -> Result<(), StoreError> {
        let s = self.clone();
        blocking(move || s.close_blocking()).await
    }

    async fn sync_index(&self) -> Result<(), StoreError> {
        let s = self.clone();
        blocking(move || {
            s.sync_index_blocking();
            Ok(())
        })
        .await
    }

    fn counters(&self) -> Vec<crate::StoreCounter> {
        let c = &self.inner.indexer.counters;
        let counter = crate::StoreCounter::read;
        vec![
            counter(
                "roentgen_index_derivations",
                "Trace summaries derived by the indexer (a trace once per round it is in)",
                &c.derived,
            ),
            counter(
                "roentgen_index_unparsed_traces",
                "Traces handed to the indexer without their parsed documents (memory budget \
                 reached); it read them back from the store",
                &c.unparsed,
            ),
            counter(
                "roentgen_index_deferred_traces",
                "Traces written while the indexer's channel was full; indexed later from \
                 their markers on disk",
                &c.deferred,
            ),
        ]
    }

    async fn drop_before(&self, epoch_seconds: u64) -> Result<Vec<u32>, StoreError> {
        let s = self.clone();
        blocking(move || s.drop_before_blocking(epoch_seconds)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SummaryQuery, TimeRangeType};

    const T0: u32 = 1_700_000_000;

    fn doc(n: u32, id: u32) -> Document {
        Document::parse(format!(
            r#"{{"trace_id":"1-{T0:08x}-{n:024x}","id":"{id:016x}","name":"svc","start_time":{T0},"end_time":{T0}.5}}"#
        ))
        .expect("valid")
    }

    fn document_counts(store: &EmbeddedStore) -> BTreeMap<u32, usize> {
        let mut counts = BTreeMap::new();
        let mut cursor = None;
        loop {
            let q = SummaryQuery {
                start: f64::from(T0 - 10),
                end: f64::from(T0 + 10),
                time_range_type: TimeRangeType::TraceId,
                service: None,
                filter: None,
                groups: Vec::new(),
                predicate: None,
                cursor,
                limit: 1000,
                scan_budget: 1000,
            };
            let page = store
                .query_blocking(&TenantId::default(), &q)
                .expect("query");
            for s in &page.summaries {
                let n = u32::from_str_radix(&s.summary.trace_id.to_string()[11..], 16);
                counts.insert(n.expect("hex"), s.summary.document_count);
            }
            match page.next {
                Some(c) => cursor = Some(c),
                None => return counts,
            }
        }
    }

    /// A summary with every part the stored form has: annotations of each type, users,
    /// `http`, AWS and remote subsegments, a fault, an error and a throttle, two
    /// services, root causes.
    fn rich_derivation() -> roentgen_model::trace::Derived {
        let root = format!(
            r#"{{"trace_id":"1-{T0:08x}-{n:024x}","id":"00000000000000a1","name":"web","origin":"AWS::EC2::Instance","start_time":{T0}.125,"end_time":{T0}.75,"user":"alice","fault":true,"http":{{"request":{{"method":"GET","url":"https://web.example.com/x?y=%22z%22&q=\\u00e9","client_ip":"10.0.0.1"}},"response":{{"status":500}}}},"annotations":{{"tier":"gold","items":3,"ratio":0.25,"vip":true}},"aws":{{"ec2":{{"instance_id":"i-0123","availability_zone":"us-east-1a"}}}},"subsegments":[{{"id":"00000000000000b1","name":"DynamoDB","namespace":"aws","start_time":{T0}.2,"end_time":{T0}.3,"throttle":true,"error":true,"http":{{"response":{{"status":429}}}},"aws":{{"operation":"GetItem","table_name":"orders"}}}},{{"id":"00000000000000b2","name":"orders","namespace":"remote","start_time":{T0}.3,"end_time":{T0}.7,"fault":true,"cause":{{"exceptions":[{{"message":"boom ünïcode","type":"Err"}}]}},"http":{{"request":{{"method":"POST","url":"http://orders/c"}},"response":{{"status":502}}}}}}]}}"#,
            n = 42
        );
        let child = format!(
            r#"{{"trace_id":"1-{T0:08x}-{n:024x}","id":"00000000000000c1","parent_id":"00000000000000b2","name":"orders","start_time":{T0}.31,"end_time":{T0}.69,"fault":true,"http":{{"request":{{"method":"POST","url":"http://orders/c"}},"response":{{"status":502}}}}}}"#,
            n = 42
        );
        let docs = [
            Document::parse(root).expect("root"),
            Document::parse(child).expect("child"),
        ];
        let segs: Vec<_> = docs.iter().map(Document::segment).collect();
        derive(docs[0].trace_id(), &segs).expect("a summary")
    }

    /// Records are written in MessagePack and read back equal, floats to the bit;
    /// records written before (the summary as JSON) still read.
    #[test]
    fn summary_records_round_trip_and_json_records_still_read() {
        let derived = rich_derivation();
        let stored = StoredSummary {
            summary: derived.summary,
            revision: 7,
            updated_at: f64::from(T0) + 0.123_456_789,
        };
        assert!(stored.summary.has_fault && stored.summary.has_error);
        assert!(
            stored.summary.annotations.len() >= 4,
            "{:?}",
            stored.summary.annotations
        );
        let graph: GraphRows = derived
            .graph
            .into_iter()
            .map(|((m, k), s)| (m, k, s))
            .collect();
        assert!(!graph.is_empty());
        let ids = [0xa1, 0xc1];
        let record = encode_record(&stored, &ids, &graph);
        let parts = split_record(&record).expect("parts");
        assert_ne!(parts.summary.first(), Some(&b'{'), "not JSON");
        let (back, back_ids, back_graph) = decode_record(&record).expect("decode");
        assert_eq!(back, stored);
        assert_eq!(back.updated_at.to_bits(), stored.updated_at.to_bits());
        assert_eq!(back_ids, ids);
        assert_eq!(back_graph, graph);
        assert_eq!(decode_summary(&record).expect("summary"), stored);

        // The layout of earlier records: the summary part is JSON.
        let json = serde_json::to_vec(&stored).expect("json");
        let mut old = (json.len() as u32).to_be_bytes().to_vec();
        old.extend_from_slice(&json);
        old.extend_from_slice(&record[4 + parts.summary.len()..]);
        let (old_back, old_ids, old_graph) = decode_record(&old).expect("decode old");
        assert_eq!(old_back, stored);
        assert_eq!((old_ids, old_graph), (back_ids, back_graph));

        // A damaged summary is an error, not a panic, in either form.
        for damaged in [&record, &old] {
            let mut bad = damaged.clone();
            bad[4 + 1..4 + 9].fill(0xc1);
            assert!(matches!(
                decode_record(&bad),
                Err(StoreError::Corrupt { .. })
            ));
        }
    }

    /// With the indexer stalled, writes still return: past the parsed-document budget
    /// notes name traces only, past the channel they are dropped and the traces found
    /// again from their markers. Once it runs again, every document of every trace is
    /// in its summary, including second documents noted while the first ones' notes
    /// were dropped.
    #[test]
    fn writes_never_wait_for_the_indexer_and_nothing_goes_unindexed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let t = TenantId::default();
        let stall = store
            .inner
            .index_lock
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        // The indexer takes this note, waits out the delay, then waits for the lock.
        store
            .write_blocking(&t, vec![doc(0, 1)], false)
            .expect("write");
        std::thread::sleep(INDEX_DELAY * 3);
        let big = MAX_PARSED_IN_MEMORY as u32 + 1;
        // Trace numbers of the big write, apart from the small writes' 1..=3 × channel.
        const BIG_FROM: u32 = 1_000_000;
        let writer = {
            let store = store.clone();
            let (done, finished) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let t = TenantId::default();
                // Over the budget: noted without documents.
                let docs = (BIG_FROM..BIG_FROM + big).map(|n| doc(n, 1)).collect();
                store.write_blocking(&t, docs, false).expect("write");
                // More writes than the channel holds.
                for n in 1..=(INDEX_CHANNEL as u32 * 3) {
                    store
                        .write_blocking(&t, vec![doc(n, 1)], false)
                        .expect("write");
                }
                let _ = done.send(());
            });
            finished
        };
        let waited = writer.recv_timeout(Duration::from_secs(60));
        drop(stall);
        assert!(waited.is_ok(), "writes waited for a stalled indexer");
        let c = &store.inner.indexer.counters;
        assert_eq!(c.unparsed.load(Ordering::Relaxed), u64::from(big));
        let deferred = c.deferred.load(Ordering::Relaxed);
        assert!(deferred >= INDEX_CHANNEL as u64, "deferred {deferred}");
        // Second documents of the same traces, while the dropped notes' traces may
        // still be waiting on disk only.
        for n in 1..=(INDEX_CHANNEL as u32 * 3) {
            store
                .write_blocking(&t, vec![doc(n, 2)], false)
                .expect("write");
        }
        store.sync_index_blocking();
        let counts = document_counts(&store);
        assert_eq!(counts.len(), 1 + big as usize + INDEX_CHANNEL * 3);
        assert_eq!(counts.get(&0), Some(&1));
        for n in 1..=(INDEX_CHANNEL as u32 * 3) {
            assert_eq!(counts.get(&n), Some(&2), "trace {n}");
        }
        assert!((BIG_FROM..BIG_FROM + big).all(|n| counts.get(&n) == Some(&1)));
        assert_eq!(store.inner.indexer.parsed_out.load(Ordering::Acquire), 0);
    }
}
