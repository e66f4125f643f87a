//! `roentgen daemon` throughput, CPU and memory: a paced UDP load generator pinned to
//! one core sends ~1 KB segments to the real daemon binary, which forwards them to a
//! cheap `PutTraceSegments` sink in this process; the daemon and the sink share the
//! other core (`taskset`). For each rate it prints what arrived,
//! the loss, the daemon's CPU seconds per million segments and its peak RSS, then the
//! highest rate with zero loss.
//!
//! Settings from the environment: `BENCH_RATES` (comma-separated segments/s, default
//! `20000,50000,100000,150000,200000`), `BENCH_SECONDS` (default 5), `BENCH_SIZE`
//! (document bytes, default 1000), `BENCH_CPU` (core for the load generator, default 1).
//!
//! Run: `cargo bench -p roentgen --bench daemon`

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use roentgen_loadgen::{Load, Sink, SinkCounts, pin_to_cpu, send};
use util::{env_or, free_port, scrape};

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64;
    (ticks(11) + ticks(12)) / hz
}

struct Run {
    rate: u64,
    achieved: f64,
    sent: u64,
    arrived: u64,
    cpu_per_million: f64,
    cpu_share: f64,
    rss_mb: f64,
}

fn run_once(
    rate: u64,
    seconds: u64,
    size: usize,
    cpu: usize,
    sink: &str,
    counts: &SinkCounts,
) -> Run {
    let before_docs = counts.documents.load(Ordering::Relaxed);
    let udp = format!("127.0.0.1:{}", free_port());
    let tcp = format!("127.0.0.1:{}", free_port());
    let metrics = format!("127.0.0.1:{}", free_port());
    // The daemon and the sink share the other core; the generator has its own.
    let other = if cpu == 0 { 1 } else { 0 };
    let mut child = Command::new("taskset")
        .args(["-c", &other.to_string(), util::bin()])
        .args([
            "daemon",
            "-b",
            &udp,
            "-t",
            &tcp,
            "--metrics-addr",
            &metrics,
            "-l",
            "warn",
        ])
        .args(["-e", &format!("http://{sink}")])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start roentgen daemon");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    while scrape(&metrics, "roentgen_daemon_received_segments_total").is_none() {
        assert!(Instant::now() < deadline, "daemon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let load = Load {
        rate,
        duration: Duration::from_secs(seconds),
        segments_per_trace: 5,
        size,
    };
    let grams = load.datagrams();
    let cpu_before = cpu_seconds(pid);
    let started = Instant::now();
    let target = udp.parse().expect("address");
    let sent = std::thread::spawn(move || {
        pin_to_cpu(cpu);
        send(target, &load, &grams).expect("send")
    })
    .join()
    .expect("sender thread");
    // Wait until the daemon has forwarded what it received and nothing moves.
    let mut last = u64::MAX;
    let mut stable = Instant::now();
    loop {
        let arrived = counts.documents.load(Ordering::Relaxed) - before_docs;
        if arrived != last {
            last = arrived;
            stable = Instant::now();
        }
        if arrived >= sent.sent || stable.elapsed() > Duration::from_secs(3) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu_used = cpu_seconds(pid) - cpu_before;
    let rss_mb = util::status_mb(pid, "VmHWM");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    let arrived = counts.documents.load(Ordering::Relaxed) - before_docs;
    Run {
        rate,
        achieved: sent.sent as f64 / sent.seconds,
        sent: sent.sent,
        arrived,
        cpu_per_million: cpu_used / (arrived.max(1) as f64 / 1e6),
        cpu_share: cpu_used / wall,
        rss_mb,
    }
}

fn main() {
    let rates: Vec<u64> = std::env::var("BENCH_RATES")
        .unwrap_or_else(|_| "20000,50000,100000,150000,200000".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let seconds = env_or("BENCH_SECONDS", 5);
    let size = env_or("BENCH_SIZE", 1000) as usize;
    let cpu = env_or("BENCH_CPU", 1) as usize;

    // The sink: one tokio worker in this process, on the daemon's core.
    let other = if cpu == 0 { 1 } else { 0 };
    let sink_server = Sink::start(Some(other)).expect("start the sink");
    let sink = sink_server.addr.to_string();
    let counts = Arc::clone(&sink_server.counts);
    let sample = Load {
        rate: 1,
        duration: Duration::from_secs(1),
        segments_per_trace: 5,
        size,
    }
    .datagrams();
    println!(
        "daemon: ~{} byte datagrams, {seconds}s per rate, load generator pinned to CPU {cpu}",
        sample[0].len()
    );
    println!(
        "{:>9} {:>10} {:>10} {:>10} {:>8} {:>14} {:>9} {:>9}",
        "rate/s", "achieved/s", "sent", "arrived", "loss", "cpu s/million", "cores", "peak MB"
    );
    let mut best = None;
    for rate in rates {
        let r = run_once(rate, seconds, size, cpu, &sink, &counts);
        let loss = r.sent.saturating_sub(r.arrived);
        println!(
            "{:>9} {:>10.0} {:>10} {:>10} {:>8} {:>14.2} {:>9.2} {:>9.0}",
            r.rate, r.achieved, r.sent, r.arrived, loss, r.cpu_per_million, r.cpu_share, r.rss_mb
        );
        // A rate counts only when the generator kept it up (within 2 %) and nothing was lost.
        if loss == 0 && r.achieved >= r.rate as f64 * 0.98 {
            best = Some(r.rate);
        }
    }
    match best {
        Some(rate) => println!("highest rate with zero loss: {rate}/s"),
        None => println!("no rate ran without loss"),
    }
}
