//! `roentgen serve` end to end over real sockets.
#![allow(missing_docs)]

mod util;

use serde_json::json;
use util::{Server, datagram, segment, trace_id, wait_for};

fn stored_documents(s: &Server, ids: &[String]) -> usize {
    let (status, body) = s.post("/Traces", &json!({ "TraceIds": ids }));
    assert_eq!(status, 200, "{body}");
    body["Traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|t| t["Segments"].as_array().map_or(0, Vec::len))
        .sum()
}

/// Issue 2: once PutTraceSegments answers 200, kill -9 loses none of the documents.
#[test]
fn acknowledged_segments_survive_kill_9() {
    let mut s = Server::start();
    let mut ids = Vec::new();
    let mut sent = Vec::new();
    for batch in 0..4u64 {
        let docs: Vec<String> = (0..50u64)
            .map(|i| {
                let t = trace_id(batch * 1000 + i);
                let d = segment(&t, i + 1, "web");
                ids.push(t);
                sent.push(d.clone());
                d
            })
            .collect();
        let (status, body) = s.post("/TraceSegments", &json!({ "TraceSegmentDocuments": docs }));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["UnprocessedTraceSegments"], json!([]));
    }
    s.kill9();
    s.restart();
    let mut got = Vec::new();
    for chunk in ids.chunks(100) {
        let (_, body) = s.post("/Traces", &json!({ "TraceIds": chunk }));
        for t in body["Traces"].as_array().expect("traces") {
            for seg in t["Segments"].as_array().expect("segments") {
                got.push(seg["Document"].as_str().expect("document").to_string());
            }
        }
    }
    got.sort();
    sent.sort();
    assert_eq!(got.len(), 200);
    assert_eq!(got, sent, "documents come back verbatim");
    // Summaries not yet derived at the kill are derived after the restart.
    let now = util::now();
    wait_for("summaries of all 200 traces after restart", || {
        s.all_summaries(now - 120, now + 60).len() == 200
    });
    s.assert_clean_log(&[]);
}

/// A SIGTERM that follows the first answer at once (a readiness probe, then a stop)
/// finds the handler: the process drains and exits 0 instead of dying of the signal.
/// The handler used to be installed after the HTTP server started answering. That
/// window was microseconds wide: CI hit it once (in `spool_survives_a_daemon_restart`),
/// and this test, on an idle machine, passed 20 times against the old order, so it
/// guards the order only by repetition under load.
#[test]
fn sigterm_right_after_the_first_answer_exits_0() {
    for _ in 0..5 {
        let mut server = Server::start_with(None, true, &[]);
        let status = server.stop();
        assert!(status.success(), "{status}: {}", server.log_text());
    }
}

/// SIGTERM stops accepting, drains what the kernel and the queue hold, exits 0.
#[test]
fn sigterm_drains_udp_and_exits_zero() {
    let mut s = Server::start();
    let ids: Vec<String> = (0..300).map(trace_id).collect();
    let grams: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(i, t)| datagram(&segment(t, i as u64 + 1, "udp-svc")))
        .collect();
    s.send_udp(&grams);
    wait_for("all datagrams received", || {
        s.metric("roentgen_ingest_received_segments_total") >= 300.0
    });
    let status = s.stop();
    assert!(status.success(), "exit status {status}");
    s.restart();
    let total: usize = ids.chunks(100).map(|c| stored_documents(&s, c)).sum();
    assert_eq!(total, 300);
    s.assert_clean_log(&[]);
}

#[test]
fn junk_is_counted_never_stored_and_good_data_beside_it_lands() {
    let s = Server::start();
    let good = trace_id(7);
    let bad_trace = trace_id(8);
    let grams = vec![
        b"no newline at all".to_vec(),
        b"{\"format\":\"json\",\"version\":2}\n{}".to_vec(),
        b"{\"format\":\"json\",\"version\":1}\n".to_vec(),
        datagram("not json"),
        datagram(&segment("1-zz-zz", 1, "web")),
        datagram(&segment(&bad_trace, 1, "bad<name")),
        datagram(&segment(&good, 1, "web")),
        vec![0xff, 0xfe, b'\n', 0xff],
    ];
    s.send_udp(&grams);
    wait_for("the good segment", || {
        stored_documents(&s, std::slice::from_ref(&good)) == 1
    });
    wait_for("rejections counted", || {
        s.metric("roentgen_ingest_rejected_segments_total") >= 7.0
    });
    assert_eq!(stored_documents(&s, std::slice::from_ref(&bad_trace)), 0);

    // The API: a mixed batch lands its good half.
    let ok = trace_id(9);
    let (status, body) = s.post(
        "/TraceSegments",
        &json!({ "TraceSegmentDocuments": [segment(&ok, 5, "web"), "{\"id\":\"0000000000000001\"}", "]"] }),
    );
    assert_eq!(status, 200, "{body}");
    let unprocessed = body["UnprocessedTraceSegments"].as_array().expect("list");
    assert_eq!(unprocessed.len(), 2);
    assert_eq!(unprocessed[0]["Id"], "0000000000000001");
    assert_eq!(unprocessed[0]["ErrorCode"], "MissingField");
    assert_eq!(unprocessed[1]["ErrorCode"], "InvalidJson");
    assert_eq!(stored_documents(&s, &[ok]), 1);

    // Malformed requests get AWS-shaped errors.
    let (status, body) = s.post_raw("/TraceSegments", b"{not json".to_vec());
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "SerializationException", "{body}");
    let (status, body) = s.post("/TraceSegments", &json!({ "TraceSegmentDocuments": "x" }));
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "SerializationException", "{body}");
    let (status, body) = s.post_raw("/TraceSegments", vec![b' '; 9 * 1024 * 1024]);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["__type"], "PayloadTooLargeException");
    let (status, body) = s.post("/Nope", &json!({}));
    assert_eq!(status, 404);
    assert_eq!(body["__type"], "UnknownOperationException");
    let (status, body) = s.post("/TraceSummaries", &json!({ "StartTime": 10, "EndTime": 5 }));
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidRequestException", "{body}");
    let (status, body) = s.post(
        "/TraceSummaries",
        &json!({ "StartTime": 1, "EndTime": 5, "FilterExpression": "service(" }),
    );
    assert_eq!(status, 400);
    assert_eq!(body["__type"], "InvalidRequestException", "{body}");

    let r = reqwest::blocking::get(s.url("/healthz")).expect("healthz");
    assert!(r.status().is_success());
    s.assert_clean_log(&[]);
}

#[test]
fn summaries_filter_by_service_and_page() {
    let s = Server::start();
    let mut docs = Vec::new();
    for i in 0..150u64 {
        let t = trace_id(20_000 + i);
        docs.push(segment(
            &t,
            i + 1,
            if i % 3 == 0 { "orders" } else { "web" },
        ));
    }
    let (status, _) = s.post("/TraceSegments", &json!({ "TraceSegmentDocuments": docs }));
    assert_eq!(status, 200);
    let now = util::now();
    // Summaries follow the write within the indexing delay: poll.
    let mut seen = std::collections::BTreeSet::new();
    wait_for("150 summaries", || {
        let ids = s.all_summaries(now - 60, now + 60);
        seen = ids
            .iter()
            .filter_map(|t| t["Id"].as_str().map(str::to_string))
            .collect();
        assert_eq!(seen.len(), ids.len(), "a trace came back twice");
        seen.len() == 150
    });
    assert_eq!(seen.len(), 150);
    let (_, body) = s.post(
        "/TraceSummaries",
        &json!({ "StartTime": now - 60, "EndTime": now + 60, "FilterExpression": "service(\"orders\")" }),
    );
    let list = body["TraceSummaries"].as_array().expect("list");
    assert_eq!(list.len(), 50);
    assert!(list.iter().all(|t| t["EntryPoint"]["Name"] == "orders"));
}

#[test]
fn bad_flags_exit_64_with_a_message() {
    let out = std::process::Command::new(util::bin())
        .args(["serve", "--retention", "forever"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--retention"), "{err}");

    let out = std::process::Command::new(util::bin())
        .args(["serve"])
        .env("ROENTGEN_HTTP_ADDR", "not-an-address")
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--http-addr"));
}

/// Issue 8: an SDK pointed straight at `serve` polls the sampling API on the daemon TCP
/// port, and the rules it finds there are the ones the API manages, across a restart.
#[test]
fn issue_8_sampling_api_on_the_daemon_tcp_port() {
    let mut s = Server::start_with_tcp();
    let (status, body) = s.post_tcp("/GetSamplingRules", &json!({}));
    assert_eq!(status, 200, "{body}");
    let records = body["SamplingRuleRecords"].as_array().expect("records");
    assert_eq!(records.len(), 1);
    let default = &records[0]["SamplingRule"];
    assert_eq!(default["RuleName"], "Default");
    assert_eq!(
        (
            default["ReservoirSize"].as_i64(),
            default["FixedRate"].as_f64()
        ),
        (Some(1), Some(0.05))
    );

    let rule = json!({ "SamplingRule": {
        "RuleName": "checkout", "ResourceARN": "*", "Priority": 10, "FixedRate": 0.5,
        "ReservoirSize": 4, "ServiceName": "checkout", "ServiceType": "*", "Host": "*",
        "HTTPMethod": "*", "URLPath": "*", "Version": 1 } });
    let (status, body) = s.post("/CreateSamplingRule", &rule);
    assert_eq!(status, 200, "{body}");
    let modified = body["SamplingRuleRecord"]["ModifiedAt"]
        .as_f64()
        .expect("ModifiedAt");

    let report = json!({ "SamplingStatisticsDocuments": [
        { "RuleName": "checkout", "ClientID": "0123456789abcdef01234567", "Timestamp": util::now(),
          "RequestCount": 40, "SampledCount": 4, "BorrowCount": 1 },
        { "RuleName": "gone", "ClientID": "0123456789abcdef01234567", "Timestamp": util::now(),
          "RequestCount": 1, "SampledCount": 0 } ] });
    let (status, body) = s.post_tcp("/SamplingTargets", &report);
    assert_eq!(status, 200, "{body}");
    let doc = &body["SamplingTargetDocuments"][0];
    assert_eq!(doc["RuleName"], "checkout");
    assert_eq!(doc["FixedRate"], 0.5);
    assert_eq!(
        doc["ReservoirQuota"], 2,
        "a first report gets at most 2 (slow start)"
    );
    assert_eq!(doc["Interval"], 10);
    assert!(doc["ReservoirQuotaTTL"].as_f64().expect("TTL") >= util::now() as f64 + 15.0);
    assert!(
        body["LastRuleModification"]
            .as_f64()
            .expect("LastRuleModification")
            >= modified
    );
    assert_eq!(body["UnprocessedStatistics"][0]["RuleName"], "gone");
    assert_eq!(body["UnprocessedStatistics"][0]["ErrorCode"], "UnknownRule");

    let (status, body) = s.post_tcp("/SamplingStatisticSummaries", &json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["SamplingStatisticSummaries"][0]["RequestCount"], 40);
    assert!(s.metric("roentgen_sampling_targets_total") >= 2.0);

    assert!(s.stop().success());
    s.restart();
    let (_, body) = s.post_tcp("/GetSamplingRules", &json!({}));
    let names: Vec<&str> = body["SamplingRuleRecords"]
        .as_array()
        .expect("records")
        .iter()
        .filter_map(|r| r["SamplingRule"]["RuleName"].as_str())
        .collect();
    assert_eq!(names, ["Default", "checkout"]);
    s.assert_clean_log(&[]);
}
