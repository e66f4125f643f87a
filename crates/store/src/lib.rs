//! Where traces live: the [`Store`] trait and its implementations.
//!
//! This crate owns persistence: raw segment documents by trace, the time index of trace
//! summaries, per-minute service-graph rollups, sampling rules and groups, and retention
//! by whole day partitions. [`embedded::EmbeddedStore`] keeps them in a fjall LSM under a
//! data directory; [`clickhouse::ClickHouseStore`] keeps them in ClickHouse (over its
//! HTTP interface) for any number of stateless nodes.
//!
//! It depends on `roentgen-model` (and later `roentgen-filter`) and must not speak HTTP to
//! clients or know the X-Ray wire format: the server crate translates.

use std::sync::Arc;

use async_trait::async_trait;
use roentgen_model::{Document, GraphKey, SegmentId, ServiceKey, Stats, TraceId, TraceSummary};

pub mod clickhouse;
mod codec;
pub mod embedded;
mod error;
mod keys;
mod pack;
mod scan;

pub use error::StoreError;
pub use keys::TenantId;

/// How a summary query's time range is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeRangeType {
    /// By the start time encoded in the trace id.
    #[default]
    TraceId,
    /// By the time the trace was last updated (a document of it arrived).
    Event,
    /// By the end time of the trace's segments.
    Service,
}

/// A predicate over summaries that the store applies while scanning (filter expressions).
pub type SummaryPredicate = Arc<dyn Fn(&TraceSummary) -> bool + Send + Sync>;

/// A query of the summary index.
#[derive(Clone)]
pub struct SummaryQuery {
    /// Start of the range, epoch seconds (inclusive).
    pub start: f64,
    /// End of the range, epoch seconds (inclusive).
    pub end: f64,
    /// How the range is read.
    pub time_range_type: TimeRangeType,
    /// Pushed down: only traces with a node of this name.
    pub service: Option<String>,
    /// An X-Ray filter expression (`GetTraceSummaries`' `FilterExpression`). The store
    /// parses it ([`StoreError::InvalidFilter`] when it does not parse), narrows the
    /// candidates by what the expression pins ([`roentgen_filter::pushdown`]: a service
    /// through the service index, flags and bounds before decoding further) and
    /// evaluates it on each candidate summary.
    pub filter: Option<String>,
    /// The groups `group.name` / `group.arn` in `filter` may refer to.
    pub groups: Vec<GroupDef>,
    /// Applied to every candidate after the pushdowns.
    pub predicate: Option<SummaryPredicate>,
    /// Where the previous page stopped ([`SummaryPage::next`]).
    pub cursor: Option<String>,
    /// Most summaries in one page.
    pub limit: usize,
    /// Most summaries examined for one page; a page may come back short (even empty)
    /// with a cursor when this budget runs out, so one call never scans without bound.
    pub scan_budget: usize,
}

/// The range a summaries query reads ([`SummaryQuery::window`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueryWindow {
    /// Start, epoch seconds, clamped at 0.
    pub start: f64,
    /// End, epoch seconds, at least `start`.
    pub end: f64,
    /// First trace-id second to look at: `start`, less
    /// [`embedded::EVENT_LOOKBACK_SECONDS`] for `Event` and `Service` ranges (those read
    /// update and end times, and a trace may have started before the range).
    pub lo_sec: u32,
    /// Last trace-id second to look at.
    pub hi_sec: u32,
}

impl SummaryQuery {
    /// The range this query reads, the same for every store.
    pub fn window(&self) -> QueryWindow {
        let start = self.start.max(0.0);
        let end = self.end.max(start);
        let lookback = match self.time_range_type {
            TimeRangeType::TraceId => 0,
            TimeRangeType::Event | TimeRangeType::Service => embedded::EVENT_LOOKBACK_SECONDS,
        };
        let second = |t: f64| (t.floor() as u64).min(u64::from(u32::MAX)) as u32;
        QueryWindow {
            start,
            end,
            lo_sec: second(start).saturating_sub(lookback.min(u64::from(u32::MAX)) as u32),
            hi_sec: second(end),
        }
    }

    /// The paging cursor as the 16 bytes of the last trace id examined;
    /// [`StoreError::InvalidCursor`] for anything this store did not issue.
    pub fn cursor_bytes(&self) -> Result<Option<[u8; 16]>, StoreError> {
        self.cursor
            .as_deref()
            .map(|c| {
                hex::decode(c)
                    .ok()
                    .and_then(|b| <[u8; 16]>::try_from(b).ok())
                    .ok_or(StoreError::InvalidCursor)
            })
            .transpose()
    }

    /// Whether a stored summary belongs in this query's answer: inside the time range
    /// as [`SummaryQuery::time_range_type`] reads it (`start` clamped at 0, `end` at
    /// `start`, one second of slack at the end), holding `service` when one is pinned,
    /// passing the predicate and the compiled filter. Every store applies it to its
    /// candidates, so they answer alike.
    pub fn accepts(
        &self,
        s: &StoredSummary,
        service: Option<&str>,
        compiled: Option<&CompiledFilter>,
    ) -> bool {
        let QueryWindow { start, end, .. } = self.window();
        let in_range = match self.time_range_type {
            TimeRangeType::TraceId => true,
            TimeRangeType::Event => s.updated_at >= start && s.updated_at <= end + 1.0,
            TimeRangeType::Service => s
                .summary
                .end_time
                .is_some_and(|e| e >= start && e <= end + 1.0),
        };
        in_range
            && service.is_none_or(|name| s.summary.has_service(name))
            && self.predicate.as_ref().is_none_or(|p| p(&s.summary))
            && compiled.is_none_or(|c| c.matches(&s.summary))
    }
}

impl std::fmt::Debug for SummaryQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SummaryQuery")
            .field("start", &self.start)
            .field("end", &self.end)
            .field("time_range_type", &self.time_range_type)
            .field("service", &self.service)
            .field("filter", &self.filter)
            .field("predicate", &self.predicate.is_some())
            .field("cursor", &self.cursor)
            .field("limit", &self.limit)
            .finish()
    }
}

/// Which rollups `GetTimeSeriesServiceStatistics` adds up, from its
/// `EntitySelectorExpression`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntitySelector {
    /// No expression: the edges from the client, i.e. the requests entering the system.
    ClientEdges,
    /// `service(…)` / `service(id(…))`: the statistics of the matching nodes.
    Service {
        /// Node name, when given.
        name: Option<String>,
        /// Node type, when given.
        kind: Option<String>,
    },
    /// `edge(…, …)`: the statistics of the matching edges.
    Edge {
        /// Caller name and type, when given.
        source: (Option<String>, Option<String>),
        /// Callee name and type, when given.
        target: (Option<String>, Option<String>),
    },
}

impl EntitySelector {
    /// Parses an entity selector: empty, `service(…)` or `edge(…, …)` without a
    /// sub-filter.
    pub fn parse(text: Option<&str>) -> Result<Self, StoreError> {
        use roentgen_filter::ast::Expr;
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return Ok(Self::ClientEdges);
        };
        let filter = roentgen_filter::Filter::parse(text)
            .map_err(|e| StoreError::InvalidFilter(e.to_string()))?;
        match filter.expr() {
            Expr::Service { node, filter: None } => Ok(Self::Service {
                name: node.name.clone(),
                kind: node.kind.clone(),
            }),
            Expr::Edge {
                source,
                target,
                filter: None,
            } => Ok(Self::Edge {
                source: (source.name.clone(), source.kind.clone()),
                target: (target.name.clone(), target.kind.clone()),
            }),
            _ => Err(StoreError::InvalidFilter(format!(
                "{text:?} is not an entity selector: use service(…) or edge(…, …)"
            ))),
        }
    }

    /// Whether a rollup row belongs to the selection.
    pub fn selects(&self, key: &GraphKey) -> bool {
        let node_is = |k: &ServiceKey, (name, kind): (&Option<String>, &Option<String>)| {
            name.as_ref().is_none_or(|n| *n == k.name)
                && kind.as_ref().is_none_or(|t| Some(t) == k.kind.as_ref())
        };
        match self {
            Self::ClientEdges => key
                .source
                .as_ref()
                .is_some_and(|s| *s == ServiceKey::client()),
            Self::Service { name, kind } => {
                key.source.is_none() && node_is(&key.target, (name, kind))
            }
            Self::Edge { source, target } => key.source.as_ref().is_some_and(|s| {
                node_is(s, (&source.0, &source.1)) && node_is(&key.target, (&target.0, &target.1))
            }),
        }
    }
}

/// A group a filter expression can refer to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDef {
    /// Name.
    pub name: String,
    /// ARN.
    pub arn: String,
    /// Its filter expression; `None` holds every trace.
    pub filter: Option<String>,
}

/// A filter expression ready for a scan: parsed, with what it pins.
#[derive(Debug, Clone)]
pub struct CompiledFilter {
    /// The expression.
    pub filter: roentgen_filter::Filter,
    /// The groups it may refer to.
    pub groups: roentgen_filter::Groups,
    /// What every matching trace has (conservative).
    pub pushdown: roentgen_filter::Pushdown,
    /// A service every matching trace contains, when the expression pins exactly one
    /// (for the service index).
    pub service: Option<String>,
    /// The summary parts [`CompiledFilter::matches`] reads.
    pub needs: roentgen_filter::Needs,
    /// The annotation keys it reads (`None`: any).
    pub annotation_keys: Option<Vec<String>>,
}

impl CompiledFilter {
    /// Parses `text`; `None` for an empty expression.
    pub fn new(text: &str) -> Result<Option<Self>, StoreError> {
        Self::with_groups(text, &[])
    }

    /// Parses `text`, resolving `group.*` references with `groups` (a group whose own
    /// expression does not parse holds no trace).
    pub fn with_groups(text: &str, groups: &[GroupDef]) -> Result<Option<Self>, StoreError> {
        if text.trim().is_empty() {
            return Ok(None);
        }
        let filter = roentgen_filter::Filter::parse(text)
            .map_err(|e| StoreError::InvalidFilter(e.to_string()))?;
        let mut resolved = roentgen_filter::Groups::new();
        for g in groups {
            let parsed = match &g.filter {
                None => None,
                Some(f) if f.trim().is_empty() => None,
                Some(f) => match roentgen_filter::Filter::parse(f) {
                    Ok(p) => Some(p),
                    // Matches nothing rather than everything.
                    Err(_) => roentgen_filter::Filter::parse("fault AND !fault").ok(),
                },
            };
            resolved.insert(g.name.clone(), g.arn.clone(), parsed);
        }
        let pushdown = roentgen_filter::pushdown_with_groups(&filter, &resolved);
        let service = pushdown
            .services
            .iter()
            .find(|clause| clause.len() == 1)
            .and_then(|clause| clause.first().cloned());
        let needs = filter.needs();
        let annotation_keys = filter
            .annotation_keys()
            .map(|keys| keys.into_iter().map(str::to_string).collect());
        Ok(Some(Self {
            filter,
            groups: resolved,
            pushdown,
            service,
            needs,
            annotation_keys,
        }))
    }

    /// Whether the summary matches (pushdown first, then the full evaluation with the
    /// groups resolved).
    pub fn matches(&self, summary: &TraceSummary) -> bool {
        self.pushdown.admits(summary) && self.filter.matches(summary, &self.groups)
    }
}

/// A stored summary with the bookkeeping X-Ray returns next to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StoredSummary {
    /// The summary.
    pub summary: TraceSummary,
    /// Bumped every time a document of the trace arrives.
    pub revision: u32,
    /// When the trace was last updated (epoch seconds, server clock).
    pub updated_at: f64,
}

/// One page of summaries, newest trace first.
#[derive(Debug, Clone, Default)]
pub struct SummaryPage {
    /// The summaries.
    pub summaries: Vec<StoredSummary>,
    /// Set when more may follow.
    pub next: Option<String>,
    /// Summaries examined.
    pub scanned: usize,
}

/// A trace's documents as stored.
#[derive(Debug, Clone)]
pub struct StoredTrace {
    /// The trace.
    pub trace_id: TraceId,
    /// Its documents, verbatim, by document id.
    pub documents: Vec<(SegmentId, String)>,
    /// Its summary, if derived.
    pub summary: Option<StoredSummary>,
}

/// A row of the service-graph rollups: one minute, or (see [`Store::rollups`]) one
/// hour.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupRow {
    /// Epoch minute of the row; for an hour row, the hour's first minute with requests
    /// (the hour's first minute when none had any).
    pub minute: u64,
    /// The last minute with requests the row covers (`minute` for a minute row).
    pub last_minute: u64,
    /// Node or edge.
    pub key: GraphKey,
    /// Statistics of that minute (or hour).
    pub stats: Stats,
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Documents stored.
    pub documents: usize,
    /// Traces whose summary was (re-)derived.
    pub traces: usize,
}

/// How a store wants the batches nobody waits on (UDP) handed to
/// [`Store::write_unacknowledged`]: the ingest writer holds such a batch open for up
/// to `linger` after its first document, so that it grows to `max_documents`, and
/// writes it at once when a client waits on a document in it, when the queue is half
/// full, or at shutdown. Writes a client waits on never linger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBatching {
    /// Longest an unacknowledged batch is held open; zero writes what is queued at once.
    pub linger: std::time::Duration,
    /// Most documents in one lingering batch.
    pub max_documents: usize,
}

impl WriteBatching {
    /// Write whatever is queued, at once (group commit without waiting).
    pub const IMMEDIATE: Self = Self {
        linger: std::time::Duration::ZERO,
        max_documents: usize::MAX,
    };
}

/// Kinds of configuration records (sampling rules, groups).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigKind {
    /// Sampling rules.
    SamplingRule,
    /// Groups.
    Group,
}

/// Persistence of traces, rollups and configuration.
///
/// Contract, for every implementation:
/// - `write` is idempotent: writing a document again (same trace id and document id)
///   replaces the earlier version, which is how in-progress segments complete.
/// - `write` returns `Ok` only once every document of the batch is durable: a crash
///   after `Ok` loses none of them. Documents are written verbatim; callers validate
///   them first. `write_unacknowledged` is for documents nobody waits on (UDP): once it
///   returns they survive a crash of the process, and they reach the disk within
///   [`embedded::SYNC_INTERVAL`] (or with the next `write`), so a power failure can lose
///   at most that much of them — as it can lose what sits in the socket buffer.
/// - Summaries and rollups are derived asynchronously, shortly after the write (the
///   embedded store waits `INDEX_DELAY` so the segments of one request are derived
///   together); `sync_index` waits for it. A crash before derivation loses nothing: the
///   trace is marked durably with its documents and derived after restart.
/// - A batch may mix tenants' traces only through separate calls: one call, one tenant.
/// - Summaries are re-derived from all of a trace's documents after each write
///   (revision + 1); rollups receive the difference between the trace's new and old
///   graph statistics, so they are exact whatever order documents arrive in.
/// - Unknown trace ids are left out of `get_traces`, never errors.
/// - Data is partitioned by UTC day of the trace id's time; `drop_before` removes whole
///   days.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes a batch of validated documents of one tenant durably.
    async fn write(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
    ) -> Result<WriteOutcome, StoreError>;

    /// Writes a batch of validated documents that no client waits on: they must
    /// survive a crash of the process, and may reach the disk a moment later (see the
    /// contract above). The default writes them durably.
    async fn write_unacknowledged(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
    ) -> Result<WriteOutcome, StoreError> {
        self.write(tenant, docs).await
    }

    /// The documents and summaries of the given traces (unknown ids are skipped).
    async fn get_traces(
        &self,
        tenant: &TenantId,
        ids: &[TraceId],
    ) -> Result<Vec<StoredTrace>, StoreError>;

    /// A page of summaries in a time range, newest first.
    async fn query_summaries(
        &self,
        tenant: &TenantId,
        query: SummaryQuery,
    ) -> Result<SummaryPage, StoreError>;

    /// Rollup rows for minutes in `[start_minute, end_minute]`.
    ///
    /// With `step` 1 every row is one minute. With `step` 60 or more the hours that lie
    /// wholly inside the window come as one row each (all of an hour's statistics fall
    /// into one period of any multiple of 60 minutes), so a long window costs hours ×
    /// nodes and edges instead of minutes × nodes and edges. With `step` longer than the
    /// window (`u64::MAX`), each node and edge comes once, summed over the window.
    async fn rollups(
        &self,
        tenant: &TenantId,
        start_minute: u64,
        end_minute: u64,
        step: u64,
    ) -> Result<Vec<RollupRow>, StoreError>;

    /// Stores a configuration record (replacing one of the same name).
    async fn put_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: &str,
        value: serde_json::Value,
    ) -> Result<(), StoreError>;

    /// Lists configuration records of a kind, by name.
    async fn list_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
    ) -> Result<Vec<(String, serde_json::Value)>, StoreError>;

    /// Deletes a configuration record; `false` when it did not exist.
    async fn delete_config(
        &self,
        tenant: &TenantId,
        kind: ConfigKind,
        name: &str,
    ) -> Result<bool, StoreError>;

    /// Finishes derived work (indexing), stops background work and persists; called
    /// once at shutdown after the last write.
    async fn close(&self) -> Result<(), StoreError>;

    /// Waits until every write made before the call is reflected in summaries and
    /// rollups.
    async fn sync_index(&self) -> Result<(), StoreError>;

    /// Drops every day partition that ends before `epoch_seconds`; returns the days
    /// dropped (as `YYYYMMDD`).
    async fn drop_before(&self, epoch_seconds: u64) -> Result<Vec<u32>, StoreError>;

    /// The store's own counters, read at every `/metrics` scrape.
    fn counters(&self) -> Vec<StoreCounter> {
        Vec::new()
    }

    /// How the ingest writer should batch unacknowledged writes (see
    /// [`WriteBatching`]); by default it writes what is queued at once.
    fn write_batching(&self) -> WriteBatching {
        WriteBatching::IMMEDIATE
    }
}

/// A monotonic counter a store keeps about its own work (`/metrics`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreCounter {
    /// The metric's name without the `_total` suffix, e.g. `roentgen_clickhouse_inserts`.
    pub name: &'static str,
    /// What it counts.
    pub help: &'static str,
    /// The count so far.
    pub value: u64,
}

impl StoreCounter {
    /// The counter `name` as `value` reads now.
    pub fn read(
        name: &'static str,
        help: &'static str,
        value: &std::sync::atomic::AtomicU64,
    ) -> Self {
        Self {
            name,
            help,
            value: value.load(std::sync::atomic::Ordering::Relaxed),
        }
    }
}
