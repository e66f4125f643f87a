//! `BatchGetTraces` latency over HTTP against the real binary with many segments stored.
//!
//! Loads `BENCH_SEGMENTS` segments (default 1,000,000; the issue's figure is 10,000,000)
//! straight into an embedded store (5 per trace, spread over the last hour; the indexer is waited for after every batch so
//! the load rate is the whole write pipeline's), starts
//! `roentgen serve` on it, then times `BENCH_REQUESTS` (default 5000) sequential
//! BatchGetTraces calls of one random trace each and prints p50/p99/max.
//!
//! Run: `BENCH_SEGMENTS=10000000 cargo bench -p roentgen --bench batch_get`

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;
use util::env_or;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roentgen_model::Document;
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{Store, TenantId};

/// User + system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are 14th and 15th.
    let rest = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    get(11) + get(12)
}

fn trace_id(now: u64, t: u64) -> String {
    // Spread start times over the last hour.
    format!("1-{:08x}-{:024x}", now - (t % 3600), t + 1)
}

fn main() {
    let segments = env_or("BENCH_SEGMENTS", 1_000_000);
    let requests = env_or("BENCH_REQUESTS", 5000);
    let per_trace = 5;
    let traces = segments / per_trace;
    let dir = tempfile::tempdir().expect("tempdir");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();

    let load_start = Instant::now();
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let tenant = TenantId::default();
        let batch_traces = 2000;
        let mut t = 0;
        while t < traces {
            let mut docs = Vec::with_capacity((batch_traces * per_trace) as usize);
            for tt in t..(t + batch_traces).min(traces) {
                let trace = trace_id(now, tt);
                let start = (now - (tt % 3600)) as f64;
                for s in 0..per_trace {
                    let id = tt * per_trace + s + 1;
                    let parent = if s == 0 {
                        String::new()
                    } else {
                        format!(r#","parent_id":"{:016x}""#, id - 1)
                    };
                    let raw = format!(
                        r#"{{"trace_id":"{trace}","id":"{id:016x}"{parent},"name":"svc-{s}","start_time":{start},"end_time":{end},"http":{{"request":{{"method":"GET","url":"https://svc-{s}.example.com/api/orders/{tt}"}},"response":{{"status":200}}}},"annotations":{{"customer":"c-{tt}"}},"metadata":{{"default":{{"pad":"{pad}"}}}}}}"#,
                        end = start + 0.1,
                        pad = "x".repeat(600),
                    );
                    docs.push(Document::parse(raw).expect("valid"));
                }
            }
            rt.block_on(store.write(&tenant, docs)).expect("write");
            t += batch_traces;
            // Keep the indexer caught up, so the load rate is the whole pipeline's.
            store.sync_index_blocking();
        }
        store.close_blocking().expect("close");
    }
    let load_secs = load_start.elapsed().as_secs_f64();
    println!(
        "batch_get: loaded {segments} segments ({traces} traces) in {load_secs:.1}s ({:.0}/s)",
        segments as f64 / load_secs
    );

    let mut server = util::Server::start_with(
        Some(dir.path().to_path_buf()),
        false,
        &["--log-level", "warn"],
    );
    let http = server.http.clone();
    let pid = server.pid().as_raw() as u32;
    let client = reqwest::blocking::Client::new();

    // Measure at rest: wait for the server's background work (flushes, compactions of
    // what was just loaded) to settle, at most two minutes.
    let settle_start = Instant::now();
    let mut last = cpu_ticks(pid);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now_ticks = cpu_ticks(pid);
        let busy = now_ticks.saturating_sub(last);
        last = now_ticks;
        // Clock ticks are 1/100 s: under 5 ticks in a second is under 5 % of a core.
        if busy < 5 || settle_start.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    println!(
        "batch_get: server settled after {:.0}s",
        settle_start.elapsed().as_secs_f64()
    );

    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut lat = Vec::with_capacity(requests as usize);
    for i in 0..requests + 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let t = x % traces;
        let body = format!(r#"{{"TraceIds":["{}"]}}"#, trace_id(now, t));
        let started = Instant::now();
        let r = client
            .post(format!("http://{http}/Traces"))
            .body(body)
            .send()
            .expect("request");
        let text = r.text().expect("body");
        let elapsed = started.elapsed();
        assert!(text.contains("\"Segments\""), "{text}");
        if i >= 200 {
            lat.push(elapsed);
        }
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "batch_get: {requests} BatchGetTraces of 1 trace ({per_trace} segments) with {segments} segments stored: p50 {:?}  p99 {:?}  max {:?}",
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
    assert!(server.stop().success(), "roentgen did not stop cleanly");
}
