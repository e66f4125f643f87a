//! In-process cost of the OTLP pieces for one batch of 512 spans (64 traces of 8
//! spans): protobuf decode, conversion (with validation of every document, from the
//! typed view built beside the text), and for comparison what parsing the documents'
//! text again would cost.
//!
//! Run: `cargo bench -p roentgen-otlp --bench convert`
#![allow(missing_docs)]

use std::time::Instant;

/// The allocator of the `roentgen` binary, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use prost::Message;
use roentgen_otlp::ExportTraceServiceRequest;
use roentgen_otlp::proto::common::v1::{AnyValue, KeyValue, any_value::Value as Av};
use roentgen_otlp::proto::resource::v1::Resource;
use roentgen_otlp::proto::trace::v1::span::SpanKind;
use roentgen_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn s(key: &str, v: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(Av::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn batch(now: u64, segments_only: bool) -> ExportTraceServiceRequest {
    let t = now * 1_000_000_000;
    let mut spans = Vec::new();
    for n in 0..512u64 {
        let root = n / 8 * 8;
        let is_root = segments_only || n == root;
        let mut trace = (now as u32).to_be_bytes().to_vec();
        trace.extend_from_slice(&[7; 4]);
        trace.extend_from_slice(&(if segments_only { n } else { root }).to_be_bytes());
        spans.push(Span {
            trace_id: trace,
            span_id: (n + 1).to_be_bytes().to_vec(),
            parent_span_id: if is_root {
                vec![]
            } else {
                (root + 1).to_be_bytes().to_vec()
            },
            name: "op".into(),
            kind: if is_root {
                SpanKind::Server
            } else {
                SpanKind::Client
            } as i32,
            start_time_unix_nano: t - 1_000_000_000,
            end_time_unix_nano: t - 500_000_000,
            attributes: vec![
                s("http.request.method", "GET"),
                s("url.full", "http://inventory.internal/stock/42"),
                s("peer.service", "inventory"),
                s("user_agent.original", "bench/1.0"),
            ],
            ..Default::default()
        });
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    s("service.name", "checkout"),
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

fn main() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for (name, segments_only) in [
        ("trace (8 spans per document)", false),
        ("segments (1 span per document)", true),
    ] {
        let req = batch(now, segments_only);
        let bytes = req.encode_to_vec();
        let rounds = 200;
        let started = Instant::now();
        for _ in 0..rounds {
            let _ = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("decode");
        }
        let decode = started.elapsed().as_secs_f64() / rounds as f64;
        let started = Instant::now();
        let mut docs = 0;
        for _ in 0..rounds {
            docs = roentgen_otlp::convert(&req, now).documents.len();
        }
        let convert = started.elapsed().as_secs_f64() / rounds as f64;
        let raws: Vec<String> = roentgen_otlp::convert(&req, now)
            .documents
            .iter()
            .map(|d| d.document.raw().to_string())
            .collect();
        let started = Instant::now();
        for _ in 0..rounds {
            for r in &raws {
                let _ = roentgen_model::Document::parse(r.as_str()).expect("valid");
            }
        }
        let validate = started.elapsed().as_secs_f64() / rounds as f64;
        println!(
            "{name}: decode {:.0} µs, convert {:.0} µs (with validation; parsing the documents' text again would add {:.0} µs) per 512 spans ({docs} documents) = {:.0} spans/s on one core",
            decode * 1e6,
            convert * 1e6,
            validate * 1e6,
            512.0 / (decode + convert)
        );
    }
}
