//! UDP → store ingest of ~1 KB segments through the real `roentgen serve` binary.
//!
//! Sends at a fixed rate for a fixed time from one thread, then waits for the server to
//! store everything, and prints the sustained rate, the loss, the server's peak
//! resident memory and its CPU by thread while the load ran. Settings come from the environment:
//! `BENCH_RATE` (segments/s, default 100000), `BENCH_SECONDS` (default 10),
//! `BENCH_SEGMENTS_PER_TRACE` (default 5), `BENCH_STORE` (a `--store` value, e.g.
//! `clickhouse://127.0.0.1:8123/bench`; the embedded store when unset).
//!
//! Run: `cargo bench -p roentgen --bench ingest`

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;
use std::time::{Duration, Instant};

use roentgen_loadgen::{Load, send};
use util::env_or;

fn metric(http: &str, name: &str) -> f64 {
    util::scrape(http, name).unwrap_or(-1.0)
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let rate = env_or("BENCH_RATE", 100_000);
    let seconds = env_or("BENCH_SECONDS", 10);
    let per_trace = env_or("BENCH_SEGMENTS_PER_TRACE", 5).max(1);
    let total = rate * seconds;

    let store = std::env::var("BENCH_STORE").ok();
    let mut extra = vec!["--log-level", "warn"];
    if let Some(s) = &store {
        extra.extend(["--store", s.as_str()]);
    }
    let mut server = util::Server::start_with(None, true, &extra);
    let (http, udp) = (server.http.clone(), server.udp.clone());

    // Pre-built datagrams; the generator sends them with UDP segmentation offload so it
    // takes as little as possible of the two cores from the server.
    let load = Load {
        rate,
        duration: Duration::from_secs(seconds),
        segments_per_trace: per_trace,
        size: 1000,
    };
    let grams = load.datagrams();
    // Per-thread CPU of the server over the middle of the send (from 2 s in to 1 s
    // before its end), sampled beside the sender.
    let pid = server.pid().as_raw() as u32;
    let sampler = std::thread::spawn(move || {
        let window = seconds.saturating_sub(3).max(1);
        std::thread::sleep(Duration::from_secs(2));
        let (t0, a) = (Instant::now(), util::thread_cpu(pid));
        std::thread::sleep(Duration::from_secs(window));
        let (dt, b) = (t0.elapsed().as_secs_f64(), util::thread_cpu(pid));
        b.into_iter()
            .map(|(name, cpu)| {
                let used = cpu - a.get(&name).copied().unwrap_or(0.0);
                (name, used / dt)
            })
            .collect::<Vec<_>>()
    });
    let start = Instant::now();
    let sent = send(udp.parse().expect("udp address"), &load, &grams).expect("send");
    let (avg, send_errors) = (sent.avg_bytes, sent.errors);
    let send_secs = start.elapsed().as_secs_f64();

    // Wait until the server has stored what it received and nothing moves.
    let mut last = -1.0;
    let mut stable_since = Instant::now();
    loop {
        let stored = metric(&http, "roentgen_ingest_stored_segments_total");
        let received = metric(&http, "roentgen_ingest_received_segments_total");
        let depth = metric(&http, "roentgen_ingest_queue_depth_segments");
        // Received documents end stored, rejected or dropped (counted).
        let settled = metric(&http, "roentgen_ingest_rejected_segments_total")
            + metric(&http, "roentgen_ingest_dropped_segments_total")
            + stored;
        if stored != last {
            last = stored;
            stable_since = Instant::now();
        }
        if (stored >= total as f64)
            || (depth == 0.0
                && settled >= received
                && stable_since.elapsed() > Duration::from_millis(500))
            || stable_since.elapsed() > Duration::from_secs(10)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // The last change of the stored count, not the moment we noticed it settle.
    let done_secs = (stable_since - start).as_secs_f64().max(send_secs);
    let stored = metric(&http, "roentgen_ingest_stored_segments_total");
    let received = metric(&http, "roentgen_ingest_received_segments_total");
    let rejected = metric(&http, "roentgen_ingest_rejected_segments_total");
    let dropped = metric(&http, "roentgen_ingest_dropped_segments_total");
    // The embedded indexer may lag a burst it cannot follow (writes never wait for
    // it): wait until its derivations stop moving, and say how long after the send.
    let mut index = None;
    if store.is_none() {
        let (last, moved) = util::index_settled(&http);
        index = Some((
            (moved - start).as_secs_f64() - send_secs,
            last,
            metric(&http, "roentgen_index_unparsed_traces_total"),
            metric(&http, "roentgen_index_deferred_traces_total"),
        ));
    }
    let rss = util::status_mb(server.pid().as_raw() as u32, "VmHWM");
    assert!(server.stop().success(), "roentgen did not stop cleanly");

    let lost = total as f64 - stored;
    println!(
        "ingest: {total} datagrams of ~{avg} bytes at {rate}/s target, {seconds}s, {per_trace} segments/trace, store {}",
        store.as_deref().unwrap_or("embedded")
    );
    println!(
        "  send:     {:.0}/s achieved ({send_errors} send errors)",
        total as f64 / send_secs
    );
    println!(
        "  received: {received:.0}  stored: {stored:.0}  rejected: {rejected:.0}  dropped (queue): {dropped:.0}"
    );
    println!(
        "  lost:     {lost:.0} ({:.3}%) — kernel drops are lost minus dropped",
        100.0 * lost / total as f64
    );
    println!(
        "  sustained: {:.0} segments/s stored (first send → last store)",
        stored / done_secs
    );
    if let Some((lag, derived, unparsed, deferred)) = index {
        println!(
            "  indexed:  {derived:.0} derivations, the last {lag:.1} s after the send ended; \
             {unparsed:.0} traces read back unparsed, {deferred:.0} found from markers"
        );
        // What the server sustains is the lower of the two: a burst the indexer cannot
        // follow is stored, but searchable only once it has caught up.
        println!(
            "  indexed rate: {:.0} segments/s (first send → last derivation)",
            stored / (send_secs + lag.max(0.0))
        );
    }
    println!("  peak RSS: {rss:.0} MB");
    if let Ok(threads) = sampler.join() {
        let total: f64 = threads.iter().map(|(_, c)| c).sum();
        let rate_stored = stored / done_secs;
        println!(
            "  server CPU while sending: {total:.2} cores, {:.1} µs per stored segment",
            total / rate_stored * 1e6
        );
        for (name, cores) in threads.iter().filter(|(_, c)| *c >= 0.005) {
            println!("    {name:<18} {cores:.2} cores");
        }
    }
}
