//! What summaries gained for filter sub-filters: per-node segment outcomes, per-edge
//! calls, and fault/error/response-time root causes. Built from real documents so the
//! tests exercise the derivation.

mod common;
use common::{S1, S2, S3};

use roentgen_model::trace::{MAX_CALLS_PER_NODE, MAX_ROOT_CAUSES};
use roentgen_model::{Document, RootCauseException, TraceSummary, derive};

fn summary(raws: &[&str]) -> TraceSummary {
    let docs: Vec<Document> = raws
        .iter()
        .map(|r| Document::parse(*r).expect("valid document"))
        .collect();
    let segs: Vec<_> = docs.iter().map(|d| d.segment()).collect();
    derive(docs[0].trace_id(), &segs)
        .expect("non-empty")
        .summary
}

#[test]
fn reference_trace_nodes_carry_each_segment_outcome() {
    let s = summary(&[S1, S2, S3]);
    let names: Vec<&str> = s.nodes.iter().map(|n| n.key.name.as_str()).collect();
    assert_eq!(names, ["DynamoDB", "api.backend.example.com", "web"]);
    let keys: Vec<_> = s.nodes.iter().map(|n| n.key.clone()).collect();
    assert_eq!(keys, s.services, "nodes and services list the same keys");

    let dynamo = &s.nodes[0];
    assert!(dynamo.inferred && !dynamo.root);
    assert_eq!(dynamo.segments.len(), 1);
    assert!(dynamo.segments[0].throttle && dynamo.segments[0].error);
    assert_eq!(
        dynamo.segments[0].http.as_ref().and_then(|h| h.status),
        Some(429)
    );

    let backend = &s.nodes[1];
    assert!(!backend.inferred && !backend.root);
    assert!(backend.segments[0].is_ok());
    assert_eq!(backend.segments[0].response_time, Some(0.5));

    let web = &s.nodes[2];
    assert!(web.root && !web.inferred);
    assert_eq!(web.segments.len(), 1, "S3 is a subsegment, not a segment");
    let own = &web.segments[0];
    assert!(
        own.fault && own.error && own.throttle,
        "the web segment carries its subsegments' flags: S3's fault, DynamoDB's throttle"
    );
    assert_eq!(own.http.as_ref().and_then(|h| h.status), Some(200));
}

#[test]
fn reference_trace_edges_are_the_callers_view() {
    let s = summary(&[S1, S2, S3]);
    let edges: Vec<(&str, &str)> = s
        .edges
        .iter()
        .map(|e| (e.source.name.as_str(), e.target.name.as_str()))
        .collect();
    assert_eq!(
        edges,
        [("web", "DynamoDB"), ("web", "api.backend.example.com")]
    );
    assert!(s.edges[0].calls[0].throttle);
    let call = &s.edges[1].calls[0];
    assert!(call.is_ok());
    // The calling subsegment took 0.6 s; the callee's own segment 0.5 s.
    assert!((call.response_time.unwrap_or_default() - 0.6).abs() < 1e-6);
}

#[test]
fn reference_trace_fault_root_cause_is_the_render_subsegment() {
    let s = summary(&[S1, S2, S3]);
    assert_eq!(s.fault_root_causes.len(), 1);
    let rc = &s.fault_root_causes[0];
    assert!(!rc.client_impacting, "the web segment answered 200");
    assert_eq!(rc.services.len(), 1);
    let web = &rc.services[0];
    assert_eq!(web.key.name, "web");
    assert!(!web.inferred);
    let path: Vec<&str> = web.entity_path.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(path, ["web", "render"]);
    assert_eq!(
        web.entity_path[1].exceptions,
        [RootCauseException {
            name: Some("ValueError".into()),
            message: Some("bad template".into()),
        }]
    );
    assert!(web.entity_path[0].exceptions.is_empty());
}

#[test]
fn reference_trace_error_root_cause_ends_in_the_inferred_node() {
    let s = summary(&[S1, S2, S3]);
    assert_eq!(s.error_root_causes.len(), 1);
    let rc = &s.error_root_causes[0];
    let services: Vec<(&str, bool)> = rc
        .services
        .iter()
        .map(|x| (x.key.name.as_str(), x.inferred))
        .collect();
    assert_eq!(services, [("web", false), ("DynamoDB", true)]);
    let call = &rc.services[0].entity_path[1];
    assert_eq!(call.name, "DynamoDB");
    assert!(call.remote);
    assert_eq!(
        rc.services[1].key.kind.as_deref(),
        Some("AWS::DynamoDB::Table")
    );
}

#[test]
fn reference_trace_response_time_root_cause_stops_at_web() {
    // The slowest child (the backend call, 0.6 s) took less than half of 1.25 s.
    let s = summary(&[S1, S2, S3]);
    assert_eq!(s.response_time_root_causes.len(), 1);
    let rc = &s.response_time_root_causes[0];
    assert!(rc.client_impacting);
    assert_eq!(rc.services.len(), 1);
    assert_eq!(rc.services[0].entity_path.len(), 1);
    assert_eq!(rc.services[0].entity_path[0].coverage, Some(1.0));
}

const CHAIN_WEB: &str = r#"{"name":"web","id":"1000000000000001","trace_id":"1-5759e990-000000000000000000000003",
 "start_time":100.0,"end_time":104.0,"fault":true,"http":{"response":{"status":500}},
 "subsegments":[{"id":"1000000000000002","name":"orders","namespace":"remote","start_time":100.1,"end_time":103.9,
   "fault":true,"cause":"2000000000000003"}]}"#;
const CHAIN_ORDERS: &str = r#"{"name":"orders","id":"2000000000000001","trace_id":"1-5759e990-000000000000000000000003",
 "parent_id":"1000000000000002","start_time":100.2,"end_time":103.8,"fault":true,
 "subsegments":[{"id":"2000000000000002","name":"payments","namespace":"remote","start_time":100.3,"end_time":103.7,
   "fault":true,"cause":{"exceptions":[{"id":"2000000000000003","type":"BadGateway","message":"payments failed"}]}}]}"#;
const CHAIN_PAYMENTS: &str = r#"{"name":"payments","id":"3000000000000001","trace_id":"1-5759e990-000000000000000000000003",
 "parent_id":"2000000000000002","start_time":100.4,"end_time":103.6,"fault":true,
 "subsegments":[{"id":"3000000000000002","name":"ledger","start_time":100.5,"end_time":103.5,"fault":true,
   "cause":{"exceptions":[{"type":"DeadlockError","message":"deadlock detected"}]}}]}"#;

#[test]
fn chained_fault_root_cause_walks_every_service() {
    let s = summary(&[CHAIN_WEB, CHAIN_ORDERS, CHAIN_PAYMENTS]);
    assert_eq!(s.fault_root_causes.len(), 1, "{:#?}", s.fault_root_causes);
    let rc = &s.fault_root_causes[0];
    assert!(rc.client_impacting, "the entry segment faulted");
    let chain: Vec<(&str, Vec<&str>)> = rc
        .services
        .iter()
        .map(|x| {
            (
                x.key.name.as_str(),
                x.entity_path.iter().map(|e| e.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        chain,
        [
            ("web", vec!["web", "orders"]),
            ("orders", vec!["orders", "payments"]),
            ("payments", vec!["payments", "ledger"]),
        ]
    );
    // A cause given as an exception id is resolved.
    assert_eq!(
        rc.services[0].entity_path[1].exceptions[0].name.as_deref(),
        Some("BadGateway")
    );
    let last = rc.services[2].entity_path.last().expect("ledger");
    assert_eq!(
        last.exceptions[0].message.as_deref(),
        Some("deadlock detected")
    );
    assert!(s.error_root_causes.is_empty());

    // Response time: each step takes nearly all of its parent's time.
    let rt = &s.response_time_root_causes[0];
    let names: Vec<&str> = rt
        .services
        .iter()
        .flat_map(|x| x.entity_path.iter().map(|e| e.name.as_str()))
        .collect();
    assert_eq!(
        names,
        ["web", "orders", "orders", "payments", "payments", "ledger"]
    );
    let ledger = rt.services[2].entity_path[1].coverage.expect("coverage");
    assert!((ledger - 0.75).abs() < 1e-9, "{ledger}");

    // Edges web→orders→payments, all faulted calls.
    let edges: Vec<(&str, &str, bool)> = s
        .edges
        .iter()
        .map(|e| {
            (
                e.source.name.as_str(),
                e.target.name.as_str(),
                e.calls[0].fault,
            )
        })
        .collect();
    assert_eq!(
        edges,
        [("orders", "payments", true), ("web", "orders", true)]
    );
}

#[test]
fn many_segments_of_one_service_keep_every_status_kind() {
    let mut docs = Vec::new();
    for i in 0..(MAX_CALLS_PER_NODE + 20) {
        let fault = i == MAX_CALLS_PER_NODE + 10;
        docs.push(format!(
            r#"{{"name":"worker","id":"{i:016x}","trace_id":"1-5759e990-000000000000000000000009","start_time":{},"end_time":{},"fault":{fault}}}"#,
            100 + i,
            101 + i
        ));
    }
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let s = summary(&refs);
    let worker = &s.nodes[0];
    assert_eq!(worker.segments.len(), MAX_CALLS_PER_NODE + 1);
    assert!(
        worker.segments.iter().any(|c| c.fault),
        "the late fault is kept"
    );
}

#[test]
fn many_faults_are_capped() {
    let subs: Vec<String> = (0..(MAX_ROOT_CAUSES + 5))
        .map(|i| {
            format!(
                r#"{{"id":"{:016x}","name":"step{i}","start_time":100,"end_time":101,"fault":true}}"#,
                i + 16
            )
        })
        .collect();
    let doc = format!(
        r#"{{"name":"batch","id":"0000000000000001","trace_id":"1-5759e990-000000000000000000000008","start_time":100,"end_time":102,"subsegments":[{}]}}"#,
        subs.join(",")
    );
    let s = summary(&[doc.as_str()]);
    assert_eq!(s.fault_root_causes.len(), MAX_ROOT_CAUSES);
}

#[test]
fn summaries_stored_before_the_new_fields_still_deserialize() {
    let old = r#"{"trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1.0,
      "has_fault":false,"has_error":false,"has_throttle":false,"is_partial":false,
      "annotations":{},"users":[],"services":[],"instance_ids":[],
      "availability_zones":[],"resource_arns":[],"document_count":1}"#;
    let s: TraceSummary = serde_json::from_str(old).expect("old record");
    assert!(s.nodes.is_empty() && s.edges.is_empty());
    assert!(s.fault_root_causes.is_empty() && s.response_time_root_causes.is_empty());

    let new = summary(&[S1, S2, S3]);
    let text = serde_json::to_string(&new).expect("serialize");
    let back: TraceSummary = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, new);
}

#[test]
fn cyclic_parent_links_terminate() {
    // Two segments naming each other's subsegment as parent.
    let a = r#"{"name":"a","id":"000000000000000a","trace_id":"1-5759e990-000000000000000000000007","parent_id":"00000000000000b1",
      "start_time":1,"end_time":2,"fault":true,"subsegments":[{"id":"00000000000000a1","name":"call-b","start_time":1,"end_time":2,"fault":true}]}"#;
    let b = r#"{"name":"b","id":"000000000000000b","trace_id":"1-5759e990-000000000000000000000007","parent_id":"00000000000000a1",
      "start_time":1,"end_time":2,"fault":true,"subsegments":[{"id":"00000000000000b1","name":"call-a","start_time":1,"end_time":2,"fault":true}]}"#;
    let s = summary(&[a, b]);
    assert!(s.fault_root_causes.len() <= MAX_ROOT_CAUSES);
    assert!(s.response_time_root_causes.len() <= 1);
}

/// A trace's graph rebuilt from its summary equals its own rollup contribution (one
/// minute, few calls per node).
#[test]
fn graph_of_summary_equals_the_contribution() {
    let t = "1-5f000000-0000000000000000000000aa";
    let docs: Vec<roentgen_model::Document> = [
        format!(
            r#"{{"trace_id":"{t}","id":"0000000000000001","name":"web","start_time":1600000000.0,"end_time":1600000000.8,"fault":true,
               "subsegments":[
                 {{"id":"0000000000000002","name":"orders","namespace":"remote","start_time":1600000000.1,"end_time":1600000000.7,"fault":true}},
                 {{"id":"0000000000000003","name":"DynamoDB","namespace":"aws","start_time":1600000000.1,"end_time":1600000000.2,"throttle":true,"error":true}}]}}"#
        ),
        format!(
            r#"{{"trace_id":"{t}","id":"0000000000000004","name":"orders","parent_id":"0000000000000002","start_time":1600000000.15,"end_time":1600000000.65,"fault":true}}"#
        ),
    ]
    .iter()
    .map(|d| roentgen_model::Document::parse(d.as_str()).expect("valid"))
    .collect();
    let segments: Vec<_> = docs.iter().map(roentgen_model::Document::segment).collect();
    let derived = roentgen_model::derive(docs[0].trace_id(), &segments).expect("derived");
    let rebuilt = roentgen_model::graph_of_summary(&derived.summary);
    assert_eq!(rebuilt, derived.graph);
}

#[test]
fn a_chain_of_forty_services_keeps_every_service_and_edge() {
    // svc-00 calls svc-01 … calls svc-39, each through a remote subsegment, and each
    // also calls DynamoDB: 40 instrumented services, 40 inferred remote nodes for the
    // calls and one DynamoDB node, more than derivation looks up without a map.
    let trace = "1-5759e988-bd862e3fe1be46a994272793";
    let raws: Vec<String> = (0..40u64)
        .map(|i| {
            let parent = if i == 0 {
                String::new()
            } else {
                format!(r#","parent_id":"{:016x}""#, 0x1000 + i - 1)
            };
            format!(
                r#"{{"trace_id":"{trace}","id":"{id:016x}"{parent},"name":"svc-{i:02}","start_time":100.0,"end_time":101.0,"subsegments":[{{"id":"{call:016x}","name":"svc-{next:02}","namespace":"remote","start_time":100.1,"end_time":100.9,"http":{{"response":{{"status":200}}}}}},{{"id":"{ddb:016x}","name":"DynamoDB","namespace":"aws","start_time":100.1,"end_time":100.2}}]}}"#,
                id = 0x100 + i,
                call = 0x1000 + i,
                ddb = 0x2000 + i,
                next = i + 1,
            )
        })
        .collect();
    let raws: Vec<&str> = raws.iter().map(String::as_str).collect();
    // The same documents in another order derive the same summary.
    let s = summary(&raws);
    let mut reversed = raws.clone();
    reversed.reverse();
    assert_eq!(summary(&reversed), s);

    let mut names: Vec<&str> = s.services.iter().map(|k| k.name.as_str()).collect();
    assert!(names.is_sorted(), "{names:?}");
    names.dedup();
    assert_eq!(names.len(), s.services.len(), "each key once");
    for i in 0..40 {
        let name = format!("svc-{i:02}");
        assert!(
            s.services
                .iter()
                .any(|k| k.name == name && k.kind.is_none()),
            "{name} instrumented"
        );
    }
    // svc-40 was called but never sent a segment: an inferred remote node.
    assert!(
        s.services
            .iter()
            .any(|k| k.name == "svc-40" && k.kind.as_deref() == Some("remote"))
    );
    assert!(s.services.iter().any(|k| k.name == "DynamoDB"));
    // Every call to the next instrumented service is an edge to it.
    for i in 0..39 {
        let (src, dst) = (format!("svc-{i:02}"), format!("svc-{:02}", i + 1));
        assert!(
            s.edges
                .iter()
                .any(|e| e.source.name == src && e.target.name == dst && e.target.kind.is_none()),
            "{src} → {dst}"
        );
    }
    assert_eq!(
        s.edges
            .iter()
            .filter(|e| e.target.name == "DynamoDB" && e.source.kind.is_none())
            .count(),
        40
    );
}
