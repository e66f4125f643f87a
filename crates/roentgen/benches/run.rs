//! `roentgen run`: the time from SIGTERM to exit with 10,000 segments just sent to its
//! daemon (the endpoint, a cheap sink in this process, is up), and the runner's memory
//! when idle.
//!
//! The application is `sleep 1000`, which dies of SIGTERM at once, so the figure is
//! the runner's own: forward, reap, stop receiving, flush 10,000 segments, exit 143.
//! Settings: `BENCH_SEGMENTS` (default 10000), `BENCH_ROUNDS` (default 5).
//!
//! Run: `cargo bench -p roentgen --bench run`

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use roentgen_loadgen::{Load, Sink, send};
use util::{env_or, free_port};

fn main() {
    let segments = env_or("BENCH_SEGMENTS", 10_000);
    let rounds = env_or("BENCH_ROUNDS", 5);
    let sink_server = Sink::start(None).expect("start the sink");
    let sink = sink_server.addr.to_string();
    let counts = Arc::clone(&sink_server.counts);

    // Everything is sent within a few milliseconds, well inside one second of rate.
    let load = Load {
        rate: segments,
        duration: Duration::from_secs(1),
        segments_per_trace: 5,
        size: 1000,
    };
    let grams = load.datagrams();
    let mut times = Vec::new();
    let mut idle = Vec::new();
    println!("run: SIGTERM to exit with {segments} segments just sent, {rounds} rounds");
    for round in 0..rounds {
        let port = free_port();
        let udp = format!("127.0.0.1:{port}");
        let before = counts.documents.load(Ordering::Relaxed);
        let mut child = Command::new(util::bin())
            .args([
                "run",
                "-e",
                &format!("http://{sink}"),
                "-b",
                &udp,
                "-t",
                &udp,
                "-l",
                "warn",
            ])
            .args(["--", "sleep", "1000"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start roentgen run");
        let pid = child.id();
        std::thread::sleep(Duration::from_millis(1000));
        idle.push(util::status_mb(pid, "VmRSS"));
        // All at once: the generator sends faster than the daemon forwards.
        let burst = Load {
            rate: segments * 50,
            duration: Duration::from_millis(20),
            ..load.clone()
        };
        let target = udp.parse().expect("address");
        send(target, &burst, &grams).expect("send");
        let delivered_at_signal = counts.documents.load(Ordering::Relaxed) - before;
        let t = Instant::now();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal");
        let status = child.wait().expect("wait");
        let took = t.elapsed();
        let delivered = counts.documents.load(Ordering::Relaxed) - before;
        println!(
            "  round {round}: exit {:?} after {:.1} ms; delivered {delivered} of {segments} ({delivered_at_signal} before the signal)",
            status.code(),
            took.as_secs_f64() * 1000.0
        );
        times.push(took);
    }
    times.sort();
    idle.sort_by(f64::total_cmp);
    println!(
        "SIGTERM to exit: median {:.1} ms, max {:.1} ms",
        times[times.len() / 2].as_secs_f64() * 1000.0,
        times[times.len() - 1].as_secs_f64() * 1000.0
    );
    println!(
        "idle RSS of roentgen run: median {:.1} MB, max {:.1} MB",
        idle[idle.len() / 2],
        idle[idle.len() - 1]
    );
}
