//! Table tests for document parsing and validation, and derivation over the reference
//! trace T1 = {S1, S2, S3} of `shared/reference/xray-protocol.md` section 8.2.

use roentgen_model::{Document, DocumentError, ServiceKey, derive};

const S1: &str = r#"{"name":"web","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "start_time":1465510280.0,"end_time":1465510281.25,"origin":"AWS::EC2::Instance","user":"alice",
 "http":{"request":{"method":"GET","url":"https://web.example.com/api/game/42","client_ip":"10.0.0.1",
 "user_agent":"curl/8"},"response":{"status":200,"content_length":12}},
 "annotations":{"gameid":"817DL6VO","age":31,"vip":true},
 "metadata":{"debug":{"anything":[1,{"x":null}]}},
 "subsegments":[{"id":"53995c3f42cd8ad8","name":"DynamoDB","namespace":"aws","start_time":1465510280.1,
   "end_time":1465510280.4,"throttle":true,"error":true,"aws":{"operation":"GetItem","table_name":"games"},
   "http":{"response":{"status":429}}},
  {"id":"6b1b6b3f42cd8a01","name":"api.backend.example.com","namespace":"remote",
   "start_time":1465510280.5,"end_time":1465510281.1,"http":{"request":{"method":"POST",
   "url":"https://api.backend.example.com/v2/x"},"response":{"status":200}}}]}"#;
const S2: &str = r#"{"name":"api.backend.example.com","id":"a1b2c3d4e5f60718","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "parent_id":"6b1b6b3f42cd8a01","start_time":1465510280.55,"end_time":1465510281.05,
 "http":{"request":{"method":"POST","url":"https://api.backend.example.com/v2/x"},"response":{"status":200}}}"#;
const S3: &str = r#"{"type":"subsegment","id":"0f0e0d0c0b0a0908","trace_id":"1-5759e988-bd862e3fe1be46a994272793",
 "parent_id":"70de5b6f19ff9a0a","name":"render","start_time":1465510281.1,"end_time":1465510281.2,
 "fault":true,"cause":{"working_directory":"/app","exceptions":[{"id":"1234567890abcdef",
 "type":"ValueError","message":"bad template","stack":[{"path":"app.py","line":10,"label":"render"}]}]}}"#;
const S4: &str = r#"{"name":"worker","id":"1111222233334444","trace_id":"1-5759e999-000000000000000000000001",
 "start_time":1465510300.0,"in_progress":true}"#;

const BASE: &str =
    r#""id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1.0"#;

fn doc(fields: &str) -> String {
    format!("{{{fields}}}")
}

#[test]
fn reference_documents_parse() {
    for raw in [S1, S2, S3, S4] {
        let d = Document::parse(raw).expect("valid reference document");
        assert_eq!(d.raw(), raw, "kept verbatim");
    }
    let s4 = Document::parse(S4).expect("valid");
    assert!(s4.in_progress());
    assert_eq!(s4.id().to_string(), "1111222233334444");
}

macro_rules! rejects {
    ($name:ident, $doc:expr, $code:expr, $needle:expr) => {
        #[test]
        fn $name() {
            let raw: String = $doc;
            let err = Document::parse(raw.clone()).expect_err(&raw);
            assert_eq!(err.error_code(), $code, "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains($needle),
                "{msg:?} should mention {:?}",
                $needle
            );
        }
    };
}

rejects!(not_json, "not json".into(), "InvalidJson", "not valid JSON");
rejects!(
    truncated_json,
    doc(BASE)[..20].to_string(),
    "InvalidJson",
    "JSON"
);
rejects!(array, "[1,2]".into(), "NotAnObject", "object");
rejects!(
    trailing_garbage,
    format!(
        "{} x",
        doc(&format!("{BASE},\"name\":\"a\",\"end_time\":2"))
    ),
    "InvalidJson",
    "JSON"
);
rejects!(
    missing_name,
    doc(&format!("{BASE},\"end_time\":2.0")),
    "MissingField",
    "name"
);
rejects!(
    missing_id,
    doc(
        r#""name":"a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1,"end_time":2"#
    ),
    "MissingField",
    "id"
);
rejects!(
    missing_trace_id,
    doc(r#""name":"a","id":"70de5b6f19ff9a0a","start_time":1,"end_time":2"#),
    "MissingField",
    "trace_id"
);
rejects!(
    missing_start,
    doc(
        r#""name":"a","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","end_time":2"#
    ),
    "MissingField",
    "start_time"
);
rejects!(
    missing_end,
    doc(&format!("{BASE},\"name\":\"a\"")),
    "MissingField",
    "end_time"
);
rejects!(
    bad_trace_id,
    doc(
        r#""name":"a","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-xyz","start_time":1,"end_time":2"#
    ),
    "InvalidTraceId",
    "trace_id"
);
rejects!(
    bad_id,
    doc(
        r#""name":"a","id":"70de5b6f19ff9a0","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1,"end_time":2"#
    ),
    "InvalidId",
    "field id"
);
rejects!(
    bad_parent,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"parent_id\":\"zz\""
    )),
    "InvalidId",
    "parent_id"
);
rejects!(
    end_before_start,
    doc(&format!("{BASE},\"name\":\"a\",\"end_time\":0.5")),
    "InvalidTime",
    "end_time"
);
rejects!(
    negative_start,
    doc(
        r#""name":"a","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":-1,"end_time":2"#
    ),
    "InvalidTime",
    "start_time"
);
rejects!(
    start_is_string,
    doc(
        r#""name":"a","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":"1","end_time":2"#
    ),
    "WrongFieldType",
    "start_time"
);
rejects!(
    status_is_string,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"http\":{{\"response\":{{\"status\":\"200\"}}}}"
    )),
    "WrongFieldType",
    "http.response.status"
);
rejects!(
    bad_type,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"type\":\"segment\""
    )),
    "InvalidType",
    "type"
);
rejects!(
    subsegment_without_parent,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"type\":\"subsegment\""
    )),
    "MissingField",
    "parent_id"
);
rejects!(
    bad_name_char,
    doc(&format!("{BASE},\"name\":\"a<b\",\"end_time\":2")),
    "InvalidName",
    "'<'"
);
rejects!(
    long_name,
    doc(&format!(
        "{BASE},\"name\":\"{}\",\"end_time\":2",
        "a".repeat(201)
    )),
    "InvalidName",
    "201"
);
rejects!(
    bad_annotation_key,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"annotations\":{{\"a-b\":1}}"
    )),
    "InvalidAnnotation",
    "a-b"
);
rejects!(
    null_annotation,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"annotations\":{{\"k\":null}}"
    )),
    "WrongFieldType",
    "annotations.k"
);
rejects!(
    object_annotation,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"annotations\":{{\"k\":{{}}}}"
    )),
    "WrongFieldType",
    "string, a number or a boolean"
);
rejects!(
    sub_missing_id,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"subsegments\":[{{\"name\":\"x\",\"start_time\":1,\"end_time\":2}}]"
    )),
    "MissingField",
    "subsegments[0].id"
);
rejects!(
    sub_bad_end,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"subsegments\":[{{\"id\":\"0000000000000001\",\"name\":\"x\",\"start_time\":1.5,\"end_time\":1.2}}]"
    )),
    "InvalidTime",
    "subsegments[0].end_time"
);
rejects!(
    bad_precursor,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"precursor_ids\":[\"x\"]"
    )),
    "InvalidId",
    "precursor_ids[0]"
);
rejects!(
    bad_cause_ref,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"cause\":\"nothex\""
    )),
    "InvalidId",
    "cause"
);
rejects!(
    too_large,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"metadata\":{{\"x\":\"{}\"}}",
        "a".repeat(70_000)
    )),
    "DocumentTooLarge",
    "limit"
);
rejects!(
    too_many_annotations,
    doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"annotations\":{{{}}}",
        (0..51)
            .map(|i| format!("\"k{i}\":1"))
            .collect::<Vec<_>>()
            .join(",")
    )),
    "InvalidAnnotation",
    "51"
);

#[test]
fn sdk_namespaces_other_than_aws_and_remote_are_kept() {
    // The Python SDK sends "local" for in-process subsegments.
    let raw = doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"subsegments\":[{{\"id\":\"0000000000000001\",\"name\":\"x\",\"namespace\":\"local\",\"start_time\":1,\"end_time\":2}}]"
    ));
    let d = Document::parse(raw).expect("local namespace is accepted");
    assert_eq!(
        d.segment().subsegments[0].namespace.as_deref(),
        Some("local")
    );
}

#[test]
fn too_deep_nesting_is_rejected_not_overflowed() {
    let mut inner =
        String::from(r#"{"id":"0000000000000001","name":"x","start_time":1,"end_time":2}"#);
    for _ in 0..40 {
        inner = format!(
            r#"{{"id":"0000000000000001","name":"x","start_time":1,"end_time":2,"subsegments":[{inner}]}}"#
        );
    }
    let raw = doc(&format!(
        "{BASE},\"name\":\"a\",\"end_time\":2,\"subsegments\":[{inner}]"
    ));
    let err = Document::parse(raw).expect_err("too deep");
    assert!(matches!(err, DocumentError::TooDeep { .. }), "{err}");
}

/// Parsed documents wait for the indexer in memory, so a list of embedded subsegments
/// holds no spare room (serde's growth left two spare for S1's two subsegments).
#[test]
fn embedded_subsegments_take_exactly_their_room() {
    let one = r#"{"id":"0000000000000001","name":"x","start_time":1,"end_time":2}"#;
    for n in [1, 2, 3, 5, 9] {
        let list = vec![one; n].join(",");
        let raw = doc(&format!(
            "{BASE},\"name\":\"a\",\"end_time\":2,\"subsegments\":[{list}]"
        ));
        let d = Document::parse(raw).expect("valid");
        let subs = &d.segment().subsegments;
        assert_eq!(subs.len(), n);
        assert_eq!(subs.capacity(), n, "{n} subsegments");
    }
    let d = Document::parse(S1).expect("valid");
    assert_eq!(d.segment().subsegments.capacity(), 2);
}

#[test]
fn every_error_code_is_listed() {
    let samples = [
        Document::parse("x").expect_err("bad"),
        Document::parse("[]").expect_err("bad"),
    ];
    for e in samples {
        assert!(DocumentError::ALL_CODES.contains(&e.error_code()));
    }
}

#[test]
fn derive_reference_trace() {
    let docs: Vec<Document> = [S1, S2, S3]
        .iter()
        .map(|r| Document::parse(*r).expect("valid"))
        .collect();
    let segs: Vec<_> = docs.iter().map(|d| d.segment()).collect();
    let d = derive(docs[0].trace_id(), &segs).expect("non-empty");
    let s = &d.summary;
    assert_eq!(s.start_time, 1465510280.0);
    assert_eq!(s.duration, Some(1.25));
    assert_eq!(s.response_time, Some(1.25));
    assert!(
        s.has_fault,
        "S3 is a subsegment of the root service and faulted"
    );
    assert!(s.has_throttle);
    assert!(!s.is_partial);
    assert_eq!(s.entry_point.as_ref().map(|e| e.name.as_str()), Some("web"));
    assert_eq!(
        s.http.as_ref().and_then(|h| h.status),
        Some(200),
        "http from the root segment"
    );
    assert_eq!(s.users.len(), 1);
    assert_eq!(s.users[0].user, "alice");
    assert_eq!(s.users[0].services[0].name, "web");
    assert_eq!(s.annotations.len(), 3);
    assert!(s.has_service("api.backend.example.com"));
    assert!(s.has_service("DynamoDB"), "inferred AWS node");
    assert!(s.has_service("web"));
    assert_eq!(s.services.len(), 3, "{:?}", s.services);
    let dynamo = s
        .services
        .iter()
        .find(|k| k.name == "DynamoDB")
        .expect("inferred");
    assert_eq!(dynamo.kind.as_deref(), Some("AWS::DynamoDB::Table"));

    // Edges: client->web, web->backend (not inferred, answered by S2), web->DynamoDB.
    let edges: Vec<(String, String)> = d
        .graph
        .keys()
        .filter_map(|(_, k)| {
            k.source
                .as_ref()
                .map(|s| (s.name.clone(), k.target.name.clone()))
        })
        .collect();
    assert!(edges.contains(&("client".into(), "web".into())));
    assert!(edges.contains(&("web".into(), "api.backend.example.com".into())));
    assert!(edges.contains(&("web".into(), "DynamoDB".into())));
    assert_eq!(edges.len(), 3, "{edges:?}");
    let throttled = d
        .graph
        .iter()
        .find(|((_, k), _)| k.source.is_some() && k.target.name == "DynamoDB")
        .map(|(_, v)| v.clone())
        .expect("edge");
    assert_eq!(throttled.throttle, 1);
    assert_eq!(throttled.ok, 0);
}

#[test]
fn in_progress_trace_is_partial_and_without_graph() {
    let d4 = Document::parse(S4).expect("valid");
    let d = derive(d4.trace_id(), &[d4.segment()]).expect("non-empty");
    assert!(d.summary.is_partial);
    assert_eq!(d.summary.duration, None);
    assert!(
        d.graph.is_empty(),
        "in-progress segments count when complete"
    );
    assert_eq!(
        d.summary.entry_point,
        Some(ServiceKey::new("worker", None, None))
    );
}

#[test]
fn orphan_subsegment_alone_still_summarises() {
    let d3 = Document::parse(S3).expect("valid");
    let d = derive(d3.trace_id(), &[d3.segment()]).expect("non-empty");
    assert!(d.summary.has_fault);
    assert_eq!(d.summary.entry_point, None);
}

#[test]
fn histogram_buckets_are_two_significant_digits() {
    use roentgen_model::trace::histogram_bucket;
    assert_eq!(histogram_bucket(0.0424), 42);
    assert_eq!(histogram_bucket(1.234), 1200);
    assert_eq!(histogram_bucket(0.150), 150);
    assert_eq!(histogram_bucket(-1.0), 0);
}

#[test]
fn from_parts_judges_like_parse() {
    let with = |fields: &str| doc(&format!(r#""name":"web",{BASE},"end_time":2.0{fields}"#));
    let cases = [
        with(""),
        with(r#","annotations":{"k":1,"b":true,"s":"x"}"#),
        with(r#","http":{"request":{"method":"GET"},"response":{"status":500}},"fault":true"#),
        with(r#","subsegments":[{"id":"zz","name":"x","start_time":1}]"#),
        with(r#","annotations":{"bad key!":1}"#),
        with(&format!(r#","metadata":{{"x":"{}"}}"#, "a".repeat(70_000))),
        r#"{"name":"x"}"#.to_string(),
    ];
    let (mut accepted, mut refused) = (0, 0);
    for text in cases {
        // The typed view as a converter would build it beside the text.
        let segment = roentgen_model::document::parse_segment(&text).expect("typed view");
        let parsed = Document::parse(text.clone());
        accepted += usize::from(parsed.is_ok());
        refused += usize::from(parsed.is_err());
        assert_eq!(
            Document::from_parts(text.clone(), segment),
            parsed,
            "{text}"
        );
    }
    assert!(accepted >= 3 && refused >= 3, "the cases must include both");
}
