//! Issue 9: OTLP in, over real sockets to the real binary — OTLP/HTTP (protobuf, JSON,
//! gzip) and OTLP/gRPC on `serve`, both on `daemon`, and the errors the OTLP
//! specification prescribes.
#![allow(missing_docs)]

mod util;

use std::io::Write;

use prost::Message;
use roentgen_otlp::ExportTraceServiceRequest;
use roentgen_otlp::http::RpcStatus;
use roentgen_otlp::proto::collector::trace::v1::ExportTraceServiceResponse;
use roentgen_otlp::proto::collector::trace::v1::trace_service_client::TraceServiceClient;
use roentgen_otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value as Av};
use roentgen_otlp::proto::resource::v1::Resource;
use roentgen_otlp::proto::trace::v1::span::SpanKind;
use roentgen_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use serde_json::json;
use util::{Server, free_port, now, wait_for};

fn attr(key: &str, v: Av) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}

/// An X-Ray-style OTel trace id (time part now) ending in `n`.
fn trace_id(n: u64) -> Vec<u8> {
    let mut b = (now() as u32).to_be_bytes().to_vec();
    b.extend_from_slice(&[0u8; 4]);
    b.extend_from_slice(&n.to_be_bytes());
    b
}

fn xray_id(otel: &[u8]) -> String {
    let h: String = otel.iter().map(|b| format!("{b:02x}")).collect();
    format!("1-{}-{}", &h[..8], &h[8..])
}

/// A server span with a client child, as one request of service `service`.
fn request(service: &str, trace: &[u8], first_id: u64, status: i64) -> ExportTraceServiceRequest {
    let t = now() * 1_000_000_000;
    let server = Span {
        trace_id: trace.to_vec(),
        span_id: first_id.to_be_bytes().to_vec(),
        name: "GET /".into(),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: t - 2_000_000_000,
        end_time_unix_nano: t - 1_000_000_000,
        attributes: vec![
            attr("http.request.method", Av::StringValue("GET".into())),
            attr("http.response.status_code", Av::IntValue(status)),
        ],
        ..Default::default()
    };
    let client = Span {
        span_id: (first_id + 1).to_be_bytes().to_vec(),
        parent_span_id: first_id.to_be_bytes().to_vec(),
        name: "GET".into(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: t - 1_800_000_000,
        end_time_unix_nano: t - 1_200_000_000,
        attributes: vec![attr("peer.service", Av::StringValue("inventory".into()))],
        ..server.clone()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![attr("service.name", Av::StringValue(service.into()))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: vec![server, client],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn post(url: &str, content_type: &str, encoding: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut r = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", content_type);
    if let Some(e) = encoding {
        r = r.header("content-encoding", e);
    }
    let resp = r.body(body).send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.bytes().expect("body").to_vec())
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// The documents of a trace, by segment id, through BatchGetTraces.
fn documents(s: &Server, trace: &str) -> Vec<serde_json::Value> {
    let (status, body) = s.post("/Traces", &json!({ "TraceIds": [trace] }));
    assert_eq!(status, 200, "{body}");
    body["Traces"]
        .as_array()
        .expect("traces")
        .iter()
        .flat_map(|t| t["Segments"].as_array().cloned().unwrap_or_default())
        .map(|seg| serde_json::from_str(seg["Document"].as_str().expect("doc")).expect("json"))
        .collect()
}

#[test]
fn otlp_http_protobuf_json_and_gzip_land() {
    let s = Server::start_with(None, false, &[]);
    let url = s.url("/v1/traces");
    // Protobuf.
    let t1 = trace_id(1);
    let (status, body) = post(
        &url,
        "application/x-protobuf",
        None,
        request("web", &t1, 0x10, 200).encode_to_vec(),
    );
    assert_eq!(status, 200);
    let resp = ExportTraceServiceResponse::decode(body.as_slice()).expect("protobuf answer");
    assert_eq!(resp.partial_success, None);
    // Protobuf, gzip.
    let t2 = trace_id(2);
    let (status, _) = post(
        &url,
        "application/x-protobuf",
        Some("gzip"),
        gzip(&request("web", &t2, 0x20, 503).encode_to_vec()),
    );
    assert_eq!(status, 200);
    // JSON (serialized by the same crate's serde, i.e. OTLP JSON: hex ids).
    let t3 = trace_id(3);
    let text = serde_json::to_vec(&request("api", &t3, 0x30, 404)).expect("json");
    let (status, body) = post(&url, "application/json", None, text);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("json answer");
    assert!(answer.get("partialSuccess").is_none(), "{answer}");

    let d1 = documents(&s, &xray_id(&t1));
    assert_eq!(
        d1.len(),
        1,
        "the client span is embedded in the server span's segment"
    );
    assert_eq!(d1[0]["name"], "web");
    assert_eq!(d1[0]["subsegments"][0]["name"], "inventory");
    assert_eq!(d1[0]["subsegments"][0]["namespace"], "remote");
    assert_eq!(documents(&s, &xray_id(&t2))[0]["fault"], true);
    let d3 = documents(&s, &xray_id(&t3));
    assert_eq!(
        (d3[0]["name"].clone(), d3[0]["error"].clone()),
        (json!("api"), json!(true))
    );

    // Summaries and counters.
    let n = now();
    wait_for("summaries of the three traces", || {
        s.all_summaries(n - 120, n + 60).len() == 3
    });
    assert_eq!(s.metric("roentgen_otlp_received_spans_total"), 6.0);
    assert_eq!(s.metric("roentgen_otlp_converted_spans_total"), 6.0);
    s.assert_clean_log(&[]);
}

#[test]
fn otlp_http_errors_follow_the_spec() {
    let s = Server::start_with(None, false, &[]);
    let url = s.url("/v1/traces");
    // Wrong content type: 415 with a google.rpc.Status (JSON, the request's type is unknown).
    let (status, body) = post(&url, "text/plain", None, b"hello".to_vec());
    assert_eq!(status, 415);
    let st: serde_json::Value = serde_json::from_slice(&body).expect("status json");
    assert_eq!(st["code"], 3);
    // Malformed protobuf: 400 with a protobuf google.rpc.Status.
    let (status, body) = post(
        &url,
        "application/x-protobuf",
        None,
        vec![0x0a, 0xff, 0xff, 0x01],
    );
    assert_eq!(status, 400);
    let st = RpcStatus::decode(body.as_slice()).expect("protobuf status");
    assert_eq!(st.code, 3);
    assert!(st.message.contains("protobuf"), "{}", st.message);
    // Malformed JSON: 400 with a JSON status.
    let (status, body) = post(
        &url,
        "application/json",
        None,
        b"{\"resourceSpans\": 7}".to_vec(),
    );
    assert_eq!(status, 400);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&body).expect("json")["code"],
        3
    );
    // Not gzip: 400.
    let (status, _) = post(
        &url,
        "application/x-protobuf",
        Some("gzip"),
        b"plain".to_vec(),
    );
    assert_eq!(status, 400);
    // Oversize: 413, whether sent as is or as a small gzip bomb.
    let big = vec![0u8; 9 * 1024 * 1024];
    let (status, _) = post(&url, "application/x-protobuf", None, big.clone());
    assert_eq!(status, 413);
    let (status, body) = post(&url, "application/x-protobuf", Some("gzip"), gzip(&big));
    assert_eq!(status, 413);
    assert_eq!(RpcStatus::decode(body.as_slice()).expect("status").code, 3);
    // Partial success: the bad span is reported with its reason, the good one lands.
    let t = trace_id(9);
    let mut req = request("web", &t, 0x90, 200);
    req.resource_spans[0].scope_spans[0].spans[1].span_id = vec![0; 8];
    let (status, body) = post(&url, "application/x-protobuf", None, req.encode_to_vec());
    assert_eq!(status, 200);
    let p = ExportTraceServiceResponse::decode(body.as_slice())
        .expect("answer")
        .partial_success
        .expect("partial success");
    assert_eq!(p.rejected_spans, 1);
    assert!(
        p.error_message.contains("InvalidSpanId"),
        "{}",
        p.error_message
    );
    assert_eq!(documents(&s, &xray_id(&t)).len(), 1);
    let rejected = s.metric("roentgen_otlp_rejected_requests_total");
    assert_eq!(rejected, 6.0);
    s.assert_clean_log(&[]);
}

#[test]
fn otlp_grpc_export_lands() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let s = Server::start_with(None, false, &["--otlp-grpc-addr", &addr]);
    let t = trace_id(0x42);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let resp = rt.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect");
        let mut req = request("grpc-svc", &t, 0x40, 200);
        // One unconvertible span for a partial success.
        req.resource_spans[0].scope_spans[0].spans[1].trace_id = vec![1, 2, 3];
        client.export(req).await.expect("export").into_inner()
    });
    let p = resp.partial_success.expect("partial success");
    assert_eq!(
        (p.rejected_spans, p.error_message.contains("InvalidTraceId")),
        (1, true)
    );
    let d = documents(&s, &xray_id(&t));
    assert_eq!(d.len(), 1);
    assert_eq!(d[0]["name"], "grpc-svc");
    assert_eq!(s.metric("roentgen_otlp_converted_spans_total"), 1.0);
    s.assert_clean_log(&[]);
}

#[test]
fn daemon_forwards_otlp_http_and_grpc() {
    let server = Server::start_with(None, false, &[]);
    let http = format!("127.0.0.1:{}", free_port());
    let grpc = format!("127.0.0.1:{}", free_port());
    let daemon = util::Daemon::start(
        &format!("http://{}", server.http),
        &["--otlp-http-addr", &http, "--otlp-grpc-addr", &grpc],
    );
    let t1 = trace_id(0x51);
    let (status, _) = post(
        &format!("http://{http}/v1/traces"),
        "application/x-protobuf",
        None,
        request("via-daemon-http", &t1, 0x50, 200).encode_to_vec(),
    );
    assert_eq!(status, 200);
    let t2 = trace_id(0x61);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let mut client = TraceServiceClient::connect(format!("http://{grpc}"))
            .await
            .expect("connect");
        client
            .export(request("via-daemon-grpc", &t2, 0x60, 500))
            .await
            .expect("export");
    });
    wait_for("both traces at the server", || {
        !documents(&server, &xray_id(&t1)).is_empty()
            && !documents(&server, &xray_id(&t2)).is_empty()
    });
    assert_eq!(documents(&server, &xray_id(&t2))[0]["fault"], true);
    assert_eq!(
        daemon.metric("roentgen_daemon_otlp_converted_spans_total"),
        4.0
    );
    // Malformed protobuf on the daemon: the same 400.
    let (status, _) = post(
        &format!("http://{http}/v1/traces"),
        "application/x-protobuf",
        None,
        vec![0xff],
    );
    assert_eq!(status, 400);
    server.assert_clean_log(&[]);
}

#[test]
fn run_forwards_otlp_before_it_exits() {
    let server = Server::start_with(None, false, &[]);
    let http = format!("127.0.0.1:{}", free_port());
    let udp = format!("127.0.0.1:{}", free_port());
    let mut run = std::process::Command::new(util::bin())
        .args([
            "run",
            "-e",
            &format!("http://{}", server.http),
            "-b",
            &udp,
            "-t",
            &udp,
        ])
        .args(["--otlp-http-addr", &http, "--", "sleep", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start roentgen run");
    let t = trace_id(0x71);
    let body = request("in-run", &t, 0x70, 200).encode_to_vec();
    let url = format!("http://{http}/v1/traces");
    // The listener is up once an export is answered.
    let mut status = 0;
    wait_for("roentgen run's OTLP listener", || {
        status = reqwest::blocking::Client::new()
            .post(&url)
            .header("content-type", "application/x-protobuf")
            .body(body.clone())
            .send()
            .map_or(0, |r| r.status().as_u16());
        status != 0
    });
    assert_eq!(status, 200);
    let exit = run.wait().expect("run exits with the app");
    assert!(exit.success(), "{exit}");
    // Flushed before exit: at the server by now.
    assert_eq!(documents(&server, &xray_id(&t))[0]["name"], "in-run");
}
