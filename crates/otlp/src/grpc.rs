//! OTLP/gRPC: the `TraceService/Export` method as a tower service for any [`Sink`].
//!
//! The generated server of `opentelemetry-proto` answers a body that is not valid
//! protobuf with `INTERNAL`; the OTLP specification wants `INVALID_ARGUMENT` (a client
//! must not retry it), so this service decodes with its own codec. Everything else is
//! tonic's: framing, gzip (`grpc-encoding: gzip`), the message size limit
//! (`RESOURCE_EXHAUSTED`) and status trailers. The server and the daemon each serve it
//! on their own listener.

use std::future::Future;
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::{BoxFuture, Context, EnabledCompressionEncodings, Poll, StdError, http};
use tonic::{Status, server::NamedService};

/// The full gRPC name of the service.
pub const SERVICE_NAME: &str = "opentelemetry.proto.collector.trace.v1.TraceService";
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Where exported spans go.
pub trait Sink: Send + Sync + 'static {
    /// Converts and stores (or buffers) one request; the answer carries the partial
    /// success, an error status refuses the whole request.
    fn export(
        &self,
        request: ExportTraceServiceRequest,
    ) -> impl Future<Output = Result<ExportTraceServiceResponse, Status>> + Send;
}

/// The gRPC service over a sink.
pub struct TraceGrpc<S> {
    sink: Arc<S>,
    max_message_bytes: usize,
}

impl<S> Clone for TraceGrpc<S> {
    fn clone(&self) -> Self {
        Self {
            sink: Arc::clone(&self.sink),
            max_message_bytes: self.max_message_bytes,
        }
    }
}

impl<S> std::fmt::Debug for TraceGrpc<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceGrpc")
            .field("max_message_bytes", &self.max_message_bytes)
            .finish_non_exhaustive()
    }
}

impl<S: Sink> TraceGrpc<S> {
    /// A service taking messages up to `max_message_bytes` (decompressed).
    pub fn new(sink: Arc<S>, max_message_bytes: usize) -> Self {
        Self {
            sink,
            max_message_bytes,
        }
    }
}

impl<S> NamedService for TraceGrpc<S> {
    const NAME: &'static str = SERVICE_NAME;
}

/// Protobuf codec whose decode errors are `INVALID_ARGUMENT`.
#[derive(Debug, Default, Clone, Copy)]
struct OtlpCodec;

#[derive(Debug, Default, Clone, Copy)]
struct OtlpEncoder;

#[derive(Debug, Default, Clone, Copy)]
struct OtlpDecoder;

impl Encoder for OtlpEncoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn encode(&mut self, item: Self::Item, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst)
            .map_err(|e| Status::internal(format!("encode the response: {e}")))
    }
}

impl Decoder for OtlpDecoder {
    type Item = ExportTraceServiceRequest;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportTraceServiceRequest::decode(src)
            .map(Some)
            .map_err(|e| {
                Status::invalid_argument(format!(
                    "body is not a valid protobuf ExportTraceServiceRequest: {e}"
                ))
            })
    }
}

impl Codec for OtlpCodec {
    type Encode = ExportTraceServiceResponse;
    type Decode = ExportTraceServiceRequest;
    type Encoder = OtlpEncoder;
    type Decoder = OtlpDecoder;

    fn encoder(&mut self) -> OtlpEncoder {
        OtlpEncoder
    }

    fn decoder(&mut self) -> OtlpDecoder {
        OtlpDecoder
    }
}

struct Export<S>(Arc<S>);

impl<S: Sink> tonic::server::UnaryService<ExportTraceServiceRequest> for Export<S> {
    type Response = ExportTraceServiceResponse;
    type Future = BoxFuture<tonic::Response<Self::Response>, Status>;

    fn call(&mut self, request: tonic::Request<ExportTraceServiceRequest>) -> Self::Future {
        let sink = Arc::clone(&self.0);
        Box::pin(async move {
            sink.export(request.into_inner())
                .await
                .map(tonic::Response::new)
        })
    }
}

impl<S, B> tonic::codegen::Service<http::Request<B>> for TraceGrpc<S>
where
    S: Sink,
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != EXPORT_PATH {
            return Box::pin(async move {
                Ok(Status::unimplemented(format!("no method {}", req.uri().path())).into_http())
            });
        }
        let sink = Arc::clone(&self.sink);
        let limit = self.max_message_bytes;
        Box::pin(async move {
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            let mut grpc = tonic::server::Grpc::new(OtlpCodec)
                .apply_compression_config(accept, EnabledCompressionEncodings::default())
                .apply_max_message_size_config(Some(limit), None);
            Ok(grpc.unary(Export(sink), req).await)
        })
    }
}
