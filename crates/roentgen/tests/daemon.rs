//! `roentgen daemon` between UDP senders and a real `roentgen serve`: delivery, the
//! proxy, outages of the endpoint with and without a spool, and restarts.

mod util;

use std::time::Duration;

use util::{Daemon, Server, datagram, now};

/// One trace per document so that counting summaries counts documents; `pad` bytes of
/// metadata make the document about that much larger.
fn docs(from: u64, n: u64, pad: usize) -> Vec<Vec<u8>> {
    let t = now() as f64;
    (from..from + n)
        .map(|i| {
            let doc = serde_json::json!({
                "trace_id": format!("1-{:08x}-{i:024x}", now()),
                "id": format!("{i:016x}"), "name": "web",
                "start_time": t, "end_time": t + 0.1,
                "metadata": {"default": {"pad": "x".repeat(pad)}},
            });
            datagram(&doc.to_string())
        })
        .collect()
}

fn stored(server: &Server) -> usize {
    server.all_summaries(now() - 600, now() + 60).len()
}

/// Waits until `n` traces are queryable (the server indexes shortly after it stores),
/// then checks that no more than `n` arrive.
fn assert_stored(server: &Server, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut got = stored(server);
    while got < n && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        got = stored(server);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(stored(server), n);
}

const SENT: &str = "roentgen_daemon_sent_segments_total";
const RECEIVED: &str = "roentgen_daemon_received_segments_total";
const DROPPED: &str = "roentgen_daemon_dropped_segments_total";
const BUFFERED: &str = "roentgen_daemon_buffered_segments";

#[test]
fn forwards_to_serve_and_counts_junk() {
    let server = Server::start_with(None, false, &[]);
    let daemon = Daemon::start(&server.url(""), &[]);
    let mut datagrams = docs(0, 300, 10);
    datagrams.push(b"no header".to_vec());
    datagrams.push(b"{\"format\":\"xml\",\"version\":1}\n{}".to_vec());
    datagrams.push(b"{\"format\":\"json\",\"version\":1}\n".to_vec());
    daemon.send(&datagrams);
    daemon.wait_for("300 sent", Duration::from_secs(20), |d| {
        d.metric(SENT) == 300.0
    });
    assert_eq!(daemon.metric(RECEIVED), 303.0);
    assert_eq!(
        daemon.metric("roentgen_daemon_rejected_segments_total"),
        3.0
    );
    assert_stored(&server, 300);
}

#[test]
fn tcp_listener_proxies_the_api() {
    let server = Server::start_with(None, false, &[]);
    let daemon = Daemon::start(&server.url(""), &[]);
    daemon.send(&docs(0, 5, 10));
    daemon.wait_for("5 sent", Duration::from_secs(20), |d| d.metric(SENT) == 5.0);
    assert_stored(&server, 5);
    let body = serde_json::json!({"StartTime": now() - 600, "EndTime": now() + 60});
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/TraceSummaries", daemon.tcp))
        .body(body.to_string())
        .send()
        .expect("proxied request");
    assert_eq!(r.status().as_u16(), 200);
    let v: serde_json::Value = r.json().expect("json");
    assert_eq!(v["TraceSummaries"].as_array().map(Vec::len), Some(5));
    // Errors of the endpoint come back as they are.
    let r = reqwest::blocking::Client::new()
        .post(format!("http://{}/NoSuchOperation", daemon.tcp))
        .body("{}")
        .send()
        .expect("proxied request");
    assert_eq!(r.status().as_u16(), 404);
    assert!(daemon.metric("roentgen_daemon_proxied_requests_total") >= 2.0);
}

/// The endpoint goes away while traffic flows and comes back: with a spool, every
/// document arrives.
#[test]
fn outage_with_spool_loses_nothing() {
    let mut server = Server::start_with(None, false, &[]);
    let spool = tempfile::tempdir().expect("tempdir");
    let spool_dir = spool.path().to_str().expect("utf-8");
    let daemon = Daemon::start(&server.url(""), &["-m", "3", "--spool-dir", spool_dir]);
    daemon.send(&docs(0, 500, 200));
    daemon.wait_for("500 sent", Duration::from_secs(20), |d| {
        d.metric(SENT) == 500.0
    });

    assert!(server.stop().success());
    // ~9 MB while the endpoint is down: three times the memory buffer.
    daemon.send(&docs(500, 8000, 1000));
    daemon.wait_for("8500 received", Duration::from_secs(30), |d| {
        d.metric(RECEIVED) == 8500.0
    });
    assert!(daemon.metric("roentgen_daemon_spooled_segments_total") > 0.0);
    assert_eq!(daemon.metric(DROPPED), 0.0);

    server.restart();
    daemon.wait_for("8500 sent", Duration::from_secs(120), |d| {
        d.metric(SENT) >= 8500.0
    });
    assert_eq!(daemon.metric(DROPPED), 0.0);
    assert_stored(&server, 8500);
}

/// Without a spool the memory buffer drops its oldest documents, and what does not
/// arrive is exactly what the drop counter says.
#[test]
fn outage_without_spool_loses_only_what_it_counts() {
    let mut server = Server::start_with(None, false, &[]);
    let daemon = Daemon::start(&server.url(""), &["-m", "3"]);
    daemon.send(&docs(0, 200, 200));
    daemon.wait_for("200 sent", Duration::from_secs(20), |d| {
        d.metric(SENT) == 200.0
    });

    assert!(server.stop().success());
    daemon.send(&docs(200, 8000, 1000));
    daemon.wait_for("8200 received", Duration::from_secs(30), |d| {
        d.metric(RECEIVED) == 8200.0
    });
    server.restart();
    daemon.wait_for("buffer drained", Duration::from_secs(120), |d| {
        d.metric(BUFFERED) == 0.0 && d.metric(SENT) + d.metric(DROPPED) >= 8200.0
    });
    let dropped = daemon.metric(DROPPED);
    assert!(dropped > 0.0, "a 3 MB buffer cannot hold 8 MB");
    assert_eq!(daemon.metric(SENT) + dropped, 8200.0);
    assert_stored(&server, (8200.0 - dropped) as usize);
}

/// Segments spooled while the endpoint was away survive a restart of the daemon.
#[test]
fn spool_survives_a_daemon_restart() {
    let spool = tempfile::tempdir().expect("tempdir");
    let spool_dir = spool.path().to_str().expect("utf-8");
    let mut server = Server::start_with(None, false, &[]);
    assert!(server.stop().success());
    let mut daemon = Daemon::start(&server.url(""), &["--spool-dir", spool_dir]);
    daemon.send(&docs(0, 700, 300));
    daemon.wait_for("700 received", Duration::from_secs(20), |d| {
        d.metric(RECEIVED) == 700.0
    });
    assert!(daemon.stop().success());
    let spooled: u64 = std::fs::read_dir(spool.path())
        .expect("spool dir")
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    assert!(
        spooled > 700 * 300,
        "spool holds the documents: {spooled} bytes"
    );

    server.restart();
    daemon.restart();
    daemon.wait_for("700 sent", Duration::from_secs(30), |d| {
        d.metric(SENT) == 700.0
    });
    assert_stored(&server, 700);
    assert_eq!(daemon.metric(DROPPED), 0.0);
}

#[test]
fn bad_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("cfg.yaml");
    std::fs::write(&cfg, "Version: 2\nSocket:\n  UDPAddres: 127.0.0.1:2000\n").expect("write");
    let out = std::process::Command::new(util::bin())
        .args(["daemon", "-c"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("UDPAddres"), "{err}");
    let out = std::process::Command::new(util::bin())
        .args(["daemon", "-m", "2", "-e", "http://127.0.0.1:1"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--buffer-memory"), "{err}");
}

/// The daemon reports its counters with `PutTelemetryRecords`; serve adds them up.
#[test]
fn telemetry_reaches_serve() {
    let server = Server::start_with(None, false, &[]);
    let mut daemon = Daemon::start(&server.url(""), &["--telemetry-interval", "300ms"]);
    let mut datagrams = docs(0, 40, 10);
    datagrams.push(b"junk".to_vec());
    daemon.send(&datagrams);
    daemon.wait_for("40 sent", Duration::from_secs(20), |d| {
        d.metric(SENT) == 40.0
    });
    // The final record on shutdown covers whatever the last interval missed.
    assert!(daemon.stop().success());
    assert!(server.metric("roentgen_telemetry_records_total") >= 1.0);
    let text = reqwest::blocking::get(server.url("/metrics"))
        .and_then(|r| r.text())
        .expect("metrics");
    let value = |kind: &str| {
        text.lines()
            .find(|l| {
                l.starts_with(&format!(
                    "roentgen_telemetry_segments_total{{kind=\"{kind}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    assert_eq!(value("received"), 41.0, "{text}");
    assert_eq!(value("sent"), 40.0, "{text}");
    assert_eq!(value("rejected"), 1.0, "{text}");
}
