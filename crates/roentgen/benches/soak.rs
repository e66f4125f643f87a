//! Soak: UDP load at a steady rate for many minutes through the real `roentgen serve`,
//! watching that memory stays flat and nothing is lost.
//!
//! Sends ~1 KB segments at `BENCH_RATE` (default 12,000/s, about half of the embedded
//! store's measured UDP capacity on the project machine) for `BENCH_MINUTES` (default
//! 10), in 10-second chunks of fresh traces. Every minute it prints the server's
//! resident memory, its CPU, and what was received, stored and dropped; at the end the
//! memory of the first and last minutes and the loss.
//!
//! Run: `cargo bench -p roentgen --bench soak`

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
    let rate = env_or("BENCH_RATE", 12_000);
    let minutes = env_or("BENCH_MINUTES", 10);
    let chunk = Duration::from_secs(10);
    let mut server = util::Server::start_with(None, true, &["--log-level", "warn"]);
    let (http, udp) = (server.http.clone(), server.udp.clone());
    let pid = server.pid().as_raw() as u32;
    let target = udp.parse().expect("udp address");
    let cpu = || util::thread_cpu(pid).values().sum::<f64>();

    println!("soak: {rate} segments/s for {minutes} min, ~1 KB each, 5 per trace");
    println!("  minute   RSS MB   cores   received     stored    dropped");
    let start = Instant::now();
    let (mut sent_total, mut rss_first, mut rss_max, mut rss_last) = (0u64, 0.0, 0.0f64, 0.0);
    let mut cpu_mark = (Instant::now(), cpu());
    let chunks = minutes * 6;
    for i in 0..chunks {
        let load = Load {
            rate,
            duration: chunk,
            segments_per_trace: 5,
            size: 1000,
        };
        let grams = load.datagrams();
        let sent = send(target, &load, &grams).expect("send");
        sent_total += sent.sent;
        if (i + 1) % 6 == 0 {
            let rss = util::status_mb(pid, "VmRSS");
            let (t, c) = (Instant::now(), cpu());
            let cores = (c - cpu_mark.1) / (t - cpu_mark.0).as_secs_f64();
            cpu_mark = (t, c);
            let minute = (i + 1) / 6;
            if minute == 1 {
                rss_first = rss;
            }
            rss_max = rss_max.max(rss);
            rss_last = rss;
            println!(
                "  {minute:>6} {rss:>8.0} {cores:>7.2} {:>10.0} {:>10.0} {:>10.0}",
                metric(&http, "roentgen_ingest_received_segments_total"),
                metric(&http, "roentgen_ingest_stored_segments_total"),
                metric(&http, "roentgen_ingest_dropped_segments_total"),
            );
        }
    }
    // Let the queue drain.
    let mut last = -1.0;
    let mut since = Instant::now();
    while since.elapsed() < Duration::from_secs(2) {
        let stored = metric(&http, "roentgen_ingest_stored_segments_total");
        if stored != last {
            last = stored;
            since = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let stored = metric(&http, "roentgen_ingest_stored_segments_total");
    let peak = util::status_mb(pid, "VmHWM");
    assert!(server.stop().success(), "roentgen did not stop cleanly");
    println!(
        "  sent {sent_total} in {:.0} s; stored {stored:.0} ({:.3} % lost)",
        start.elapsed().as_secs_f64(),
        100.0 * (sent_total as f64 - stored) / sent_total.max(1) as f64
    );
    println!(
        "  RSS: minute 1 {rss_first:.0} MB, last minute {rss_last:.0} MB, highest sampled {rss_max:.0} MB, peak {peak:.0} MB"
    );
}
