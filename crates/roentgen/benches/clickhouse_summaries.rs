//! `GetTraceSummaries` over `BENCH_TRACES` traces (default 10,000,000) in a one-hour
//! window stored in ClickHouse, through the real binary (`serve --store clickhouse://…`).
//!
//! Loading ten million traces through `serve` would take most of an hour on the
//! project machine, so the summary rows are generated inside ClickHouse by one
//! `INSERT … SELECT FROM system.numbers` into the schema the store creates: two real
//! summaries derived by `roentgen-model` (one ok, one faulted) serve as templates whose
//! trace id and service name are replaced per row. One segment per trace, spread over
//! the last hour, 100 services (`svc-0` … `svc-99`), a twentieth of each service's traces faulted,
//! annotation `n`.
//!
//! Then it times, following `NextToken` to the end: a selective filter
//! (`service("svc-7") AND fault`: 0.05 %, 5,000 of 10 million), the same service without
//! the flag (1 %), and the first page with no filter.
//!
//! Needs a ClickHouse HTTP URL in `BENCH_CLICKHOUSE` (or `ROENTGEN_TEST_CLICKHOUSE`).
//! Run: `BENCH_CLICKHOUSE=http://127.0.0.1:8123 cargo bench -p roentgen --bench clickhouse_summaries`

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use roentgen_model::{Document, derive};
use roentgen_store::StoredSummary;
use roentgen_store::clickhouse::{ClickHouseConfig, ClickHouseStore};
use util::{env_or, get_trace_summaries as query};

const TEMPLATE_ID: &str = "1-5f000000-aaaaaaaaaaaaaaaaaaaaaaaa";

fn sql(http: &reqwest::blocking::Client, base: &str, q: &str) -> String {
    let resp = http
        .post(format!("{base}/"))
        .body(q.to_string())
        .send()
        .expect("clickhouse request");
    let status = resp.status();
    let text = resp.text().expect("clickhouse answer");
    assert!(status.is_success(), "{q}: {text}");
    text
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn template(fault: bool) -> String {
    let extra = if fault { r#","fault":true"# } else { "" };
    let raw = format!(
        r#"{{"trace_id":"{TEMPLATE_ID}","id":"00000000000000a1","name":"svc-TPL","start_time":1593835520,"end_time":1593835520.25{extra},"http":{{"request":{{"method":"GET","url":"https://svc-TPL.example.com/api"}},"response":{{"status":200}}}},"annotations":{{"n":1}}}}"#
    );
    let doc = Document::parse(raw).expect("valid template");
    let derived = derive(doc.trace_id(), &[doc.segment()]).expect("derived");
    serde_json::to_string(&StoredSummary {
        summary: derived.summary,
        revision: 1,
        updated_at: 1_593_835_521.0,
    })
    .expect("json")
}

/// `concat(…)` of the template with the trace id and service name put in per row.
fn spliced(template: &str, id_expr: &str) -> String {
    let mut parts = Vec::new();
    let mut rest = template;
    loop {
        let next = [(TEMPLATE_ID, id_expr), ("svc-TPL", "svc")]
            .into_iter()
            .filter_map(|(p, e)| rest.find(p).map(|at| (at, p, e)))
            .min_by_key(|(at, _, _)| *at);
        match next {
            Some((at, p, e)) => {
                parts.push(quote(&rest[..at]));
                parts.push(e.to_string());
                rest = &rest[at + p.len()..];
            }
            None => {
                parts.push(quote(rest));
                break;
            }
        }
    }
    format!("concat({})", parts.join(", "))
}

fn main() {
    let base = std::env::var("BENCH_CLICKHOUSE")
        .or_else(|_| std::env::var("ROENTGEN_TEST_CLICKHOUSE"))
        .expect("set BENCH_CLICKHOUSE to a ClickHouse HTTP URL, e.g. http://127.0.0.1:8123");
    let traces = env_or("BENCH_TRACES", 10_000_000);
    let db = format!("bench_summaries_{}", std::process::id());
    let store_url = format!("clickhouse://{}/{db}", base.trim_start_matches("http://"));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The schema, as serve creates it.
    let store = rt
        .block_on(ClickHouseStore::open(
            ClickHouseConfig::parse(&store_url).expect("store url"),
        ))
        .expect("open the store");
    let version = store.server_version().to_string();
    drop(store);
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(3600))
        .build()
        .expect("client");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (ok, bad) = (template(false), template(true));
    let t = Instant::now();
    let id_expr = "concat('1-', lower(hex(toUInt32(at))), '-', rnd)";
    // ClickHouse 18.16's replaceAll wants constant replacements: the template is cut at
    // its placeholders and put together again with `concat`.
    let summary_expr = format!(
        "if(intDiv(number, 100) % 20 = 0, {}, {})",
        spliced(&bad, id_expr),
        spliced(&ok, id_expr)
    );
    sql(
        &http,
        &base,
        &format!(
            "INSERT INTO {db}.summaries (tenant, day, trace_id, revision, updated_at, start_time, \
             end_time, duration, response_time, has_fault, has_error, has_throttle, is_partial, \
             services, annotation_keys, summary, graph, docs_version) \
             SELECT 'default', toYYYYMMDD(toDateTime(at), 'UTC'), \
             concat(lower(hex(toUInt32(at))), rnd), 1, toFloat64(at), toFloat64(at), \
             toFloat64(at) + dur, dur, dur, intDiv(number, 100) % 20 = 0, 0, 0, 0, [svc], ['n'], \
             {summary_expr}, '', 0 \
             FROM (SELECT number, toUInt32({now} - number % 3600) AS at, \
             substring(lower(hex(MD5(toString(number)))), 1, 24) AS rnd, \
             concat('svc-', toString(number % 100)) AS svc, \
             0.05 + (number % 1000) / 1000 AS dur \
             FROM system.numbers LIMIT {traces})"
        ),
    );
    let load = t.elapsed().as_secs_f64();
    let rows = sql(
        &http,
        &base,
        &format!("SELECT count() FROM {db}.summaries FORMAT TabSeparated"),
    );
    println!(
        "clickhouse summaries: ClickHouse {version}, {} traces generated in {load:.1}s",
        rows.trim()
    );
    let server =
        util::Server::start_with(None, false, &["--log-level", "warn", "--store", &store_url]);
    let (start, end) = (now - 3600, now + 1);
    let _ = query(
        &server.http,
        start,
        end,
        Some(r#"service("svc-3") AND fault"#),
        true,
    );
    for (label, filter, all) in [
        (
            "selective  service(\"svc-7\") AND fault",
            Some(r#"service("svc-7") AND fault"#),
            true,
        ),
        (
            "service    service(\"svc-7\")",
            Some(r#"service("svc-7")"#),
            true,
        ),
        ("first page, no filter", None, false),
        (
            "first page, service(\"svc-7\")",
            Some(r#"service("svc-7")"#),
            false,
        ),
    ] {
        let (n, pages, secs) = query(&server.http, start, end, filter, all);
        println!(
            "  {label}: {n} traces, {pages} pages, {:.1} ms",
            secs * 1000.0
        );
    }
    drop(server);
    sql(&http, &base, &format!("DROP DATABASE {db}"));
}
