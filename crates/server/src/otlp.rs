//! OTLP in `roentgen serve`: `POST /v1/traces` on the HTTP listener and the gRPC
//! `TraceService` on `--otlp-grpc-addr`.
//!
//! Both convert with `roentgen-otlp` and then take the path every other document takes:
//! the validation in the conversion (`Document::parse`), the retention policy
//! ([`Ingest::check_policy`]) and the ingest queue ([`Ingest::submit`], acknowledged once
//! durable). Spans that cannot convert or are refused by policy come back in the OTLP
//! partial-success answer, counted by reason; the rest land. A full queue answers 503 /
//! `UNAVAILABLE`, which OTLP exporters retry.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use roentgen_otlp::http::{Format, MAX_BODY_BYTES};
use roentgen_otlp::{ExportTraceServiceRequest, ExportTraceServiceResponse, OtlpError};
use roentgen_store::TenantId;

use crate::http::{QUEUE_WAIT, Scoped};
use crate::ingest::{Ingest, SubmitError};
use crate::metrics::{Metrics, SourceLabels};

/// Converts OTLP requests and submits their documents to the ingest queue.
#[derive(Clone)]
pub struct OtlpIngest {
    ingest: Ingest,
    metrics: Arc<Metrics>,
    tenant: TenantId,
}

impl std::fmt::Debug for OtlpIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpIngest").finish_non_exhaustive()
    }
}

impl OtlpIngest {
    /// Feeds `ingest` for `tenant`.
    pub fn new(ingest: Ingest, tenant: TenantId) -> Self {
        let metrics = Arc::clone(ingest.metrics());
        Self {
            ingest,
            metrics,
            tenant,
        }
    }

    /// Counts a request refused as a whole.
    pub fn refuse(&self, transport: &'static str, reason: &'static str) {
        self.metrics.otlp.refused(transport, reason);
    }

    /// Converts, checks and stores one request; returns the partial-success answer
    /// once the documents are durable.
    pub async fn export(
        &self,
        transport: &'static str,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, SubmitError> {
        let m = &self.metrics;
        let mut batch = roentgen_otlp::convert(&request, crate::ingest::now_seconds());
        drop(request);
        let mut i = 0;
        while i < batch.documents.len() {
            match self.ingest.check_policy(&batch.documents[i].document) {
                Ok(()) => i += 1,
                Err(reason) => {
                    m.reject("otlp", reason);
                    batch.reject_document(i, reason, self.ingest.policy_message(reason));
                }
            }
        }
        m.otlp.received(transport, &batch);
        if !batch.rejected.is_empty() {
            tracing::debug!(
                transport,
                rejected = batch.rejected_spans(),
                "otlp spans rejected: {}",
                batch.error_message()
            );
        }
        let response = roentgen_otlp::http::response(&batch);
        let converted = batch.converted_spans();
        let docs: Vec<_> = batch.documents.into_iter().map(|c| c.document).collect();
        m.received
            .get_or_create(&SourceLabels { source: "otlp" })
            .inc_by(docs.len() as u64);
        self.ingest.submit(&self.tenant, docs, QUEUE_WAIT).await?;
        m.otlp.converted(transport, converted);
        Ok(response)
    }
}

impl roentgen_otlp::grpc::Sink for OtlpIngest {
    async fn export(
        &self,
        request: ExportTraceServiceRequest,
    ) -> Result<ExportTraceServiceResponse, tonic::Status> {
        OtlpIngest::export(self, "grpc", request)
            .await
            .map_err(|e| {
                self.refuse("grpc", submit_reason(&e));
                tonic::Status::unavailable(format!("{e}; retry later"))
            })
    }
}

fn submit_reason(e: &SubmitError) -> &'static str {
    match e {
        SubmitError::QueueFull => "queue_full",
        SubmitError::ShuttingDown => "shutting_down",
        SubmitError::Store(_) | SubmitError::StoreUnavailable(_) => "store_error",
    }
}

/// Reasons a whole OTLP request is refused besides [`OtlpError::ALL_REASONS`].
pub const REQUEST_REASONS: &[&str] = &["queue_full", "shutting_down", "store_error"];

fn status_response(format: Format, status: StatusCode, message: &str) -> Response {
    let body = roentgen_otlp::http::error_body(format, status.as_u16(), message);
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, format.content_type())],
        body,
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    resp
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn error_response(format: Format, e: &OtlpError) -> Response {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    status_response(format, status, &e.to_string())
}

/// `POST /v1/traces`.
pub(crate) async fn traces(Scoped(state): Scoped, req: Request) -> Response {
    let otlp = OtlpIngest::new(state.ingest.clone(), state.tenant.clone());
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(Body::new(body), MAX_BODY_BYTES)
        .await
        .ok();
    let (format, request) = match roentgen_otlp::http::read_request(
        header_str(&parts.headers, header::CONTENT_TYPE),
        header_str(&parts.headers, header::CONTENT_ENCODING),
        bytes.as_deref(),
    ) {
        Ok(read) => read,
        Err((format, e)) => {
            otlp.refuse("http", e.reason());
            return error_response(format, &e);
        }
    };
    drop(bytes);
    match otlp.export("http", request).await {
        Ok(response) => {
            let body = roentgen_otlp::http::encode_response(format, &response);
            ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
        }
        Err(e) => {
            otlp.refuse("http", submit_reason(&e));
            status_response(
                format,
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("{e}; retry later"),
            )
        }
    }
}

/// Serves the gRPC `TraceService` on `listener` (plain TCP or TLS, under its connection
/// limits) until `shutdown` completes.
pub async fn serve_grpc<L>(
    listener: crate::limits::LimitedListener<L>,
    otlp: OtlpIngest,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let incoming = listener.into_grpc_incoming();
    let service = roentgen_otlp::grpc::TraceGrpc::new(Arc::new(otlp), MAX_BODY_BYTES);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
}
