//! Parsing and validating a ~1 KB segment document, deriving a 5-segment trace, and
//! encoding/decoding its summary.
//!
//! Run: `cargo bench -p roentgen-model --bench parse`

#![allow(missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roentgen_model::{Document, derive};

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

fn bench(c: &mut Criterion) {
    let raw = document(1, None);
    let mut g = c.benchmark_group("document");
    g.throughput(Throughput::Bytes(raw.len() as u64));
    g.bench_function("parse_and_validate", |b| {
        b.iter(|| Document::parse(raw.as_str()).expect("valid"))
    });
    g.bench_function("serde_json_value_baseline", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(&raw).expect("valid"))
    });
    g.finish();

    let docs: Vec<Document> = (0..5u64)
        .map(|i| Document::parse(document(i + 1, (i > 0).then_some(i ^ 0x2222))).expect("valid"))
        .collect();
    let segs: Vec<_> = docs.iter().map(|d| d.segment()).collect();
    c.bench_function("derive_5_segment_trace", |b| {
        b.iter(|| derive(docs[0].trace_id(), &segs).expect("derived"))
    });

    // The stored form of the summary (what the embedded store writes per trace).
    let summary = derive(docs[0].trace_id(), &segs).expect("derived").summary;
    let json = serde_json::to_vec(&summary).expect("json");
    let mut g = c.benchmark_group("summary");
    g.throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("encode", |b| b.iter(|| serde_json::to_vec(&summary)));
    g.bench_function("decode", |b| {
        b.iter(|| serde_json::from_slice::<roentgen_model::TraceSummary>(&json).expect("json"))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
