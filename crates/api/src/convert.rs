//! From the model's trace summaries to the wire's.

use roentgen_model::ServiceKey;
use roentgen_model::trace::{RootCause, StoredAnnotation, TraceSummary as ModelSummary};

use crate::timestamp::EpochSeconds;
use crate::traces::{
    AnnotationValue, AvailabilityZoneDetail, ErrorRootCause, ErrorRootCauseEntity,
    ErrorRootCauseService, FaultRootCause, FaultRootCauseEntity, FaultRootCauseService, Http,
    InstanceIdDetail, ResourceARNDetail, ResponseTimeRootCause, ResponseTimeRootCauseEntity,
    ResponseTimeRootCauseService, RootCauseException, ServiceId, TraceSummary, TraceUser,
    ValueWithServiceIds,
};

fn exceptions(e: &[roentgen_model::trace::RootCauseException]) -> Vec<RootCauseException> {
    e.iter()
        .map(|x| RootCauseException {
            name: x.name.clone(),
            message: x.message.clone(),
        })
        .collect()
}

/// One wire function per root-cause kind: the three wire shapes differ only in their
/// entity type.
macro_rules! root_causes {
    ($(#[$doc:meta])* $fn_name:ident, $cause:ident, $service:ident, |$e:ident| $entity:expr) => {
        $(#[$doc])*
        pub fn $fn_name(causes: &[RootCause]) -> Vec<$cause> {
            causes
                .iter()
                .map(|c| $cause {
                    services: c
                        .services
                        .iter()
                        .map(|s| $service {
                            name: Some(s.key.name.clone()),
                            names: vec![s.key.name.clone()],
                            r#type: s.key.kind.clone(),
                            account_id: s.key.account_id.clone(),
                            entity_path: s.entity_path.iter().map(|$e| $entity).collect(),
                            inferred: Some(s.inferred),
                        })
                        .collect(),
                    client_impacting: Some(c.client_impacting),
                })
                .collect()
        }
    };
}

root_causes!(
    /// The wire shape of fault root causes.
    fault_root_causes,
    FaultRootCause,
    FaultRootCauseService,
    |e| FaultRootCauseEntity {
        name: Some(e.name.clone()),
        exceptions: exceptions(&e.exceptions),
        remote: Some(e.remote),
    }
);

root_causes!(
    /// The wire shape of error root causes.
    error_root_causes,
    ErrorRootCause,
    ErrorRootCauseService,
    |e| ErrorRootCauseEntity {
        name: Some(e.name.clone()),
        exceptions: exceptions(&e.exceptions),
        remote: Some(e.remote),
    }
);

root_causes!(
    /// The wire shape of response-time root causes.
    response_time_root_causes,
    ResponseTimeRootCause,
    ResponseTimeRootCauseService,
    |e| ResponseTimeRootCauseEntity {
        name: Some(e.name.clone()),
        coverage: e.coverage,
        remote: Some(e.remote),
    }
);

/// The wire `ServiceId` of a graph node.
pub fn service_id(key: &ServiceKey) -> ServiceId {
    ServiceId {
        name: Some(key.name.clone()),
        names: vec![key.name.clone()],
        account_id: key.account_id.clone(),
        r#type: key.kind.clone(),
    }
}

fn annotation_value(v: &StoredAnnotation) -> AnnotationValue {
    match v {
        StoredAnnotation::String(s) => AnnotationValue::StringValue(s.clone()),
        StoredAnnotation::Number(n) => AnnotationValue::NumberValue(*n),
        StoredAnnotation::Bool(b) => AnnotationValue::BooleanValue(*b),
    }
}

/// The wire `TraceSummary` of a model summary, with the store's revision and the time
/// of the event that matched the query.
pub fn trace_summary(
    s: &ModelSummary,
    revision: u32,
    matched_event_time: Option<f64>,
) -> TraceSummary {
    TraceSummary {
        id: Some(s.trace_id.to_string()),
        start_time: Some(EpochSeconds(s.start_time)),
        duration: s.duration,
        response_time: s.response_time,
        has_fault: Some(s.has_fault),
        has_error: Some(s.has_error),
        has_throttle: Some(s.has_throttle),
        is_partial: Some(s.is_partial),
        http: s.http.as_ref().map(|h| Http {
            http_url: h.url.clone(),
            http_status: h.status.map(i32::from),
            http_method: h.method.clone(),
            user_agent: h.user_agent.clone(),
            client_ip: h.client_ip.clone(),
        }),
        annotations: s
            .annotations
            .iter()
            .map(|(k, entries)| {
                (
                    k.clone(),
                    entries
                        .iter()
                        .map(|e| ValueWithServiceIds {
                            annotation_value: Some(annotation_value(&e.value)),
                            service_ids: e.services.iter().map(service_id).collect(),
                        })
                        .collect(),
                )
            })
            .collect(),
        users: s
            .users
            .iter()
            .map(|u| TraceUser {
                user_name: Some(u.user.clone()),
                service_ids: u.services.iter().map(service_id).collect(),
            })
            .collect(),
        service_ids: s.services.iter().map(service_id).collect(),
        resource_arns: s
            .resource_arns
            .iter()
            .map(|a| ResourceARNDetail {
                arn: Some(a.clone()),
            })
            .collect(),
        instance_ids: s
            .instance_ids
            .iter()
            .map(|i| InstanceIdDetail {
                id: Some(i.clone()),
            })
            .collect(),
        availability_zones: s
            .availability_zones
            .iter()
            .map(|z| AvailabilityZoneDetail {
                name: Some(z.clone()),
            })
            .collect(),
        entry_point: s.entry_point.as_ref().map(service_id),
        fault_root_causes: fault_root_causes(&s.fault_root_causes),
        error_root_causes: error_root_causes(&s.error_root_causes),
        response_time_root_causes: response_time_root_causes(&s.response_time_root_causes),
        revision: Some(i32::try_from(revision).unwrap_or(i32::MAX)),
        matched_event_time: matched_event_time.map(EpochSeconds),
    }
}

/// The smallest service key in `Ord` order (empty name, no type, no account).
fn smallest_key() -> ServiceKey {
    ServiceKey::new(String::new(), None, None)
}

/// The service graph of a window from node and edge statistics, each row with the
/// first and last epoch minute it saw requests in (a minute row: the same minute): one
/// `Service` per node (with `ReferenceId`s assigned in name order), each with its
/// outgoing edges. Nodes that only appear as an edge's end (the client, an inferred
/// downstream without statistics of its own) are listed without statistics. `Root` is
/// set on the nodes the client calls. Both histograms of a node are its response-time
/// histogram (a node's segments' durations are their response times); bucket values are
/// seconds. Times are clipped to `window`.
pub fn service_graph(
    rows: impl IntoIterator<Item = (u64, u64, roentgen_model::GraphKey, roentgen_model::Stats)>,
    window: (f64, f64),
) -> Vec<crate::graph::Service> {
    use std::collections::BTreeMap;

    use crate::graph::{Edge, Service};

    #[derive(Default)]
    struct Acc {
        stats: roentgen_model::Stats,
        first: u64,
        last: u64,
        seen: bool,
    }
    impl Acc {
        fn add(&mut self, (first, last): (u64, u64), stats: &roentgen_model::Stats) {
            self.stats.add(stats, 1);
            if !self.seen {
                (self.first, self.last, self.seen) = (first, last, true);
            } else {
                self.first = self.first.min(first);
                self.last = self.last.max(last);
            }
        }
    }
    let mut nodes: BTreeMap<ServiceKey, Acc> = BTreeMap::new();
    let mut edges: BTreeMap<(ServiceKey, ServiceKey), Acc> = BTreeMap::new();
    for (first, last, key, stats) in rows {
        match key.source {
            None => nodes
                .entry(key.target)
                .or_default()
                .add((first, last), &stats),
            Some(source) => edges
                .entry((source, key.target))
                .or_default()
                .add((first, last), &stats),
        }
    }
    // Every end of an edge is a node, with or without statistics of its own.
    let mut all: BTreeMap<ServiceKey, Option<Acc>> = BTreeMap::new();
    for (k, acc) in nodes {
        all.insert(k, Some(acc));
    }
    for (source, target) in edges.keys() {
        all.entry(source.clone()).or_insert(None);
        all.entry(target.clone()).or_insert(None);
    }
    let ids: BTreeMap<&ServiceKey, i32> = all
        .keys()
        .enumerate()
        .map(|(i, k)| (k, i32::try_from(i).unwrap_or(i32::MAX)))
        .collect();
    let client = ServiceKey::client();
    let (lo, hi) = window;
    let times = |acc: &Acc| {
        (
            Some(EpochSeconds(((acc.first * 60) as f64).max(lo))),
            Some(EpochSeconds((((acc.last + 1) * 60) as f64).min(hi))),
        )
    };
    all.iter()
        .map(|(key, acc)| {
            let (start_time, end_time) = acc.as_ref().map_or((None, None), times);
            let out_edges = edges
                .range((key.clone(), smallest_key())..)
                .take_while(|((source, _), _)| source == key)
                .map(|((_, target), e)| {
                    let (start_time, end_time) = times(e);
                    Edge {
                        reference_id: ids.get(target).copied(),
                        start_time,
                        end_time,
                        summary_statistics: Some(statistics(&e.stats)),
                        response_time_histogram: histogram(&e.stats),
                        aliases: Vec::new(),
                    }
                })
                .collect();
            let root = edges.contains_key(&(client.clone(), key.clone()));
            Service {
                reference_id: ids.get(key).copied(),
                name: Some(key.name.clone()),
                names: vec![key.name.clone()],
                root: Some(root),
                account_id: key.account_id.clone(),
                r#type: key.kind.clone(),
                state: Some("active".to_string()),
                start_time,
                end_time,
                edges: out_edges,
                summary_statistics: acc.as_ref().map(|a| statistics(&a.stats)),
                duration_histogram: acc
                    .as_ref()
                    .map(|a| histogram(&a.stats))
                    .unwrap_or_default(),
                response_time_histogram: acc
                    .as_ref()
                    .map(|a| histogram(&a.stats))
                    .unwrap_or_default(),
            }
        })
        .collect()
}

/// Wire statistics of rollup statistics.
pub fn statistics(s: &roentgen_model::Stats) -> crate::graph::Statistics {
    use crate::graph::{ErrorStatistics, FaultStatistics, Statistics};
    Statistics {
        ok_count: Some(s.ok),
        error_statistics: Some(ErrorStatistics {
            throttle_count: Some(s.throttle),
            other_count: Some(s.error_other),
            total_count: Some(s.throttle + s.error_other),
        }),
        fault_statistics: Some(FaultStatistics {
            other_count: Some(s.fault),
            total_count: Some(s.fault),
        }),
        total_count: Some(s.count),
        total_response_time: Some(s.total_response_time),
    }
}

/// Wire histogram of a rollup histogram (bucket values in seconds).
pub fn histogram(s: &roentgen_model::Stats) -> Vec<crate::graph::HistogramEntry> {
    s.histogram
        .iter()
        .map(|(bucket, count)| crate::graph::HistogramEntry {
            value: Some(f64::from(*bucket) / 1000.0),
            count: Some(*count),
        })
        .collect()
}
