//! Property test: whatever order and batching documents arrive in (late segments,
//! in-progress segments completed later, rewrites, a finished segment replaced with
//! another status), the stored rollups equal a recount
//! from the raw documents, minute by minute and hour by hour.

use std::collections::BTreeMap;

use proptest::prelude::*;
use roentgen_model::{Document, GraphKey, Segment, Stats, derive};
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use roentgen_store::{Store, TenantId};

const T0: u32 = 1_700_000_000 / 3600 * 3600;
const SERVICES: [&str; 4] = ["web", "orders", "payments", "stock"];

/// One generated segment: trace number, position in the trace's chain, start offset
/// (seconds after T0), duration, status, and whether it is first sent in progress.
#[derive(Debug, Clone)]
struct Gen {
    trace: u32,
    depth: u64,
    offset: u32,
    millis: u32,
    status: u8,
    in_progress_first: bool,
    remote_call: bool,
}

fn gen_segment() -> impl Strategy<Value = Gen> {
    (
        0u32..6,
        0u64..3,
        0u32..7200,
        1u32..900,
        0u8..4,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(trace, depth, offset, millis, status, in_progress_first, remote_call)| Gen {
                trace,
                depth,
                offset,
                millis,
                status,
                in_progress_first,
                remote_call,
            },
        )
}

fn document(g: &Gen, done: bool) -> String {
    let at = T0 + g.trace * 1000 + g.offset;
    let trace = format!("1-{at:08x}-{:024x}", g.trace + 1);
    let start = f64::from(at) + f64::from(g.depth as u32) * 0.01;
    let id = (u64::from(g.trace) << 8) | (g.depth + 1);
    let parent = if g.depth == 0 {
        String::new()
    } else {
        format!(r#","parent_id":"{:016x}""#, id - 1)
    };
    let end = if done {
        format!(r#","end_time":{}"#, start + f64::from(g.millis) / 1000.0)
    } else {
        r#","in_progress":true"#.to_string()
    };
    let status = match g.status {
        1 => r#","error":true"#,
        2 => r#","fault":true"#,
        3 => r#","throttle":true,"error":true"#,
        _ => "",
    };
    let call = if g.remote_call && done {
        format!(
            r#","subsegments":[{{"id":"{:016x}","name":"ext.example.com","namespace":"remote","start_time":{start},"end_time":{}}}]"#,
            id | 0xf000,
            start + 0.001
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"trace_id":"{trace}","id":"{id:016x}","name":"{}","origin":"AWS::EC2::Instance","start_time":{start}{end}{parent}{status}{call}}}"#,
        SERVICES[(g.trace as usize + g.depth as usize) % SERVICES.len()]
    )
}

type Recount = BTreeMap<(u64, GraphKey), Stats>;

/// The graph of every trace derived from its final documents, summed.
fn recount(docs: &[Document]) -> Recount {
    let mut last: BTreeMap<(String, u64), &Document> = BTreeMap::new();
    for d in docs {
        last.insert((d.trace_id().to_string(), d.id().0), d);
    }
    let mut traces: BTreeMap<String, Vec<&Segment>> = BTreeMap::new();
    for ((t, _), d) in &last {
        traces.entry(t.clone()).or_default().push(d.segment());
    }
    let mut out = Recount::new();
    for (t, segs) in traces {
        let id = t.parse().expect("trace id");
        if let Some(derived) = derive(id, &segs) {
            for (k, s) in derived.graph {
                out.entry(k).or_default().add(&s, 1);
            }
        }
    }
    out.retain(|_, s| !s.is_empty());
    out
}

/// Every count of a row, histogram included (response-time sums are floats and left out).
type Counts = (i64, i64, i64, i64, i64, BTreeMap<u32, i64>);

fn counts(
    rows: impl IntoIterator<Item = (u64, GraphKey, Stats)>,
) -> BTreeMap<(u64, GraphKey), Counts> {
    let mut out: BTreeMap<(u64, GraphKey), Stats> = BTreeMap::new();
    for (m, k, s) in rows {
        out.entry((m, k)).or_default().add(&s, 1);
    }
    out.into_iter()
        .filter(|(_, s)| !s.is_empty())
        .map(|(k, s)| {
            (
                k,
                (
                    s.count,
                    s.ok,
                    s.error_other,
                    s.throttle,
                    s.fault,
                    s.histogram,
                ),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn rollups_equal_a_recount(
        segments in proptest::collection::vec(gen_segment(), 1..24),
        batch_sizes in proptest::collection::vec(1usize..6, 1..10),
        rewrite_every in 2usize..5,
    ) {
        // Documents in arrival order: in-progress versions first where asked, the final
        // versions later, some sent twice.
        let mut sends: Vec<Document> = Vec::new();
        for g in &segments {
            if g.in_progress_first {
                sends.push(Document::parse(document(g, false)).expect("valid"));
            }
        }
        // A finished version that is replaced later with another status (only the
        // status changes: the rollups must move calls between ok and error/fault).
        for g in segments.iter().filter(|g| g.status != 0 && g.millis % 3 == 0) {
            let ok = Gen { status: 0, ..g.clone() };
            sends.push(Document::parse(document(&ok, true)).expect("valid"));
        }
        for (i, g) in segments.iter().enumerate().rev() {
            let d = Document::parse(document(g, true)).expect("valid");
            if i % rewrite_every == 0 {
                sends.push(d.clone());
            }
            sends.push(d);
        }
        let want = recount(&sends);

        let dir = tempfile::tempdir().expect("tempdir");
        let store = EmbeddedStore::open(dir.path(), EmbeddedOptions::default()).expect("open");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let t = TenantId::default();
        let mut rest = sends.as_slice();
        let mut sizes = batch_sizes.iter().cycle();
        while !rest.is_empty() {
            let n = (*sizes.next().unwrap_or(&1)).min(rest.len());
            let (batch, tail) = rest.split_at(n);
            rt.block_on(store.write(&t, batch.to_vec())).expect("write");
            // Some batches are indexed before the next arrives, some together.
            if n % 2 == 0 {
                rt.block_on(store.sync_index()).expect("index");
            }
            rest = tail;
        }
        rt.block_on(store.sync_index()).expect("index");
        let (lo, hi) = (u64::from(T0) / 60 - 60, u64::from(T0) / 60 + 24 * 60);
        let minutes = rt.block_on(store.rollups(&t, lo, hi, 1)).expect("rollups");
        let got = counts(minutes.into_iter().map(|r| (r.minute, r.key, r.stats)));
        let want_counts = counts(want.iter().map(|((m, k), s)| (*m, k.clone(), s.clone())));
        prop_assert_eq!(&got, &want_counts);

        // Hour rows: the same sums per hour.
        let hours = rt.block_on(store.rollups(&t, lo, hi, 60)).expect("rollups");
        let got_hours = counts(hours.into_iter().map(|r| (r.minute / 60, r.key, r.stats)));
        let want_hours = counts(want.iter().map(|((m, k), s)| (m / 60, k.clone(), s.clone())));
        prop_assert_eq!(got_hours, want_hours);
    }
}
