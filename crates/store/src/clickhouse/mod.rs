//! The ClickHouse store: the same contract as the embedded store, over ClickHouse's HTTP
//! interface, so any number of stateless `roentgen serve` nodes can share one database.
//!
//! Writes: [`Store::write`] inserts the batch's documents in one `INSERT` (retried with
//! backoff and host fail-over) and returns only once ClickHouse answered it, so an
//! acknowledged write is in ClickHouse. The ingest queue in front of the store bounds
//! what waits (and answers `ThrottledException` when it is full); the batch it hands
//! over is everything queued while the previous insert ran, which gives large inserts
//! under load. The written traces then go to this node's deriver through a bounded
//! channel (a full channel makes writes wait: backpressure, never an unbounded buffer).
//!
//! Derivation: one deriver per node gathers the written traces into rounds. A round
//! starts [`DERIVE_WINDOW`] after its first trace arrived (a trace's segments that
//! arrive within it are derived once, together), when it holds [`DERIVE_ROUND`] traces,
//! or when a flush asks for it, and never while the previous round runs: the next one
//! gathers meanwhile, so under load rounds grow with ClickHouse's latency and their
//! number (each costs ClickHouse new parts in three tables, and the merges of them)
//! stays small. A round reads the revision and graph of each trace's newest summary; a trace seen before
//! is re-derived from all of its documents as ClickHouse holds them (whichever node
//! wrote them), a new one from the documents in hand. It inserts the summary with
//! revision + 1 and, into the rollups, the difference between the trace's new and old
//! graph statistics, so rollups stay exact when a trace is re-derived.
//!
//! Reads: summaries are found by SQL over the columns the filter pushdown pins
//! (services, annotation keys, flags, response time and duration bounds, time range)
//! and the full expression is evaluated in Rust on the newest revision of each
//! candidate. Rollups are summed by ClickHouse (`sum`, `sumMap`) per minute and key.

pub mod client;
mod schema;

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use roentgen_model::document::parse_segment;
use roentgen_model::{Document, GraphKey, Segment, SegmentId, Stats, TraceId, derive};
use tokio::sync::{mpsc, oneshot};

pub use client::ClickHouseConfig;
use client::{Client, quote, rows, tsv_escape, tsv_unescape};

use crate::codec::GraphRows;
use crate::keys::{TenantId, day_of, day_start};
use crate::{
    CompiledFilter, ConfigKind, RollupRow, Store, StoreError, StoredSummary, StoredTrace,
    SummaryPage, SummaryQuery, TimeRangeType, WriteOutcome,
};

/// How far before a query's start an `Event` or `Service` range looks for traces.
pub const EVENT_LOOKBACK_SECONDS: u64 = crate::embedded::EVENT_LOOKBACK_SECONDS;

/// How long the ingest writer holds a batch of UDP documents open so that it grows
/// (see [`crate::WriteBatching`]). ClickHouse pays per insert: each makes a part of
/// `docs` and `pending`, and background merges rewrite small parts again and again.
/// Measured on the project machine (ClickHouse 18.16, 200,000 ~1.2 KB documents at
/// 20,000/s): 35–40 µs of ClickHouse CPU per document in inserts of 465 rows, 16–17 µs
/// in inserts of 2,000–5,000, 9 µs in inserts of 20,000 (docs/performance.md).
pub const INSERT_LINGER: std::time::Duration = std::time::Duration::from_secs(1);
/// Most documents in one lingering insert.
pub const INSERT_MAX_DOCUMENTS: usize = 20_000;

/// Most write batches waiting for the deriver beyond the round it gathers; past it
/// writes wait.
const DERIVE_CHANNEL: usize = 2;
/// Most traces in one derivation round. While a round runs, the deriver gathers up
/// to this many for the next; past it, writes wait (backpressure).
const DERIVE_ROUND: usize = 2_000;
/// Longest a written trace waits for its derivation round to start (unless the round
/// fills up or a flush asks for it first).
pub const DERIVE_WINDOW: std::time::Duration = std::time::Duration::from_millis(250);
/// Most trace ids in one `IN (…)` list (35 bytes each; ClickHouse 18.16 limits a query
/// to 256 KiB).
const IN_CHUNK: usize = 5_000;

enum DeriveMsg {
    /// A write's traces with their documents, and the write's version.
    Traces(TenantId, Vec<(TraceId, BTreeMap<u64, Segment>)>, u64),
    /// Traces whose marks survived a restart, with the versions of those marks: derive
    /// them from what ClickHouse holds.
    Recover(TenantId, Vec<(TraceId, Vec<u64>)>),
    Flush(oneshot::Sender<()>),
}

/// Counters of the ClickHouse store (on `/metrics` through [`Store::counters`]).
#[derive(Debug, Default)]
pub struct ClickHouseCounters {
    /// Documents inserted.
    pub documents: AtomicU64,
    /// Write batches inserted (marks and documents).
    pub inserts: AtomicU64,
    /// Traces derived.
    pub derived: AtomicU64,
    /// Derivation rounds that failed (their traces keep their previous summary).
    pub derive_failures: AtomicU64,
}

struct Inner {
    client: Client,
    version: String,
    tables: Tables,
    local: Tables,
    cluster_hosts: Vec<String>,
    /// To the deriver.
    tx: mpsc::Sender<DeriveMsg>,
    deriver: Mutex<Option<tokio::task::JoinHandle<()>>>,
    last_version: AtomicU64,
    counters: ClickHouseCounters,
}

struct Tables {
    docs: String,
    sums: String,
    roll: String,
    conf: String,
    pending: String,
}

/// The ClickHouse implementation of [`Store`]. Cheap to clone.
#[derive(Clone)]
pub struct ClickHouseStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ClickHouseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseStore")
            .field("config", self.inner.client.config())
            .field("server_version", &self.inner.version)
            .finish()
    }
}

fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn corrupt(what: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        message: e.to_string(),
    }
}

fn hex_id(t: &TraceId) -> String {
    let mut out = Vec::with_capacity(32);
    extend_hex(&mut out, &t.to_bytes());
    // Hex digits are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the lower-case hex of `bytes` to `out`, written in place
/// (`hex::encode` builds a `String` a `char` at a time, which was 5 % of a node's CPU
/// on the ingest path).
fn extend_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    let at = out.len();
    out.resize(at + bytes.len() * 2, 0);
    // The slice is exactly twice as long as `bytes`, all `encode_to_slice` checks.
    let _ = hex::encode_to_slice(bytes, &mut out[at..]);
}

fn in_list<'a>(ids: impl Iterator<Item = &'a String>) -> String {
    let mut s = String::new();
    for (i, id) in ids.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&quote(id));
    }
    s
}

fn field<'a>(r: &[&'a str], i: usize) -> Result<&'a str, StoreError> {
    r.get(i)
        .copied()
        .ok_or_else(|| corrupt("clickhouse row", format!("missing column {i}")))
}

fn num<T: std::str::FromStr>(r: &[&str], i: usize) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    field(r, i)?
        .parse()
        .map_err(|e| corrupt("clickhouse number", e))
}

fn opt_f64(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x}"),
        _ => "\\N".to_string(),
    }
}

fn array(items: impl Iterator<Item = String>) -> String {
    let mut s = String::from("[");
    for (i, it) in items.enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&quote(&it));
    }
    s.push(']');
    s
}

/// Parses ClickHouse's text form of two number arrays in a tuple: `([1,2],[3,4])`.
fn parse_pairs(s: &str) -> Result<BTreeMap<u32, i64>, StoreError> {
    let bad = || corrupt("rollup histogram", s.to_string());
    let inner = s
        .trim()
        .strip_prefix('(')
        .and_then(|x| x.strip_suffix(')'))
        .ok_or_else(bad)?;
    let (a, b) = inner.split_once("],[").ok_or_else(bad)?;
    let a = a.strip_prefix('[').ok_or_else(bad)?;
    let b = b.strip_suffix(']').ok_or_else(bad)?;
    fn list(x: &str) -> Vec<&str> {
        x.split(',').filter(|p| !p.is_empty()).collect()
    }
    let (ka, kb) = (list(a), list(b));
    if ka.len() != kb.len() {
        return Err(bad());
    }
    let mut out = BTreeMap::new();
    for (k, v) in ka.into_iter().zip(kb) {
        let k: u32 = k.parse().map_err(|_| bad())?;
        let v: i64 = v.parse().map_err(|_| bad())?;
        if v != 0 {
            out.insert(k, v);
        }
    }
    Ok(out)
}

/// What the deriver knows of a trace waiting for derivation.
#[derive(Default)]
struct Work {
    /// Documents written through this node (parsed).
    docs: BTreeMap<u64, Segment>,
    /// Versions of the writes (the marks to cancel).
    versions: Vec<u64>,
    /// Derive from every document ClickHouse holds (after a restart).
    read_all: bool,
}

fn mark_row(
    out: &mut Vec<u8>,
    node: &str,
    day: u64,
    tenant: &TenantId,
    hid: &str,
    version: u64,
    sign: i8,
) {
    tsv_escape(out, node);
    out.push(b'\t');
    out.extend_from_slice(day.to_string().as_bytes());
    out.push(b'\t');
    tsv_escape(out, tenant.as_str());
    out.extend_from_slice(format!("\t{hid}\t{version}\t{sign}\n").as_bytes());
}

/// What a derivation keeps of a trace's newest summary.
struct Prior {
    revision: u32,
    graph: GraphRows,
}

impl ClickHouseStore {
    /// Connects, reads the server version, creates or migrates the schema, and starts
    /// the deriver. Must be called inside a Tokio runtime.
    pub async fn open(mut config: ClickHouseConfig) -> Result<Self, StoreError> {
        if config.node.is_empty() {
            config.node = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "roentgen".into());
        }
        let mut client = Client::new(config.clone())?;
        if config.cluster.is_some() {
            // An insert into a Distributed table returns once every shard has its rows
            // (not when they are queued on the receiving server), so an acknowledged
            // write is on its shard, and a shard that is down fails (and retries) the
            // insert instead of parking rows on another server's disk.
            client.set("insert_distributed_sync", "1");
        }
        let version = client
            .query_server("SELECT version() FORMAT TabSeparated")
            .await?
            .trim()
            .to_string();
        let found = schema::migrate(&client).await?;
        tracing::info!(
            server_version = %version,
            schema_from = found,
            schema = schema::SCHEMA_VERSION,
            cluster = config.cluster.as_deref().unwrap_or("-"),
            "clickhouse store ready"
        );
        let db = &config.database;
        let cluster = config.cluster.as_deref();
        let tables = Tables {
            docs: format!("{db}.{}", schema::DOCS.name),
            sums: format!("{db}.{}", schema::SUMMARIES.name),
            roll: format!("{db}.{}", schema::ROLLUPS.name),
            conf: format!("{db}.{}", schema::CONFIG.name),
            pending: format!("{db}.{}", schema::PENDING.name),
        };
        let local = Tables {
            docs: format!("{db}.{}", schema::local_name(&schema::DOCS, cluster)),
            sums: format!("{db}.{}", schema::local_name(&schema::SUMMARIES, cluster)),
            roll: format!("{db}.{}", schema::local_name(&schema::ROLLUPS, cluster)),
            conf: format!("{db}.{}", schema::local_name(&schema::CONFIG, cluster)),
            pending: format!("{db}.{}", schema::local_name(&schema::PENDING, cluster)),
        };
        let (tx, rx) = mpsc::channel(DERIVE_CHANNEL);
        let inner = Arc::new(Inner {
            cluster_hosts: match cluster {
                Some(_) => config.hosts.clone(),
                None => Vec::new(),
            },
            client,
            version,
            tables,
            local,
            tx,
            deriver: Mutex::new(None),
            last_version: AtomicU64::new(0),
            counters: ClickHouseCounters::default(),
        });
        let deriver = tokio::spawn(derive_loop(Arc::downgrade(&inner), rx));
        *inner.deriver.lock().unwrap_or_else(|e| e.into_inner()) = Some(deriver);
        let store = Self { inner };
        store.recover().await?;
        Ok(store)
    }

    /// The server's version as `SELECT version()` answered at start-up.
    pub fn server_version(&self) -> &str {
        &self.inner.version
    }

    /// The store's counters.
    pub fn counters(&self) -> &ClickHouseCounters {
        &self.inner.counters
    }

    /// A version number larger than every earlier one from this process (nanoseconds
    /// since the epoch, bumped on ties), so the newest write of a row wins.
    fn next_version(&self) -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut cur = self.inner.last_version.load(Ordering::Relaxed);
        loop {
            let next = now.max(cur + 1);
            match self.inner.last_version.compare_exchange_weak(
                cur,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return next,
                Err(c) => cur = c,
            }
        }
    }

    async fn insert_docs(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
    ) -> Result<WriteOutcome, StoreError> {
        if docs.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let count = docs.len();
        let version = self.next_version();
        let mut body = Vec::with_capacity(docs.iter().map(|d| d.raw().len() + 80).sum());
        let node = &self.inner.client.config().node;
        let mark_day = version / 86_400_000_000_000;
        let mut marks = Vec::new();
        let mut traces: Vec<(TraceId, BTreeMap<u64, Segment>)> = Vec::new();
        let mut slots: HashMap<TraceId, usize> = HashMap::new();
        for d in docs {
            let (trace, id) = (d.trace_id(), d.id());
            let day = day_of(u64::from(trace.epoch_seconds()));
            body.extend_from_slice(tenant.as_str().as_bytes());
            // Writing to a Vec cannot fail.
            let _ = write!(body, "\t{day}\t");
            extend_hex(&mut body, &trace.to_bytes());
            let _ = write!(body, "\t{}\t{version}\t", id.0);
            let (raw, segment) = d.into_parts();
            tsv_escape(&mut body, &raw);
            body.push(b'\n');
            let slot = *slots.entry(trace).or_insert_with(|| {
                mark_row(
                    &mut marks,
                    node,
                    mark_day,
                    tenant,
                    &hex_id(&trace),
                    version,
                    1,
                );
                traces.push((trace, BTreeMap::new()));
                traces.len() - 1
            });
            traces[slot].1.insert(id.0, segment);
        }
        // Marks and documents at once; the write is acknowledged only when both are in.
        // A crash with the marks in and not the documents only makes a restart
        // re-derive traces that did not change; one with the documents in and not the
        // marks acknowledged nothing, so the client sends them again.
        let (marked, written) = tokio::join!(
            self.inner.client.insert(
                &self.inner.tables.pending,
                "node, day, tenant, trace_id, version, sign",
                marks.into(),
            ),
            self.inner.client.insert(
                &self.inner.tables.docs,
                "tenant, day, trace_id, doc_id, version, raw",
                body.into(),
            )
        );
        marked?;
        written?;
        self.inner
            .counters
            .documents
            .fetch_add(count as u64, Ordering::Relaxed);
        self.inner.counters.inserts.fetch_add(1, Ordering::Relaxed);
        let n = traces.len();
        self.inner
            .tx
            .send(DeriveMsg::Traces(tenant.clone(), traces, version))
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        Ok(WriteOutcome {
            documents: count,
            traces: n,
        })
    }

    /// `columns` (aggregates over the revisions) of the newest summary of each of `ids`
    /// that has one, each row turned into a value by `parse` (given the columns after
    /// the id).
    ///
    /// The id list is a `PREWHERE`: ClickHouse reads the other columns only in the
    /// granules that hold one of the ids, not in every granule the primary key range
    /// could hold them in, and a trace never seen costs an index lookup.
    async fn newest_summaries<T>(
        &self,
        tenant: &TenantId,
        ids: &[String],
        columns: &str,
        parse: impl Fn(&[&str]) -> Result<T, StoreError>,
    ) -> Result<HashMap<String, T>, StoreError> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT trace_id, {columns} FROM {} \
                 PREWHERE trace_id IN ({}) WHERE tenant = {} \
                 GROUP BY trace_id FORMAT TabSeparated",
                self.inner.tables.sums,
                in_list(chunk.iter()),
                quote(tenant.as_str()),
            );
            let text = self.inner.client.query(&sql).await?;
            for r in rows(&text) {
                let id = field(&r, 0)?.to_string();
                out.insert(id, parse(r.get(1..).unwrap_or_default())?);
            }
        }
        Ok(out)
    }

    /// The newest summary of each of `ids` that has one.
    async fn records(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, StoredSummary>, StoreError> {
        self.newest_summaries(tenant, ids, "argMax(summary, revision)", |r| {
            serde_json::from_str(&tsv_unescape(field(r, 0)?)).map_err(|e| corrupt("summary", e))
        })
        .await
    }

    /// What a derivation needs of each of `ids`' newest summary: its revision and its
    /// graph contribution. Not the summary itself: the widest column, and most of what
    /// such a read used to cost ClickHouse.
    async fn priors(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, Prior>, StoreError> {
        self.newest_summaries(tenant, ids, "max(revision), argMax(graph, revision)", |r| {
            let revision: u32 = num(r, 0)?;
            let g = hex::decode(field(r, 1)?).map_err(|e| corrupt("summary graph", e))?;
            let graph = crate::codec::decode_graph(&g).map_err(|e| corrupt("summary graph", e))?;
            Ok(Prior { revision, graph })
        })
        .await
    }

    /// Every document (newest version) of `ids`, by trace, ordered by document id.
    async fn documents(
        &self,
        tenant: &TenantId,
        ids: &[String],
    ) -> Result<HashMap<String, Vec<(u64, String)>>, StoreError> {
        let mut out: HashMap<String, Vec<(u64, String)>> = HashMap::new();
        for chunk in ids.chunks(IN_CHUNK) {
            let sql = format!(
                "SELECT trace_id, doc_id, argMax(raw, version) FROM {} \
                 PREWHERE trace_id IN ({}) WHERE tenant = {} GROUP BY trace_id, doc_id \
                 ORDER BY trace_id, doc_id FORMAT TabSeparated",
                self.inner.tables.docs,
                in_list(chunk.iter()),
                quote(tenant.as_str()),
            );
            let text = self.inner.client.query(&sql).await?;
            for r in rows(&text) {
                let id = field(&r, 0)?.to_string();
                let doc: u64 = num(&r, 1)?;
                out.entry(id)
                    .or_default()
                    .push((doc, tsv_unescape(field(&r, 2)?)));
            }
        }
        Ok(out)
    }

    /// Re-derives the summaries and rollups of one tenant's traces: reads (retried as
    /// a whole), then the rollup insert and the summary insert (each retried on its
    /// own, so a retry never adds a rollup delta twice from this node's side).
    async fn derive_round(
        &self,
        tenant: &TenantId,
        traces: &HashMap<TraceId, Work>,
    ) -> Result<(), StoreError> {
        let (roll, sums, derived_n) = with_retries("read traces to derive", || {
            self.prepare_round(tenant, traces)
        })
        .await?;
        // Rollups and summaries at once (a failure between the two is covered in
        // docs/clickhouse.md, "What is not exact"); the marks are cancelled only after
        // both are in.
        let (roll, sums) = (Bytes::from(roll), Bytes::from(sums));
        let (rolled, summed) = tokio::join!(
            with_retries("insert rollups", || {
                self.inner.client.insert(
                    &self.inner.tables.roll,
                    "tenant, day, minute, key, count, ok, error_other, throttle, fault, \
                     total_response_time, histogramMap.bucket, histogramMap.count",
                    roll.clone(),
                )
            }),
            with_retries("insert summaries", || {
                self.inner.client.insert(
                    &self.inner.tables.sums,
                    "tenant, day, trace_id, revision, updated_at, start_time, end_time, \
                     duration, response_time, has_fault, has_error, has_throttle, \
                     is_partial, services, annotation_keys, summary, graph, docs_version",
                    sums.clone(),
                )
            })
        );
        rolled?;
        summed?;
        // The marks of what was derived are cancelled.
        let node = &self.inner.client.config().node;
        let mut unmarks = Vec::new();
        for (trace, work) in traces {
            let hid = hex_id(trace);
            for v in &work.versions {
                mark_row(
                    &mut unmarks,
                    node,
                    v / 86_400_000_000_000,
                    tenant,
                    &hid,
                    *v,
                    -1,
                );
            }
        }
        let unmarks = Bytes::from(unmarks);
        with_retries("clear derivation marks", || {
            self.inner.client.insert(
                &self.inner.tables.pending,
                "node, day, tenant, trace_id, version, sign",
                unmarks.clone(),
            )
        })
        .await?;
        self.inner
            .counters
            .derived
            .fetch_add(derived_n, Ordering::Relaxed);
        Ok(())
    }

    /// Reads what a round needs and builds its rollup and summary rows.
    async fn prepare_round(
        &self,
        tenant: &TenantId,
        traces: &HashMap<TraceId, Work>,
    ) -> Result<(Vec<u8>, Vec<u8>, u64), StoreError> {
        let ids: Vec<String> = traces.keys().map(hex_id).collect();
        let old = self.priors(tenant, &ids).await?;
        // Traces seen before, and recovered ones, are derived from ClickHouse's copy.
        let seen: Vec<String> = traces
            .iter()
            .filter_map(|(t, w)| {
                let hid = hex_id(t);
                (w.read_all || old.contains_key(&hid)).then_some(hid)
            })
            .collect();
        let stored_docs = if seen.is_empty() {
            HashMap::new()
        } else {
            self.documents(tenant, &seen).await?
        };
        let now = now_seconds();
        let mut sums = Vec::new();
        let mut deltas: BTreeMap<(u64, GraphKey), Stats> = BTreeMap::new();
        let mut derived_n = 0u64;
        for (trace, work) in traces {
            let in_hand = &work.docs;
            let hid = hex_id(trace);
            let prior = old.get(&hid);
            // A trace seen before: every document ClickHouse holds (written through any
            // node), plus this round's in case a read could not see them yet.
            let mut stored: BTreeMap<u64, Segment> = BTreeMap::new();
            if let Some(docs) = stored_docs.get(&hid) {
                for (id, raw) in docs {
                    let seg = parse_segment(raw).map_err(|e| corrupt("document", e))?;
                    stored.insert(*id, seg);
                }
            }
            let mut current: BTreeMap<u64, &Segment> =
                stored.iter().map(|(k, v)| (*k, v)).collect();
            for (id, seg) in in_hand {
                current.entry(*id).or_insert(seg);
            }
            let segs: Vec<&Segment> = current.into_values().collect();
            let Some(derived) = derive(*trace, &segs) else {
                continue;
            };
            derived_n += 1;
            let revision = prior.map_or(1, |p| p.revision.saturating_add(1));
            if let Some(p) = prior {
                for (m, k, s) in &p.graph {
                    deltas.entry((*m, k.clone())).or_default().add(s, -1);
                }
            }
            let new_graph: GraphRows = derived
                .graph
                .into_iter()
                .map(|((m, k), s)| (m, k, s))
                .collect();
            for (m, k, s) in &new_graph {
                deltas.entry((*m, k.clone())).or_default().add(s, 1);
            }
            let stored = StoredSummary {
                summary: derived.summary,
                revision,
                updated_at: now,
            };
            let docs_version = work.versions.iter().copied().max().unwrap_or(0);
            summary_row(&mut sums, tenant, &hid, &stored, &new_graph, docs_version);
        }
        let mut roll = Vec::new();
        for ((minute, key), delta) in deltas {
            if delta.is_empty() && delta.total_response_time == 0.0 {
                continue;
            }
            rollup_row(&mut roll, tenant, minute, &key, &delta);
        }
        Ok((roll, sums, derived_n))
    }

    async fn query(&self, tenant: &TenantId, q: SummaryQuery) -> Result<SummaryPage, StoreError> {
        let compiled = match &q.filter {
            Some(text) => CompiledFilter::with_groups(text, &q.groups)?,
            None => None,
        };
        if compiled
            .as_ref()
            .is_some_and(|c| c.pushdown.matches_nothing)
        {
            return Ok(SummaryPage::default());
        }
        let cursor: Option<String> = q.cursor_bytes()?.map(hex::encode);
        let crate::QueryWindow {
            start,
            end,
            lo_sec,
            hi_sec,
        } = q.window();
        let (lo_sec, hi_sec) = (u64::from(lo_sec), u64::from(hi_sec));
        let mut conds = vec![format!("tenant = {}", quote(tenant.as_str()))];
        match q.time_range_type {
            TimeRangeType::TraceId => {}
            TimeRangeType::Event => conds.push(format!(
                "updated_at >= {start} AND updated_at <= {}",
                end + 1.0
            )),
            TimeRangeType::Service => {
                conds.push(format!("end_time >= {start} AND end_time <= {}", end + 1.0))
            }
        }
        if let Some(s) = &q.service {
            conds.push(format!("has(services, {})", quote(s)));
        }
        if let Some(c) = &compiled {
            conds.extend(pushdown_sql(&c.pushdown));
        }
        let service = q.service.clone();
        let accept = |s: &StoredSummary| q.accepts(s, service.as_deref(), compiled.as_ref());

        let limit = q.limit.max(1);
        let budget = q.scan_budget.max(limit);
        let mut page = SummaryPage::default();
        // The window is read newest first in time slices: ClickHouse 18.16 does not
        // stop reading at the `LIMIT` of an `ORDER BY` over the primary key, so one
        // query over the whole window would scan all of it for every page. A slice
        // reads only its part of the primary key; it starts at a minute and doubles
        // while it finds fewer candidates than a page needs, so a page reads about
        // what it returns and a selective filter scans the window at most twice.
        let mut below = cursor;
        let mut upper: u64 = match &below {
            // The cursor's second (its first 8 hex digits), inclusive.
            Some(b) => u64::from_str_radix(&b[..8], 16).map_err(|_| StoreError::InvalidCursor)? + 1,
            None => hi_sec + 1,
        };
        let mut span: u64 = 60;
        loop {
            if upper <= lo_sec {
                return Ok(page);
            }
            let slice_lo = upper.saturating_sub(span).max(lo_sec);
            let chunk = (budget - page.scanned).min((limit * 4).clamp(200, IN_CHUNK));
            let mut where_ = conds.join(" AND ");
            where_.push_str(&format!(
                " AND day >= {} AND day <= {} AND trace_id >= '{slice_lo:08x}'",
                day_of(slice_lo),
                day_of(upper - 1)
            ));
            match &below {
                Some(b) => where_.push_str(&format!(" AND trace_id < {}", quote(b))),
                None if upper <= u64::from(u32::MAX) => {
                    where_.push_str(&format!(" AND trace_id < '{upper:08x}'"))
                }
                None => {}
            }
            let sql = format!(
                "SELECT DISTINCT trace_id FROM {} WHERE {where_} \
                 ORDER BY trace_id DESC LIMIT {chunk} FORMAT TabSeparated",
                self.inner.tables.sums
            );
            let text = self.inner.client.query(&sql).await?;
            let ids: Vec<String> = rows(&text)
                .filter_map(|r| r.first().map(|s| s.to_string()))
                .collect();
            let slice_done = ids.len() < chunk;
            let recs = self.records(tenant, &ids).await?;
            for id in &ids {
                page.scanned += 1;
                below = Some(id.clone());
                if let Some(r) = recs.get(id)
                    && accept(r)
                {
                    page.summaries.push(r.clone());
                }
                if page.summaries.len() >= limit || page.scanned >= budget {
                    page.next = below;
                    return Ok(page);
                }
            }
            if slice_done {
                // The slice is read: the next one ends where it began, twice as long.
                upper = slice_lo;
                below = None;
                span = span.saturating_mul(2);
            }
        }
    }

    async fn rollup_rows(
        &self,
        tenant: &TenantId,
        start_minute: u64,
        end_minute: u64,
        step: u64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        let sql = format!(
            "SELECT minute, key, sum(count), sum(ok), sum(error_other), sum(throttle), \
             sum(fault), sum(total_response_time), \
             sumMap(histogramMap.bucket, histogramMap.count) FROM {} \
             WHERE tenant = {} AND day >= {} AND day <= {} AND minute >= {start_minute} \
             AND minute <= {end_minute} GROUP BY minute, key ORDER BY minute \
             FORMAT TabSeparated",
            self.inner.tables.roll,
            quote(tenant.as_str()),
            day_of(start_minute.saturating_mul(60)),
            day_of(end_minute.saturating_mul(60)),
        );
        let text = self.inner.client.query(&sql).await?;
        let mut keys: HashMap<String, GraphKey> = HashMap::new();
        let mut minute_rows = Vec::new();
        for r in rows(&text) {
            let minute: u64 = num(&r, 0)?;
            let raw_key = tsv_unescape(field(&r, 1)?);
            let stats = Stats {
                count: num(&r, 2)?,
                ok: num(&r, 3)?,
                error_other: num(&r, 4)?,
                throttle: num(&r, 5)?,
                fault: num(&r, 6)?,
                total_response_time: num(&r, 7)?,
                histogram: parse_pairs(field(&r, 8)?)?,
            };
            if stats.is_empty() && stats.total_response_time.abs() < 1e-9 {
                continue;
            }
            let key = match keys.get(&raw_key) {
                Some(k) => k.clone(),
                None => {
                    let k: GraphKey =
                        serde_json::from_str(&raw_key).map_err(|e| corrupt("rollup key", e))?;
                    keys.insert(raw_key, k.clone());
                    k
                }
            };
            minute_rows.push(RollupRow {
                minute,
                last_minute: minute,
                key,
                stats,
            });
        }
        Ok(shape_rollups(minute_rows, start_minute, end_minute, step))
    }

    async fn drop_partitions(&self, epoch_seconds: u64) -> Result<Vec<u32>, StoreError> {
        let db = &self.inner.client.config().database;
        let locals = [
            &self.inner.local.docs,
            &self.inner.local.sums,
            &self.inner.local.roll,
        ];
        let cluster = self.inner.client.config().cluster.as_deref();
        let mut names: Vec<String> = schema::PARTITIONED
            .iter()
            .map(|t| schema::local_name(t, cluster))
            .collect();
        let pending = schema::local_name(&schema::PENDING, cluster);
        names.push(pending.clone());
        // Marks are kept two days (by the day they were written), whatever the
        // retention of traces.
        let today = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0);
        let list = format!(
            "SELECT DISTINCT table, partition FROM system.parts WHERE database = {} \
             AND table IN ({}) AND active FORMAT TabSeparated",
            quote(db),
            in_list(names.iter())
        );
        let hosts: Vec<Option<String>> = if self.inner.cluster_hosts.is_empty() {
            vec![None]
        } else {
            self.inner.cluster_hosts.iter().cloned().map(Some).collect()
        };
        let mut dropped = std::collections::BTreeSet::new();
        for host in hosts {
            let text = match &host {
                Some(h) => self.inner.client.query_on(h, &list, false).await?,
                None => self.inner.client.query(&list).await?,
            };
            for r in rows(&text) {
                let table = field(&r, 0)?;
                let Ok(day) = field(&r, 1)?.trim_matches('\'').parse::<u32>() else {
                    continue;
                };
                if table == pending {
                    if u64::from(day) + 2 < today {
                        let sql = format!(
                            "ALTER TABLE {} DROP PARTITION {day}",
                            self.inner.local.pending
                        );
                        match &host {
                            Some(h) => self.inner.client.query_on(h, &sql, false).await?,
                            None => self.inner.client.query(&sql).await?,
                        };
                    }
                    continue;
                }
                if day_start(day) + 86_400 > epoch_seconds {
                    continue;
                }
                let Some(qualified) = locals.iter().find(|l| l.ends_with(&format!(".{table}")))
                else {
                    continue;
                };
                let sql = format!("ALTER TABLE {qualified} DROP PARTITION {day}");
                match &host {
                    Some(h) => self.inner.client.query_on(h, &sql, false).await?,
                    None => self.inner.client.query(&sql).await?,
                };
                dropped.insert(day);
            }
        }
        Ok(dropped.into_iter().collect())
    }

    async fn config_rows(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: Option<&str>,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut sql = format!(
            "SELECT name, argMax(value, version), argMax(deleted, version) FROM {} \
             WHERE tenant = {} AND kind = {}",
            self.inner.tables.conf,
            quote(tenant.as_str()),
            quote(kind_name(kind))
        );
        if let Some(n) = name {
            sql.push_str(&format!(" AND name = {}", quote(n)));
        }
        sql.push_str(" GROUP BY name ORDER BY name FORMAT TabSeparated");
        let text = self.inner.client.query(&sql).await?;
        let mut out = Vec::new();
        for r in rows(&text) {
            if field(&r, 2)? == "1" {
                continue;
            }
            let value = serde_json::from_str(&tsv_unescape(field(&r, 1)?))
                .map_err(|e| corrupt("configuration", e))?;
            out.push((tsv_unescape(field(&r, 0)?), value));
        }
        Ok(out)
    }

    async fn config_insert(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: &str,
        value: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        let mut row = Vec::new();
        for (i, f) in [tenant.as_str(), kind_name(kind), name].iter().enumerate() {
            if i > 0 {
                row.push(b'\t');
            }
            tsv_escape(&mut row, f);
        }
        row.extend_from_slice(
            format!("\t{}\t{}\t", self.next_version(), u8::from(value.is_none())).as_bytes(),
        );
        let text = value
            .map(|v| v.to_string())
            .unwrap_or_else(|| "null".into());
        tsv_escape(&mut row, &text);
        row.push(b'\n');
        self.inner
            .client
            .insert(
                &self.inner.tables.conf,
                "tenant, kind, name, version, deleted, value",
                row.into(),
            )
            .await
    }

    /// Hands the traces this node marked and did not derive (it stopped or crashed
    /// first) to the deriver.
    async fn recover(&self) -> Result<(), StoreError> {
        let node = &self.inner.client.config().node;
        let since_day = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() / 86_400)
            .unwrap_or(0)
            .saturating_sub(2);
        let sql = format!(
            "SELECT tenant, trace_id, groupArray(version) FROM (SELECT tenant, trace_id, \
             version, sum(sign) AS s FROM {} WHERE node = {} AND day >= {since_day} \
             GROUP BY tenant, trace_id, version HAVING s > 0) GROUP BY tenant, trace_id \
             FORMAT TabSeparated",
            self.inner.tables.pending,
            quote(node)
        );
        let text = self.inner.client.query(&sql).await?;
        let mut by_tenant: HashMap<TenantId, Vec<(TraceId, Vec<u64>)>> = HashMap::new();
        for r in rows(&text) {
            let tenant = TenantId::new(tsv_unescape(field(&r, 0)?))?;
            let bytes = hex::decode(field(&r, 1)?).map_err(|e| corrupt("trace id", e))?;
            let bytes: [u8; 16] = bytes
                .try_into()
                .map_err(|_| corrupt("trace id", "not 16 bytes"))?;
            let versions: Vec<u64> = field(&r, 2)?
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .filter_map(|v| v.parse().ok())
                .collect();
            by_tenant
                .entry(tenant)
                .or_default()
                .push((TraceId::from_bytes(bytes), versions));
        }
        let total: usize = by_tenant.values().map(Vec::len).sum();
        if total == 0 {
            return Ok(());
        }
        tracing::info!(traces = total, %node, "deriving traces written before a restart");
        let tx = self.inner.tx.clone();
        tokio::spawn(async move {
            for (tenant, traces) in by_tenant {
                for chunk in traces.chunks(DERIVE_ROUND) {
                    if tx
                        .send(DeriveMsg::Recover(tenant.clone(), chunk.to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(())
    }

    async fn flush_deriver(&self) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.inner
            .tx
            .send(DeriveMsg::Flush(done))
            .await
            .map_err(|_| StoreError::ShuttingDown)?;
        wait.await.map_err(|_| StoreError::ShuttingDown)
    }
}

fn kind_name(kind: ConfigKind) -> &'static str {
    match kind {
        ConfigKind::SamplingRule => "sampling_rule",
        ConfigKind::Group => "group",
    }
}

/// The SQL conditions of a pushdown (each a conjunct).
fn pushdown_sql(p: &roentgen_filter::Pushdown) -> Vec<String> {
    let mut out = Vec::new();
    for (column, clauses) in [
        ("services", &p.services),
        ("annotation_keys", &p.annotation_keys),
    ] {
        for any in clauses {
            if any.is_empty() {
                continue;
            }
            let alts: Vec<String> = any
                .iter()
                .map(|v| format!("has({column}, {})", quote(v)))
                .collect();
            out.push(format!("({})", alts.join(" OR ")));
        }
    }
    for (column, want) in [
        ("has_fault", p.has_fault),
        ("has_error", p.has_error),
        ("has_throttle", p.has_throttle),
        ("is_partial", p.is_partial),
    ] {
        if let Some(w) = want {
            out.push(format!("{column} = {}", u8::from(w)));
        }
    }
    for (column, range) in [
        ("response_time", &p.response_time),
        ("duration", &p.duration),
    ] {
        // A comparison with NULL is not true: a missing value fails a bounded range,
        // as `Range::admits` says.
        if let Some(b) = range.min
            && b.value.is_finite()
        {
            let op = if b.inclusive { ">=" } else { ">" };
            out.push(format!("{column} {op} {:?}", b.value));
        }
        if let Some(b) = range.max
            && b.value.is_finite()
        {
            let op = if b.inclusive { "<=" } else { "<" };
            out.push(format!("{column} {op} {:?}", b.value));
        }
    }
    out
}

fn summary_row(
    out: &mut Vec<u8>,
    tenant: &TenantId,
    hid: &str,
    stored: &StoredSummary,
    graph: &[(u64, GraphKey, Stats)],
    docs_version: u64,
) {
    let s = &stored.summary;
    let day = day_of(u64::from(s.trace_id.epoch_seconds()));
    tsv_escape(out, tenant.as_str());
    let services = array(s.services.iter().map(|k| k.name.clone()));
    let keys = array(s.annotations.keys().cloned());
    let line = format!(
        "\t{day}\t{hid}\t{}\t{:?}\t{:?}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t",
        stored.revision,
        stored.updated_at,
        s.start_time,
        opt_f64(s.end_time),
        opt_f64(s.duration),
        opt_f64(s.response_time),
        u8::from(s.has_fault),
        u8::from(s.has_error),
        u8::from(s.has_throttle),
        u8::from(s.is_partial),
    );
    out.extend_from_slice(line.as_bytes());
    tsv_escape(out, &services);
    out.push(b'\t');
    tsv_escape(out, &keys);
    out.push(b'\t');
    // Serializing plain data cannot fail.
    tsv_escape(out, &serde_json::to_string(stored).unwrap_or_default());
    out.push(b'\t');
    extend_hex(out, &crate::codec::encode_graph(graph));
    out.extend_from_slice(format!("\t{docs_version}\n").as_bytes());
}

fn rollup_row(out: &mut Vec<u8>, tenant: &TenantId, minute: u64, key: &GraphKey, d: &Stats) {
    tsv_escape(out, tenant.as_str());
    out.extend_from_slice(format!("\t{}\t{minute}\t", day_of(minute * 60)).as_bytes());
    tsv_escape(out, &serde_json::to_string(key).unwrap_or_default());
    let buckets: Vec<String> = d.histogram.keys().map(|b| b.to_string()).collect();
    let counts: Vec<String> = d.histogram.values().map(|c| c.to_string()).collect();
    out.extend_from_slice(
        format!(
            "\t{}\t{}\t{}\t{}\t{}\t{:?}\t[{}]\t[{}]\n",
            d.count,
            d.ok,
            d.error_other,
            d.throttle,
            d.fault,
            d.total_response_time,
            buckets.join(","),
            counts.join(",")
        )
        .as_bytes(),
    );
}

/// An hour's statistics with its first and last minute with calls.
type HourRow = (Stats, Option<u64>, Option<u64>);

/// Minute rows → the rows [`Store::rollups`] returns for `step` (hour rows for whole
/// hours inside the window when `step >= 60`, one row per key when `step` exceeds the
/// window), as the embedded store shapes them.
fn shape_rollups(
    minute_rows: Vec<RollupRow>,
    start_minute: u64,
    end_minute: u64,
    step: u64,
) -> Vec<RollupRow> {
    let merge = step > end_minute.saturating_sub(start_minute);
    let (first_hour, end_hour) = (start_minute.div_ceil(60) * 60, (end_minute + 1) / 60 * 60);
    let hours = step >= 60 && first_hour < end_hour;
    // (hour, key) → (stats, first minute with calls, last minute with calls)
    let mut hour_rows: BTreeMap<(u64, GraphKey), HourRow> = BTreeMap::new();
    let mut rows = Vec::new();
    for r in minute_rows {
        if hours && r.minute >= first_hour && r.minute < end_hour {
            let e = hour_rows.entry((r.minute / 60 * 60, r.key)).or_insert((
                Stats::default(),
                None,
                None,
            ));
            e.0.add(&r.stats, 1);
            if r.stats.count > 0 {
                e.1 = Some(e.1.map_or(r.minute, |m| m.min(r.minute)));
                e.2 = Some(e.2.map_or(r.minute, |m| m.max(r.minute)));
            }
        } else {
            rows.push(r);
        }
    }
    for ((hour, key), (stats, first, last)) in hour_rows {
        rows.push(RollupRow {
            minute: first.unwrap_or(hour),
            last_minute: last.unwrap_or(hour),
            key,
            stats,
        });
    }
    if !merge {
        return rows;
    }
    let mut merged: BTreeMap<GraphKey, RollupRow> = BTreeMap::new();
    for r in rows {
        match merged.get_mut(&r.key) {
            Some(m) => {
                m.stats.add(&r.stats, 1);
                m.minute = m.minute.min(r.minute);
                m.last_minute = m.last_minute.max(r.last_minute);
            }
            None => {
                merged.insert(r.key.clone(), r);
            }
        }
    }
    merged.into_values().collect()
}

/// Rounds of retries of one derivation step (each after the client's own retries),
/// with pauses doubling from one second up to [`DERIVE_BACKOFF_MAX`]: about a minute in
/// all. Meanwhile the deriver takes no new traces, so writes wait and the ingest queue
/// in front of the store fills and throttles: a shard down stops ingest instead of
/// losing summaries.
const DERIVE_ATTEMPTS: u32 = 10;
const DERIVE_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(8);

async fn with_retries<T, F, Fut>(what: &str, mut f: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut pause = std::time::Duration::from_secs(1);
    let mut attempt = 1;
    loop {
        match f().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_retryable() && attempt < DERIVE_ATTEMPTS => {
                tracing::warn!(attempt, "clickhouse unavailable to {what}, retrying: {e}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(DERIVE_BACKOFF_MAX);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The traces (and flushes) gathered for the next derivation round.
#[derive(Default)]
struct Round {
    traces: HashMap<TenantId, HashMap<TraceId, Work>>,
    /// Traces in `traces`.
    count: usize,
    /// Flushes answered once this round is done.
    waiters: Vec<oneshot::Sender<()>>,
    /// When the round's first trace arrived.
    since: Option<tokio::time::Instant>,
}

impl Round {
    fn work(&mut self, tenant: &TenantId, id: TraceId) -> &mut Work {
        self.since.get_or_insert_with(tokio::time::Instant::now);
        let count = &mut self.count;
        self.traces
            .entry(tenant.clone())
            .or_default()
            .entry(id)
            .or_insert_with(|| {
                *count += 1;
                Work::default()
            })
    }

    fn take(&mut self, m: DeriveMsg) {
        match m {
            DeriveMsg::Traces(tenant, traces, version) => {
                for (id, docs) in traces {
                    let w = self.work(&tenant, id);
                    w.docs.extend(docs);
                    w.versions.push(version);
                }
            }
            DeriveMsg::Recover(tenant, traces) => {
                for (id, versions) in traces {
                    let w = self.work(&tenant, id);
                    w.read_all = true;
                    w.versions.extend(versions);
                }
            }
            DeriveMsg::Flush(w) => self.waiters.push(w),
        }
    }

    fn is_empty(&self) -> bool {
        self.count == 0 && self.waiters.is_empty()
    }

    fn is_full(&self) -> bool {
        self.count >= DERIVE_ROUND
    }

    /// When the round should start, if it holds anything: now when it is full or a
    /// flush waits, else [`DERIVE_WINDOW`] after its first trace.
    fn due(&self) -> Option<tokio::time::Instant> {
        if self.is_full() || !self.waiters.is_empty() {
            return Some(tokio::time::Instant::now());
        }
        self.since.map(|s| s + DERIVE_WINDOW)
    }
}

/// Derives one round and then answers its flushes.
async fn run_round(store: std::sync::Weak<Inner>, round: Round) {
    let Some(inner) = store.upgrade() else {
        return;
    };
    let this = ClickHouseStore { inner };
    for (tenant, traces) in round.traces {
        if traces.is_empty() {
            continue;
        }
        let count = traces.len();
        if let Err(e) = this.derive_round(&tenant, &traces).await {
            this.inner
                .counters
                .derive_failures
                .fetch_add(1, Ordering::Relaxed);
            tracing::error!(traces = count, "failed to derive trace summaries: {e}");
        }
    }
    drop(this);
    for w in round.waiters {
        let _ = w.send(());
    }
}

/// The deriver: runs one round at a time and gathers the next while it runs, so a
/// write waits only when the gathered round is full.
async fn derive_loop(store: std::sync::Weak<Inner>, mut rx: mpsc::Receiver<DeriveMsg>) {
    let mut next = Round::default();
    let mut running: Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> = None;
    let mut open = true;
    loop {
        let due = next.due();
        if running.is_none()
            && !next.is_empty()
            && (!open || due.is_some_and(|d| d <= tokio::time::Instant::now()))
        {
            running = Some(Box::pin(run_round(
                store.clone(),
                std::mem::take(&mut next),
            )));
            continue;
        }
        if !open && running.is_none() {
            return;
        }
        let mut done = false;
        tokio::select! {
            m = rx.recv(), if open && !next.is_full() => match m {
                Some(m) => next.take(m),
                None => open = false,
            },
            () = async {
                if let Some(r) = running.as_mut() {
                    r.await;
                }
            }, if running.is_some() => done = true,
            () = tokio::time::sleep_until(due.unwrap_or_else(tokio::time::Instant::now)),
                if running.is_none() && due.is_some() => {}
        }
        if done {
            running = None;
        }
    }
}

#[async_trait]
impl Store for ClickHouseStore {
    fn write_batching(&self) -> crate::WriteBatching {
        crate::WriteBatching {
            linger: INSERT_LINGER,
            max_documents: INSERT_MAX_DOCUMENTS,
        }
    }

    async fn write(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
    ) -> Result<WriteOutcome, StoreError> {
        self.insert_docs(tenant, docs).await
    }

    async fn get_traces(
        &self,
        tenant: &TenantId,
        ids: &[TraceId],
    ) -> Result<Vec<StoredTrace>, StoreError> {
        let hids: Vec<String> = ids.iter().map(hex_id).collect();
        let mut docs = self.documents(tenant, &hids).await?;
        let mut recs = self.records(tenant, &hids).await?;
        let mut out = Vec::new();
        for (id, hid) in ids.iter().zip(&hids) {
            let Some(d) = docs.remove(hid) else {
                continue;
            };
            out.push(StoredTrace {
                trace_id: *id,
                documents: d.into_iter().map(|(i, raw)| (SegmentId(i), raw)).collect(),
                summary: recs.remove(hid),
            });
        }
        Ok(out)
    }

    async fn query_summaries(
        &self,
        tenant: &TenantId,
        query: SummaryQuery,
    ) -> Result<SummaryPage, StoreError> {
        self.query(tenant, query).await
    }

    async fn rollups(
        &self,
        tenant: &TenantId,
        start_minute: u64,
        end_minute: u64,
        step: u64,
    ) -> Result<Vec<RollupRow>, StoreError> {
        self.rollup_rows(tenant, start_minute, end_minute, step)
            .await
    }

    async fn put_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError> {
        self.config_insert(tenant, kind, name, Some(&value)).await
    }

    async fn list_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        self.config_rows(tenant, kind, None).await
    }

    async fn delete_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: &str,
    ) -> Result<bool, StoreError> {
        if self.config_rows(tenant, kind, Some(name)).await?.is_empty() {
            return Ok(false);
        }
        self.config_insert(tenant, kind, name, None).await?;
        Ok(true)
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.flush_deriver().await?;
        let deriver = self
            .inner
            .deriver
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(d) = deriver {
            d.abort();
        }
        Ok(())
    }

    async fn sync_index(&self) -> Result<(), StoreError> {
        self.flush_deriver().await
    }

    async fn drop_before(&self, epoch_seconds: u64) -> Result<Vec<u32>, StoreError> {
        // Derivations in flight may still add rollup rows to a dropped day; they are
        // finished first.
        self.flush_deriver().await?;
        self.drop_partitions(epoch_seconds).await
    }

    fn counters(&self) -> Vec<crate::StoreCounter> {
        let c = &self.inner.counters;
        let f = self.inner.client.failures();
        let counter = crate::StoreCounter::read;
        vec![
            counter(
                "roentgen_clickhouse_documents_inserted",
                "Documents inserted into ClickHouse",
                &c.documents,
            ),
            counter(
                "roentgen_clickhouse_write_batches",
                "Write batches ClickHouse acknowledged (marks and documents)",
                &c.inserts,
            ),
            counter(
                "roentgen_clickhouse_traces_derived",
                "Trace summaries derived and inserted",
                &c.derived,
            ),
            counter(
                "roentgen_clickhouse_derive_failures",
                "Derivation rounds that failed after their retries (their marks stay; the next start derives them)",
                &c.derive_failures,
            ),
            counter(
                "roentgen_clickhouse_attempt_failures",
                "Statement attempts that failed transiently on one host (retried, or failed over)",
                &f.transient,
            ),
            counter(
                "roentgen_clickhouse_statement_failures",
                "Statements that failed for good (refused, or out of attempts)",
                &f.statements,
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traces(ids: std::ops::Range<u32>) -> Vec<(TraceId, BTreeMap<u64, Segment>)> {
        ids.map(|i| {
            let mut random = [0u8; 12];
            random[..4].copy_from_slice(&i.to_be_bytes());
            (TraceId::new(1_600_000_000, random), BTreeMap::new())
        })
        .collect()
    }

    #[test]
    fn a_round_is_due_a_window_after_its_first_trace_or_at_once_when_full_or_flushed() {
        let mut round = Round::default();
        assert!(round.is_empty());
        assert_eq!(round.due(), None, "an empty round never starts");

        let before = tokio::time::Instant::now();
        round.take(DeriveMsg::Traces(TenantId::default(), traces(0..3), 1));
        let due = round.due().expect("a round with traces starts");
        assert!(due >= before + DERIVE_WINDOW, "it waits for the window");
        assert!(due <= tokio::time::Instant::now() + DERIVE_WINDOW);

        // The same traces again (later segments) are one trace each, with both writes'
        // versions to cancel; the window still counts from the first.
        round.take(DeriveMsg::Traces(TenantId::default(), traces(0..3), 2));
        assert_eq!(round.count, 3);
        assert_eq!(round.due(), Some(due));
        let work = round.traces.values().next().and_then(|t| t.values().next());
        assert_eq!(work.map(|w| w.versions.clone()), Some(vec![1, 2]));

        let (done, _wait) = oneshot::channel();
        round.take(DeriveMsg::Flush(done));
        assert!(
            round.due().expect("due") <= tokio::time::Instant::now(),
            "a flush starts it now"
        );

        let mut full = Round::default();
        full.take(DeriveMsg::Traces(
            TenantId::default(),
            traces(0..DERIVE_ROUND as u32),
            1,
        ));
        assert!(full.is_full());
        assert!(
            full.due().expect("due") <= tokio::time::Instant::now(),
            "a full round starts now"
        );
    }

    #[test]
    fn hex_matches_the_hex_crate() {
        let id = TraceId::new(
            0x5f00_00ab,
            [0, 1, 0x7f, 0x80, 0xfe, 0xff, 9, 10, 11, 12, 13, 14],
        );
        assert_eq!(hex_id(&id), hex::encode(id.to_bytes()));
        let bytes: Vec<u8> = (0..=255).collect();
        let mut out = b"graph:".to_vec();
        extend_hex(&mut out, &bytes);
        assert_eq!(
            out,
            [b"graph:".to_vec(), hex::encode(&bytes).into_bytes()].concat()
        );
    }

    #[test]
    fn a_flush_alone_makes_a_round() {
        let mut round = Round::default();
        let (done, _wait) = oneshot::channel();
        round.take(DeriveMsg::Flush(done));
        assert!(!round.is_empty());
        assert!(round.due().is_some());
    }
}
