//! `GetSamplingTargets` with 10,000 clients reporting 100 rules: the time of one call in
//! the steady state, as percentiles.
//!
//! ```sh
//! cargo bench -p roentgen-sampling --bench targets
//! BENCH_CLIENTS=10000 BENCH_RULES=100 BENCH_INTERVALS=3 cargo bench -p roentgen-sampling --bench targets
//! ```
//!
//! Every client reports every rule once per 10-second interval, 25 statistics documents
//! per call (the most the API takes), so an interval is `clients × rules / 25` calls;
//! the calls of an interval are spread evenly over its 10 simulated seconds, so each
//! rule's once-a-second rounding runs as it would in a server. One call is what the
//! server does under its lock for one request: look each rule up by name, read the
//! `ClientID`, assign the quota, collect the answers. Two intervals warm up (slow start,
//! every client known), then `BENCH_INTERVALS` intervals are timed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use roentgen_sampling::{ClientId, Counts, Rule, RuleSet, Target, Targets};

/// Statistics documents per `GetSamplingTargets` call, the API's maximum.
const DOCS_PER_CALL: usize = 25;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument has nothing to select here.
    let clients = env("BENCH_CLIENTS", 10_000).max(1);
    let rule_count = env("BENCH_RULES", 100).max(1);
    let intervals = env("BENCH_INTERVALS", 3).max(1);

    let rules = RuleSet::new(
        (0..rule_count).map(|i| {
            let mut r =
                Rule::default_rule(format!("arn:aws:xray:local:0:sampling-rule/rule-{i:03}"));
            r.name = format!("rule-{i:03}");
            r.priority = 1 + i as u32;
            r.reservoir_size = 1 + (i as u32 % 50) * 20;
            r.created_at = 1.0;
            r
        }),
        Rule::default_rule("arn:aws:xray:local:0:sampling-rule/Default".into()),
    );
    let names: Vec<String> = (0..rule_count).map(|i| format!("rule-{i:03}")).collect();
    let ids: Vec<String> = (0..clients)
        .map(|i| format!("{:024x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)))
        .collect();

    let calls_per_client = rule_count.div_ceil(DOCS_PER_CALL);
    let calls_per_interval = clients * calls_per_client;
    let step = 10.0 / calls_per_interval as f64;
    let mut targets = Targets::default();
    let mut now = 1_700_000_000.0;
    let mut times = Vec::with_capacity(calls_per_interval * intervals);
    let mut answers: Vec<Target> = Vec::with_capacity(DOCS_PER_CALL);
    let started = Instant::now();
    for interval in 0..2 + intervals {
        for (c, id) in ids.iter().enumerate() {
            for call in 0..calls_per_client {
                let docs =
                    &names[call * DOCS_PER_CALL..((call + 1) * DOCS_PER_CALL).min(rule_count)];
                let t0 = Instant::now();
                answers.clear();
                for name in docs {
                    let (Some(rule), Ok(client)) = (rules.get(name), ClientId::parse(id)) else {
                        continue;
                    };
                    let counts = Counts {
                        requests: 100 + (c % 50) as u64 * 10,
                        sampled: 10,
                        borrowed: 0,
                    };
                    answers.push(targets.report(rule, client, counts, now));
                }
                black_box(&answers);
                if interval >= 2 {
                    times.push(t0.elapsed());
                }
                now += step;
            }
        }
    }
    let total = started.elapsed();

    times.sort_unstable();
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    let mean = times.iter().sum::<Duration>() / times.len() as u32;
    println!(
        "GetSamplingTargets: {clients} clients x {rule_count} rules, {DOCS_PER_CALL} documents per call, \
         {} timed calls over {intervals} intervals ({:.1} s wall in all)",
        times.len(),
        total.as_secs_f64()
    );
    println!(
        "per call: mean {:?}  p50 {:?}  p90 {:?}  p99 {:?}  p99.9 {:?}  max {:?}",
        mean,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(0.999),
        pct(1.0)
    );
    let active: usize = names.iter().map(|n| targets.active_clients(n)).sum();
    println!("active clients across rules: {active}");
}
