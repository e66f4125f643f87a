//! UDP → store ingest of ~1 KB segments through the real `roentgen serve` binary.
//!
//! Sends at a fixed rate for a fixed time from one thread, then waits for the server to
//! store everything, and prints the sustained rate, the loss and the server's peak
//! resident memory. Settings come from the environment:
//! `BENCH_RATE` (segments/s, default 100000), `BENCH_SECONDS` (default 10),
//! `BENCH_SEGMENTS_PER_TRACE` (default 5).
//!
//! Run: `cargo bench -p roentgen --bench ingest`

#![allow(missing_docs)]

use std::io::IoSlice;
use std::net::UdpSocket;
use std::os::fd::AsRawFd;

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};

const SEND_BATCH: usize = 32;

#[path = "../tests/util/mod.rs"]
mod util;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use util::env_or;

fn metric(http: &str, name: &str) -> f64 {
    util::scrape(http, name).unwrap_or(-1.0)
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A realistic ~1 KB segment with http, annotations, metadata and two subsegments.
fn document(trace: &str, id: u64, parent: Option<u64>, now: f64) -> String {
    let parent = parent
        .map(|p| format!(r#","parent_id":"{p:016x}""#))
        .unwrap_or_default();
    format!(
        r#"{{"trace_id":"{trace}","id":"{id:016x}"{parent},"name":"svc-{svc}","origin":"AWS::EC2::Instance","start_time":{now:.3},"end_time":{end:.3},"http":{{"request":{{"method":"GET","url":"https://svc-{svc}.example.com/api/orders/12345?expand=items","client_ip":"10.1.2.3","user_agent":"Mozilla/5.0 (X11; Linux x86_64) bench"}},"response":{{"status":200,"content_length":1834}}}},"annotations":{{"customer":"c-{id}","tier":"gold","items":3,"vip":true}},"metadata":{{"default":{{"note":"padding padding padding padding padding padding padding padding padding padding padding"}}}},"aws":{{"ec2":{{"instance_id":"i-0123456789abcdef0","availability_zone":"us-east-1a"}}}},"subsegments":[{{"id":"{s1:016x}","name":"DynamoDB","namespace":"aws","start_time":{now:.3},"end_time":{end2:.3},"aws":{{"operation":"GetItem","table_name":"orders"}},"http":{{"response":{{"status":200}}}}}},{{"id":"{s2:016x}","name":"payments.internal","namespace":"remote","start_time":{now:.3},"end_time":{end2:.3},"http":{{"request":{{"method":"POST","url":"https://payments.internal/charge"}},"response":{{"status":200}}}}}}]}}"#,
        svc = id % 7,
        end = now + 0.120,
        end2 = now + 0.040,
        s1 = id ^ 0x1111,
        s2 = id ^ 0x2222,
    )
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let rate = env_or("BENCH_RATE", 100_000);
    let seconds = env_or("BENCH_SECONDS", 10);
    let per_trace = env_or("BENCH_SEGMENTS_PER_TRACE", 5).max(1);
    let total = rate * seconds;

    let mut server = util::Server::start_with(None, true, &["--log-level", "warn"]);
    let (http, udp) = (server.http.clone(), server.udp.clone());

    // Pre-build the datagrams so the sender only sends.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    let unique = total.min(200_000);
    let grams: Vec<Vec<u8>> = (0..unique)
        .map(|i| {
            let t = i / per_trace;
            let trace = format!("1-{:08x}-{:024x}", now as u64, t + 1);
            let parent = (i % per_trace != 0).then(|| (i - 1) ^ 0x2222);
            let mut d = br#"{"format":"json","version":1}"#.to_vec();
            d.push(b'\n');
            d.extend_from_slice(document(&trace, i + 1, parent, now).as_bytes());
            d
        })
        .collect();
    let avg = grams.iter().map(Vec::len).sum::<usize>() / grams.len();

    let sock = UdpSocket::bind("127.0.0.1:0").expect("udp");
    sock.connect(&udp).expect("connect");
    let start = Instant::now();
    let mut send_errors = 0u64;
    let mut i = 0u64;
    let fd = sock.as_raw_fd();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(SEND_BATCH, None);
    let no_addr: Vec<Option<SockaddrStorage>> = vec![None; SEND_BATCH];
    while i < total {
        // Pace in 1 ms steps: send what is due with sendmmsg, then sleep (a spinning or
        // one-syscall-per-datagram sender would take a core from the server on this
        // 2-core machine; real SDKs run on other hosts).
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(total);
        while i < due {
            let n = ((due - i) as usize).min(SEND_BATCH);
            let iovs: Vec<[IoSlice<'_>; 1]> = (0..n as u64)
                .map(|k| [IoSlice::new(&grams[((i + k) % unique) as usize])])
                .collect();
            match sendmmsg(
                fd,
                &mut headers,
                &iovs,
                &no_addr[..n],
                [],
                MsgFlags::empty(),
            ) {
                Ok(sent) => {
                    let sent = sent.count().max(1) as u64;
                    i += sent;
                }
                Err(_) => {
                    send_errors += 1;
                    i += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let send_secs = start.elapsed().as_secs_f64();

    // Wait until the server has stored what it received and nothing moves.
    let mut last = -1.0;
    let mut stable_since = Instant::now();
    loop {
        let stored = metric(&http, "roentgen_ingest_stored_segments_total");
        let received = metric(&http, "roentgen_ingest_received_segments_total");
        let depth = metric(&http, "roentgen_ingest_queue_depth_segments");
        if stored != last {
            last = stored;
            stable_since = Instant::now();
        }
        if (stored >= total as f64)
            || (depth == 0.0
                && stored >= received
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
    let rss = peak_rss_mb(server.pid().as_raw() as u32);
    assert!(server.stop().success(), "roentgen did not stop cleanly");

    let lost = total as f64 - stored;
    println!(
        "ingest: {total} datagrams of ~{avg} bytes at {rate}/s target, {seconds}s, {per_trace} segments/trace"
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
    println!("  peak RSS: {rss:.0} MB");
}
