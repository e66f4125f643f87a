//! In-process cost of the embedded store's write path and indexer, in CPU time per
//! trace, by thread: the indexer (`roentgen-indexe`), fjall's workers, and the rest
//! (the writers on tokio's blocking threads: journal, documents, markers). The main
//! thread, which builds and parses the bench's documents, is not counted. CPU time is read from
//! `/proc/self/task/*/schedstat`, so the figures hold on a busy machine, where wall
//! times do not.
//!
//! Two document shapes, each in two regimes:
//!
//! * shapes: `five` — traces of five ~1.2 KB segment documents (the UDP bench's
//!   shape: each with HTTP, EC2, annotations, an AWS and a remote subsegment);
//!   `otlp` — traces of one document holding a server span and seven embedded
//!   subsegments (the OTLP bench's shape after conversion);
//! * regimes: `in memory` — rounds of 500 traces, each round indexed before the next
//!   is written, so every document reaches the indexer parsed; `read back` — all
//!   traces written first, then indexed: past the parsed-document budget the indexer
//!   reads documents back from the store and parses them again, as in overload.
//!
//! Settings: `BENCH_TRACES` (default 20,000 per run); `BENCH_TRACES_PER_SECOND`
//! (default 0): with 0, trace `i`'s id carries second `i % 30` of a 30-second window,
//! so every flushed table overlaps every other (the worst key order an LSM can get);
//! with N, trace `i` carries second `i / N`, as ids do when N traces a second arrive as
//! they are made (20,000 is the 100,000 segments/s of issue 2). Compaction grows with
//! the data written and with how much of it overlaps, so runs of 150,000 traces or
//! more show what a sustained load costs: short runs end before most of it.
//!
//! Run: `cargo bench -p roentgen-store --bench index`

#![allow(missing_docs)]

use std::collections::HashMap;
use std::time::Instant;

/// The allocator of the `roentgen` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use roentgen_model::Document;
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{Store, TenantId};

const ROUND: usize = 500;

fn segment(trace: &str, id: u64, parent: Option<u64>, at: u64) -> String {
    let parent = parent
        .map(|p| format!(r#","parent_id":"{p:016x}""#))
        .unwrap_or_default();
    format!(
        r#"{{"trace_id":"{trace}","id":"{id:016x}"{parent},"name":"svc-{svc}","origin":"AWS::EC2::Instance","start_time":{at}.125,"end_time":{at}.245,"http":{{"request":{{"method":"GET","url":"https://svc.example.com/api/orders/12345?expand=items","client_ip":"10.1.2.3","user_agent":"Mozilla/5.0 (X11; Linux x86_64) bench"}},"response":{{"status":200,"content_length":1834}}}},"annotations":{{"customer":"c-{id}","tier":"gold","items":3,"vip":true}},"metadata":{{"default":{{"note":"padding padding padding padding padding padding padding padding padding padding padding"}}}},"aws":{{"ec2":{{"instance_id":"i-0123456789abcdef0","availability_zone":"us-east-1a"}}}},"subsegments":[{{"id":"{s1:016x}","name":"DynamoDB","namespace":"aws","start_time":{at}.13,"end_time":{at}.17,"aws":{{"operation":"GetItem","table_name":"orders"}},"http":{{"response":{{"status":200}}}}}},{{"id":"{s2:016x}","name":"payments.internal","namespace":"remote","start_time":{at}.17,"end_time":{at}.2,"http":{{"request":{{"method":"POST","url":"https://payments.internal/charge"}},"response":{{"status":200}}}}}}]}}"#,
        svc = id % 5,
        s1 = id ^ 0x1111_0000,
        s2 = id ^ 0x2222_0000,
    )
}

fn otlp_document(trace: &str, id: u64, at: u64) -> String {
    let sub = |k: u64, name: &str, extra: &str| {
        format!(
            r#"{{"id":"{:016x}","name":"{name}","start_time":{at}.2,"end_time":{at}.8{extra}}}"#,
            id + k
        )
    };
    let subs = [
        sub(1, "inventory", r#","namespace":"remote","http":{"request":{"method":"GET","url":"http://inventory.internal/stock/42"},"response":{"status":200}}"#),
        sub(2, "shop@db.internal", r#","namespace":"remote","sql":{"url":"db.internal/shop","database_type":"postgresql","sanitized_query":"SELECT * FROM carts WHERE id = $1"}"#),
        sub(3, "DynamoDB", r#","namespace":"aws","aws":{"operation":"PutItem","region":"us-east-1"}"#),
        sub(4, "render", r#","metadata":{"default":{"template":"checkout.html","items":3}}"#),
        sub(5, "render", r#","metadata":{"default":{"template":"checkout.html","items":3}}"#),
        sub(6, "render", r#","metadata":{"default":{"template":"checkout.html","items":3}}"#),
        sub(7, "render", r#","metadata":{"default":{"template":"checkout.html","items":3}}"#),
    ]
    .join(",");
    format!(
        r#"{{"id":"{id:016x}","name":"checkout","start_time":{at}.1,"end_time":{at}.9,"user":"alice","http":{{"request":{{"method":"POST","url":"https://shop.example.com/checkout","user_agent":"bench/1.0"}},"response":{{"status":200}}}},"service":{{"version":"1.2.3"}},"aws":{{"xray":{{"sdk":"opentelemetry for rust"}}}},"metadata":{{"default":{{"otel.resource.service.name":"checkout"}}}},"trace_id":"{trace}","subsegments":[{subs}]}}"#
    )
}

/// The documents of trace `n` of a run.
fn trace_docs(shape: &str, run: u64, n: u64, at: u64) -> Vec<Document> {
    let trace = format!("1-{at:08x}-{run:08x}{n:016x}");
    let base = (run << 40) | (n << 8);
    let texts: Vec<String> = match shape {
        "five" => (0..5u64)
            .map(|i| segment(&trace, base + i + 1, (i > 0).then_some(base + i), at))
            .collect(),
        _ => vec![otlp_document(&trace, base + 1, at)],
    };
    texts
        .into_iter()
        .map(|t| Document::parse(t).expect("valid bench document"))
        .collect()
}

/// CPU nanoseconds of this process's threads, by thread name; the main thread, which
/// builds the bench's documents, is left out.
fn cpu_by_thread() -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    let main = std::process::id().to_string();
    for task in tasks.flatten() {
        if task.file_name().to_string_lossy() == main {
            continue;
        }
        let p = task.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let ns: u64 = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
            .unwrap_or(0);
        *out.entry(comm.trim().to_string()).or_default() += ns;
    }
    out
}

fn group(name: &str) -> &'static str {
    if name.starts_with("roentgen-indexe") {
        "indexer"
    } else if name.starts_with("fjall") {
        "fjall workers"
    } else {
        "writers and the rest"
    }
}

/// CPU nanoseconds by group between two readings (threads that ended are left out).
fn spent(before: &HashMap<String, u64>, after: &HashMap<String, u64>) -> Vec<(&'static str, u64)> {
    let mut out: Vec<(&'static str, u64)> = Vec::new();
    for (name, ns) in after {
        let d = ns.saturating_sub(before.get(name).copied().unwrap_or(0));
        let g = group(name);
        match out.iter_mut().find(|(k, _)| *k == g) {
            Some(e) => e.1 += d,
            None => out.push((g, d)),
        }
    }
    out.sort();
    out
}

fn main() {
    let traces: u64 = std::env::var("BENCH_TRACES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let per_second: u64 = std::env::var("BENCH_TRACES_PER_SECOND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let second_of = |i: u64| i.checked_div(per_second).unwrap_or(i % 30);
    // Blocking threads (the writers) stay for the whole run: one that idled out would
    // take its CPU time with it (a long "read back" phase wrote 0.0 µs per trace).
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(24 * 3600))
        .build()
        .expect("runtime");
    let tenant = TenantId::default();
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1_780_000_000)
        - 60
        // With BENCH_TRACES_PER_SECOND the run's seconds end a minute ago, not ahead.
        - traces.checked_div(per_second).unwrap_or(0);
    let mut run = 0u64;
    for shape in ["five", "otlp"] {
        for regime in ["in memory", "read back"] {
            run += 1;
            let dir = tempfile::tempdir().expect("temp dir");
            let store =
                EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open store");
            let mut docs_written = 0usize;
            let before = cpu_by_thread();
            let started = Instant::now();
            let mut n = 0u64;
            while n < traces {
                let end = (n + ROUND as u64).min(traces);
                let docs: Vec<Document> = (n..end)
                    .flat_map(|i| trace_docs(shape, run, i, at + second_of(i)))
                    .collect();
                docs_written += docs.len();
                rt.block_on(store.write(&tenant, docs)).expect("write");
                if regime == "in memory" {
                    store.sync_index_blocking();
                }
                n = end;
            }
            store.sync_index_blocking();
            let wall = started.elapsed();
            let after = cpu_by_thread();
            let per_trace = |ns: u64| ns as f64 / 1e3 / traces as f64;
            let groups = spent(&before, &after);
            let total: u64 = groups.iter().map(|(_, ns)| ns).sum();
            let detail: Vec<String> = groups
                .iter()
                .map(|(g, ns)| format!("{g} {:.1}", per_trace(*ns)))
                .collect();
            println!(
                "{shape} / {regime}: {traces} traces ({docs_written} documents) written and indexed in {:.2} s; CPU µs per trace: {:.1} ({})",
                wall.as_secs_f64(),
                per_trace(total),
                detail.join(", ")
            );
        }
    }
}
