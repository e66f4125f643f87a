//! A harness that runs the real `roentgen` binary on free loopback ports.

#![allow(dead_code, unreachable_pub, missing_docs)]

use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

pub struct Server {
    child: Option<Child>,
    pub http: String,
    pub udp: String,
    /// The daemon TCP port (`--tcp-addr`), when started with [`Server::start_with_tcp`].
    pub tcp: Option<String>,
    pub data_dir: PathBuf,
    log: PathBuf,
    udp_enabled: bool,
    extra: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

/// A loopback port free for both TCP and UDP.
///
/// Ports come from 20000-32767, below the kernel's ephemeral range: a port the kernel
/// picked for `bind(0)` and that was then released can be taken by any outgoing
/// connection before the server binds it. Each test process walks its own stretch of the
/// range (starting from its pid), so no two servers of one process are handed the same
/// port, and a port that cannot be bound right now is skipped.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_767;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let _ = NEXT.compare_exchange(
        u32::MAX,
        std::process::id().wrapping_mul(7919) % SPAN,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    for _ in 0..SPAN {
        let offset = NEXT.fetch_add(1, Ordering::Relaxed) % SPAN;
        let port = u16::try_from(LOW + offset).expect("port fits in u16");
        let tcp = TcpListener::bind(("127.0.0.1", port));
        if tcp.is_ok() && UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port in 20000-32767 free for both TCP and UDP");
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_roentgen")
}

impl Server {
    pub fn start() -> Self {
        Self::start_with(None, true, &[])
    }

    /// A server with its daemon TCP port (`--tcp-addr`) listening too.
    pub fn start_with_tcp() -> Self {
        Self::start_inner(None, true, Some(format!("127.0.0.1:{}", free_port())), &[])
    }

    /// A server on `data_dir` (a fresh temporary one when `None`), with or without the
    /// UDP listener, and extra `serve` flags.
    pub fn start_with(data_dir: Option<PathBuf>, udp: bool, extra: &[&str]) -> Self {
        Self::start_inner(data_dir, udp, None, extra)
    }

    fn start_inner(
        data_dir: Option<PathBuf>,
        udp: bool,
        tcp: Option<String>,
        extra: &[&str],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = data_dir.unwrap_or_else(|| dir.path().join("data"));
        let mut s = Self {
            child: None,
            http: format!("127.0.0.1:{}", free_port()),
            udp: format!("127.0.0.1:{}", free_port()),
            tcp,
            data_dir,
            log: dir.path().join("server.log"),
            udp_enabled: udp,
            extra: extra.iter().map(|a| a.to_string()).collect(),
            _dir: Some(dir),
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let udp = if self.udp_enabled { &self.udp } else { "off" };
        let tcp = self.tcp.as_deref().unwrap_or("off");
        // OTLP/gRPC only when a test asks for it (its default port would collide).
        let grpc: &[&str] = if self.extra.iter().any(|a| a.starts_with("--otlp-grpc-addr")) {
            &[]
        } else {
            &["--otlp-grpc-addr", "off"]
        };
        let child = Command::new(bin())
            .args(["serve", "--http-addr", &self.http, "--udp-addr", udp])
            .args(grpc)
            .args(["--tcp-addr", tcp, "--data-dir"])
            .arg(&self.data_dir)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start roentgen");
        self.child = Some(child);
        self.wait_healthy();
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = reqwest::blocking::get(self.url("/healthz"))
                && r.status().is_success()
            {
                return;
            }
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("roentgen exited early with {st}: {}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("roentgen never became healthy: {}", self.log_text());
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        kill(self.pid(), Signal::SIGTERM).expect("signal");
        self.wait()
    }

    pub fn wait(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return st;
            }
            assert!(Instant::now() < deadline, "roentgen did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill -9");
        let _ = child.wait();
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop first");
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.post_raw(path, body.to_string().into_bytes())
    }

    pub fn post_raw(&self, path: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        self.post_to(&self.url(path), body)
    }

    /// POST to the daemon TCP port (started with [`Server::start_with_tcp`]).
    pub fn post_tcp(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let addr = self.tcp.as_deref().expect("started with its TCP port");
        self.post_to(
            &format!("http://{addr}{path}"),
            body.to_string().into_bytes(),
        )
    }

    fn post_to(&self, url: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
        let r = reqwest::blocking::Client::new()
            .post(url)
            .body(body)
            .send()
            .expect("request");
        let status = r.status().as_u16();
        let text = r.text().expect("body");
        let v = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        (status, v)
    }

    /// The sum of every series of a metric (all label sets).
    pub fn metric(&self, name: &str) -> f64 {
        scrape(&self.http, name).expect("metrics")
    }

    /// Every summary in `[start, end]`, following `NextToken` to the end.
    pub fn all_summaries(&self, start: u64, end: u64) -> Vec<serde_json::Value> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut req = serde_json::json!({ "StartTime": start, "EndTime": end });
            if let Some(t) = &token {
                req["NextToken"] = serde_json::json!(t);
            }
            let (status, body) = self.post("/TraceSummaries", &req);
            assert_eq!(status, 200, "{body}\nserver log:\n{}", self.log_text());
            out.extend(
                body["TraceSummaries"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            match body.get("NextToken").and_then(|v| v.as_str()) {
                Some(t) => token = Some(t.to_string()),
                None => return out,
            }
        }
    }

    pub fn send_udp(&self, datagrams: &[Vec<u8>]) {
        let s = UdpSocket::bind("127.0.0.1:0").expect("udp");
        for d in datagrams {
            s.send_to(d, &self.udp).expect("send");
        }
    }

    /// Fails when the log has ERROR lines or a panic, except those allowed.
    pub fn assert_clean_log(&self, allowed: &[&str]) {
        let log = self.log_text();
        for line in log.lines() {
            let bad = line.contains(" ERROR ") || line.contains("panicked at");
            if bad && !allowed.iter().any(|a| line.contains(a)) {
                panic!("unexpected error in the server log: {line}\n{log}");
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits until the embedded store's indexer has not derived a trace for 2 s (a burst it
/// could not follow is indexed after the writes, which never wait for it); returns the
/// derivation count and when it last moved.
pub fn index_settled(http: &str) -> (f64, Instant) {
    let (mut last, mut moved) = (-1.0, Instant::now());
    while moved.elapsed() < Duration::from_secs(2) {
        let derived = scrape(http, "roentgen_index_derivations_total").unwrap_or(-1.0);
        if derived != last {
            (last, moved) = (derived, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (last, moved)
}

/// The sum of every series of a metric (all label sets) on the server at `http`, or
/// `None` when it does not answer.
pub fn scrape(http: &str, name: &str) -> Option<f64> {
    let text = reqwest::blocking::get(format!("http://{http}/metrics"))
        .ok()?
        .text()
        .ok()?;
    Some(
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

/// A `/proc/<pid>/status` memory field (`VmRSS`, `VmHWM`) in MB, 0 when unreadable.
pub fn status_mb(pid: u32, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system, seconds) of each thread of `pid`, summed by thread name.
#[allow(dead_code)]
pub fn thread_cpu(pid: u32) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return out;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        let Some(cpu) = stat_cpu(&stat) else {
            continue;
        };
        *out.entry(comm.trim().to_string()).or_insert(0.0) += cpu;
    }
    out
}

/// User + system CPU seconds from a `/proc/…/stat` line (a process's or a thread's).
#[allow(dead_code)]
fn stat_cpu(stat: &str) -> Option<f64> {
    // Clock ticks are 100 per second on Linux for every architecture we run on.
    const TICKS: f64 = 100.0;
    // Fields after the parenthesised name; utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| f.get(i)?.parse::<f64>().ok())
        .sum();
    Some(ticks / TICKS)
}

/// CPU time (user + system, seconds) of the whole process `pid`, threads that have
/// exited included (which [`thread_cpu`] cannot see); 0 when unreadable.
#[allow(dead_code)]
pub fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat_cpu(&stat).unwrap_or(0.0)
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

pub fn trace_id(n: u64) -> String {
    format!("1-{:08x}-{n:024x}", now())
}

pub fn segment(trace: &str, id: u64, name: &str) -> String {
    let t = now() as f64;
    serde_json::json!({
        "trace_id": trace, "id": format!("{id:016x}"), "name": name,
        "start_time": t, "end_time": t + 0.25,
        "http": {"request": {"method": "GET", "url": "http://svc/x"}, "response": {"status": 200}},
    })
    .to_string()
}

pub fn datagram(doc: &str) -> Vec<u8> {
    let mut d = br#"{"format":"json","version":1}"#.to_vec();
    d.push(b'\n');
    d.extend_from_slice(doc.as_bytes());
    d
}

pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// A benchmark setting from the environment, or its default.
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A `roentgen daemon` on free loopback ports, with its metrics listener.
pub struct Daemon {
    child: Option<Child>,
    pub udp: String,
    pub tcp: String,
    pub metrics: String,
    args: Vec<String>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts `roentgen daemon --endpoint <endpoint>` plus `extra` flags.
    pub fn start(endpoint: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut d = Self {
            child: None,
            udp: format!("127.0.0.1:{}", free_port()),
            tcp: format!("127.0.0.1:{}", free_port()),
            metrics: format!("127.0.0.1:{}", free_port()),
            args: std::iter::once(format!("--endpoint={endpoint}"))
                .chain(extra.iter().map(|a| a.to_string()))
                .collect(),
            log: dir.path().join("daemon.log"),
            _dir: dir,
        };
        d.spawn();
        d
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let child = Command::new(bin())
            .args([
                "daemon",
                "-b",
                &self.udp,
                "-t",
                &self.tcp,
                "--metrics-addr",
                &self.metrics,
            ])
            .args(&self.args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start roentgen daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while scrape(&self.metrics, "roentgen_daemon_received_segments_total").is_none() {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                panic!("daemon exited early with {st}: {}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "daemon never answered: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn metric(&self, name: &str) -> f64 {
        scrape(&self.metrics, name).expect("daemon metrics")
    }

    /// The daemon's own metric lines (`roentgen_daemon_*`), for failure messages.
    fn counters(&self) -> String {
        reqwest::blocking::get(format!("http://{}/metrics", self.metrics))
            .and_then(|r| r.text())
            .map(|t| {
                t.lines()
                    .filter(|l| l.starts_with("roentgen_daemon_"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_else(|e| format!("unreadable: {e}"))
    }

    /// Waits until `cond` holds for the metrics, or panics with `what`, the daemon's
    /// counters (what it sent, dropped, rejected, retried and holds) and its log.
    pub fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}\ncounters:\n{}\nlog:\n{}",
                self.counters(),
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn send(&self, datagrams: &[Vec<u8>]) {
        let s = UdpSocket::bind("127.0.0.1:0").expect("udp");
        for (i, d) in datagrams.iter().enumerate() {
            s.send_to(d, &self.udp).expect("send");
            // Paced, so the kernel's socket buffer never overflows in a test.
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(st) = child.try_wait().expect("wait") {
                return st;
            }
            assert!(Instant::now() < deadline, "daemon did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop first");
        self.spawn();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Calls `GetTraceSummaries` over `[start, end]` with `filter`, following `NextToken`
/// to the end when `all_pages`: (summaries, pages, seconds).
pub fn get_trace_summaries(
    http: &str,
    start: u64,
    end: u64,
    filter: Option<&str>,
    all_pages: bool,
) -> (usize, usize, f64) {
    let client = reqwest::blocking::Client::new();
    let mut token: Option<String> = None;
    let (mut found, mut pages) = (0, 0);
    let t = Instant::now();
    loop {
        let mut req = serde_json::json!({ "StartTime": start, "EndTime": end });
        if let Some(f) = filter {
            req["FilterExpression"] = serde_json::json!(f);
        }
        if let Some(tok) = &token {
            req["NextToken"] = serde_json::json!(tok);
        }
        let body: serde_json::Value = client
            .post(format!("http://{http}/TraceSummaries"))
            .body(req.to_string())
            .send()
            .and_then(|r| r.json())
            .expect("GetTraceSummaries");
        pages += 1;
        found += body["TraceSummaries"].as_array().map_or(0, Vec::len);
        match body.get("NextToken").and_then(|v| v.as_str()) {
            Some(next) if all_pages => token = Some(next.to_string()),
            _ => break,
        }
    }
    (found, pages, t.elapsed().as_secs_f64())
}
