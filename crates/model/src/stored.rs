//! The stored (JSON) form of a [`TraceSummary`]: what `Serialize` writes and
//! `Deserialize` reads.
//!
//! The in-memory summary repeats service keys (in nodes, edges, annotations, users,
//! the entry point) and `http` objects (a callee's segment and its caller's subsegment
//! usually record the same request). The stored form writes each once:
//!
//! - `services` is written as is; every other service key is the index of an equal
//!   key in it (`"entry_point": 2`), or the key itself when `services` has no equal
//!   key.
//! - The `http` objects of node and edge calls go into one `https` table, in order of
//!   first use; a call refers to its entry by index (`"h": 0`).
//! - Node records are `{"k": key, "root": bool, "inferred": bool, "s": [calls]}`, edge
//!   records `{"src": key, "dst": key, "c": [calls]}`, calls
//!   `{"error", "throttle", "fault", "in_progress", "rt": response time, "h": http,
//!   "n": count}` with false, absent and empty fields left out. Consecutive equal
//!   calls are written once with their count `n` (at most
//!   [`MAX_CALLS_PER_NODE`]), and read back as that many calls.
//!
//! Reading also accepts every earlier form: keys and `http` objects written inline,
//! the long field names (`key`, `segments`, `source`, `target`, `calls`,
//! `response_time`, `http`), and summaries without nodes, edges or root causes. The
//! stored form is an encoding only: reading what was written gives an equal summary.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::TraceId;
use crate::trace::{
    AnnotationEntry, CallStatus, EdgeSummary, HttpSummary, MAX_CALLS_PER_NODE, NodeSummary,
    RootCause, ServiceKey, StoredAnnotation, TraceSummary, UserEntry,
};

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// What references in the stored form point into.
struct Tables<'a> {
    services: &'a [ServiceKey],
    services_sorted: bool,
    https: Vec<&'a HttpSummary>,
    http_index: HashMap<&'a HttpSummary, usize>,
}

impl<'a> Tables<'a> {
    fn new(s: &'a TraceSummary) -> Self {
        let mut t = Tables {
            services: &s.services,
            services_sorted: s.services.is_sorted(),
            https: Vec::new(),
            http_index: HashMap::new(),
        };
        let calls = s
            .nodes
            .iter()
            .flat_map(|n| &n.segments)
            .chain(s.edges.iter().flat_map(|e| &e.calls));
        for c in calls {
            if let Some(h) = &c.http {
                let next = t.https.len();
                if *t.http_index.entry(h).or_insert(next) == next {
                    t.https.push(h);
                }
            }
        }
        t
    }

    fn key_index(&self, key: &ServiceKey) -> Option<usize> {
        // A derived summary's keys share their fields with the one in `services`: a
        // short list is searched by identity before any string is compared.
        if self.services.len() <= 32
            && let Some(i) = self.services.iter().position(|k| k.same_as(key))
        {
            return Some(i);
        }
        if self.services_sorted {
            self.services.binary_search(key).ok()
        } else {
            self.services.iter().position(|k| k == key)
        }
    }
}

/// A service key: an index into `services`, else the key.
struct KeyOut<'a>(&'a Tables<'a>, &'a ServiceKey);

impl Serialize for KeyOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0.key_index(self.1) {
            Some(i) => s.serialize_u64(i as u64),
            None => self.1.serialize(s),
        }
    }
}

struct KeysOut<'a>(&'a Tables<'a>, &'a [ServiceKey]);

impl Serialize for KeysOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.1.iter().map(|k| KeyOut(self.0, k)))
    }
}

#[derive(Serialize)]
struct AnnotationOut<'a> {
    value: &'a StoredAnnotation,
    services: KeysOut<'a>,
}

struct AnnotationsOut<'a>(&'a Tables<'a>, &'a BTreeMap<String, Vec<AnnotationEntry>>);

impl Serialize for AnnotationsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.1.len()))?;
        for (k, list) in self.1 {
            let list: Vec<AnnotationOut<'_>> = list
                .iter()
                .map(|e| AnnotationOut {
                    value: &e.value,
                    services: KeysOut(self.0, &e.services),
                })
                .collect();
            m.serialize_entry(k, &list)?;
        }
        m.end()
    }
}

#[derive(Serialize)]
struct UserOut<'a> {
    user: &'a str,
    services: KeysOut<'a>,
}

#[derive(Serialize)]
struct CallOut {
    #[serde(skip_serializing_if = "is_false")]
    error: bool,
    #[serde(skip_serializing_if = "is_false")]
    throttle: bool,
    #[serde(skip_serializing_if = "is_false")]
    fault: bool,
    #[serde(skip_serializing_if = "is_false")]
    in_progress: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    rt: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    h: Option<usize>,
    #[serde(skip_serializing_if = "is_one")]
    n: usize,
}

struct CallsOut<'a>(&'a Tables<'a>, &'a [CallStatus]);

impl Serialize for CallsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(None)?;
        let mut rest = self.1;
        while let Some(first) = rest.first() {
            let n = rest
                .iter()
                .take(MAX_CALLS_PER_NODE)
                .take_while(|c| *c == first)
                .count();
            seq.serialize_element(&CallOut {
                error: first.error,
                throttle: first.throttle,
                fault: first.fault,
                in_progress: first.in_progress,
                rt: first.response_time,
                h: first
                    .http
                    .as_ref()
                    .and_then(|h| self.0.http_index.get(h).copied()),
                n,
            })?;
            rest = &rest[n..];
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct NodeOut<'a> {
    k: KeyOut<'a>,
    #[serde(skip_serializing_if = "is_false")]
    root: bool,
    #[serde(skip_serializing_if = "is_false")]
    inferred: bool,
    s: CallsOut<'a>,
}

#[derive(Serialize)]
struct EdgeOut<'a> {
    src: KeyOut<'a>,
    dst: KeyOut<'a>,
    c: CallsOut<'a>,
}

#[derive(Serialize)]
struct SummaryOut<'a> {
    trace_id: &'a TraceId,
    start_time: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_time: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_time: Option<f64>,
    has_fault: bool,
    has_error: bool,
    has_throttle: bool,
    is_partial: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    http: Option<&'a HttpSummary>,
    annotations: AnnotationsOut<'a>,
    users: Vec<UserOut<'a>>,
    services: &'a [ServiceKey],
    #[serde(skip_serializing_if = "Option::is_none")]
    entry_point: Option<KeyOut<'a>>,
    instance_ids: &'a [String],
    availability_zones: &'a [String],
    resource_arns: &'a [String],
    document_count: usize,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    https: &'a [&'a HttpSummary],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    nodes: Vec<NodeOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    edges: Vec<EdgeOut<'a>>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    fault_root_causes: &'a [RootCause],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    error_root_causes: &'a [RootCause],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    response_time_root_causes: &'a [RootCause],
}

impl Serialize for TraceSummary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let t = Tables::new(self);
        let t = &t;
        SummaryOut {
            trace_id: &self.trace_id,
            start_time: self.start_time,
            end_time: self.end_time,
            duration: self.duration,
            response_time: self.response_time,
            has_fault: self.has_fault,
            has_error: self.has_error,
            has_throttle: self.has_throttle,
            is_partial: self.is_partial,
            http: self.http.as_ref(),
            annotations: AnnotationsOut(t, &self.annotations),
            users: self
                .users
                .iter()
                .map(|u| UserOut {
                    user: &u.user,
                    services: KeysOut(t, &u.services),
                })
                .collect(),
            services: &self.services,
            entry_point: self.entry_point.as_ref().map(|k| KeyOut(t, k)),
            instance_ids: &self.instance_ids,
            availability_zones: &self.availability_zones,
            resource_arns: &self.resource_arns,
            document_count: self.document_count,
            https: &t.https,
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeOut {
                    k: KeyOut(t, &n.key),
                    root: n.root,
                    inferred: n.inferred,
                    s: CallsOut(t, &n.segments),
                })
                .collect(),
            edges: self
                .edges
                .iter()
                .map(|e| EdgeOut {
                    src: KeyOut(t, &e.source),
                    dst: KeyOut(t, &e.target),
                    c: CallsOut(t, &e.calls),
                })
                .collect(),
            fault_root_causes: &self.fault_root_causes,
            error_root_causes: &self.error_root_causes,
            response_time_root_causes: &self.response_time_root_causes,
        }
        .serialize(s)
    }
}

/// A reference read back: an index into a table, or the value written inline.
enum Ref<T> {
    Index(u64),
    Inline(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Ref<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct RefVisitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for RefVisitor<T> {
            type Value = Ref<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an index or an object")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Ref::Index(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Ref::Inline)
            }
        }
        d.deserialize_any(RefVisitor(std::marker::PhantomData))
    }
}

impl<T: Clone> Ref<T> {
    fn resolve<E: de::Error>(self, table: &[T], what: &str) -> Result<T, E> {
        match self {
            Ref::Inline(v) => Ok(v),
            Ref::Index(i) => usize::try_from(i)
                .ok()
                .and_then(|i| table.get(i))
                .cloned()
                .ok_or_else(|| E::custom(format_args!("{what} index {i} out of range"))),
        }
    }
}

fn resolve_keys<E: de::Error>(
    refs: Vec<Ref<ServiceKey>>,
    services: &[ServiceKey],
) -> Result<Vec<ServiceKey>, E> {
    refs.into_iter()
        .map(|r| r.resolve(services, "service"))
        .collect()
}

fn one() -> usize {
    1
}

#[derive(Deserialize)]
struct CallIn {
    #[serde(default)]
    error: bool,
    #[serde(default)]
    throttle: bool,
    #[serde(default)]
    fault: bool,
    #[serde(default)]
    in_progress: bool,
    #[serde(default, alias = "response_time")]
    rt: Option<f64>,
    #[serde(default, alias = "http")]
    h: Option<Ref<HttpSummary>>,
    #[serde(default = "one")]
    n: usize,
}

fn resolve_calls<E: de::Error>(
    calls: Vec<CallIn>,
    https: &[HttpSummary],
) -> Result<Vec<CallStatus>, E> {
    let mut out = Vec::with_capacity(calls.len());
    for c in calls {
        if c.n == 0 || c.n > MAX_CALLS_PER_NODE {
            return Err(E::custom(format_args!("call count {} out of range", c.n)));
        }
        let call = CallStatus {
            error: c.error,
            throttle: c.throttle,
            fault: c.fault,
            in_progress: c.in_progress,
            response_time: c.rt,
            http: c.h.map(|h| h.resolve(https, "http")).transpose()?,
        };
        out.extend(std::iter::repeat_n(call, c.n));
    }
    Ok(out)
}

#[derive(Deserialize)]
struct NodeIn {
    #[serde(alias = "key")]
    k: Ref<ServiceKey>,
    #[serde(default)]
    root: bool,
    #[serde(default)]
    inferred: bool,
    #[serde(default, alias = "segments")]
    s: Vec<CallIn>,
}

#[derive(Deserialize)]
struct EdgeIn {
    #[serde(alias = "source")]
    src: Ref<ServiceKey>,
    #[serde(alias = "target")]
    dst: Ref<ServiceKey>,
    #[serde(default, alias = "calls")]
    c: Vec<CallIn>,
}

#[derive(Deserialize)]
struct AnnotationIn {
    value: StoredAnnotation,
    #[serde(default)]
    services: Vec<Ref<ServiceKey>>,
}

#[derive(Deserialize)]
struct UserIn {
    user: String,
    #[serde(default)]
    services: Vec<Ref<ServiceKey>>,
}

#[derive(Deserialize)]
struct SummaryIn {
    trace_id: TraceId,
    start_time: f64,
    #[serde(default)]
    end_time: Option<f64>,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    response_time: Option<f64>,
    has_fault: bool,
    has_error: bool,
    has_throttle: bool,
    is_partial: bool,
    #[serde(default)]
    http: Option<HttpSummary>,
    annotations: BTreeMap<String, Vec<AnnotationIn>>,
    users: Vec<UserIn>,
    services: Vec<ServiceKey>,
    #[serde(default)]
    entry_point: Option<Ref<ServiceKey>>,
    instance_ids: Vec<String>,
    availability_zones: Vec<String>,
    resource_arns: Vec<String>,
    document_count: usize,
    #[serde(default)]
    https: Vec<HttpSummary>,
    #[serde(default)]
    nodes: Vec<NodeIn>,
    #[serde(default)]
    edges: Vec<EdgeIn>,
    #[serde(default)]
    fault_root_causes: Vec<RootCause>,
    #[serde(default)]
    error_root_causes: Vec<RootCause>,
    #[serde(default)]
    response_time_root_causes: Vec<RootCause>,
}

impl<'de> Deserialize<'de> for TraceSummary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = SummaryIn::deserialize(d)?;
        let services = w.services;
        let https = w.https;
        let annotations = w
            .annotations
            .into_iter()
            .map(|(k, list)| {
                let list = list
                    .into_iter()
                    .map(|e| {
                        Ok(AnnotationEntry {
                            value: e.value,
                            services: resolve_keys(e.services, &services)?,
                        })
                    })
                    .collect::<Result<Vec<_>, D::Error>>()?;
                Ok((k, list))
            })
            .collect::<Result<BTreeMap<_, _>, D::Error>>()?;
        let users = w
            .users
            .into_iter()
            .map(|u| {
                Ok(UserEntry {
                    user: u.user,
                    services: resolve_keys(u.services, &services)?,
                })
            })
            .collect::<Result<Vec<_>, D::Error>>()?;
        let nodes = w
            .nodes
            .into_iter()
            .map(|n| {
                Ok(NodeSummary {
                    key: n.k.resolve(&services, "service")?,
                    root: n.root,
                    inferred: n.inferred,
                    segments: resolve_calls(n.s, &https)?,
                })
            })
            .collect::<Result<Vec<_>, D::Error>>()?;
        let edges = w
            .edges
            .into_iter()
            .map(|e| {
                Ok(EdgeSummary {
                    source: e.src.resolve(&services, "service")?,
                    target: e.dst.resolve(&services, "service")?,
                    calls: resolve_calls(e.c, &https)?,
                })
            })
            .collect::<Result<Vec<_>, D::Error>>()?;
        let entry_point = w
            .entry_point
            .map(|k| k.resolve(&services, "service"))
            .transpose()?;
        Ok(TraceSummary {
            trace_id: w.trace_id,
            start_time: w.start_time,
            end_time: w.end_time,
            duration: w.duration,
            response_time: w.response_time,
            has_fault: w.has_fault,
            has_error: w.has_error,
            has_throttle: w.has_throttle,
            is_partial: w.is_partial,
            http: w.http,
            annotations,
            users,
            services,
            entry_point,
            instance_ids: w.instance_ids,
            availability_zones: w.availability_zones,
            resource_arns: w.resource_arns,
            document_count: w.document_count,
            nodes,
            edges,
            fault_root_causes: w.fault_root_causes,
            error_root_causes: w.error_root_causes,
            response_time_root_causes: w.response_time_root_causes,
        })
    }
}
