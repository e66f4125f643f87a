//! `GetTraceSummaries` with filter expressions over a one-hour window holding many
//! traces, through the real binary.
//!
//! Loads `BENCH_TRACES` traces (default 1,000,000; one segment each, spread evenly over
//! the last hour and written in time order, a tenth of a second's worth per indexing
//! round or `BENCH_ROUND_TRACES`; 100 services, annotation `n`, every 20th faulting)
//! straight into an embedded store, starts `roentgen serve` on it and times, following `NextToken` to the
//! end: a selective filter the pushdown narrows to 1 % (`service("svc-7")`), a filter
//! no pushdown narrows, evaluated on every summary (`annotation.n < 0`, matching none),
//! and the first page of an unfiltered query.
//!
//! Run: `cargo bench -p roentgen --bench summaries`; `BENCH_QUERIES` (a comma-separated
//! subset of `selective,scan,flags,json,first`) picks the queries, e.g. to profile one.

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use roentgen_model::Document;
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{Store, TenantId};
use util::{env_or, get_trace_summaries as query};

fn main() {
    let traces = env_or("BENCH_TRACES", 1_000_000);
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
        // Oldest first, in writes of a tenth of a second of the window's traffic, each
        // indexed before the next: the rounds a live indexer makes (it derives what
        // arrived in the last `INDEX_DELAY`, 100 ms), so scan packs hold what they
        // hold in a live store, not what one bulk load would give them.
        let batch = env_or("BENCH_ROUND_TRACES", (traces / 36_000).max(1));
        let mut t = 0;
        while t < traces {
            let mut docs = Vec::with_capacity(batch as usize);
            for i in t..(t + batch).min(traces) {
                let at = now - 3600 + i * 3600 / traces;
                let fault = if i % 20 == 0 { r#","fault":true"# } else { "" };
                let raw = format!(
                    r#"{{"trace_id":"1-{at:08x}-{n:024x}","id":"{n:016x}","name":"svc-{svc}","start_time":{at},"end_time":{end}{fault},"http":{{"request":{{"method":"GET","url":"https://svc-{svc}.example.com/api/{i}"}},"response":{{"status":200}}}},"annotations":{{"n":{i},"customer":"c-{i}"}}}}"#,
                    n = i + 1,
                    svc = i % 100,
                    end = at as f64 + 0.05 + (i % 1000) as f64 / 1000.0,
                );
                docs.push(Document::parse(raw).expect("valid"));
            }
            rt.block_on(store.write(&tenant, docs)).expect("write");
            t += batch;
            store.sync_index_blocking();
        }
        store.close_blocking().expect("close");
    }
    println!(
        "summaries: loaded {traces} traces in {:.1}s",
        load_start.elapsed().as_secs_f64()
    );
    let server = util::Server::start_with(
        Some(dir.path().to_path_buf()),
        false,
        &["--log-level", "warn"],
    );
    let (start, end) = (now - 3600, now + 1);
    let pid = server.pid().as_raw() as u32;
    // Wall time depends on what else the machine runs; the server's CPU time per query
    // (all its threads, 10 ms resolution) does much less.
    let cpu = || util::thread_cpu(pid).values().sum::<f64>();
    let timed = |label: &str, filter: Option<&str>, all_pages: bool| {
        let before = cpu();
        let (n, pages, secs) = query(&server.http, start, end, filter, all_pages);
        println!(
            "  {label}: {n} traces, {pages} pages, {:.1} ms wall, {:.0} ms server CPU",
            secs * 1000.0,
            (cpu() - before) * 1000.0
        );
    };
    let picked =
        std::env::var("BENCH_QUERIES").unwrap_or_else(|_| "selective,scan,flags,json,first".into());
    let wants = |name: &str| picked.split(',').any(|p| p.trim() == name);
    // Warm the caches once.
    let _ = query(&server.http, start, end, Some(r#"service("svc-3")"#), true);
    if wants("selective") {
        timed(
            "selective  service(\"svc-7\")",
            Some(r#"service("svc-7")"#),
            true,
        );
    }
    if wants("scan") {
        for _ in 0..util::env_or("BENCH_REPEAT", 1) {
            timed(
                "full scan  annotation.n < 0",
                Some("annotation.n < 0"),
                true,
            );
        }
    }
    if wants("flags") {
        timed(
            "flags      fault AND responsetime > 0.9",
            Some("fault AND responsetime > 0.9"),
            true,
        );
    }
    if wants("json") {
        timed(
            "full JSON  edge(\"svc-1\", \"svc-2\") OR annotation.n < 0",
            Some(r#"edge("svc-1", "svc-2") OR annotation.n < 0"#),
            true,
        );
    }
    if wants("first") {
        timed("first page, no filter", None, false);
    }
    drop(server);
}
