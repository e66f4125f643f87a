//! `GetSamplingTargets` latency over HTTP against the real binary: 25 rules (the most an
//! account has besides `Default`) and `BENCH_CLIENTS` clients (default 10,000), each call
//! one client's 25 statistics documents (the most a call takes). Two passes over every
//! client warm up (every client known, past slow start); the next `BENCH_PASSES` passes
//! (default 1) are timed, sequentially from one keep-alive connection; p50/p99/max.
//!
//! Run: `cargo bench -p roentgen --bench sampling_targets`
//! (`cargo bench -p roentgen-sampling --bench targets` times the quota assignment alone
//! for 10,000 clients × 100 rules.)

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;
use util::env_or;

use std::time::{Duration, Instant};

const RULES: usize = 25;

fn main() {
    let clients = env_or("BENCH_CLIENTS", 10_000) as usize;
    let passes = env_or("BENCH_PASSES", 1) as usize;
    let mut server = util::Server::start_with(None, false, &["--log-level", "warn"]);
    let http = server.http.clone();
    let client = reqwest::blocking::Client::new();
    let post = |path: &str, body: String| {
        let r = client
            .post(format!("http://{http}{path}"))
            .body(body)
            .send()
            .expect("request");
        let status = r.status();
        let text = r.text().expect("body");
        assert!(status.is_success(), "{path}: {status} {text}");
        text
    };
    for i in 0..RULES {
        post(
            "/CreateSamplingRule",
            format!(
                r#"{{"SamplingRule":{{"RuleName":"rule-{i:02}","ResourceARN":"*","Priority":{},"FixedRate":0.05,"ReservoirSize":{},"ServiceName":"svc-{i}","ServiceType":"*","Host":"*","HTTPMethod":"*","URLPath":"*","Version":1}}}}"#,
                i + 1,
                10 + 40 * i
            ),
        );
    }
    let bodies: Vec<String> = (0..clients)
        .map(|c| {
            let docs: Vec<String> = (0..RULES)
                .map(|i| {
                    format!(
                        r#"{{"RuleName":"rule-{i:02}","ClientID":"{:024x}","Timestamp":{},"RequestCount":{},"SampledCount":3,"BorrowCount":1}}"#,
                        (c as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                        util::now(),
                        100 + c % 50
                    )
                })
                .collect();
            format!(r#"{{"SamplingStatisticsDocuments":[{}]}}"#, docs.join(","))
        })
        .collect();

    let mut lat: Vec<Duration> = Vec::with_capacity(clients * passes);
    for pass in 0..2 + passes {
        for body in &bodies {
            let started = Instant::now();
            let text = post("/SamplingTargets", body.clone());
            let elapsed = started.elapsed();
            assert!(text.contains("\"ReservoirQuota\""), "{text}");
            if pass >= 2 {
                lat.push(elapsed);
            }
        }
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "sampling_targets: {} GetSamplingTargets over HTTP, {clients} clients x {RULES} rules, \
         {RULES} documents per call: p50 {:?}  p99 {:?}  max {:?}",
        lat.len(),
        pct(0.50),
        pct(0.99),
        lat[lat.len() - 1]
    );
    assert!(server.stop().success(), "roentgen did not stop cleanly");
}
