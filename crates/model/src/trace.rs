//! What a set of segment documents of one trace adds up to: the trace summary that
//! `GetTraceSummaries` returns and filters read, and the node/edge statistics that the
//! per-minute rollups of the service graph accumulate.
//!
//! Derivation is a pure function of the trace's current documents, so a store can
//! re-derive after every late or completing segment and apply the difference of the
//! statistics to its rollups: counts stay exact whatever order segments arrive in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::document::{AnnotationValue, Segment};
use crate::ids::TraceId;

/// A node of the service graph: a service (segment name and origin), an inferred
/// downstream (from a `remote`/`aws` subsegment) or the client that entered the trace.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
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

impl ServiceKey {
    /// The node that stands for callers outside the traced system.
    pub fn client() -> Self {
        Self {
            name: "client".to_string(),
            kind: Some("client".to_string()),
            account_id: None,
        }
    }

    pub(crate) fn of_segment(s: &Segment) -> Self {
        Self {
            name: s.name.clone().unwrap_or_default(),
            kind: s.origin.clone(),
            account_id: s.aws.as_ref().and_then(|a| a.account_id.clone()),
        }
    }

    pub(crate) fn inferred(s: &Segment) -> Self {
        let name = s.name.clone().unwrap_or_default();
        let kind = match s.namespace.as_deref() {
            Some("aws") => {
                if s.aws.as_ref().and_then(|a| a.table_name.as_ref()).is_some() {
                    format!("AWS::{name}::Table")
                } else {
                    format!("AWS::{name}")
                }
            }
            _ => "remote".to_string(),
        };
        Self {
            name,
            kind: Some(kind),
            account_id: s.aws.as_ref().and_then(|a| a.account_id.clone()),
        }
    }
}

/// Request data of the trace's entry point.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
        let req = h.request.clone().unwrap_or_default();
        Self {
            url: req.url,
            status: h.response.as_ref().and_then(|r| r.status),
            method: req.method,
            user_agent: req.user_agent,
            client_ip: req.client_ip,
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
            http: seg.http.as_ref().map(HttpSummary::of),
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

/// The summary of one trace, as far as its documents so far tell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceSummary {
    /// The trace.
    pub trace_id: TraceId,
    /// Earliest start of any document.
    pub start_time: f64,
    /// Latest end of any completed (sub)segment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<f64>,
    /// `end_time - start_time`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Root segment's own duration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSummary>,
    /// Annotations by key.
    pub annotations: BTreeMap<String, Vec<AnnotationEntry>>,
    /// Users.
    pub users: Vec<UserEntry>,
    /// Every node of the trace's graph (services and inferred nodes, not the client).
    pub services: Vec<ServiceKey>,
    /// The root segment's service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<NodeSummary>,
    /// Every service → service and service → inferred-node edge with its calls.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edges: Vec<EdgeSummary>,
    /// Where faults started (see [`RootCause`]); at most [`MAX_ROOT_CAUSES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_root_causes: Vec<RootCause>,
    /// Where errors (4xx, throttles) started; at most [`MAX_ROOT_CAUSES`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_root_causes: Vec<RootCause>,
    /// The chain that accounts for most of the response time (zero or one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
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
    fn of(seg: &Segment) -> Self {
        let rt = seg.response_time().unwrap_or(0.0).max(0.0);
        let mut s = Self {
            count: 1,
            total_response_time: rt,
            ..Self::default()
        };
        if seg.fault {
            s.fault = 1;
        } else if seg.throttle {
            s.throttle = 1;
        } else if seg.error {
            s.error_other = 1;
        } else {
            s.ok = 1;
        }
        s.histogram.insert(histogram_bucket(rt), 1);
        s
    }

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

    /// True when every count is zero.
    pub fn is_empty(&self) -> bool {
        self.count == 0 && self.histogram.is_empty()
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

/// Derives the summary and graph statistics of one trace from its top-level documents
/// (segments and independent subsegments; one version per document id). Returns `None`
/// for an empty slice.
pub fn derive(trace_id: TraceId, docs: &[&Segment]) -> Option<Derived> {
    if docs.is_empty() {
        return None;
    }
    // Which segment owns each entity id: segments own themselves and their embedded
    // subsegments; independent subsegments belong to whoever owns their parent.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    let mut entities: Vec<(&Segment, Option<usize>)> = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        if !d.is_subsegment() {
            for e in d.walk() {
                if let Some(id) = e.id.as_deref() {
                    owner.insert(id, i);
                }
            }
        }
    }
    let mut pending: Vec<usize> = (0..docs.len())
        .filter(|i| docs[*i].is_subsegment())
        .collect();
    loop {
        let before = pending.len();
        pending.retain(|&i| {
            let d = docs[i];
            match d.parent_id.as_deref().and_then(|p| owner.get(p).copied()) {
                Some(o) => {
                    for e in d.walk() {
                        if let Some(id) = e.id.as_deref() {
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
        for e in d.walk() {
            entities.push((e, o));
        }
    }

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

    let key_of = |i: usize| ServiceKey::of_segment(docs[i]);

    let mut start = f64::MAX;
    let mut end: Option<f64> = None;
    let mut is_partial = false;
    let mut has_throttle = false;
    let mut has_fault = false;
    let mut has_error = false;
    for (e, o) in &entities {
        if let Some(s) = e.start_time {
            start = start.min(s);
        }
        match e.end_time {
            Some(t) => end = Some(end.map_or(t, |x: f64| x.max(t))),
            None => is_partial |= e.in_progress,
        }
        has_throttle |= e.throttle;
        if root.is_some() && *o == root {
            has_fault |= e.fault;
            has_error |= e.error || e.throttle;
        }
    }
    if root.is_none() {
        // No segment yet: judge by what is there.
        has_fault = entities.iter().any(|(e, _)| e.fault);
        has_error = entities.iter().any(|(e, _)| e.error);
    }
    let start = if start == f64::MAX { 0.0 } else { start };

    let mut annotations: BTreeMap<String, Vec<AnnotationEntry>> = BTreeMap::new();
    let mut users: Vec<UserEntry> = Vec::new();
    let mut instance_ids = BTreeSet::new();
    let mut zones = BTreeSet::new();
    let mut arns = BTreeSet::new();
    for (e, o) in &entities {
        let svc = o.map(key_of);
        for (k, v) in &e.annotations {
            let value = StoredAnnotation::from(v);
            let list = annotations.entry(k.clone()).or_default();
            let entry = match list.iter_mut().position(|x| x.value == value) {
                Some(p) => &mut list[p],
                None => {
                    list.push(AnnotationEntry {
                        value,
                        services: Vec::new(),
                    });
                    list.last_mut().expect("just pushed")
                }
            };
            if let Some(s) = &svc
                && !entry.services.contains(s)
            {
                entry.services.push(s.clone());
            }
        }
        if let Some(u) = e.user.as_deref() {
            let entry = match users.iter_mut().position(|x| x.user == u) {
                Some(p) => &mut users[p],
                None => {
                    users.push(UserEntry {
                        user: u.to_string(),
                        services: Vec::new(),
                    });
                    users.last_mut().expect("just pushed")
                }
            };
            if let Some(s) = &svc
                && !entry.services.contains(s)
            {
                entry.services.push(s.clone());
            }
        }
        if let Some(aws) = &e.aws {
            if let Some(ec2) = &aws.ec2 {
                instance_ids.extend(ec2.instance_id.clone());
                zones.extend(ec2.availability_zone.clone());
            }
            if let Some(ecs) = &aws.ecs {
                arns.extend(ecs.container_arn.clone());
            }
        }
    }

    // Graph: nodes from segments, edges from parent links, inferred nodes from
    // downstream-call subsegments nobody answered with a segment of their own.
    let mut graph: GraphContribution = BTreeMap::new();
    let mut add = |minute: u64, key: GraphKey, stats: Stats| {
        graph.entry((minute, key)).or_default().add(&stats, 1);
    };
    // The calling subsegment of each parent link, looked up once per segment rather
    // than searched for (large traces have thousands of entities).
    let by_id: HashMap<&str, &Segment> = entities
        .iter()
        .filter_map(|(e, _)| Some((e.id.as_deref()?, *e)))
        .collect();
    let mut services: BTreeSet<ServiceKey> = BTreeSet::new();
    let mut answered: BTreeSet<&str> = BTreeSet::new();
    for &i in &segments {
        if let Some(p) = docs[i].parent_id.as_deref() {
            answered.insert(p);
        }
    }
    for &i in &segments {
        let seg = docs[i];
        let me = key_of(i);
        services.insert(me.clone());
        if seg.end_time.is_none() {
            continue;
        }
        add(
            minute_of(seg),
            GraphKey {
                source: None,
                target: me.clone(),
            },
            Stats::of(seg),
        );
        match seg.parent_id.as_deref() {
            None => add(
                minute_of(seg),
                GraphKey {
                    source: Some(ServiceKey::client()),
                    target: me,
                },
                Stats::of(seg),
            ),
            Some(p) => {
                if let Some(&caller) = owner.get(p).filter(|o| **o != i) {
                    let via = by_id
                        .get(p)
                        .copied()
                        .filter(|e| e.end_time.is_some())
                        .unwrap_or(seg);
                    add(
                        minute_of(via),
                        GraphKey {
                            source: Some(key_of(caller)),
                            target: me,
                        },
                        Stats::of(via),
                    );
                }
            }
        }
    }
    for (e, o) in &entities {
        let (Some(o), Some(ns)) = (o, e.namespace.as_deref()) else {
            continue;
        };
        if ns != "aws" && ns != "remote" {
            continue;
        }
        if e.id.as_deref().is_some_and(|id| answered.contains(id)) {
            continue;
        }
        let node = ServiceKey::inferred(e);
        services.insert(node.clone());
        if e.end_time.is_none() {
            continue;
        }
        let stats = Stats::of(e);
        add(
            minute_of(e),
            GraphKey {
                source: None,
                target: node.clone(),
            },
            stats.clone(),
        );
        add(
            minute_of(e),
            GraphKey {
                source: Some(key_of(*o)),
                target: node,
            },
            stats,
        );
    }

    // What sub-filters read: each node's segments and each edge's calls, including
    // unfinished ones (the rollups above count finished work only).
    // A node's segment record carries the flags of the subsegments it owns (embedded
    // or sent separately), as the trace-level flags do for the entry service.
    let mut owned_flags = vec![(false, false, false); docs.len()];
    for (e, o) in &entities {
        if let Some(f) = o.and_then(|o| owned_flags.get_mut(o)) {
            f.0 |= e.error;
            f.1 |= e.throttle;
            f.2 |= e.fault;
        }
    }
    let mut node_calls: BTreeMap<ServiceKey, (bool, Vec<CallStatus>)> = BTreeMap::new();
    let mut edge_calls: BTreeMap<(ServiceKey, ServiceKey), Vec<CallStatus>> = BTreeMap::new();
    for &i in &segments {
        let seg = docs[i];
        let me = key_of(i);
        let mut status = CallStatus::of(seg);
        if let Some(&(error, throttle, fault)) = owned_flags.get(i) {
            status.error |= error;
            status.throttle |= throttle;
            status.fault |= fault;
        }
        push_call(&mut node_calls.entry(me.clone()).or_default().1, status);
        if let Some(p) = seg.parent_id.as_deref()
            && let Some(&caller) = owner.get(p).filter(|o| **o != i)
        {
            let via = by_id
                .get(p)
                .copied()
                .filter(|e| e.end_time.is_some())
                .unwrap_or(seg);
            push_call(
                edge_calls.entry((key_of(caller), me)).or_default(),
                CallStatus::of(via),
            );
        }
    }
    for (e, o) in &entities {
        let (Some(o), Some("aws" | "remote")) = (o, e.namespace.as_deref()) else {
            continue;
        };
        if e.id.as_deref().is_some_and(|id| answered.contains(id)) {
            continue;
        }
        let node = ServiceKey::inferred(e);
        let entry = node_calls.entry(node.clone()).or_default();
        entry.0 = true;
        push_call(&mut entry.1, CallStatus::of(e));
        push_call(
            edge_calls.entry((key_of(*o), node)).or_default(),
            CallStatus::of(e),
        );
    }
    let entry_point = root.map(key_of);
    let nodes = node_calls
        .into_iter()
        .map(|(key, (inferred, segments))| NodeSummary {
            root: entry_point.as_ref() == Some(&key),
            key,
            inferred,
            segments,
        })
        .collect();
    let edges = edge_calls
        .into_iter()
        .map(|((source, target), calls)| EdgeSummary {
            source,
            target,
            calls,
        })
        .collect();
    let causes = crate::causes::derive_causes(docs, &owner, root, &answered);

    let root_seg = root.map(|r| docs[r]);
    let http = root_seg.and_then(|r| r.http.as_ref()).map(HttpSummary::of);
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
        services: services.into_iter().collect(),
        entry_point,
        instance_ids: instance_ids.into_iter().collect(),
        availability_zones: zones.into_iter().collect(),
        resource_arns: arns.into_iter().collect(),
        document_count: docs.len(),
        nodes,
        edges,
        fault_root_causes: causes.fault,
        error_root_causes: causes.error,
        response_time_root_causes: causes.response_time,
    };
    Some(Derived { summary, graph })
}
