//! OpenTelemetry traces in: OTLP requests to X-Ray segment documents.
//!
//! This crate owns everything between the bytes of an OTLP export and validated
//! [`roentgen_model::Document`]s: OTLP/HTTP content types, gzip and size limits
//! ([`http`]), the OTLP/gRPC `TraceService` over any [`grpc::Sink`] ([`grpc`]), the
//! conversion of spans by the rules of AWS's X-Ray exporter ([`convert`], table in
//! `docs/otlp.md`), trace-id mapping ([`ids`]), the partial-success answer and the
//! counters every receiver keeps ([`metrics`]).
//!
//! It does no I/O and depends on no Roentgen crate but `roentgen-model`: the server
//! (`roentgen serve`) and the daemon (`roentgen daemon`, `roentgen run`) bind the
//! sockets and hand the documents to their one ingest path (the ingest queue, the
//! daemon's buffer).

mod attrs;
pub mod convert;
pub mod error;
pub mod grpc;
pub mod http;
pub mod ids;
mod json;
pub mod metrics;

pub use convert::{Batch, Converted, Rejection, convert};
pub use error::OtlpError;
/// The OTLP protobuf types (re-exported so users need no direct dependency).
pub use opentelemetry_proto::tonic as proto;
pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
