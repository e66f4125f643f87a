//! Load for Roentgen's benchmarks: realistic segment documents, a paced UDP sender that
//! speaks the daemon protocol, and a cheap HTTP sink that answers `PutTraceSegments`
//! and counts documents. The `roentgen-loadgen` binary runs either from the command
//! line; the benchmarks use them as a library. No other Roentgen crate is used, so the
//! load is what any X-Ray SDK would send.

use std::io::IoSlice;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, sendmmsg};

/// The header every X-Ray SDK sends.
pub const HEADER: &[u8] = br#"{"format":"json","version":1}"#;

/// Seconds since the epoch.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A realistic segment (~1.2 KB) with http, annotations, metadata, aws and two
/// subsegments; `pad` extra bytes of metadata make it larger.
pub fn document(trace: &str, id: u64, parent: Option<u64>, now: f64, pad: usize) -> String {
    let parent = parent
        .map(|p| format!(r#","parent_id":"{p:016x}""#))
        .unwrap_or_default();
    let padding = "p".repeat(pad);
    format!(
        r#"{{"trace_id":"{trace}","id":"{id:016x}"{parent},"name":"svc-{svc}","origin":"AWS::EC2::Instance","start_time":{now:.3},"end_time":{end:.3},"http":{{"request":{{"method":"GET","url":"https://svc-{svc}.example.com/api/orders/12345?expand=items","client_ip":"10.1.2.3","user_agent":"Mozilla/5.0 (X11; Linux x86_64) bench"}},"response":{{"status":200,"content_length":1834}}}},"annotations":{{"customer":"c-{id}","tier":"gold","items":3,"vip":true}},"metadata":{{"default":{{"note":"padding padding padding padding padding padding padding padding padding padding padding{padding}"}}}},"aws":{{"ec2":{{"instance_id":"i-0123456789abcdef0","availability_zone":"us-east-1a"}}}},"subsegments":[{{"id":"{s1:016x}","name":"DynamoDB","namespace":"aws","start_time":{now:.3},"end_time":{end2:.3},"aws":{{"operation":"GetItem","table_name":"orders"}},"http":{{"response":{{"status":200}}}}}},{{"id":"{s2:016x}","name":"payments.internal","namespace":"remote","start_time":{now:.3},"end_time":{end2:.3},"http":{{"request":{{"method":"POST","url":"https://payments.internal/charge"}},"response":{{"status":200}}}}}}]}}"#,
        svc = id % 7,
        end = now + 0.120,
        end2 = now + 0.040,
        s1 = id ^ 0x1111,
        s2 = id ^ 0x2222,
    )
}

/// What to send.
#[derive(Debug, Clone)]
pub struct Load {
    /// Datagrams per second.
    pub rate: u64,
    /// How long.
    pub duration: Duration,
    /// Segments per trace (the first is the root, the others its children).
    pub segments_per_trace: u64,
    /// Target size of a document in bytes (at least the ~1.2 KB base document).
    pub size: usize,
}

impl Load {
    /// Pre-built datagrams (at most 200,000, reused round-robin with a fresh trace id
    /// on each pass: see [`send`]), all of the same length (documents end in JSON
    /// whitespace where needed), so the sender can hand the kernel many at once with
    /// UDP segmentation offload.
    pub fn datagrams(&self) -> Vec<Vec<u8>> {
        let total = self.rate * self.duration.as_secs().max(1);
        let unique = total.clamp(1, 200_000);
        let per_trace = self.segments_per_trace.max(1);
        let now = now();
        let base = document("1-00000000-000000000000000000000000", 1, None, now, 0).len();
        let pad = self.size.saturating_sub(base);
        let run = std::process::id() as u64;
        let mut grams = (0..unique)
            .map(|i| {
                let t = i / per_trace;
                let trace = format!("1-{:08x}-{run:08x}{:016x}", now as u64, t + 1);
                let parent = (i % per_trace != 0).then_some(i ^ 0x2222);
                let mut d = HEADER.to_vec();
                d.push(b'\n');
                d.extend_from_slice(document(&trace, i + 1, parent, now, pad).as_bytes());
                d
            })
            .collect::<Vec<_>>();
        let longest = grams.iter().map(Vec::len).max().unwrap_or(0);
        for d in &mut grams {
            d.resize(longest, b' ');
        }
        grams
    }
}

/// Where, in a datagram of [`Load::datagrams`], the eight hex digits of the trace id
/// that are zero in the built datagram and carry the pass number when sent.
const PASS_DIGITS: usize = HEADER.len() + 1 + r#"{"trace_id":"1-"#.len() + 8 + 1 + 8;

/// Where, in a datagram of [`Load::datagrams`], the eight hex digits of the trace id's
/// epoch second.
const SECOND_DIGITS: usize = HEADER.len() + 1 + r#"{"trace_id":"1-"#.len();

/// Writes the low 32 bits of `value` as eight hex digits at `at`.
fn stamp_hex(datagram: &mut [u8], at: usize, value: u64) {
    if let Some(digits) = datagram.get_mut(at..at + 8) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (k, d) in digits.iter_mut().enumerate() {
            *d = HEX[((value >> (28 - 4 * k)) & 0xf) as usize];
        }
    }
}

/// Writes the pass number into a datagram's trace id, so that every pass over the
/// pre-built datagrams sends new traces instead of the same ones again.
fn stamp_pass(datagram: &mut [u8], pass: u64) {
    if pass != 0 {
        stamp_hex(datagram, PASS_DIGITS, pass);
    }
}

/// Writes the second a datagram's trace starts into its trace id, as SDKs do: a run
/// spreads its traces over its seconds instead of stamping all with one.
fn stamp_second(datagram: &mut [u8], second: u64) {
    stamp_hex(datagram, SECOND_DIGITS, second);
}

/// Stamps datagram number `g` of a run: its pass and the second its trace's first
/// segment is due (`start` plus that segment's place in the schedule), the same for
/// every segment of the trace.
fn stamp(datagram: &mut [u8], g: u64, unique: u64, load: &Load, start: u64) {
    stamp_pass(datagram, g / unique);
    let first = g - (g % unique) % load.segments_per_trace.max(1);
    stamp_second(datagram, start + first / load.rate.max(1));
}

/// What a send run did.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sent {
    /// Datagrams handed to the kernel.
    pub sent: u64,
    /// Failed `sendmmsg` calls.
    pub errors: u64,
    /// Wall time of the run.
    pub seconds: f64,
    /// Average datagram size.
    pub avg_bytes: usize,
}

/// Pins the calling thread to one CPU (best effort; returns whether it worked).
pub fn pin_to_cpu(cpu: usize) -> bool {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).is_ok()
        && nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok()
}

/// Sends `datagrams` round-robin to `target` at `load.rate` for `load.duration`, paced
/// in 1 ms steps (a spinning sender would take a core from the receiver on a small
/// machine). Datagrams of equal length go out up to 56 per system call with UDP
/// segmentation offload (`UDP_SEGMENT`); otherwise, or where the kernel refuses it,
/// with `sendmmsg`.
pub fn send(target: SocketAddr, load: &Load, datagrams: &[Vec<u8>]) -> std::io::Result<Sent> {
    const BATCH: usize = 64;
    let sock = UdpSocket::bind(if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    })?;
    sock.connect(target)?;
    let total = (load.rate as f64 * load.duration.as_secs_f64()) as u64;
    let fd = sock.as_raw_fd();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
    let no_addr: Vec<Option<SockaddrStorage>> = vec![None; BATCH];
    let unique = datagrams.len().max(1) as u64;
    let len = datagrams.first().map_or(0, Vec::len);
    let uniform = len > 0 && datagrams.iter().all(|d| d.len() == len);
    // Segments per GSO send: within 64 KiB and the kernel's 64-segment limit.
    let per_gso = if uniform { (65_000 / len).min(56) } else { 0 };
    let mut gso = per_gso > 1;
    let mut staging = Vec::with_capacity(65_536);
    let mut out = Sent {
        avg_bytes: datagrams.iter().map(Vec::len).sum::<usize>() / datagrams.len().max(1),
        ..Sent::default()
    };
    let start = Instant::now();
    let start_second = now() as u64;
    let mut i = 0u64;
    while i < total {
        let due = ((start.elapsed().as_secs_f64() * load.rate as f64) as u64).min(total);
        while i < due {
            if gso {
                let n = ((due - i) as usize).min(per_gso);
                staging.clear();
                for k in 0..n as u64 {
                    let at = staging.len();
                    staging.extend_from_slice(&datagrams[((i + k) % unique) as usize]);
                    stamp(&mut staging[at..], i + k, unique, load, start_second);
                }
                let segment = len as u16;
                let cmsg = [nix::sys::socket::ControlMessage::UdpGsoSegments(&segment)];
                let iov = [IoSlice::new(&staging)];
                match nix::sys::socket::sendmsg::<()>(fd, &iov, &cmsg, MsgFlags::empty(), None) {
                    Ok(_) => {
                        i += n as u64;
                        out.sent += n as u64;
                    }
                    Err(
                        nix::errno::Errno::EIO
                        | nix::errno::Errno::EINVAL
                        | nix::errno::Errno::ENOPROTOOPT,
                    ) => {
                        // No segmentation offload here: fall back to sendmmsg.
                        gso = false;
                    }
                    Err(_) => out.errors += 1,
                }
                continue;
            }
            let n = ((due - i) as usize).min(BATCH);
            let copies: Vec<Vec<u8>> = (0..n as u64)
                .map(|k| {
                    let mut d = datagrams[((i + k) % unique) as usize].clone();
                    stamp(&mut d, i + k, unique, load, start_second);
                    d
                })
                .collect();
            let iovs: Vec<[IoSlice<'_>; 1]> = copies.iter().map(|d| [IoSlice::new(d)]).collect();
            match sendmmsg(
                fd,
                &mut headers,
                &iovs,
                &no_addr[..n],
                [],
                MsgFlags::empty(),
            ) {
                Ok(results) => {
                    let n = results.count().max(1) as u64;
                    i += n;
                    out.sent += n;
                }
                Err(_) => {
                    out.errors += 1;
                    i += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    out.seconds = start.elapsed().as_secs_f64();
    Ok(out)
}

/// Counts of a sink.
#[derive(Debug, Default)]
pub struct SinkCounts {
    /// `PutTraceSegments` requests answered.
    pub requests: AtomicU64,
    /// Documents in them.
    pub documents: AtomicU64,
}

/// A cheap X-Ray endpoint: answers `POST /TraceSegments` with no unprocessed segments
/// and counts the documents; `GET /count` returns the counts as JSON. Anything else is
/// answered 200 `{}` (telemetry, sampling).
pub fn sink_router(counts: Arc<SinkCounts>) -> axum::Router {
    use axum::routing::{get, post};

    #[derive(serde::Deserialize)]
    struct Put {
        #[serde(rename = "TraceSegmentDocuments")]
        docs: Vec<serde::de::IgnoredAny>,
    }

    let put_counts = Arc::clone(&counts);
    let get_counts = Arc::clone(&counts);
    axum::Router::new()
        .route(
            "/TraceSegments",
            post(move |body: bytes::Bytes| {
                let counts = Arc::clone(&put_counts);
                async move {
                    match serde_json::from_slice::<Put>(&body) {
                        Ok(put) => {
                            counts.requests.fetch_add(1, Ordering::Relaxed);
                            counts
                                .documents
                                .fetch_add(put.docs.len() as u64, Ordering::Relaxed);
                            (
                                axum::http::StatusCode::OK,
                                r#"{"UnprocessedTraceSegments":[]}"#,
                            )
                        }
                        Err(_) => (
                            axum::http::StatusCode::BAD_REQUEST,
                            r#"{"__type":"InvalidRequestException"}"#,
                        ),
                    }
                }
            }),
        )
        .route(
            "/count",
            get(move || {
                let counts = Arc::clone(&get_counts);
                async move {
                    format!(
                        r#"{{"requests":{},"documents":{}}}"#,
                        counts.requests.load(Ordering::Relaxed),
                        counts.documents.load(Ordering::Relaxed)
                    )
                }
            }),
        )
        .fallback(|| async { "{}" })
        .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024))
}

/// A sink running on its own single-worker runtime (optionally pinned to one CPU).
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it counted.
    pub counts: Arc<SinkCounts>,
    _runtime: tokio::runtime::Runtime,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Starts a sink on a free loopback port; its worker thread is pinned to `cpu`.
    pub fn start(cpu: Option<usize>) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(move || {
                if let Some(cpu) = cpu {
                    pin_to_cpu(cpu);
                }
            })
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        let counts = Arc::new(SinkCounts::default());
        let router = sink_router(Arc::clone(&counts));
        runtime.spawn(async move { axum::serve(listener, router).await });
        Ok(Self {
            addr,
            counts,
            _runtime: runtime,
        })
    }

    /// Documents received so far.
    pub fn documents(&self) -> u64 {
        self.counts.documents.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace_id(datagram: &[u8]) -> String {
        let doc = &datagram[HEADER.len() + 1..];
        let v: serde_json::Value = serde_json::from_slice(doc).expect("document is JSON");
        v["trace_id"].as_str().expect("trace_id").to_string()
    }

    /// 10 datagrams a second, traces of 5 segments, base-size documents.
    fn small_load(seconds: u64) -> Load {
        Load {
            rate: 10,
            duration: Duration::from_secs(seconds),
            segments_per_trace: 5,
            size: 0,
        }
    }

    #[test]
    fn each_pass_sends_new_trace_ids_in_valid_documents() {
        let load = small_load(1);
        let grams = load.datagrams();
        let first = trace_id(&grams[0]);
        assert_eq!(
            &grams[0][PASS_DIGITS..PASS_DIGITS + 8],
            b"00000000",
            "{first}"
        );
        let mut seen = std::collections::HashSet::new();
        for pass in [0, 1, 2, 0xdead_beef] {
            let mut d = grams[0].clone();
            stamp_pass(&mut d, pass);
            let id = trace_id(&d);
            assert_eq!(id.len(), first.len());
            assert!(seen.insert(id.clone()), "pass {pass} repeats {id}");
            // The same trace for every segment of it within a pass.
            let mut child = grams[1].clone();
            stamp_pass(&mut child, pass);
            assert_eq!(trace_id(&child), id);
        }
    }

    #[test]
    fn traces_carry_the_second_they_are_sent_in() {
        let load = small_load(3);
        let grams = load.datagrams();
        let unique = grams.len() as u64;
        assert_eq!(unique, 30);
        let start = 1_700_000_000;
        let sent: Vec<String> = (0..60u64)
            .map(|g| {
                let mut d = grams[(g % unique) as usize].clone();
                stamp(&mut d, g, unique, &load, start);
                trace_id(&d)
            })
            .collect();
        for (g, id) in sent.iter().enumerate() {
            // 10 datagrams a second: datagram g is due in second g / 10, and so is the
            // first segment of its trace (traces of 5 never straddle here).
            let want = format!("1-{:08x}-", start + g as u64 / 10);
            assert!(id.starts_with(&want), "{g}: {id}");
            // Every segment of a trace has the trace's id.
            assert_eq!(id, &sent[g - g % 5], "{g}");
        }
        // Twelve traces, twelve ids.
        let ids: std::collections::HashSet<&String> = sent.iter().collect();
        assert_eq!(ids.len(), 12);
    }
}
