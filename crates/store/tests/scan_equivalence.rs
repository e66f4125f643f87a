//! A filtered scan decodes only the parts of each summary its expression needs (the
//! record's scan block) and the whole summary only for what it returns. This checks
//! that it answers exactly what evaluating the expression on the whole summaries
//! answers, over the filter crate's fixture traces (real derivation) and expressions
//! of every keyword family, including those that need the full summary.

#[path = "../../filter/tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;

use roentgen_model::Document;
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{CompiledFilter, Store, SummaryQuery, TenantId, TimeRangeType};

const EXPRESSIONS: &[&str] = &[
    "fault",
    "!error AND responsetime > 0.5",
    "duration >= 1 OR partial",
    "throttle",
    "ok",
    "http.status = 404",
    "http.status >= 500",
    r#"http.url CONTAINS "game""#,
    r#"http.method = "POST""#,
    r#"http.useragent BEGINSWITH "curl""#,
    r#"http.clientip = "10.0.0.1""#,
    "annotation.vip",
    "annotation.age > 30",
    r#"annotation.gameid = "817DL6VO""#,
    "!annotation.vip = true",
    r#"user = "bob""#,
    r#"user BEGINSWITH "c" OR user = "alice""#,
    r#"service("orders")"#,
    r#"service("payments") AND fault"#,
    r#"!service("web")"#,
    r#"service(id(type: "AWS::ECS::Container"))"#,
    r#"service("orders") { fault }"#,
    r#"service("web") { http.status = 429 }"#,
    r#"edge("web", "orders")"#,
    r#"edge("orders", "payments") { error OR fault }"#,
    "inferred",
    r#"rootcause.fault.service { name = "payments" }"#,
    r#"rootcause.fault.exception { name = "DatabaseError" }"#,
    r#"rootcause.responsetime.entity { coverage > 0.5 }"#,
    r#"instance.id = "i-1234567890abcdef0""#,
    r#"availabilityzone BEGINSWITH "us-""#,
    r#"resource.arn CONTAINS "ecs""#,
];

/// A store whose indexer never packs scan blocks by itself, so that the tests say
/// which blocks are packed and which are loose.
fn open(dir: &std::path::Path) -> EmbeddedStore {
    let options = EmbeddedOptions {
        seal_age: std::time::Duration::from_secs(u64::from(u32::MAX)),
        ..EmbeddedOptions::default()
    };
    EmbeddedStore::open(dir, options).expect("open")
}

fn load(dir: &std::path::Path, rt: &tokio::runtime::Runtime) -> EmbeddedStore {
    let store = open(dir);
    let t = TenantId::default();
    for trace in common::TRACES {
        let docs = trace
            .iter()
            .map(|raw| Document::parse(raw.to_string()).expect("fixture parses"))
            .collect();
        rt.block_on(store.write(&t, docs)).expect("write");
    }
    store.sync_index_blocking();
    store
}

#[test]
fn partial_decoding_answers_what_full_evaluation_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = load(dir.path(), &rt);
    check(&store, &rt);
}

/// A store written before scan blocks existed gets them when it opens.
#[test]
fn days_without_scan_blocks_get_them_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = load(dir.path(), &rt);
    rt.block_on(store.close()).expect("close");
    drop(store);
    {
        let db = fjall::Database::builder(dir.path())
            .open()
            .expect("raw open");
        let names: Vec<String> = db
            .list_keyspace_names()
            .into_iter()
            .map(|n| n.to_string())
            .filter(|n| n.starts_with("pack_") || n.starts_with("loose_"))
            .collect();
        assert!(!names.is_empty());
        for name in names {
            let ks = db
                .keyspace(&name, fjall::KeyspaceCreateOptions::default)
                .expect("keyspace");
            db.delete_keyspace(ks).expect("delete");
        }
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("reopen");
    check(&store, &rt);
}

fn check(store: &EmbeddedStore, rt: &tokio::runtime::Runtime) {
    let t = TenantId::default();
    let query = |filter: Option<&str>| SummaryQuery {
        start: 0.0,
        end: 4_000_000_000.0,
        time_range_type: TimeRangeType::TraceId,
        service: None,
        filter: filter.map(str::to_string),
        groups: Vec::new(),
        predicate: None,
        cursor: None,
        limit: 1000,
        scan_budget: 100_000,
    };
    let all = rt
        .block_on(store.query_summaries(&t, query(None)))
        .expect("query")
        .summaries;
    assert_eq!(all.len(), common::TRACES.len());
    // What the unfiltered scan returns are whole summaries.
    for s in &all {
        assert!(!s.summary.services.is_empty(), "{:?}", s.summary.trace_id);
    }
    let mut matched_any = 0;
    for text in EXPRESSIONS {
        let compiled = CompiledFilter::new(text)
            .expect("parses")
            .expect("not empty");
        let want: BTreeSet<String> = all
            .iter()
            .filter(|s| compiled.matches(&s.summary))
            .map(|s| s.summary.trace_id.to_string())
            .collect();
        let got_page = rt
            .block_on(store.query_summaries(&t, query(Some(text))))
            .expect("query");
        let got: BTreeSet<String> = got_page
            .summaries
            .iter()
            .map(|s| s.summary.trace_id.to_string())
            .collect();
        assert_eq!(got, want, "{text}");
        // Returned summaries are whole, equal to the unfiltered answer's.
        for s in &got_page.summaries {
            let full = all
                .iter()
                .find(|a| a.summary.trace_id == s.summary.trace_id)
                .expect("known trace");
            assert_eq!(s, full, "{text}");
        }
        matched_any += usize::from(!want.is_empty());
    }
    // The expressions are not vacuous: most select some fixture trace.
    assert!(matched_any >= EXPRESSIONS.len() * 2 / 3, "{matched_any}");
}

/// Scans read one snapshot: a page never sees a scan block whose summary is not yet
/// visible (plain fjall reads see a batch while it is applied), however the indexer's
/// batches interleave with it. The window is microseconds wide, so this catches a
/// regression only sometimes (the reading of the code is in `query_blocking`); it does
/// hold every scan to succeeding while the indexer writes.
#[test]
fn scans_during_indexing_never_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
    let t = TenantId::default();
    let now = 1_700_000_000u32;
    let writer = {
        let store = store.clone();
        let t = t.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            for round in 0..100u32 {
                let docs = (0..50u32)
                    .map(|i| {
                        let n = round * 50 + i + 1;
                        let at = now - (n % 600);
                        Document::parse(format!(
                            r#"{{"trace_id":"1-{at:08x}-{n:024x}","id":"{n:016x}","name":"svc-{s}","start_time":{at},"end_time":{at}.5,"annotations":{{"n":{n}}}}}"#,
                            s = n % 7
                        ))
                        .expect("valid")
                    })
                    .collect();
                rt.block_on(store.write(&t, docs)).expect("write");
            }
            store.sync_index_blocking();
        })
    };
    let mut pages = 0;
    while !writer.is_finished() {
        for filter in ["annotation.n > 0", r#"service("svc-3")"#] {
            let q = SummaryQuery {
                start: f64::from(now - 700),
                end: f64::from(now + 1),
                time_range_type: TimeRangeType::TraceId,
                service: None,
                filter: Some(filter.to_string()),
                groups: Vec::new(),
                predicate: None,
                cursor: None,
                limit: 100,
                scan_budget: 100_000,
            };
            rt.block_on(store.query_summaries(&t, q))
                .expect("a scan never fails");
            pages += 1;
        }
    }
    writer.join().expect("writer");
    assert!(pages > 0);
}

/// Packed scan blocks answer what loose ones answer: after packing, after a packed
/// trace is re-derived (its loose block hides the packed one), and after packing that.
#[test]
fn packed_scan_blocks_answer_what_loose_ones_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = load(dir.path(), &rt);
    check(&store, &rt);
    let moved = store.pack_scan_blocks_blocking().expect("pack");
    assert!(moved >= common::TRACES.len(), "{moved}");
    check(&store, &rt);
    // Nothing loose is left to pack.
    assert_eq!(store.pack_scan_blocks_blocking().expect("pack"), 0);
    // Writing a fixture trace again re-derives it (a new revision, a loose block).
    let t = TenantId::default();
    let docs = common::TRACES[0]
        .iter()
        .map(|raw| Document::parse(raw.to_string()).expect("fixture parses"))
        .collect();
    rt.block_on(store.write(&t, docs)).expect("write");
    store.sync_index_blocking();
    check(&store, &rt);
    assert!(store.pack_scan_blocks_blocking().expect("pack") >= 1);
    check(&store, &rt);
    // Packs survive a restart.
    rt.block_on(store.close()).expect("close");
    drop(store);
    let store = open(dir.path());
    check(&store, &rt);
}

/// Seconds holding more traces than one pack: every trace is found, once, newest
/// first, by scans in pages of any size and by the service pushdown's lookups, with
/// some traces re-derived after their seal (a loose block beside the packed one).
#[test]
fn paging_through_packs_visits_every_trace_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = open(dir.path());
    let t = TenantId::default();
    let base = 1_700_000_000u32;
    // 700 traces in second `base`, then 40 in each of the next 3 seconds.
    let traces: Vec<(u32, u32)> = (1..=700u32)
        .map(|n| (base, n))
        .chain((701..=820u32).map(|n| (base + 1 + (n - 701) / 40, n)))
        .collect();
    let doc = |at: u32, n: u32, status: u32| {
        Document::parse(format!(
            r#"{{"trace_id":"1-{at:08x}-{n:024x}","id":"{n:016x}","name":"svc-{s}","start_time":{at},"end_time":{at}.5,"http":{{"response":{{"status":{status}}}}},"annotations":{{"n":{n}}}}}"#,
            s = n % 3
        ))
        .expect("valid")
    };
    let docs = traces.iter().map(|(at, n)| doc(*at, *n, 200)).collect();
    rt.block_on(store.write(&t, docs)).expect("write");
    store.sync_index_blocking();
    let moved = store.pack_scan_blocks_blocking().expect("pack");
    assert_eq!(moved, traces.len());
    // Every 7th trace is re-derived: a second document with an annotation `late`.
    let later: Vec<Document> = traces
        .iter()
        .filter(|(_, n)| n % 7 == 0)
        .map(|(at, n)| {
            let id = n + 100_000;
            Document::parse(format!(
                r#"{{"trace_id":"1-{at:08x}-{n:024x}","id":"{id:016x}","name":"svc-9","start_time":{at},"end_time":{at}.7,"annotations":{{"late":true}}}}"#,
            ))
            .expect("valid")
        })
        .collect();
    let rederived = later.len();
    rt.block_on(store.write(&t, later)).expect("write");
    store.sync_index_blocking();

    let page = |filter: &str, cursor: Option<String>, limit: usize| SummaryQuery {
        start: f64::from(base),
        end: f64::from(base + 10),
        time_range_type: TimeRangeType::TraceId,
        service: None,
        filter: Some(filter.to_string()),
        groups: Vec::new(),
        predicate: None,
        cursor,
        limit,
        scan_budget: limit * 3,
    };
    let all_pages = |filter: &str, limit: usize| -> Vec<String> {
        let mut out = Vec::new();
        let mut cursor = None;
        loop {
            let p = rt
                .block_on(store.query_summaries(&t, page(filter, cursor.clone(), limit)))
                .expect("query");
            out.extend(p.summaries.iter().map(|s| s.summary.trace_id.to_string()));
            match p.next {
                Some(next) => cursor = Some(next),
                None => return out,
            }
        }
    };
    let mut newest_first: Vec<(u32, u32)> = traces.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    let ids = |keep: &dyn Fn(u32) -> bool| -> Vec<String> {
        newest_first
            .iter()
            .filter(|(_, n)| keep(*n))
            .map(|(at, n)| format!("1-{at:08x}-{n:024x}"))
            .collect()
    };
    for round in 0..2 {
        for limit in [3, 7, 100, 1000] {
            assert_eq!(
                all_pages("annotation.n > 0", limit),
                ids(&|_| true),
                "limit {limit}"
            );
            // The re-derived traces have their new annotation: the loose block wins.
            assert_eq!(
                all_pages("annotation.late = true", limit),
                ids(&|n| n % 7 == 0),
                "limit {limit}"
            );
            // Through the service index: point lookups into the packs.
            assert_eq!(
                all_pages(r#"service("svc-1") AND annotation.n > 0"#, limit),
                ids(&|n| n % 3 == 1),
                "limit {limit}"
            );
            assert_eq!(
                all_pages(r#"service("svc-9") AND annotation.late = true"#, limit),
                ids(&|n| n % 7 == 0),
                "limit {limit}"
            );
        }
        // Fold the loose blocks in (the second time round there are none left); the
        // answers stay the same.
        assert_eq!(
            store.pack_scan_blocks_blocking().expect("pack"),
            if round == 0 { rederived } else { 0 }
        );
    }
}
