//! OTLP/gRPC ingest through the real `roentgen serve` binary: batches of 512 spans.
//!
//! A tonic gRPC client keeps `BENCH_CONCURRENCY` exports in flight for `BENCH_SECONDS`
//! on one HTTP/2 connection; each batch is encoded once as a template and sent with a
//! fresh sequence number in every id (as the UDP bench sends pre-built datagrams), so
//! the client takes little of the two cores. `serve` answers each export only after its
//! documents are durable, so the acknowledged spans are stored spans.
//! Two shapes, each a workload of its own:
//!
//! * `trace` — 64 traces per batch of 1 server span, 3 client spans (HTTP, SQL, AWS
//!   SDK) and 4 internal spans each: the client and internal spans are embedded in the
//!   server span's segment, so 8 spans make one document;
//! * `segments` — 512 server spans, each its own segment document (the worst case).
//!
//! Settings: `BENCH_SECONDS` (default 10), `BENCH_CONCURRENCY` (default 4),
//! `BENCH_SHAPES` (default `trace,segments`), `BENCH_RATE` (spans/s offered; default 0,
//! as fast as the exports in flight are answered). With a rate, batch `n` leaves no
//! earlier than `n × 512 / rate` seconds after the start: a rate the server sustains
//! keeps the indexer caught up, one it does not shows as a send that falls behind its
//! schedule or an index that lags the send.
//!
//! Besides the rates, the bench prints the server's CPU per span over the whole run (the
//! send and the indexer's catching up), by thread: what a span costs, whatever the
//! machine's other load.
//!
//! Run: `cargo bench -p roentgen --bench otlp`

#![allow(missing_docs)]

#[path = "../tests/util/mod.rs"]
mod util;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prost::Message;
use roentgen_otlp::ExportTraceServiceRequest;
use roentgen_otlp::proto::collector::trace::v1::ExportTraceServiceResponse;
use roentgen_otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value as Av};
use roentgen_otlp::proto::resource::v1::Resource;
use roentgen_otlp::proto::trace::v1::span::SpanKind;
use roentgen_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use util::env_or;

const BATCH: usize = 512;
/// Stands for the sequence number in a template batch.
const MARKER: [u8; 4] = [0xa5, 0x5a, 0xc3, 0x3c];
/// Stands for the epoch second in the trace ids of a template batch: each send writes
/// the current second there, as an X-Ray SDK or exporter stamps a new trace, so a long
/// run spreads its traces over the seconds it lasts.
const TIME_MARKER: [u8; 4] = [0x5c, 0x3a, 0xa3, 0xc5];
const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Sends an already encoded `ExportTraceServiceRequest`; decodes the answer.
#[derive(Clone, Copy)]
struct RawCodec;
struct RawEncoder;
struct ResponseDecoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use prost::bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, tonic::Status> {
        ExportTraceServiceResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = ExportTraceServiceResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

fn s(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Av::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn i(key: &str, v: i64) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Av::IntValue(v)),
        }),
        ..Default::default()
    }
}

/// One batch of 512 spans; `seq` (4 bytes in every trace, span and parent id) makes
/// the ids unique; `second` is the time part of every trace id.
fn batch(shape: &str, seq: [u8; 4], second: [u8; 4]) -> ExportTraceServiceRequest {
    let now = util::now();
    let t = now * 1_000_000_000;
    let mut spans = Vec::with_capacity(BATCH);
    // `seq` (the marker in a template) is in every trace and span id.
    let trace_id = |n: u64| {
        let mut b = second.to_vec();
        b.extend_from_slice(&seq);
        b.extend_from_slice(&n.to_be_bytes());
        b
    };
    let span_id = |n: u64| {
        let mut b = seq.to_vec();
        b.extend_from_slice(&((n + 1) as u32).to_be_bytes());
        b
    };
    let base = |trace: &[u8], id: u64, parent: Option<u64>, kind: SpanKind, name: &str| Span {
        trace_id: trace.to_vec(),
        span_id: span_id(id),
        parent_span_id: parent.map(span_id).unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: t - 900_000_000 + id * 1000,
        end_time_unix_nano: t - 100_000_000,
        ..Default::default()
    };
    match shape {
        "segments" => {
            for n in 0..BATCH as u64 {
                let mut sp = base(
                    &trace_id(n),
                    n,
                    Some(n + 1_000_000),
                    SpanKind::Server,
                    "GET /",
                );
                sp.attributes = vec![
                    s("http.request.method", "GET"),
                    s("url.full", "http://api.internal/orders/42"),
                    i("http.response.status_code", 200),
                    s("user_agent.original", "bench/1.0"),
                ];
                spans.push(sp);
            }
        }
        _ => {
            for tr in 0..(BATCH / 8) as u64 {
                let trace = trace_id(tr);
                let root = tr * 8;
                let mut server = base(&trace, root, None, SpanKind::Server, "POST /checkout");
                server.attributes = vec![
                    s("http.request.method", "POST"),
                    s("url.full", "https://shop.example.com/checkout"),
                    i("http.response.status_code", 200),
                    s("user_agent.original", "bench/1.0"),
                    s("enduser.id", "alice"),
                ];
                spans.push(server);
                let mut http = base(&trace, root + 1, Some(root), SpanKind::Client, "GET");
                http.attributes = vec![
                    s("peer.service", "inventory"),
                    s("http.request.method", "GET"),
                    s("url.full", "http://inventory.internal/stock/42"),
                    i("http.response.status_code", 200),
                ];
                spans.push(http);
                let mut db = base(&trace, root + 2, Some(root), SpanKind::Client, "SELECT");
                db.attributes = vec![
                    s("db.system", "postgresql"),
                    s("db.name", "shop"),
                    s("db.statement", "SELECT * FROM carts WHERE id = $1"),
                    s("server.address", "db.internal"),
                ];
                spans.push(db);
                let mut aws = base(&trace, root + 3, Some(root), SpanKind::Client, "PutItem");
                aws.attributes = vec![
                    s("rpc.system", "aws-api"),
                    s("rpc.service", "DynamoDB"),
                    s("rpc.method", "PutItem"),
                    s("aws.region", "us-east-1"),
                ];
                spans.push(aws);
                for k in 4..8 {
                    let mut internal =
                        base(&trace, root + k, Some(root), SpanKind::Internal, "render");
                    internal.attributes = vec![s("template", "checkout.html"), i("items", 3)];
                    spans.push(internal);
                }
            }
        }
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    s("service.name", "checkout"),
                    s("service.version", "1.2.3"),
                    s("telemetry.sdk.name", "opentelemetry"),
                    s("telemetry.sdk.language", "rust"),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric(http: &str, name: &str) -> f64 {
    util::scrape(http, name).unwrap_or(-1.0)
}

fn run(shape: &str, seconds: u64, concurrency: u64, rate: u64) {
    let grpc = format!("127.0.0.1:{}", util::free_port());
    let mut server = util::Server::start_with(
        None,
        false,
        &["--log-level", "warn", "--otlp-grpc-addr", &grpc],
    );
    let http = server.http.clone();
    let acked = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let seq = Arc::new(AtomicU64::new(1));
    // The batch is encoded once; each send copies it and writes a fresh sequence number
    // over the marker in every id, so the client takes little of the two cores.
    let template = batch(shape, MARKER, TIME_MARKER).encode_to_vec();
    let slots_of = |marker: [u8; 4]| -> Vec<usize> {
        template
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == marker)
            .map(|(i, _)| i)
            .collect()
    };
    let (slots, second_slots) = (slots_of(MARKER), slots_of(TIME_MARKER));
    let ids_per_batch = match shape {
        "segments" => 3 * BATCH,
        _ => 2 * BATCH + BATCH / 8 * 7,
    };
    assert_eq!(
        slots.len(),
        ids_per_batch,
        "the marker is in every id and nowhere else"
    );
    assert_eq!(
        second_slots.len(),
        BATCH,
        "the time marker is in every trace id and nowhere else"
    );
    let template = Arc::new((template, slots, second_slots));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let pid = server.pid().as_raw() as u32;
    let cpu_before = util::thread_cpu(pid);
    let process_before = util::process_cpu(pid);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    // Seconds between batches at the offered rate (0: no schedule).
    let gap = if rate > 0 {
        BATCH as f64 / rate as f64
    } else {
        0.0
    };
    rt.block_on(async {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let mut client = tonic::client::Grpc::new(channel.clone());
            let (acked, failed, seq) = (acked.clone(), failed.clone(), seq.clone());
            let template = Arc::clone(&template);
            tasks.push(tokio::spawn(async move {
                while Instant::now() < deadline {
                    let n = seq.fetch_add(1, Ordering::Relaxed) as u32;
                    if gap > 0.0 {
                        let due = start + Duration::from_secs_f64((n - 1) as f64 * gap);
                        if due >= deadline {
                            break;
                        }
                        tokio::time::sleep_until(due.into()).await;
                    }
                    let mut body = template.0.clone();
                    for &at in &template.1 {
                        body[at..at + 4].copy_from_slice(&n.to_be_bytes());
                    }
                    let second = (util::now() as u32).to_be_bytes();
                    for &at in &template.2 {
                        body[at..at + 4].copy_from_slice(&second);
                    }
                    client.ready().await.expect("ready");
                    let sent = client
                        .unary(
                            tonic::Request::new(body),
                            tonic::codegen::http::uri::PathAndQuery::from_static(EXPORT),
                            RawCodec,
                        )
                        .await;
                    match sent {
                        Ok(r) => {
                            let rejected = r
                                .into_inner()
                                .partial_success
                                .map_or(0, |p| p.rejected_spans as u64);
                            acked.fetch_add(BATCH as u64 - rejected, Ordering::Relaxed);
                        }
                        Err(_) => {
                            failed.fetch_add(BATCH as u64, Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("sender");
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let spans = acked.load(Ordering::Relaxed);
    let docs = metric(&http, "roentgen_ingest_stored_segments_total");
    let converted = metric(&http, "roentgen_otlp_converted_spans_total");
    let rejected = metric(&http, "roentgen_otlp_rejected_spans_total");
    // Writes never wait for the indexer: how long after the send it finished.
    let (derived, moved) = util::index_settled(&http);
    let lag = (moved - start).as_secs_f64() - secs;
    let unparsed = metric(&http, "roentgen_index_unparsed_traces_total");
    let deferred = metric(&http, "roentgen_index_deferred_traces_total");
    let rss = util::status_mb(pid, "VmHWM");
    let cpu_after = util::thread_cpu(pid);
    let process = util::process_cpu(pid) - process_before;
    assert!(server.stop().success(), "roentgen did not stop cleanly");
    let offered = if rate > 0 {
        format!("{rate} spans/s offered")
    } else {
        "unpaced".to_string()
    };
    println!(
        "otlp/grpc {shape}: batches of {BATCH} spans, {concurrency} in flight, {seconds}s, {offered}"
    );
    println!(
        "  stored:   {spans} spans acknowledged ({converted:.0} converted, {rejected:.0} rejected, {} refused) in {} documents",
        failed.load(Ordering::Relaxed),
        docs
    );
    println!(
        "  rate:     {:.0} spans/s stored ({:.0} documents/s)",
        spans as f64 / secs,
        docs / secs
    );
    println!(
        "  indexed:  {derived:.0} derivations, the last {lag:.1} s after the send ended; \
         {:.0} spans/s indexed (start → last derivation)",
        spans as f64 / (secs + lag.max(0.0))
    );
    println!(
        "            {unparsed:.0} traces read back unparsed, {deferred:.0} found from markers"
    );
    println!("  peak RSS: {rss:.0} MB");
    // CPU of the whole run, send and catching up, per acknowledged span.
    let used: Vec<(String, f64)> = cpu_after
        .into_iter()
        .map(|(name, cpu)| {
            let before = cpu_before.get(&name).copied().unwrap_or(0.0);
            (name, cpu - before)
        })
        .collect();
    let total: f64 = used.iter().map(|(_, c)| c).sum();
    let per_span = |cpu: f64| cpu / (spans.max(1) as f64) * 1e6;
    println!(
        "  server CPU: {process:.1} s over the run, {:.2} µs per span ({total:.1} s in threads \
         still running at the end)",
        per_span(process)
    );
    for (name, cpu) in used.iter().filter(|(_, c)| *c >= 0.05) {
        println!(
            "    {name:<18} {cpu:>6.1} s  {:.2} µs per span",
            per_span(*cpu)
        );
    }
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let seconds = env_or("BENCH_SECONDS", 10);
    let concurrency = env_or("BENCH_CONCURRENCY", 4).max(1);
    let rate = env_or("BENCH_RATE", 0);
    let shapes = std::env::var("BENCH_SHAPES").unwrap_or_else(|_| "trace,segments".into());
    for shape in shapes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        run(shape, seconds, concurrency, rate);
    }
}
