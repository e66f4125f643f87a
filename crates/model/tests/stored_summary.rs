//! The stored (JSON) form of summaries: records written before the compact form still
//! read back, the compact form round-trips and is much smaller, and hostile records
//! are errors, not panics.

mod common;
use common::{S1, S2, S3};

use roentgen_model::trace::{
    CallStatus, EdgeSummary, HttpSummary, MAX_CALLS_PER_NODE, NodeSummary,
};
use roentgen_model::{Document, ServiceKey, TraceSummary, derive};

/// The summary of the reference trace {S1, S2, S3} as serialized before the compact
/// form (inline service keys and `http` objects, long field names).
const BEFORE_COMPACT: &str = r##"{"trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1465510280.0,"end_time":1465510281.25,"duration":1.25,"response_time":1.25,"has_fault":true,"has_error":true,"has_throttle":true,"is_partial":false,"http":{"url":"https://web.example.com/api/game/42","status":200,"method":"GET","user_agent":"curl/8","client_ip":"10.0.0.1"},"annotations":{"age":[{"value":{"number":31.0},"services":[{"name":"web","kind":"AWS::EC2::Instance"}]}],"gameid":[{"value":{"string":"817DL6VO"},"services":[{"name":"web","kind":"AWS::EC2::Instance"}]}],"vip":[{"value":{"bool":true},"services":[{"name":"web","kind":"AWS::EC2::Instance"}]}]},"users":[{"user":"alice","services":[{"name":"web","kind":"AWS::EC2::Instance"}]}],"services":[{"name":"DynamoDB","kind":"AWS::DynamoDB::Table"},{"name":"api.backend.example.com"},{"name":"web","kind":"AWS::EC2::Instance"}],"entry_point":{"name":"web","kind":"AWS::EC2::Instance"},"instance_ids":[],"availability_zones":[],"resource_arns":[],"document_count":3,"nodes":[{"key":{"name":"DynamoDB","kind":"AWS::DynamoDB::Table"},"inferred":true,"segments":[{"error":true,"throttle":true,"response_time":0.3000001907348633,"http":{"status":429}}]},{"key":{"name":"api.backend.example.com"},"segments":[{"response_time":0.5,"http":{"url":"https://api.backend.example.com/v2/x","status":200,"method":"POST"}}]},{"key":{"name":"web","kind":"AWS::EC2::Instance"},"root":true,"segments":[{"error":true,"throttle":true,"fault":true,"response_time":1.25,"http":{"url":"https://web.example.com/api/game/42","status":200,"method":"GET","user_agent":"curl/8","client_ip":"10.0.0.1"}}]}],"edges":[{"source":{"name":"web","kind":"AWS::EC2::Instance"},"target":{"name":"DynamoDB","kind":"AWS::DynamoDB::Table"},"calls":[{"error":true,"throttle":true,"response_time":0.3000001907348633,"http":{"status":429}}]},{"source":{"name":"web","kind":"AWS::EC2::Instance"},"target":{"name":"api.backend.example.com"},"calls":[{"response_time":0.5999999046325684,"http":{"url":"https://api.backend.example.com/v2/x","status":200,"method":"POST"}}]}],"fault_root_causes":[{"services":[{"key":{"name":"web","kind":"AWS::EC2::Instance"},"entity_path":[{"name":"web"},{"name":"render","exceptions":[{"name":"ValueError","message":"bad template"}]}]}]}],"error_root_causes":[{"services":[{"key":{"name":"web","kind":"AWS::EC2::Instance"},"entity_path":[{"name":"web"},{"name":"DynamoDB","remote":true}]},{"key":{"name":"DynamoDB","kind":"AWS::DynamoDB::Table"},"inferred":true,"entity_path":[{"name":"DynamoDB","remote":true}]}]}],"response_time_root_causes":[{"services":[{"key":{"name":"web","kind":"AWS::EC2::Instance"},"entity_path":[{"name":"web","coverage":1.0}]}],"client_impacting":true}]}"##;

/// The bench's 5-segment trace (`benches/parse.rs`) as serialized before the compact
/// form.
const BEFORE_COMPACT_BENCH: &str = include_str!("fixtures/summary_before_compact_bench.json");

fn document(id: u64, parent: Option<u64>) -> String {
    let parent = parent
        .map(|p| format!(r#","parent_id":"{p:016x}""#))
        .unwrap_or_default();
    format!(
        r#"{{"trace_id":"1-5759e988-bd862e3fe1be46a994272793","id":"{id:016x}"{parent},"name":"svc-{svc}","origin":"AWS::EC2::Instance","start_time":1465510280.125,"end_time":1465510280.245,"http":{{"request":{{"method":"GET","url":"https://svc.example.com/api/orders/12345?expand=items","client_ip":"10.1.2.3","user_agent":"Mozilla/5.0 (X11; Linux x86_64) bench"}},"response":{{"status":200,"content_length":1834}}}},"annotations":{{"customer":"c-{id}","tier":"gold","items":3,"vip":true}},"metadata":{{"default":{{"note":"padding padding padding padding padding padding padding padding padding padding padding"}}}},"aws":{{"ec2":{{"instance_id":"i-0123456789abcdef0","availability_zone":"us-east-1a"}}}},"subsegments":[{{"id":"{s1:016x}","name":"DynamoDB","namespace":"aws","start_time":1465510280.13,"end_time":1465510280.17,"aws":{{"operation":"GetItem","table_name":"orders"}},"http":{{"response":{{"status":200}}}}}},{{"id":"{s2:016x}","name":"payments.internal","namespace":"remote","start_time":1465510280.17,"end_time":1465510280.2,"http":{{"request":{{"method":"POST","url":"https://payments.internal/charge"}},"response":{{"status":200}}}}}}]}}"#,
        svc = id % 7,
        s1 = id ^ 0x1111,
        s2 = id ^ 0x2222,
    )
}
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

fn bench_summary() -> TraceSummary {
    let raws: Vec<String> = (0..5u64)
        .map(|i| document(i + 1, (i > 0).then_some(i ^ 0x2222)))
        .collect();
    let refs: Vec<&str> = raws.iter().map(String::as_str).collect();
    summary(&refs)
}

#[test]
fn summaries_written_before_the_compact_form_still_deserialize() {
    let old: TraceSummary = serde_json::from_str(BEFORE_COMPACT).expect("old record");
    assert_eq!(old, summary(&[S1, S2, S3]));
}

#[test]
fn compact_form_round_trips_and_is_smaller() {
    let s = bench_summary();
    let text = serde_json::to_vec(&s).expect("serialize");
    eprintln!(
        "5-segment bench summary: {} bytes before the compact form, {} after",
        BEFORE_COMPACT_BENCH.len(),
        text.len()
    );
    assert!(
        text.len() * 2 < BEFORE_COMPACT_BENCH.len(),
        "{}",
        text.len()
    );
    // serde_json may move the last bit of a float on reading, so compare what both
    // forms read back as.
    let back: TraceSummary = serde_json::from_slice(&text).expect("deserialize");
    let old: TraceSummary = serde_json::from_str(BEFORE_COMPACT_BENCH).expect("old record");
    assert_eq!(back, old);

    let reference = summary(&[S1, S2, S3]);
    let text = serde_json::to_string(&reference).expect("serialize");
    let back: TraceSummary = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, reference);
}

fn key(name: &str) -> ServiceKey {
    ServiceKey::new(name, None, None)
}

#[test]
fn hand_built_summaries_round_trip() {
    // Keys missing from `services`, unsorted services, long runs of equal calls.
    let mut s = summary(&[S1, S2, S3]);
    s.services.reverse();
    let call = CallStatus {
        response_time: Some(0.25),
        http: Some(HttpSummary {
            status: Some(204),
            ..HttpSummary::default()
        }),
        ..CallStatus::default()
    };
    s.nodes.push(NodeSummary {
        key: key("elsewhere"),
        root: false,
        inferred: false,
        segments: vec![call.clone(); MAX_CALLS_PER_NODE * 2 + 3],
    });
    s.edges.push(EdgeSummary {
        source: key("a"),
        target: s.services[0].clone(),
        calls: vec![CallStatus::default(), call.clone(), call],
    });
    let text = serde_json::to_string(&s).expect("serialize");
    let back: TraceSummary = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, s);
}

#[test]
fn hostile_references_are_errors() {
    let s = summary(&[S1, S2, S3]);
    let text = serde_json::to_string(&s).expect("serialize");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["entry_point"] = serde_json::json!(99);
    assert!(serde_json::from_value::<TraceSummary>(v).is_err());

    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["nodes"][0]["s"][0]["h"] = serde_json::json!(u64::MAX);
    assert!(serde_json::from_value::<TraceSummary>(v).is_err());

    for n in [0, MAX_CALLS_PER_NODE + 1, usize::MAX] {
        let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
        v["nodes"][0]["s"][0]["n"] = serde_json::json!(n);
        assert!(
            serde_json::from_value::<TraceSummary>(v).is_err(),
            "n = {n}"
        );
    }
}

#[test]
fn service_keys_share_fields_until_one_is_changed() {
    let a = key("orders");
    let mut b = a.clone();
    assert!(a.same_as(&b));
    b.make_mut().kind = Some("AWS::EC2::Instance".into());
    assert!(!a.same_as(&b));
    assert_eq!(
        a.kind, None,
        "changing a clone leaves the original as it was"
    );
    assert_eq!(b.kind.as_deref(), Some("AWS::EC2::Instance"));
    // Equal keys built apart are equal but not the same; the stored form finds both.
    let c = key("orders");
    assert_eq!(a, c);
    assert!(!a.same_as(&c));
    let json = serde_json::to_string(&a).expect("json");
    assert_eq!(json, r#"{"name":"orders"}"#);
    let back: ServiceKey = serde_json::from_str(&json).expect("key");
    assert_eq!(back, a);
}
