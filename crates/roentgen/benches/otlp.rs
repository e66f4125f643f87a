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
//! `BENCH_SHAPES` (default `trace,segments`).
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
/// the ids unique.
fn batch(shape: &str, seq: [u8; 4]) -> ExportTraceServiceRequest {
    let now = util::now();
    let t = now * 1_000_000_000;
    let mut spans = Vec::with_capacity(BATCH);
    // `seq` (the marker in a template) is in every trace and span id.
    let trace_id = |n: u64| {
        let mut b = (now as u32).to_be_bytes().to_vec();
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

fn run(shape: &str, seconds: u64, concurrency: u64) {
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
    let template = batch(shape, MARKER).encode_to_vec();
    let slots: Vec<usize> = template
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == MARKER)
        .map(|(i, _)| i)
        .collect();
    let ids_per_batch = match shape {
        "segments" => 3 * BATCH,
        _ => 2 * BATCH + BATCH / 8 * 7,
    };
    assert_eq!(
        slots.len(),
        ids_per_batch,
        "the marker is in every id and nowhere else"
    );
    let template = Arc::new((template, slots));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
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
                    let mut body = template.0.clone();
                    for &at in &template.1 {
                        body[at..at + 4].copy_from_slice(&n.to_be_bytes());
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
    let rss = util::status_mb(server.pid().as_raw() as u32, "VmHWM");
    assert!(server.stop().success(), "roentgen did not stop cleanly");
    println!("otlp/grpc {shape}: batches of {BATCH} spans, {concurrency} in flight, {seconds}s");
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
    println!("  peak RSS: {rss:.0} MB");
}

fn main() {
    // `cargo bench` passes --bench; ignore arguments.
    let seconds = env_or("BENCH_SECONDS", 10);
    let concurrency = env_or("BENCH_CONCURRENCY", 4).max(1);
    let shapes = std::env::var("BENCH_SHAPES").unwrap_or_else(|_| "trace,segments".into());
    for shape in shapes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        run(shape, seconds, concurrency);
    }
}
