//! What a set of segment documents of one trace adds up to: the trace summary that
//! `GetTraceSummaries` returns and filters read, and the node/edge statistics that the
//! per-minute rollups of the service graph accumulate.
//!
//! Derivation is a pure function of the trace's current documents, so a store can
//! re-derive after every late or completing segment and apply the difference of the
//! statistics to its rollups: counts stay exact whatever order segments arrive in.

use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet};

use serde::{Deserialize, Serialize};

use crate::document::{AnnotationValue, Segment};
use crate::ids::TraceId;

/// A node of the service graph: a service (segment name and origin), an inferred
/// downstream (from a `remote`/`aws` subsegment) or the client that entered the trace.
///
/// A summary and its graph contribution repeat each key many times (nodes, edges,
/// annotations, root causes, rollup rows), so the fields are shared: a clone is a
/// reference count, not three strings. Fields read through [`ServiceKeyFields`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ServiceKey(Arc<ServiceKeyFields>);

/// The fields of a [`ServiceKey`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKeyFields {
    /// Service name.
    pub name: String,
    /// Node type: the segment `origin` (`AWS::EC2::Instance`), `AWS::<Service>` or
    /// `remote` for inferred nodes, `client` for the client node; `None` when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// AWS account of the service, when the segment names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

impl std::ops::Deref for ServiceKey {
    type Target = ServiceKeyFields;

    fn deref(&self) -> &ServiceKeyFields {
        &self.0
    }
}

impl std::fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<ServiceKeyFields> for ServiceKey {
    fn from(fields: ServiceKeyFields) -> Self {
        Self(Arc::new(fields))
    }
}

impl ServiceKey {
    /// A key of these fields.
    pub fn new(name: impl Into<String>, kind: Option<String>, account_id: Option<String>) -> Self {
        ServiceKeyFields {
            name: name.into(),
            kind,
            account_id,
        }
        .into()
    }

    /// The fields, to change in place: shared fields are copied first (a decoder that
    /// reuses its keys allocates nothing while it holds the only reference).
    pub fn make_mut(&mut self) -> &mut ServiceKeyFields {
        Arc::make_mut(&mut self.0)
    }

    /// True when both are clones of one key (then they are equal; equal keys built
    /// apart are not the same).
    pub fn same_as(&self, other: &ServiceKey) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The node that stands for callers outside the traced system.
    pub fn client() -> Self {
        Self::new("client", Some("client".to_string()), None)
    }

    /// The key of a segment's own service (see [`KeyRef::of_segment`]).
    pub(crate) fn of_segment(s: &Segment) -> Self {
        KeyRef::of_segment(s).to_owned_key()
    }

    /// The key of the node inferred from an `aws`/`remote` subsegment (see
    /// [`KeyRef::inferred`]).
    pub(crate) fn inferred(s: &Segment) -> Self {
        KeyRef::inferred(s).to_owned_key()
    }
}

/// Request data of the trace's entry point.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HttpSummary {
    /// Request URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Response status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Request method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Caller's user agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// Caller's IP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// An annotation value with the services that recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnnotationEntry {
    /// The value.
    pub value: StoredAnnotation,
    /// Services whose segments carried it.
    pub services: Vec<ServiceKey>,
}

/// An annotation value in a form that serializes losslessly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredAnnotation {
    /// String.
    String(String),
    /// Number.
    Number(f64),
    /// Boolean.
    Bool(bool),
}

impl From<&AnnotationValue> for StoredAnnotation {
    fn from(v: &AnnotationValue) -> Self {
        match v {
            AnnotationValue::String(s) => Self::String(s.clone()),
            AnnotationValue::Number(n) => Self::Number(*n),
            AnnotationValue::Bool(b) => Self::Bool(*b),
        }
    }
}

/// A user with the services that reported it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserEntry {
    /// User name.
    pub user: String,
    /// Services whose segments named the user.
    pub services: Vec<ServiceKey>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl HttpSummary {
    /// The request and response of one (sub)segment's `http` object.
    pub fn of(h: &crate::document::Http) -> Self {
        let req = h.request.as_ref();
        let text = |f: Option<&str>| f.map(str::to_string);
        Self {
            url: req.and_then(|r| r.url.clone()),
            status: h.response.as_ref().and_then(|r| r.status),
            method: text(req.and_then(|r| r.method.as_deref())),
            user_agent: req.and_then(|r| r.user_agent.clone()),
            client_ip: text(req.and_then(|r| r.client_ip.as_deref())),
        }
    }
}

/// The outcome of one segment of a node, or of one call on an edge: what a
/// `service(…) { … }` or `edge(…) { … }` sub-filter reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallStatus {
    /// Client error (4xx).
    #[serde(default, skip_serializing_if = "is_false")]
    pub error: bool,
    /// Throttled (429).
    #[serde(default, skip_serializing_if = "is_false")]
    pub throttle: bool,
    /// Server error (5xx).
    #[serde(default, skip_serializing_if = "is_false")]
    pub fault: bool,
    /// Not finished yet (no `end_time`).
    #[serde(default, skip_serializing_if = "is_false")]
    pub in_progress: bool,
    /// `end_time - start_time`, when finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_time: Option<f64>,
    /// The (sub)segment's `http` object, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSummary>,
}

impl CallStatus {
    /// The outcome recorded by one segment or subsegment.
    pub fn of(seg: &Segment) -> Self {
        Self {
            error: seg.error,
            throttle: seg.throttle,
            fault: seg.fault,
            in_progress: seg.end_time.is_none(),
            response_time: seg.response_time(),
            http: seg.http.as_deref().map(HttpSummary::of),
        }
    }

    /// No error, throttle or fault.
    pub fn is_ok(&self) -> bool {
        !self.error && !self.throttle && !self.fault
    }

    fn class(&self) -> (bool, bool, bool, bool) {
        (self.error, self.throttle, self.fault, self.in_progress)
    }
}

/// Most [`CallStatus`] records kept per node or edge of one summary. Past it a record
/// is kept only when no kept record has the same error/throttle/fault/in-progress
/// combination, so status questions stay exact and the summary stays bounded.
pub const MAX_CALLS_PER_NODE: usize = 100;

fn push_call(list: &mut Vec<CallStatus>, call: CallStatus) {
    if list.len() < MAX_CALLS_PER_NODE || !list.iter().any(|c| c.class() == call.class()) {
        list.push(call);
    }
}

/// A node of the trace's graph with the outcome of each of its segments (for an
/// inferred node: of each call to it). A segment's record carries the error, throttle
/// and fault flags of the subsegments it owns, embedded or sent separately, the way
/// the trace-level flags cover the entry service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeSummary {
    /// The node.
    pub key: ServiceKey,
    /// The node is the trace's entry point.
    #[serde(default, skip_serializing_if = "is_false")]
    pub root: bool,
    /// The node is inferred from `aws`/`remote` subsegments, not instrumented.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inferred: bool,
    /// One record per segment (at most [`MAX_CALLS_PER_NODE`] of a kind, see there).
    pub segments: Vec<CallStatus>,
}

/// A caller → callee connection of the trace's graph with the caller's view of each
/// call on it (the client edge into the entry point is not listed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeSummary {
    /// Caller.
    pub source: ServiceKey,
    /// Callee.
    pub target: ServiceKey,
    /// One record per call (the calling subsegment, or the callee's segment when the
    /// calling subsegment is missing or unfinished).
    pub calls: Vec<CallStatus>,
}

/// A root cause of a fault, an error or the response time of a trace: the chain of
/// services from the entry point to the one where it started. The shape follows the
/// X-Ray API's `FaultRootCause`, `ErrorRootCause` and `ResponseTimeRootCause`.
///
/// AWS does not document how it picks them; Roentgen's rules: a fault (error) root
/// cause starts at every faulted (errored or throttled) segment or subsegment none of
/// whose children is; its chain is the path from the top of the trace down to it
/// (a segment's parent is the subsegment that called it), grouped into services by
/// owning segment, with the inferred node appended when the path ends in an
/// unanswered `aws`/`remote` call. The response-time root cause follows the slowest
/// child from the entry segment while that child took at least half of its parent's
/// time; `coverage` is an entity's response time over the entry segment's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCause {
    /// Services from the entry point down to the cause (the last one).
    pub services: Vec<RootCauseService>,
    /// The entry segment itself carries the fault (or error): the client saw it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub client_impacting: bool,
}

/// A service on a root-cause chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCauseService {
    /// The node.
    pub key: ServiceKey,
    /// Inferred from a downstream call rather than instrumented.
    #[serde(default, skip_serializing_if = "is_false")]
    pub inferred: bool,
    /// The segment and subsegments of this service on the chain, outermost first.
    pub entity_path: Vec<RootCauseEntity>,
}

/// A segment or subsegment on a root-cause chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootCauseEntity {
    /// Segment or subsegment name.
    pub name: String,
    /// Exceptions it recorded (fault and error root causes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<RootCauseException>,
    /// A call to a downstream (`aws` or `remote` namespace), or an inferred node.
    #[serde(default, skip_serializing_if = "is_false")]
    pub remote: bool,
    /// Response-time root causes: the entity's response time over the entry
    /// segment's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
}

/// An exception named by a root cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootCauseException {
    /// Exception type (`type` in the segment's `cause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Exception message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The summary of one trace, as far as its documents so far tell. Its stored (JSON)
/// form writes repeated service keys and `http` objects once: see `stored.rs`.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// The trace.
    pub trace_id: TraceId,
    /// Earliest start of any document.
    pub start_time: f64,
    /// Latest end of any completed (sub)segment.
    pub end_time: Option<f64>,
    /// `end_time - start_time`.
    pub duration: Option<f64>,
    /// Root segment's own duration.
    pub response_time: Option<f64>,
    /// The root service or one of its subsegments faulted.
    pub has_fault: bool,
    /// The root service or one of its subsegments had a client error.
    pub has_error: bool,
    /// Any (sub)segment of the trace was throttled.
    pub has_throttle: bool,
    /// Some (sub)segment is still in progress.
    pub is_partial: bool,
    /// Request of the root segment.
    pub http: Option<HttpSummary>,
    /// Annotations by key.
    pub annotations: BTreeMap<String, Vec<AnnotationEntry>>,
    /// Users.
    pub users: Vec<UserEntry>,
    /// Every node of the trace's graph (services and inferred nodes, not the client).
    pub services: Vec<ServiceKey>,
    /// The root segment's service.
    pub entry_point: Option<ServiceKey>,
    /// EC2 instance ids from `aws.ec2.instance_id`.
    pub instance_ids: Vec<String>,
    /// Availability zones from `aws.ec2.availability_zone`.
    pub availability_zones: Vec<String>,
    /// Resource ARNs (ECS container ARNs for now).
    pub resource_arns: Vec<String>,
    /// Number of top-level documents.
    pub document_count: usize,
    /// Every node of the graph with the outcome of each of its segments. Empty in
    /// summaries stored before it existed.
    pub nodes: Vec<NodeSummary>,
    /// Every service → service and service → inferred-node edge with its calls.
    pub edges: Vec<EdgeSummary>,
    /// Where faults started (see [`RootCause`]); at most [`MAX_ROOT_CAUSES`].
    pub fault_root_causes: Vec<RootCause>,
    /// Where errors (4xx, throttles) started; at most [`MAX_ROOT_CAUSES`].
    pub error_root_causes: Vec<RootCause>,
    /// The chain that accounts for most of the response time (zero or one).
    pub response_time_root_causes: Vec<RootCause>,
}

impl TraceSummary {
    /// True when the service named `name` is a node of the trace (any type).
    pub fn has_service(&self, name: &str) -> bool {
        self.services.iter().any(|s| s.name == name)
    }

    /// True when any node of the trace is inferred.
    pub fn has_inferred(&self) -> bool {
        self.nodes.iter().any(|n| n.inferred)
    }
}

pub use crate::causes::MAX_ROOT_CAUSES;

/// Counts and timings of calls, addable and subtractable so rollups take differences.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Calls.
    pub count: i64,
    /// Calls with no error, throttle or fault.
    pub ok: i64,
    /// Client errors other than throttling.
    pub error_other: i64,
    /// Throttled calls.
    pub throttle: i64,
    /// Faults.
    pub fault: i64,
    /// Sum of response times, seconds.
    pub total_response_time: f64,
    /// Response-time histogram: bucket (see [`histogram_bucket`]) → count.
    pub histogram: BTreeMap<u32, i64>,
}

/// Histogram bucket of a response time: milliseconds kept to two significant digits,
/// so buckets are fixed and histograms merge exactly across minutes and nodes.
pub fn histogram_bucket(seconds: f64) -> u32 {
    let ms = (seconds.max(0.0) * 1000.0).round();
    if ms < 100.0 {
        return ms as u32;
    }
    let digits = ms.log10().floor() as i32;
    let scale = 10f64.powi(digits - 1);
    ((ms / scale).floor() * scale).min(u32::MAX as f64) as u32
}

impl Stats {
    /// Adds `other` multiplied by `sign` (1 or -1).
    pub fn add(&mut self, other: &Stats, sign: i64) {
        self.count += sign * other.count;
        self.ok += sign * other.ok;
        self.error_other += sign * other.error_other;
        self.throttle += sign * other.throttle;
        self.fault += sign * other.fault;
        self.total_response_time += sign as f64 * other.total_response_time;
        for (b, c) in &other.histogram {
            let e = self.histogram.entry(*b).or_insert(0);
            *e += sign * c;
            if *e == 0 {
                self.histogram.remove(b);
            }
        }
    }

    /// True when every count is zero (a change that only moves calls from `ok` to
    /// `fault` has a zero `count` but is not empty).
    pub fn is_empty(&self) -> bool {
        self.count == 0
            && self.ok == 0
            && self.error_other == 0
            && self.throttle == 0
            && self.fault == 0
            && self.histogram.is_empty()
    }
}

/// A node (`source: None`) or an edge (`source → target`) of the service graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct GraphKey {
    /// Caller, for edges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ServiceKey>,
    /// The node, or the callee of an edge.
    pub target: ServiceKey,
}

/// One trace's contribution to the rollups: (epoch minute, node or edge) → stats.
pub type GraphContribution = BTreeMap<(u64, GraphKey), Stats>;

/// Summary and graph contribution of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    /// The summary.
    pub summary: TraceSummary,
    /// The graph contribution.
    pub graph: GraphContribution,
}

fn minute_of(seg: &Segment) -> u64 {
    (seg.start_time.unwrap_or(0.0).max(0.0) / 60.0).floor() as u64
}

/// One segment or subsegment of a trace during derivation: documents in order, each
/// one's entities depth first (the order of [`Segment::walk`]).
pub(crate) struct Entity<'a> {
    /// The segment or subsegment.
    pub(crate) seg: &'a Segment,
    /// Index of the document that carried it.
    pub(crate) doc: usize,
    /// The entity that embeds it, within the same document.
    pub(crate) embedded_in: Option<usize>,
    /// Index of the segment document that owns it (`None`: an independent subsegment
    /// whose parent has not arrived).
    pub(crate) owner: Option<usize>,
}

/// A service key borrowed from the documents while a trace is derived; interned so
/// that nodes, edges and annotations refer to services by index and each
/// [`ServiceKey`] is built once. Its order is [`ServiceKey`]'s.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct KeyRef<'a> {
    name: &'a str,
    kind: Option<Cow<'a, str>>,
    account_id: Option<&'a str>,
}

impl<'a> KeyRef<'a> {
    fn of_segment(s: &'a Segment) -> Self {
        Self {
            name: s.name.as_deref().unwrap_or_default(),
            kind: s.origin.as_deref().map(Cow::Borrowed),
            account_id: s.aws.as_deref().and_then(|a| a.account_id.as_deref()),
        }
    }

    fn inferred(s: &'a Segment) -> Self {
        let name = s.name.as_deref().unwrap_or_default();
        let kind = match s.namespace.as_deref() {
            Some("aws") => {
                if s.aws
                    .as_deref()
                    .and_then(|a| a.table_name.as_ref())
                    .is_some()
                {
                    Cow::Owned(format!("AWS::{name}::Table"))
                } else {
                    Cow::Owned(format!("AWS::{name}"))
                }
            }
            _ => Cow::Borrowed("remote"),
        };
        Self {
            name,
            kind: Some(kind),
            account_id: s.aws.as_deref().and_then(|a| a.account_id.as_deref()),
        }
    }

    fn to_owned_key(&self) -> ServiceKey {
        ServiceKey::new(
            self.name,
            self.kind.as_ref().map(|k| k.to_string()),
            self.account_id.map(str::to_string),
        )
    }
}

/// The distinct service keys of one derivation. A trace names a handful of services:
/// up to [`Keys::LINEAR`] of them are found by comparing with each, which costs less
/// than hashing the strings; past that a map is built.
struct Keys<'a> {
    list: Vec<KeyRef<'a>>,
    index: Option<HashMap<KeyRef<'a>, usize>>,
}

impl<'a> Keys<'a> {
    const LINEAR: usize = 16;

    fn with_capacity(n: usize) -> Self {
        Self {
            list: Vec::with_capacity(n.min(Self::LINEAR)),
            index: None,
        }
    }

    fn intern(&mut self, key: KeyRef<'a>) -> usize {
        let found = match &self.index {
            Some(index) => index.get(&key).copied(),
            None => self.list.iter().position(|k| *k == key),
        };
        if let Some(i) = found {
            return i;
        }
        let i = self.list.len();
        self.list.push(key);
        if self.index.is_none() && self.list.len() > Self::LINEAR {
            self.index = Some(self.list.iter().map(KeyRef::clone).zip(0..).collect());
        } else if let Some(index) = &mut self.index {
            index.insert(self.list[i].clone(), i);
        }
        i
    }

    /// Each key's position in [`ServiceKey`] order, and the owned keys in that order.
    fn finish(self) -> (Vec<usize>, Vec<ServiceKey>) {
        let mut order: Vec<usize> = (0..self.list.len()).collect();
        order.sort_unstable_by(|a, b| self.list[*a].cmp(&self.list[*b]));
        let mut rank = vec![0; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        let owned = order.iter().map(|&i| self.list[i].to_owned_key()).collect();
        (rank, owned)
    }
}

/// Marks "no key" in an interned (source, target) pair.
const NO_KEY: usize = usize::MAX;

impl Stats {
    /// Counts one finished call: its class (fault over throttle over error over ok),
    /// response time and histogram bucket.
    fn record(&mut self, seg: &Segment) {
        let rt = seg.response_time().unwrap_or(0.0).max(0.0);
        self.count += 1;
        if seg.fault {
            self.fault += 1;
        } else if seg.throttle {
            self.throttle += 1;
        } else if seg.error {
            self.error_other += 1;
        } else {
            self.ok += 1;
        }
        self.total_response_time += rt;
        *self.histogram.entry(histogram_bucket(rt)).or_insert(0) += 1;
    }
}

impl Stats {
    /// Counts one finished call known only by its [`CallStatus`] (in-progress calls are
    /// not counted).
    pub fn record_call(&mut self, call: &CallStatus) {
        if call.in_progress {
            return;
        }
        let rt = call.response_time.unwrap_or(0.0).max(0.0);
        self.count += 1;
        if call.fault {
            self.fault += 1;
        } else if call.throttle {
            self.throttle += 1;
        } else if call.error {
            self.error_other += 1;
        } else {
            self.ok += 1;
        }
        self.total_response_time += rt;
        *self.histogram.entry(histogram_bucket(rt)).or_insert(0) += 1;
    }
}

/// The graph statistics of one trace rebuilt from its summary, all in the minute the
/// trace started: what a group's service graph adds up over the traces its filter
/// matches. It equals the trace's own contribution to the rollups unless a node saw
/// more than [`MAX_CALLS_PER_NODE`] calls in the trace (the summary keeps a sample of
/// those) or the trace spans several minutes.
pub fn graph_of_summary(summary: &TraceSummary) -> GraphContribution {
    let minute = (summary.start_time.max(0.0) / 60.0) as u64;
    let mut out = GraphContribution::new();
    let client = ServiceKey::client();
    for node in &summary.nodes {
        let mut stats = Stats::default();
        for call in &node.segments {
            stats.record_call(call);
        }
        if stats.count == 0 {
            continue;
        }
        if node.root {
            out.entry((
                minute,
                GraphKey {
                    source: Some(client.clone()),
                    target: node.key.clone(),
                },
            ))
            .or_default()
            .add(&stats, 1);
        }
        out.entry((
            minute,
            GraphKey {
                source: None,
                target: node.key.clone(),
            },
        ))
        .or_default()
        .add(&stats, 1);
    }
    for edge in &summary.edges {
        let mut stats = Stats::default();
        for call in &edge.calls {
            stats.record_call(call);
        }
        if stats.count == 0 {
            continue;
        }
        out.entry((
            minute,
            GraphKey {
                source: Some(edge.source.clone()),
                target: edge.target.clone(),
            },
        ))
        .or_default()
        .add(&stats, 1);
    }
    out
}

/// Derives the summary and graph statistics of one trace from its top-level documents
/// (segments and independent subsegments; one version per document id). Returns `None`
/// for an empty slice.
///
/// Services are interned once per derivation and referred to by index; the owned
/// [`ServiceKey`]s are built once each and cloned only into the output.
pub fn derive(trace_id: TraceId, docs: &[&Segment]) -> Option<Derived> {
    if docs.is_empty() {
        return None;
    }
    // Every entity once, depth first per document (the order of `Segment::walk`).
    let mut ents: Vec<Entity<'_>> = Vec::with_capacity(docs.len() * 4);
    let mut top_of: Vec<usize> = Vec::with_capacity(docs.len() + 1);
    let mut stack: Vec<(&Segment, Option<usize>)> = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        top_of.push(ents.len());
        stack.push((d, None));
        while let Some((seg, embedded_in)) = stack.pop() {
            let me = ents.len();
            ents.push(Entity {
                seg,
                doc: i,
                embedded_in,
                owner: None,
            });
            stack.extend(seg.subsegments.iter().rev().map(|s| (s, Some(me))));
        }
    }
    top_of.push(ents.len());
    let ents_of = |i: usize| top_of[i]..top_of[i + 1];

    // Which segment owns each entity id: segments own themselves and their embedded
    // subsegments; independent subsegments belong to whoever owns their parent.
    let mut owner: HashMap<&str, usize> = HashMap::with_capacity(ents.len());
    for e in &ents {
        if !docs[e.doc].is_subsegment()
            && let Some(id) = e.seg.id.as_deref()
        {
            owner.insert(id, e.doc);
        }
    }
    let mut pending: Vec<usize> = (0..docs.len())
        .filter(|i| docs[*i].is_subsegment())
        .collect();
    loop {
        let before = pending.len();
        pending.retain(|&i| {
            match docs[i]
                .parent_id
                .as_deref()
                .and_then(|p| owner.get(p).copied())
            {
                Some(o) => {
                    for e in &ents[ents_of(i)] {
                        if let Some(id) = e.seg.id.as_deref() {
                            owner.insert(id, o);
                        }
                    }
                    false
                }
                None => true,
            }
        });
        if pending.len() == before {
            break;
        }
    }
    for (i, d) in docs.iter().enumerate() {
        let o = if d.is_subsegment() {
            d.parent_id.as_deref().and_then(|p| owner.get(p).copied())
        } else {
            Some(i)
        };
        for e in &mut ents[top_of[i]..top_of[i + 1]] {
            e.owner = o;
        }
    }
    // Entities by id: the first one with an id for the root-cause tree, the last one
    // for the calling subsegment of a parent link (a second map only when ids repeat).
    let mut first_by_id: HashMap<&str, usize> = HashMap::with_capacity(ents.len());
    let mut repeated_ids = false;
    for (k, e) in ents.iter().enumerate() {
        if let Some(id) = e.seg.id.as_deref() {
            match first_by_id.entry(id) {
                Entry::Occupied(_) => repeated_ids = true,
                Entry::Vacant(v) => {
                    v.insert(k);
                }
            }
        }
    }
    let last_by_id: Option<HashMap<&str, usize>> = repeated_ids.then(|| {
        ents.iter()
            .enumerate()
            .filter_map(|(k, e)| Some((e.seg.id.as_deref()?, k)))
            .collect()
    });
    let calling = |p: &str| -> Option<&Segment> {
        last_by_id
            .as_ref()
            .unwrap_or(&first_by_id)
            .get(p)
            .map(|&k| ents[k].seg)
    };

    // The root: the earliest segment without a parent, else the earliest whose parent
    // is not in the trace (its caller's documents have not arrived).
    let segments: Vec<usize> = (0..docs.len())
        .filter(|i| !docs[*i].is_subsegment())
        .collect();
    let earliest = |cands: &mut dyn Iterator<Item = usize>| {
        cands.min_by(|a, b| {
            let sa = docs[*a].start_time.unwrap_or(f64::MAX);
            let sb = docs[*b].start_time.unwrap_or(f64::MAX);
            sa.total_cmp(&sb)
        })
    };
    let root = earliest(
        &mut segments
            .iter()
            .copied()
            .filter(|i| docs[*i].parent_id.is_none()),
    )
    .or_else(|| {
        earliest(&mut segments.iter().copied().filter(|i| {
            docs[*i]
                .parent_id
                .as_deref()
                .is_none_or(|p| owner.get(p).is_none_or(|o| o == i))
        }))
    });

    let mut start = f64::MAX;
    let mut end: Option<f64> = None;
    let mut is_partial = false;
    let mut has_throttle = false;
    let mut has_fault = false;
    let mut has_error = false;
    for e in &ents {
        if let Some(s) = e.seg.start_time {
            start = start.min(s);
        }
        match e.seg.end_time {
            Some(t) => end = Some(end.map_or(t, |x: f64| x.max(t))),
            None => is_partial |= e.seg.in_progress,
        }
        has_throttle |= e.seg.throttle;
        if root.is_some() && e.owner == root {
            has_fault |= e.seg.fault;
            has_error |= e.seg.error || e.seg.throttle;
        }
    }
    if root.is_none() {
        // No segment yet: judge by what is there.
        has_fault = ents.iter().any(|e| e.seg.fault);
        has_error = ents.iter().any(|e| e.seg.error);
    }
    let start = if start == f64::MAX { 0.0 } else { start };

    // Services: each segment document's key, then the inferred nodes of downstream
    // calls nobody answered with a segment of their own.
    let mut keys = Keys::with_capacity(docs.len() + 8);
    let doc_key: Vec<usize> = docs
        .iter()
        .map(|d| {
            if d.is_subsegment() {
                NO_KEY
            } else {
                keys.intern(KeyRef::of_segment(d))
            }
        })
        .collect();
    let answered: HashSet<&str> = segments
        .iter()
        .filter_map(|&i| docs[i].parent_id.as_deref())
        .collect();
    let inferred: Vec<(usize, usize)> = ents
        .iter()
        .enumerate()
        .filter(|(_, e)| {
            e.owner.is_some()
                && matches!(e.seg.namespace.as_deref(), Some("aws" | "remote"))
                && !e.seg.id.as_deref().is_some_and(|id| answered.contains(id))
        })
        .map(|(k, e)| (k, keys.intern(KeyRef::inferred(e.seg))))
        .collect();
    let client = keys.intern(KeyRef {
        name: "client",
        kind: Some(Cow::Borrowed("client")),
        account_id: None,
    });
    let key_count = keys.list.len();

    let mut annotations: BTreeMap<&str, Vec<(&AnnotationValue, Vec<usize>)>> = BTreeMap::new();
    let mut users: Vec<(&str, Vec<usize>)> = Vec::new();
    let mut instance_ids: BTreeSet<&str> = BTreeSet::new();
    let mut zones: BTreeSet<&str> = BTreeSet::new();
    let mut arns: BTreeSet<&str> = BTreeSet::new();
    fn add_service(list: &mut Vec<usize>, svc: Option<usize>) {
        if let Some(s) = svc
            && !list.contains(&s)
        {
            list.push(s);
        }
    }
    for e in &ents {
        let svc = e.owner.map(|o| doc_key[o]);
        for (k, v) in &e.seg.annotations {
            let list = annotations.entry(k.as_str()).or_default();
            let p = match list.iter().position(|x| x.0 == v) {
                Some(p) => p,
                None => {
                    list.push((v, Vec::new()));
                    list.len() - 1
                }
            };
            add_service(&mut list[p].1, svc);
        }
        if let Some(u) = e.seg.user.as_deref() {
            let p = match users.iter().position(|x| x.0 == u) {
                Some(p) => p,
                None => {
                    users.push((u, Vec::new()));
                    users.len() - 1
                }
            };
            add_service(&mut users[p].1, svc);
        }
        if let Some(aws) = &e.seg.aws {
            if let Some(ec2) = &aws.ec2 {
                instance_ids.extend(ec2.instance_id.as_deref());
                zones.extend(ec2.availability_zone.as_deref());
            }
            if let Some(ecs) = &aws.ecs {
                arns.extend(ecs.container_arn.as_deref());
            }
        }
    }

    // A node's segment record carries the flags of the subsegments it owns (embedded
    // or sent separately), as the trace-level flags do for the entry service.
    let mut owned_flags = vec![(false, false, false); docs.len()];
    for e in &ents {
        if let Some(f) = e.owner.and_then(|o| owned_flags.get_mut(o)) {
            f.0 |= e.seg.error;
            f.1 |= e.seg.throttle;
            f.2 |= e.seg.fault;
        }
    }

    // Graph (finished work only): nodes from segments, edges from parent links,
    // inferred nodes from unanswered downstream calls. Sub-filter records (unfinished
    // work too): each node's segments and each edge's calls.
    let mut graph: HashMap<(u64, usize, usize), Stats> = HashMap::with_capacity(key_count * 2);
    let mut add = |minute: u64, source: usize, target: usize, seg: &Segment| {
        graph
            .entry((minute, source, target))
            .or_default()
            .record(seg);
    };
    let mut is_service = vec![false; key_count];
    let mut node_calls: Vec<Option<(bool, Vec<CallStatus>)>> = Vec::new();
    node_calls.resize_with(key_count, || None);
    let mut edge_calls: HashMap<(usize, usize), Vec<CallStatus>> =
        HashMap::with_capacity(key_count * 2);
    for &i in &segments {
        let seg = docs[i];
        let me = doc_key[i];
        is_service[me] = true;
        let caller = seg
            .parent_id
            .as_deref()
            .and_then(|p| owner.get(p).copied().filter(|o| *o != i).map(|o| (p, o)));
        let via = caller.map(|(p, _)| calling(p).filter(|e| e.end_time.is_some()).unwrap_or(seg));
        if seg.end_time.is_some() {
            add(minute_of(seg), NO_KEY, me, seg);
            match (seg.parent_id.is_none(), caller, via) {
                (true, _, _) => add(minute_of(seg), client, me, seg),
                (false, Some((_, caller)), Some(via)) => {
                    add(minute_of(via), doc_key[caller], me, via)
                }
                _ => {}
            }
        }
        let mut status = CallStatus::of(seg);
        if let Some(&(error, throttle, fault)) = owned_flags.get(i) {
            status.error |= error;
            status.throttle |= throttle;
            status.fault |= fault;
        }
        push_call(&mut node_calls[me].get_or_insert_default().1, status);
        if let (Some((_, caller)), Some(via)) = (caller, via) {
            push_call(
                edge_calls.entry((doc_key[caller], me)).or_default(),
                CallStatus::of(via),
            );
        }
    }
    for &(k, node) in &inferred {
        let e = &ents[k];
        let Some(o) = e.owner else { continue };
        is_service[node] = true;
        if e.seg.end_time.is_some() {
            add(minute_of(e.seg), NO_KEY, node, e.seg);
            add(minute_of(e.seg), doc_key[o], node, e.seg);
        }
        let status = CallStatus::of(e.seg);
        let entry = node_calls[node].get_or_insert_default();
        entry.0 = true;
        push_call(&mut entry.1, status.clone());
        push_call(edge_calls.entry((doc_key[o], node)).or_default(), status);
    }
    let causes = crate::causes::derive_causes(docs, &ents, &top_of, &first_by_id, root, &answered);

    // Output, in service-key order: each owned key is built once and cloned from here.
    let (rank, owned) = keys.finish();
    let key = |i: usize| owned[rank[i]].clone();
    let entry_point = root.map(|r| doc_key[r]);

    // (minute, source rank, target rank): sorts as `(u64, GraphKey)` does.
    type Slot = (u64, Option<usize>, usize);
    let mut graph: Vec<(Slot, Stats)> = graph
        .into_iter()
        .map(|((m, s, t), stats)| ((m, (s != NO_KEY).then(|| rank[s]), rank[t]), stats))
        .collect();
    graph.sort_unstable_by_key(|(k, _)| *k);
    let graph: GraphContribution = graph
        .into_iter()
        .map(|((m, s, t), stats)| {
            let key = GraphKey {
                source: s.map(|s| owned[s].clone()),
                target: owned[t].clone(),
            };
            ((m, key), stats)
        })
        .collect();

    let mut nodes: Vec<(usize, bool, Vec<CallStatus>)> = node_calls
        .into_iter()
        .enumerate()
        .filter_map(|(i, c)| c.map(|(inferred, calls)| (i, inferred, calls)))
        .collect();
    nodes.sort_unstable_by_key(|n| rank[n.0]);
    let nodes = nodes
        .into_iter()
        .map(|(i, inferred, segments)| NodeSummary {
            key: key(i),
            root: entry_point == Some(i),
            inferred,
            segments,
        })
        .collect();
    let mut edges: Vec<((usize, usize), Vec<CallStatus>)> = edge_calls.into_iter().collect();
    edges.sort_unstable_by_key(|((s, t), _)| (rank[*s], rank[*t]));
    let edges = edges
        .into_iter()
        .map(|((s, t), calls)| EdgeSummary {
            source: key(s),
            target: key(t),
            calls,
        })
        .collect();
    let mut services: Vec<usize> = (0..key_count).filter(|&i| is_service[i]).collect();
    services.sort_unstable_by_key(|&i| rank[i]);
    let services = services.into_iter().map(key).collect();
    let annotations = annotations
        .into_iter()
        .map(|(k, list)| {
            let list = list
                .into_iter()
                .map(|(v, svcs)| AnnotationEntry {
                    value: StoredAnnotation::from(v),
                    services: svcs.into_iter().map(key).collect(),
                })
                .collect();
            (k.to_string(), list)
        })
        .collect();
    let users = users
        .into_iter()
        .map(|(u, svcs)| UserEntry {
            user: u.to_string(),
            services: svcs.into_iter().map(key).collect(),
        })
        .collect();

    let root_seg = root.map(|r| docs[r]);
    let http = root_seg
        .and_then(|r| r.http.as_deref())
        .map(HttpSummary::of);
    let summary = TraceSummary {
        trace_id,
        start_time: start,
        end_time: end,
        duration: end.map(|e| (e - start).max(0.0)),
        response_time: root_seg.and_then(|r| r.response_time()),
        has_fault,
        has_error,
        has_throttle,
        is_partial,
        http,
        annotations,
        users,
        services,
        entry_point: entry_point.map(key),
        instance_ids: instance_ids.into_iter().map(str::to_string).collect(),
        availability_zones: zones.into_iter().map(str::to_string).collect(),
        resource_arns: arns.into_iter().map(str::to_string).collect(),
        document_count: docs.len(),
        nodes,
        edges,
        fault_root_causes: causes.fault,
        error_root_causes: causes.error,
        response_time_root_causes: causes.response_time,
    };
    Some(Derived { summary, graph })
}
