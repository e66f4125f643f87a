//! Parse a complex expression; evaluate a selective and a match-all filter per
//! summary over the fixture traces (real derived summaries).
//!
//! `cargo bench -p roentgen-filter --bench filter` (figures are per summary for the
//! evaluation groups: each iteration walks the 11 fixtures).

#![allow(missing_docs)] // criterion_group! defines an undocumented function

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use roentgen_filter::{Filter, NoGroups, pushdown};

#[path = "../tests/common/mod.rs"]
mod common;

const COMPLEX: &str = r#"(http.url BEGINSWITH "https://shop.example.com/" AND http.method = "GET" OR user = "alice")
 AND !service("payments") { fault OR responsetime > 2.5 } AND edge("web", "orders") { error = false }
 AND annotation.order_id CONTAINS "o-" AND duration >= 0.1 AND duration <= 8
 AND rootcause.fault.entity { last AND name = "deserialize" } OR rootcause.responsetime.service { last AND type = "AWS::DynamoDB" }
 OR service(id(name: "random-name", type: "AWS::Lambda::Function")) { error } AND !partial"#;

/// Matches one fixture (the throttled entry, trace 5), after reading several fields.
const SELECTIVE: &str =
    r#"throttle AND http.status = 429 AND user = "carol" AND annotation.tenant = "acme""#;

/// Matches every fixture.
const MATCH_ALL: &str = "!annotation.missing_key OR responsetime > 0";

/// Reads nodes of every summary before deciding.
const SERVICE_SCAN: &str =
    r#"service() { fault OR responsetime > 5 } OR edge("web", "orders") { error }"#;

fn bench(c: &mut Criterion) {
    let summaries = common::summaries();

    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(COMPLEX.len() as u64));
    g.bench_function("complex", |b| {
        b.iter(|| Filter::parse(black_box(COMPLEX)).expect("parses"))
    });
    g.finish();

    let mut g = c.benchmark_group("evaluate");
    g.throughput(Throughput::Elements(summaries.len() as u64));
    for (name, text) in [
        ("selective", SELECTIVE),
        ("match_all", MATCH_ALL),
        ("service_scan", SERVICE_SCAN),
        ("complex", COMPLEX),
    ] {
        let filter = Filter::parse(text).expect("parses");
        g.bench_function(name, |b| {
            b.iter(|| {
                summaries
                    .iter()
                    .filter(|s| filter.matches(black_box(s), &NoGroups))
                    .count()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("pushdown");
    g.throughput(Throughput::Elements(summaries.len() as u64));
    let filter = Filter::parse(SELECTIVE).expect("parses");
    let push = pushdown(&filter);
    g.bench_function("admits_selective", |b| {
        b.iter(|| {
            summaries
                .iter()
                .filter(|s| push.admits(black_box(s)))
                .count()
        })
    });
    g.finish();
    let mut g = c.benchmark_group("pushdown_derive");
    let complex = Filter::parse(COMPLEX).expect("parses");
    g.bench_function("complex", |b| b.iter(|| pushdown(black_box(&complex))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
