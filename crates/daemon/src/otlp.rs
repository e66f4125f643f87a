//! OTLP in the daemon (`--otlp-http-addr`, `--otlp-grpc-addr`, both off by default):
//! spans are converted with `roentgen-otlp` and the documents go into the same buffer
//! as UDP datagrams, so they are batched, retried, spooled and counted alike. The
//! answer is sent once the documents are buffered (as UDP, the daemon holds them; the
//! endpoint acknowledges them later).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roentgen_otlp::http::{Format, MAX_BODY_BYTES};
use roentgen_otlp::{ExportTraceServiceRequest, ExportTraceServiceResponse, OtlpError};

use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// Converts OTLP requests into the daemon's buffer.
#[derive(Clone)]
pub struct OtlpReceiver {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) metrics: Arc<Metrics>,
}

impl std::fmt::Debug for OtlpReceiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpReceiver").finish_non_exhaustive()
    }
}

impl OtlpReceiver {
    fn refuse(&self, transport: &'static str, reason: &'static str) {
        self.metrics.otlp.refused(transport, reason);
    }

    /// Converts one request and buffers its documents.
    pub fn export(
        &self,
        transport: &'static str,
        request: &ExportTraceServiceRequest,
    ) -> ExportTraceServiceResponse {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let batch = roentgen_otlp::convert(request, now);
        let m = &self.metrics;
        m.otlp.received(transport, &batch);
        m.otlp.converted(transport, batch.converted_spans());
        let response = roentgen_otlp::http::response(&batch);
        let docs: Vec<crate::buffer::Doc> = batch
            .documents
            .into_iter()
            .map(|c| c.document.into_raw().into_boxed_str())
            .collect();
        // Every buffered document counts as received, as a datagram does.
        m.received.inc_by(docs.len() as u64);
        if !docs.is_empty() {
            self.pipeline.accept(docs);
        }
        response
    }
}

impl roentgen_otlp::grpc::Sink for OtlpReceiver {
    async fn export(
        &self,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, tonic::Status> {
        Ok(OtlpReceiver::export(self, "grpc", &request))
    }
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn error_response(format: Format, e: &OtlpError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let body = roentgen_otlp::http::error_body(format, status.as_u16(), &e.to_string());
    (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response()
}

/// `POST /v1/traces`.
async fn traces(State(otlp): State<OtlpReceiver>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)
        .await
        .ok();
    match roentgen_otlp::http::read_request(
        header_str(&parts.headers, header::CONTENT_TYPE),
        header_str(&parts.headers, header::CONTENT_ENCODING),
        bytes.as_deref(),
    ) {
        Ok((format, request)) => {
            let response = otlp.export("http", &request);
            (
                [(header::CONTENT_TYPE, format.content_type())],
                roentgen_otlp::http::encode_response(format, &response),
            )
                .into_response()
        }
        Err((format, e)) => {
            otlp.refuse("http", e.reason());
            error_response(format, &e)
        }
    }
}

/// The OTLP/HTTP routes.
pub fn router(otlp: OtlpReceiver) -> axum::Router {
    axum::Router::new()
        .route("/v1/traces", axum::routing::post(traces))
        .with_state(otlp)
}

/// Serves the gRPC `TraceService` on `listener` until `shutdown` completes.
pub async fn serve_grpc(
    listener: tokio::net::TcpListener,
    otlp: OtlpReceiver,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let service = roentgen_otlp::grpc::TraceGrpc::new(Arc::new(otlp), MAX_BODY_BYTES);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown,
        )
        .await
}
