//! Time-range scans read scan packs (one per indexing round and trace-id second) merged
//! with loose scan blocks (past the per-second cap, or from days written before packs).
//! Whatever mix a second's blocks are in, a paged scan returns every trace once, at its
//! newest revision, highest trace id first.

use std::collections::BTreeMap;

use roentgen_model::{Document, TraceId};
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{Store, SummaryQuery, TenantId, TimeRangeType};

const T0: u32 = 1_700_000_000;

fn doc(n: u32, at: u32, id: u32, done: bool) -> Document {
    let end = if done {
        format!(r#""end_time":{at}.5"#)
    } else {
        r#""in_progress":true"#.to_string()
    };
    Document::parse(format!(
        r#"{{"trace_id":"1-{at:08x}-{n:024x}","id":"{id:016x}","name":"svc-{s}","start_time":{at},{end},"annotations":{{"n":{n}}}}}"#,
        s = n % 3
    ))
    .expect("valid")
}

/// Writes 60 traces in two seconds over several indexing rounds, then derives a third
/// of them again (completed or joined by a late segment), each round indexed on its own.
/// Returns each trace's expected revision.
fn load(store: &EmbeddedStore, rt: &tokio::runtime::Runtime) -> BTreeMap<TraceId, u32> {
    let t = TenantId::default();
    let mut want = BTreeMap::new();
    for round in 0..6u32 {
        let docs: Vec<Document> = (0..10u32)
            .map(|i| {
                let n = round * 10 + i + 1;
                doc(n, T0 + n % 2, 1, n % 3 != 0)
            })
            .collect();
        for d in &docs {
            want.insert(d.trace_id(), 1);
        }
        rt.block_on(store.write(&t, docs)).expect("write");
        store.sync_index_blocking();
    }
    for round in 0..2u32 {
        let docs: Vec<Document> = (1..=60u32)
            .filter(|n| n % 3 == 0 && (n / 3) % 2 == round)
            .flat_map(|n| [doc(n, T0 + n % 2, 1, true), doc(n, T0 + n % 2, 2, true)])
            .collect();
        for d in &docs {
            want.insert(d.trace_id(), 2);
        }
        rt.block_on(store.write(&t, docs)).expect("write");
        store.sync_index_blocking();
    }
    want
}

fn query(filter: Option<&str>, limit: usize, cursor: Option<String>) -> SummaryQuery {
    SummaryQuery {
        start: f64::from(T0 - 10),
        end: f64::from(T0 + 10),
        time_range_type: TimeRangeType::TraceId,
        service: None,
        filter: filter.map(str::to_string),
        groups: Vec::new(),
        predicate: None,
        cursor,
        limit,
        scan_budget: limit,
    }
}

/// Pages through a scan and checks it against `want`.
fn check(store: &EmbeddedStore, rt: &tokio::runtime::Runtime, want: &BTreeMap<TraceId, u32>) {
    let t = TenantId::default();
    // `partial` tells a stale copy (in progress) from the newest (complete): the whole
    // summary a page returns is always the newest, the judged block must be too.
    let filters = [
        None,
        Some("annotation.n > 0"),
        Some("annotation.n > 30"),
        Some("partial"),
        Some("!partial AND annotation.n > 0"),
    ];
    for filter in filters {
        for limit in [1, 4, 7, 100] {
            let mut seen = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = rt
                    .block_on(store.query_summaries(&t, query(filter, limit, cursor)))
                    .expect("query");
                seen.extend(
                    page.summaries
                        .iter()
                        .map(|s| (s.summary.trace_id, s.revision)),
                );
                pages += 1;
                assert!(pages < 200, "paging does not end");
                match page.next {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let expected: Vec<(TraceId, u32)> = want
                .iter()
                .rev()
                .filter(|(id, _)| match filter {
                    Some("annotation.n > 30") => {
                        u128::from_str_radix(&id.to_string()[11..], 16).expect("hex") > 30
                    }
                    Some("partial") => false,
                    _ => true,
                })
                .map(|(id, r)| (*id, *r))
                .collect();
            assert_eq!(seen, expected, "filter {filter:?}, limit {limit}");
        }
    }
}

#[test]
fn packs_alone_return_every_trace_once_at_its_newest_revision() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
    let want = load(&store, &rt);
    check(&store, &rt, &want);
}

/// With a cap of 4 traces per second, most blocks (and some newer revisions of packed
/// traces) are loose: the scan merges both.
#[test]
fn packs_and_loose_blocks_merge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let options = EmbeddedOptions {
        pack_second_cap: 4,
        ..EmbeddedOptions::default()
    };
    let store = EmbeddedStore::open(dir.path(), options).expect("open");
    let want = load(&store, &rt);
    check(&store, &rt, &want);
    // After a restart the counts start over: new revisions go to packs again.
    rt.block_on(store.close()).expect("close");
    drop(store);
    let store = EmbeddedStore::open(dir.path(), options).expect("reopen");
    let t = TenantId::default();
    let mut want = want;
    let docs: Vec<Document> = (1..=12u32).map(|n| doc(n, T0 + n % 2, 3, true)).collect();
    for d in &docs {
        *want.get_mut(&d.trace_id()).expect("known") += 1;
    }
    rt.block_on(store.write(&t, docs)).expect("write");
    store.sync_index_blocking();
    check(&store, &rt, &want);
}
