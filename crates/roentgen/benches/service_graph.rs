//! `GetServiceGraph` over 6 hours and over everything loaded, through the real binary.
//!
//! Loads `BENCH_SEGMENTS` segments (default 500,000) into an embedded store: traces of
//! 5 segments across `BENCH_SERVICES` services (default 50; each trace a chain of 5 of
//! them, client → s_i → s_i+1 → …), spread over the last `BENCH_HOURS` hours (default
//! 6; 720 for 30 days). The graph's cost grows with the rollup rows read (minutes at
//! the window's ends, hours inside it) × nodes and edges, never with segments. Then
//! times `BENCH_REQUESTS` calls (default 100, after 10 to warm up) over the last 6
//! hours and, when more is loaded, over the whole span, and prints median and maximum.
//!
//! Run: `cargo bench -p roentgen --bench service_graph`
//! 30 days: `BENCH_HOURS=720 BENCH_SEGMENTS=2000000 cargo bench -p roentgen --bench service_graph`

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use roentgen_model::Document;
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{Store, TenantId};
use util::env_or;

fn main() {
    let segments = env_or("BENCH_SEGMENTS", 500_000);
    let services = env_or("BENCH_SERVICES", 50);
    let requests = env_or("BENCH_REQUESTS", 100) as usize;
    let hours = env_or("BENCH_HOURS", 6).max(1);
    // Kept inside the default 30-day retention of `serve`.
    let window = (hours * 3600).min(30 * 86_400 - 3600);
    let traces = segments / 5;
    let dir = tempfile::tempdir().expect("tempdir");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let load = Instant::now();
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let tenant = TenantId::default();
        let batch = 2000;
        let mut t = 0;
        while t < traces {
            let mut docs = Vec::new();
            for i in t..(t + batch).min(traces) {
                let at = (now - window) as f64 + (i as f64 * window as f64 / traces as f64);
                let trace = format!("1-{:08x}-{:024x}", at as u64, i + 1);
                for s in 0..5u64 {
                    let id = i * 5 + s + 1;
                    let parent = if s == 0 {
                        String::new()
                    } else {
                        format!(r#","parent_id":"{:016x}""#, (id - 1) ^ 0xabc)
                    };
                    let call = if s < 4 {
                        format!(
                            r#","subsegments":[{{"id":"{:016x}","name":"svc-{}","namespace":"remote","start_time":{at},"end_time":{}}}]"#,
                            id ^ 0xabc,
                            (i + s + 1) % services,
                            at + 0.01
                        )
                    } else {
                        String::new()
                    };
                    let fault = if i % 17 == 0 { r#","fault":true"# } else { "" };
                    let raw = format!(
                        r#"{{"trace_id":"{trace}","id":"{id:016x}"{parent},"name":"svc-{}","origin":"AWS::EC2::Instance","start_time":{at},"end_time":{}{fault}{call}}}"#,
                        (i + s) % services,
                        at + 0.02
                    );
                    docs.push(Document::parse(raw).expect("valid"));
                }
            }
            rt.block_on(store.write(&tenant, docs)).expect("write");
            store.sync_index_blocking();
            t += batch;
        }
        store.close_blocking().expect("close");
    }
    println!(
        "service_graph: loaded {segments} segments across {services} services over {hours} h in {:.1}s",
        load.elapsed().as_secs_f64()
    );
    let server = util::Server::start_with(
        Some(dir.path().to_path_buf()),
        false,
        &["--log-level", "warn"],
    );
    let client = reqwest::blocking::Client::new();
    let mut windows = vec![("6 h", 6 * 3600)];
    if window > 6 * 3600 {
        windows.push(("the whole span", window));
    }
    for (name, span) in windows {
        let body = format!(r#"{{"StartTime":{},"EndTime":{}}}"#, now - span, now + 60);
        let mut times = Vec::new();
        let mut nodes = 0;
        for _ in 0..requests + 10 {
            let t = Instant::now();
            let v: serde_json::Value = client
                .post(format!("http://{}/ServiceGraph", server.http))
                .body(body.clone())
                .send()
                .and_then(|r| r.json())
                .expect("GetServiceGraph");
            times.push(t.elapsed());
            nodes = v["Services"].as_array().map_or(0, Vec::len);
        }
        let mut times = times.split_off(10);
        times.sort();
        println!(
            "  GetServiceGraph over {name}: {nodes} nodes, median {:.1} ms, max {:.1} ms",
            times[times.len() / 2].as_secs_f64() * 1000.0,
            times[times.len() - 1].as_secs_f64() * 1000.0
        );
    }
}
