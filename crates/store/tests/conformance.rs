//! The store contract, written once as generic scenarios and run against every backend:
//! `embedded`, `clickhouse` (one server) and `clickhouse_cluster` (two shards behind
//! `Distributed` tables). The ClickHouse runs need `ROENTGEN_TEST_CLICKHOUSE` (an HTTP
//! URL) and, for the cluster, `ROENTGEN_TEST_CLICKHOUSE_2` and
//! `ROENTGEN_TEST_CLICKHOUSE_CLUSTER`; `scripts/test` starts both servers and sets them.
//! Each scenario gets a database of its own, dropped afterwards.

use std::collections::BTreeSet;
use std::future::Future;

use roentgen_model::{Document, TraceId};
use roentgen_store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{ConfigKind, Store, SummaryQuery, TenantId, TimeRangeType};

const T0: u32 = 1_700_000_000;

fn trace(n: u32, at: u32) -> String {
    format!("1-{at:08x}-{n:024x}")
}

fn seg(
    trace_id: &str,
    id: u64,
    name: &str,
    parent: Option<u64>,
    start: f64,
    end: Option<f64>,
    extra: &str,
) -> Document {
    let parent = parent
        .map(|p| format!(",\"parent_id\":\"{p:016x}\""))
        .unwrap_or_default();
    let end = match end {
        Some(e) => format!(",\"end_time\":{e}"),
        None => ",\"in_progress\":true".to_string(),
    };
    Document::parse(format!(
        "{{\"trace_id\":\"{trace_id}\",\"id\":\"{id:016x}\",\"name\":\"{name}\",\"start_time\":{start}{end}{parent}{extra}}}"
    ))
    .expect("valid test document")
}

fn query(start: u32, end: u32) -> SummaryQuery {
    SummaryQuery {
        start: f64::from(start),
        end: f64::from(end),
        time_range_type: TimeRangeType::TraceId,
        service: None,
        filter: None,
        groups: Vec::new(),
        predicate: None,
        cursor: None,
        limit: 100,
        scan_budget: 100_000,
    }
}

async fn write_then_read_verbatim<S: Store>(store: S) {
    let t = TenantId::default();
    let tid = trace(1, T0);
    let a = seg(
        &tid,
        1,
        "web",
        None,
        f64::from(T0),
        Some(f64::from(T0) + 1.5),
        ",\"metadata\":{\"x\":[1,2]}",
    );
    let raw = a.raw().to_string();
    let out = store.write(&t, vec![a]).await.expect("write");
    store.sync_index().await.expect("index");
    assert_eq!(out.documents, 1);
    let id: TraceId = tid.parse().expect("id");
    let got = store.get_traces(&t, &[id]).await.expect("read");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].documents.len(), 1);
    assert_eq!(got[0].documents[0].1, raw);
    let s = got[0].summary.as_ref().expect("summary");
    assert_eq!(s.summary.duration, Some(1.5));
    assert_eq!(s.revision, 1);
    // Unknown ids are skipped.
    let other: TraceId = trace(99, T0).parse().expect("id");
    assert!(
        store
            .get_traces(&t, &[other])
            .await
            .expect("read")
            .is_empty()
    );
}

async fn in_progress_then_complete_bumps_revision<S: Store>(store: S) {
    let t = TenantId::default();
    let tid = trace(2, T0);
    let id: TraceId = tid.parse().expect("id");
    store
        .write(&t, vec![seg(&tid, 7, "web", None, f64::from(T0), None, "")])
        .await
        .expect("write");
    store.sync_index().await.expect("index");
    let s = store.get_traces(&t, &[id]).await.expect("read")[0]
        .summary
        .clone()
        .expect("summary");
    assert!(s.summary.is_partial);
    store
        .write(
            &t,
            vec![seg(
                &tid,
                7,
                "web",
                None,
                f64::from(T0),
                Some(f64::from(T0) + 2.0),
                "",
            )],
        )
        .await
        .expect("write");
    store.sync_index().await.expect("index");
    let got = store.get_traces(&t, &[id]).await.expect("read");
    assert_eq!(got[0].documents.len(), 1, "same id replaces");
    let s = got[0].summary.clone().expect("summary");
    assert!(!s.summary.is_partial);
    assert_eq!(s.revision, 2);
}

async fn late_segments_join_their_trace<S: Store>(store: S) {
    let t = TenantId::default();
    let tid = trace(12, T0);
    let id: TraceId = tid.parse().expect("id");
    let start = f64::from(T0);
    // Three rounds of indexing, each adding a document to the same trace; reads between
    // and after must return every document (point reads from the record's ids once the
    // trace is indexed, a scan while it is not).
    for (n, name) in [(1u64, "web"), (2, "api"), (3, "db")] {
        let parent = (n > 1).then_some(n - 1);
        let d = seg(
            &tid,
            n,
            name,
            parent,
            start + n as f64 * 0.01,
            Some(start + 1.0),
            "",
        );
        store.write(&t, vec![d]).await.expect("write");
        let got = store.get_traces(&t, &[id]).await.expect("read");
        assert_eq!(
            got[0].documents.len(),
            n as usize,
            "before indexing, round {n}"
        );
        store.sync_index().await.expect("index");
        let got = store.get_traces(&t, &[id]).await.expect("read");
        assert_eq!(
            got[0].documents.len(),
            n as usize,
            "after indexing, round {n}"
        );
        let s = got[0].summary.as_ref().expect("summary");
        assert_eq!(s.summary.document_count, n as usize);
        assert_eq!(s.revision, n as u32);
    }
}

async fn paging_visits_every_trace_once_newest_first<S: Store>(store: S) {
    let t = TenantId::default();
    let mut docs = Vec::new();
    for i in 0..250u32 {
        let tid = trace(i, T0 + i);
        docs.push(seg(
            &tid,
            1,
            if i % 2 == 0 { "even" } else { "odd" },
            None,
            f64::from(T0 + i),
            Some(f64::from(T0 + i) + 0.1),
            "",
        ));
    }
    store.write(&t, docs).await.expect("write");
    store.sync_index().await.expect("index");
    let mut seen = Vec::new();
    let mut q = query(T0, T0 + 1000);
    q.limit = 30;
    loop {
        let page = store.query_summaries(&t, q.clone()).await.expect("query");
        seen.extend(page.summaries.iter().map(|s| s.summary.trace_id));
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen.len(), 250);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 250);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "newest first");

    // Service pushdown and time bounds.
    let mut q = query(T0 + 10, T0 + 19);
    q.service = Some("odd".into());
    let page = store.query_summaries(&t, q).await.expect("query");
    assert_eq!(page.summaries.len(), 5);
    assert!(page.summaries.iter().all(|s| s.summary.has_service("odd")));

    // A tight scan budget returns short pages with a cursor, never loses a trace.
    let mut q = query(T0, T0 + 1000);
    q.service = Some("even".into());
    q.scan_budget = 7;
    q.limit = 7;
    let mut n = 0;
    loop {
        let page = store.query_summaries(&t, q.clone()).await.expect("query");
        n += page.summaries.len();
        match page.next {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(n, 125);

    let mut q = query(T0, T0 + 1000);
    q.cursor = Some("not a cursor".into());
    assert!(store.query_summaries(&t, q).await.is_err());
}

async fn filter_expressions_narrow_and_match<S: Store>(store: S) {
    let t = TenantId::default();
    let mut docs = Vec::new();
    // 60 traces: "api" on every one, "db" on every third; every fifth faults; the
    // response time grows with the index.
    for i in 0..60u32 {
        let tid = trace(1000 + i, T0 + i);
        let start = f64::from(T0 + i);
        let fault = if i % 5 == 0 { ",\"fault\":true" } else { "" };
        let extra = format!(",\"annotations\":{{\"n\":{i}}}{fault}");
        docs.push(seg(
            &tid,
            1,
            "api",
            None,
            start,
            Some(start + f64::from(i) / 10.0),
            &extra,
        ));
        if i % 3 == 0 {
            docs.push(seg(&tid, 2, "db", Some(1), start, Some(start + 0.01), ""));
        }
    }
    store.write(&t, docs).await.expect("write");
    store.sync_index().await.expect("index");
    let count = |expr: &'static str| {
        let store = &store;
        let t = &t;
        async move {
            let mut q = query(T0, T0 + 100);
            q.filter = Some(expr.to_string());
            let mut n = 0;
            loop {
                let page = store.query_summaries(t, q.clone()).await.expect("query");
                n += page.summaries.len();
                match page.next {
                    Some(c) => q.cursor = Some(c),
                    None => return n,
                }
            }
        }
    };
    assert_eq!(count("").await, 60);
    assert_eq!(count(r#"service("db")"#).await, 20);
    assert_eq!(count("fault").await, 12);
    assert_eq!(count(r#"service("db") AND fault"#).await, 4);
    assert_eq!(count("responsetime > 4.95").await, 10);
    assert_eq!(count("annotation.n >= 50 OR annotation.n < 2").await, 12);
    assert_eq!(count(r#"!service("db") AND !fault"#).await, 32);
    assert_eq!(count("fault AND !fault").await, 0);
    let mut q = query(T0, T0 + 100);
    q.filter = Some(r#"group.name = "faulty" AND service("db")"#.into());
    q.groups = vec![roentgen_store::GroupDef {
        name: "faulty".into(),
        arn: "arn:aws:xray:local:0:group/faulty/x".into(),
        filter: Some("fault".into()),
    }];
    assert_eq!(
        store
            .query_summaries(&t, q)
            .await
            .expect("query")
            .summaries
            .len(),
        4
    );
    let mut q = query(T0, T0 + 100);
    q.filter = Some("responsetime CONTAINS \"x\"".into());
    match store.query_summaries(&t, q).await {
        Err(e) => assert!(
            e.is_client_error() && e.to_string().contains("column"),
            "{e}"
        ),
        Ok(_) => panic!("a type error must not parse"),
    }
}

async fn tenants_are_isolated<S: Store>(store: S) {
    let a = TenantId::new("a").expect("tenant");
    let b = TenantId::new("b").expect("tenant");
    let tid = trace(3, T0);
    store
        .write(
            &a,
            vec![seg(
                &tid,
                1,
                "web",
                None,
                f64::from(T0),
                Some(f64::from(T0) + 1.0),
                "",
            )],
        )
        .await
        .expect("write");
    store.sync_index().await.expect("index");
    let id: TraceId = tid.parse().expect("id");
    assert!(store.get_traces(&b, &[id]).await.expect("read").is_empty());
    assert!(
        store
            .query_summaries(&b, query(T0 - 10, T0 + 10))
            .await
            .expect("q")
            .summaries
            .is_empty()
    );
    assert_eq!(
        store
            .query_summaries(&a, query(T0 - 10, T0 + 10))
            .await
            .expect("q")
            .summaries
            .len(),
        1
    );
}

async fn rollups_are_exact_in_any_order<S: Store>(store: S) {
    let t = TenantId::default();
    let tid = trace(4, T0);
    let start = f64::from(T0);
    // Caller web (with a remote subsegment 0x10), callee api answers 0x10.
    let web = seg(
        &tid,
        1,
        "web",
        None,
        start,
        Some(start + 1.0),
        ",\"subsegments\":[{\"id\":\"0000000000000010\",\"name\":\"api\",\"namespace\":\"remote\",\"start_time\":1700000000.1,\"end_time\":1700000000.6}]",
    );
    let api = seg(
        &tid,
        2,
        "api",
        Some(0x10),
        start + 0.2,
        Some(start + 0.5),
        ",\"fault\":true",
    );
    // Callee first: the web → api edge only appears once web arrives, and api is never
    // counted as an inferred node afterwards.
    store.write(&t, vec![api]).await.expect("write");
    store.sync_index().await.expect("index");
    store.write(&t, vec![web.clone()]).await.expect("write");
    store.sync_index().await.expect("index");
    store
        .write(&t, vec![web])
        .await
        .expect("rewrite is idempotent");
    let m = u64::from(T0) / 60;
    let rows = store.rollups(&t, m - 1, m + 1, 1).await.expect("rollups");
    let find = |src: Option<&str>, dst: &str| {
        rows.iter()
            .filter(|r| {
                r.key.source.as_ref().map(|s| s.name.as_str()) == src && r.key.target.name == dst
            })
            .map(|r| r.stats.count)
            .sum::<i64>()
    };
    assert_eq!(find(None, "web"), 1);
    assert_eq!(find(None, "api"), 1);
    assert_eq!(find(Some("client"), "web"), 1);
    assert_eq!(find(Some("web"), "api"), 1);
    let inferred: i64 = rows
        .iter()
        .filter(|r| r.key.target.kind.as_deref() == Some("remote"))
        .map(|r| r.stats.count)
        .sum();
    assert_eq!(inferred, 0, "{rows:?}");
}

/// Per key: (count, faults, first minute, last minute) over a window's rows.
type Totals = std::collections::BTreeMap<(Option<String>, String), (i64, i64, u64, u64)>;

fn totals(rows: &[roentgen_store::RollupRow]) -> Totals {
    let mut out = Totals::new();
    for r in rows {
        let k = (
            r.key.source.as_ref().map(|s| s.name.clone()),
            r.key.target.name.clone(),
        );
        let e = out.entry(k).or_insert((0, 0, u64::MAX, 0));
        e.0 += r.stats.count;
        e.1 += r.stats.fault;
        e.2 = e.2.min(r.minute);
        e.3 = e.3.max(r.last_minute);
    }
    out
}

/// Traces in minutes across three hours: reading by the hour gives the same totals and
/// the same first and last minutes as reading by the minute, for any window, also
/// after a trace is re-derived with a fault and another moves out of an hour's edge.
async fn hour_rollups_match_minute_rollups<S: Store>(store: S) {
    let t = TenantId::default();
    // An hour-aligned base, so the windows below cut hours in known places.
    let base = T0 / 3600 * 3600;
    let offsets = [
        5 * 60,
        59 * 60 + 30,
        60 * 60,
        61 * 60 + 10,
        119 * 60,
        150 * 60,
        179 * 60,
    ];
    let mut docs = Vec::new();
    for (i, off) in offsets.iter().enumerate() {
        let at = base + off;
        let tid = trace(100 + i as u32, at);
        let a = f64::from(at);
        let (svc, down) = if i % 2 == 0 {
            ("web", "api")
        } else {
            ("web", "db")
        };
        docs.push(seg(&tid, 1, svc, None, a, Some(a + 0.5), ""));
        docs.push(seg(&tid, 2, down, Some(1), a + 0.1, Some(a + 0.3), ""));
    }
    store.write(&t, docs).await.expect("write");
    store.sync_index().await.expect("index");
    // Re-derivation: one trace's callee faults later.
    let late = trace(102, base + 60 * 60);
    let a = f64::from(base + 60 * 60);
    store
        .write(
            &t,
            vec![seg(
                &late,
                2,
                "api",
                Some(1),
                a + 0.1,
                Some(a + 0.3),
                ",\"fault\":true",
            )],
        )
        .await
        .expect("rewrite");
    store.sync_index().await.expect("index");
    let m0 = u64::from(base) / 60;
    for (lo, hi) in [
        (m0, m0 + 179),
        (m0 + 3, m0 + 150),
        (m0 + 59, m0 + 120),
        (m0, m0 + 59),
        (m0 + 5, m0 + 20),
    ] {
        let minutes = store.rollups(&t, lo, hi, 1).await.expect("minute rows");
        let hours = store.rollups(&t, lo, hi, 60).await.expect("hour rows");
        assert!(!minutes.is_empty(), "window {lo}..{hi}");
        assert_eq!(totals(&minutes), totals(&hours), "window {lo}..{hi}");
        assert!(minutes.iter().all(|r| r.minute == r.last_minute));
    }
    for (lo, hi) in [(m0, m0 + 179), (m0 + 3, m0 + 150), (m0 + 10, m0 + 70)] {
        let minutes = store.rollups(&t, lo, hi, 1).await.expect("minute rows");
        let merged = store
            .rollups(&t, lo, hi, u64::MAX)
            .await
            .expect("merged rows");
        assert_eq!(totals(&minutes), totals(&merged), "window {lo}..{hi}");
        let keys: BTreeSet<_> = merged.iter().map(|r| r.key.clone()).collect();
        assert_eq!(keys.len(), merged.len(), "one row per key");
    }
    let all = store.rollups(&t, m0, m0 + 179, 60).await.expect("rows");
    assert!(
        all.len()
            < store
                .rollups(&t, m0, m0 + 179, 1)
                .await
                .expect("rows")
                .len()
    );
    let faults: i64 = all.iter().map(|r| r.stats.fault).sum();
    // The callee's node (the edge is counted from the caller's side, which did not
    // fault): a change of status alone (ok → fault, same count) reaches both tiers.
    assert_eq!(faults, 1, "the re-derived fault counts once: {all:?}");
}

async fn retention_drops_whole_days<S: Store>(store: S) {
    let t = TenantId::default();
    let old = trace(5, T0 - 3 * 86_400);
    let new = trace(6, T0);
    store
        .write(
            &t,
            vec![
                seg(
                    &old,
                    1,
                    "web",
                    None,
                    f64::from(T0 - 3 * 86_400),
                    Some(f64::from(T0 - 3 * 86_400) + 1.0),
                    "",
                ),
                seg(
                    &new,
                    1,
                    "web",
                    None,
                    f64::from(T0),
                    Some(f64::from(T0) + 1.0),
                    "",
                ),
            ],
        )
        .await
        .expect("write");
    store.sync_index().await.expect("index");
    let dropped = store
        .drop_before(u64::from(T0) - 86_400)
        .await
        .expect("drop");
    assert_eq!(dropped.len(), 1);
    let ids: Vec<TraceId> = [old, new].iter().map(|s| s.parse().expect("id")).collect();
    let got = store.get_traces(&t, &ids).await.expect("read");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].trace_id, ids[1]);
}

async fn config_records<S: Store>(store: S) {
    let t = TenantId::default();
    store
        .put_config(
            &t,
            ConfigKind::Group,
            "slow",
            serde_json::json!({"f": "responsetime > 5"}),
        )
        .await
        .expect("put");
    store
        .put_config(
            &t,
            ConfigKind::SamplingRule,
            "r1",
            serde_json::json!({"p": 1}),
        )
        .await
        .expect("put");
    let groups = store
        .list_config(&t, ConfigKind::Group)
        .await
        .expect("list");
    assert_eq!(
        groups,
        vec![(
            "slow".to_string(),
            serde_json::json!({"f": "responsetime > 5"})
        )]
    );
    assert!(
        store
            .delete_config(&t, ConfigKind::Group, "slow")
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_config(&t, ConfigKind::Group, "slow")
            .await
            .expect("delete")
    );
    assert_eq!(
        store
            .list_config(&t, ConfigKind::SamplingRule)
            .await
            .expect("list")
            .len(),
        1
    );
}

fn run<F, Fut>(scenario: F)
where
    F: FnOnce(EmbeddedStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("tempdir");
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(scenario(store));
}

/// The ClickHouse servers the tests use: (shard 1 URL, shard 2 URL, cluster), or why
/// there are none.
fn clickhouse_env() -> Result<(String, Option<(String, String)>), String> {
    let one = std::env::var("ROENTGEN_TEST_CLICKHOUSE").ok();
    let two = std::env::var("ROENTGEN_TEST_CLICKHOUSE_2").ok();
    let cluster = std::env::var("ROENTGEN_TEST_CLICKHOUSE_CLUSTER").ok();
    match one {
        Some(one) => Ok((one, two.zip(cluster))),
        None => {
            let installed = std::path::Path::new("/usr/sbin/clickhouse-server").exists()
                || std::path::Path::new("/usr/bin/clickhouse-server").exists();
            assert!(
                !installed,
                "ClickHouse is installed but ROENTGEN_TEST_CLICKHOUSE is unset: run \
                 scripts/test, or start servers with scripts/clickhouse-cluster start DIR \
                 and eval what it prints"
            );
            Err("ROENTGEN_TEST_CLICKHOUSE is unset and ClickHouse is not installed".into())
        }
    }
}

fn run_clickhouse<F, Fut>(scenario: F, cluster: bool)
where
    F: FnOnce(ClickHouseStore) -> Fut,
    Fut: Future<Output = ()>,
{
    let (one, shards) = match clickhouse_env() {
        Ok(e) => e,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let db = format!(
        "conformance_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_nanos()
    );
    let host = |u: &str| u.trim_start_matches("http://").to_string();
    let url = match (&shards, cluster) {
        (Some((two, name)), true) => {
            format!(
                "clickhouse://{},{}/{db}?cluster={name}",
                host(&one),
                host(two)
            )
        }
        (None, true) => {
            eprintln!("skipped: ROENTGEN_TEST_CLICKHOUSE_2 / _CLUSTER are unset");
            return;
        }
        _ => format!("clickhouse://{}/{db}", host(&one)),
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let config = ClickHouseConfig::parse(&url).expect("store address");
    let store = rt
        .block_on(ClickHouseStore::open(config.clone()))
        .expect("open the clickhouse store");
    rt.block_on(scenario(store.clone()));
    rt.block_on(store.close()).expect("close");
    let http = reqwest::blocking::Client::new();
    for base in std::iter::once(one).chain(shards.map(|(two, _)| two)) {
        let _ = http
            .post(format!("{base}/"))
            .body(format!("DROP DATABASE IF EXISTS {db}"))
            .send();
    }
}

/// Every scenario, run against each store: the embedded one, one ClickHouse server,
/// and a two-shard ClickHouse cluster. One list, so no store can miss a scenario.
macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        mod embedded {
            $( #[test] fn $name() { super::run(super::$name); } )*
        }
        mod clickhouse {
            $( #[test] fn $name() { super::run_clickhouse(super::$name, false); } )*
        }
        mod clickhouse_cluster {
            $( #[test] fn $name() { super::run_clickhouse(super::$name, true); } )*
        }
    };
}

scenarios!(
    write_then_read_verbatim,
    late_segments_join_their_trace,
    in_progress_then_complete_bumps_revision,
    paging_visits_every_trace_once_newest_first,
    filter_expressions_narrow_and_match,
    tenants_are_isolated,
    rollups_are_exact_in_any_order,
    hour_rollups_match_minute_rollups,
    retention_drops_whole_days,
    config_records,
);

/// A day written before hour rollups existed gets them from its minute rows on open.
#[test]
fn embedded_backfills_hour_rollups() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let t = TenantId::default();
    let base = T0 / 3600 * 3600;
    let m0 = u64::from(base) / 60;
    let before = {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let docs = (0..6u32)
            .map(|i| {
                let at = base + i * 1500;
                let a = f64::from(at);
                seg(&trace(200 + i, at), 1, "web", None, a, Some(a + 1.0), "")
            })
            .collect();
        rt.block_on(store.write(&t, docs)).expect("write");
        rt.block_on(store.sync_index()).expect("index");
        let rows = rt
            .block_on(store.rollups(&t, m0, m0 + 179, 1))
            .expect("rows");
        rt.block_on(store.close()).expect("close");
        totals(&rows)
    };
    {
        // What an older version left behind: minute rows only.
        let db = fjall::Database::builder(dir.path())
            .open()
            .expect("raw open");
        let day = base / 86_400;
        let hours = db
            .keyspace(
                &format!("rolh_{day}"),
                fjall::KeyspaceCreateOptions::default,
            )
            .expect("hour keyspace");
        db.delete_keyspace(hours).expect("delete");
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("reopen");
    let hours = rt
        .block_on(store.rollups(&t, m0, m0 + 179, 60))
        .expect("rows");
    assert_eq!(totals(&hours), before);
    // 6 traces in 6 minutes over 3 hours: 12 minute rows, 6 hour rows.
    assert_eq!(hours.len(), 6, "read as hour rows: {hours:?}");
}

#[test]
fn embedded_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tid = trace(8, T0);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        rt.block_on(store.write(
            &TenantId::default(),
            vec![seg(
                &tid,
                1,
                "web",
                None,
                f64::from(T0),
                Some(f64::from(T0) + 1.0),
                "",
            )],
        ))
        .expect("write");
        // Dropped without waiting for the indexer: the summary must still appear after
        // the reopen, from the durable dirty marker.
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("reopen");
    let id: TraceId = tid.parse().expect("id");
    let got = rt
        .block_on(store.get_traces(&TenantId::default(), &[id]))
        .expect("read");
    assert_eq!(got.len(), 1);
    assert_eq!(store.days().len(), 1);
    rt.block_on(store.sync_index()).expect("index");
    let got = rt
        .block_on(store.get_traces(&TenantId::default(), &[id]))
        .expect("read");
    assert!(got[0].summary.is_some(), "derived after restart");
}

/// A trace written before a stop and not yet indexed, then written to again right after
/// the restart: the summary covers both documents (the new note alone is not the trace).
#[test]
fn embedded_reindexes_old_documents_with_new_ones_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tid = trace(9, T0);
    let id: TraceId = tid.parse().expect("id");
    let t = TenantId::default();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    {
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let a = seg(
            &tid,
            1,
            "web",
            None,
            f64::from(T0),
            Some(f64::from(T0) + 1.0),
            "",
        );
        rt.block_on(store.write(&t, vec![a])).expect("write");
        // Dropped at once: the indexer waits INDEX_DELAY, so A is not indexed.
    }
    let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("reopen");
    let b = seg(
        &tid,
        2,
        "api",
        Some(1),
        f64::from(T0) + 0.1,
        Some(f64::from(T0) + 0.5),
        "",
    );
    rt.block_on(store.write(&t, vec![b])).expect("write");
    rt.block_on(store.sync_index()).expect("index");
    let got = rt.block_on(store.get_traces(&t, &[id])).expect("read");
    let s = got[0].summary.as_ref().expect("summary");
    assert_eq!(got[0].documents.len(), 2);
    assert_eq!(s.summary.document_count, 2, "{:?}", s.summary);
    assert!(s.summary.has_service("web") && s.summary.has_service("api"));
}
