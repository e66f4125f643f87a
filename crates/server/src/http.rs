//! The X-Ray API over HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use roentgen_api::convert::trace_summary;
use roentgen_api::{
    ApiError, BatchGetTracesRequest, BatchGetTracesResult, ERROR_TYPE_HEADER,
    GetTraceSummariesRequest, GetTraceSummariesResult, PutTraceSegmentsRequest,
    PutTraceSegmentsResult, TimeRangeType as WireRange, UnprocessedTraceSegment,
};
use roentgen_model::{Document, TraceId};
use roentgen_store::{Store, StoreError, SummaryQuery, TenantId, TimeRangeType};
use serde::Serialize;

use crate::ingest::{Ingest, SubmitError};
use crate::metrics::{Metrics, RequestLabels};

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Most summaries in one `GetTraceSummaries` page.
pub const SUMMARIES_PER_PAGE: usize = 100;
/// Most summaries examined for one page before a short page and a token come back.
pub const SUMMARY_SCAN_BUDGET: usize = 50_000;
/// Most trace ids in one `BatchGetTraces` call (the X-Ray service takes 5; we take more
/// and say so).
pub const MAX_BATCH_GET_IDS: usize = 100;
/// How long `PutTraceSegments` waits for room in the ingest queue before answering
/// `ThrottledException`.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// What every handler needs.
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The ingest queue.
    pub ingest: Ingest,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The tenant of unauthenticated requests.
    pub tenant: TenantId,
    /// Who may call: anyone, holders of keys, or (on the daemon-protocol TCP port
    /// under `--auth`) a fixed caller.
    pub auth: Auth,
    /// Sampling state of the tenants other than `tenant`, made on first use (as many
    /// as the key file names).
    pub tenant_sampling: Arc<crate::sampling::TenantSampling>,
    /// Sampling quotas and statistics, shared by every listener.
    pub sampling: Arc<crate::sampling::Sampling>,
    /// Console sessions (under `--auth`).
    pub sessions: Arc<crate::session::Sessions>,
}

/// How a listener authenticates requests.
#[derive(Clone, Debug, Default)]
pub enum Auth {
    /// No `--auth`: every request acts for [`AppState::tenant`] with every right.
    #[default]
    Open,
    /// `--auth`: every request but `GET`/`HEAD` must be signed by one of the keys.
    Keys(Arc<crate::auth::Keys>),
    /// The X-Ray daemon's TCP proxy port under `--auth`: SDKs call it unsigned (the
    /// official daemon signs on their behalf), so every request acts as this caller,
    /// whose role limits what it may do.
    Proxy(crate::auth::Caller),
}

/// A handler error: an AWS-shaped error response.
#[derive(Debug)]
pub struct AwsError(pub ApiError);

impl From<ApiError> for AwsError {
    fn from(e: ApiError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for AwsError {
    fn from(e: StoreError) -> Self {
        if e.is_client_error() {
            return Self(ApiError::invalid_request(e.to_string()));
        }
        tracing::error!("failed to serve request from the store: {e}");
        if e.is_retryable() {
            Self(ApiError::service_unavailable(e.to_string()))
        } else {
            Self(ApiError::internal_failure(
                "the store failed; see the server log",
            ))
        }
    }
}

impl IntoResponse for AwsError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, self.0.to_body()).into_response();
        let headers = resp.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
        if let Ok(v) = HeaderValue::from_str(self.0.code()) {
            headers.insert(ERROR_TYPE_HEADER, v);
        }
        resp
    }
}

/// A JSON request body decoded as the X-Ray API does: every rejection is AWS-shaped.
pub struct AwsJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for AwsJson<T> {
    type Rejection = AwsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AwsError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(format!(
                    "request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ApiError::serialization(format!("failed to read request body: {e}"))
            }
        })?;
        Ok(Self(roentgen_api::decode_request(&bytes)?))
    }
}

pub(crate) fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => AwsError(ApiError::internal_failure(format!(
            "failed to encode response: {e}"
        )))
        .into_response(),
    }
}

pub(crate) fn now_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The routes of the X-Ray API, health and metrics.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/TraceSegments", post(put_trace_segments))
        .route("/Traces", post(batch_get_traces))
        .route("/TraceSummaries", post(get_trace_summaries))
        .route("/TelemetryRecords", post(put_telemetry_records))
        .route("/ServiceGraph", post(get_service_graph))
        .route("/TraceGraph", post(get_trace_graph))
        .route(
            "/TimeSeriesServiceStatistics",
            post(get_time_series_service_statistics),
        )
        .route("/CreateGroup", post(crate::groups::create_group))
        .route("/GetGroup", post(crate::groups::get_group))
        .route("/Groups", post(crate::groups::get_groups))
        .route("/UpdateGroup", post(crate::groups::update_group))
        .route("/DeleteGroup", post(crate::groups::delete_group))
        .route(
            "/CreateSamplingRule",
            post(crate::sampling::create_sampling_rule),
        )
        .route(
            "/UpdateSamplingRule",
            post(crate::sampling::update_sampling_rule),
        )
        .route(
            "/DeleteSamplingRule",
            post(crate::sampling::delete_sampling_rule),
        )
        .route(
            "/GetSamplingRules",
            post(crate::sampling::get_sampling_rules),
        )
        .route(
            "/SamplingTargets",
            post(crate::sampling::get_sampling_targets),
        )
        .route(
            "/SamplingStatisticSummaries",
            post(crate::sampling::get_sampling_statistic_summaries),
        )
        .route("/v1/traces", post(crate::otlp::traces))
        .route(
            crate::session::PATH,
            get(crate::session::info)
                .post(crate::session::sign_in)
                .delete(crate::session::sign_out),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(unknown_operation)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .with_state(state)
}

fn operation_of(path: &str) -> &'static str {
    match path {
        "/TraceSegments" => "PutTraceSegments",
        "/Traces" => "BatchGetTraces",
        "/TraceSummaries" => "GetTraceSummaries",
        "/TelemetryRecords" => "PutTelemetryRecords",
        "/ServiceGraph" => "GetServiceGraph",
        "/TraceGraph" => "GetTraceGraph",
        "/TimeSeriesServiceStatistics" => "GetTimeSeriesServiceStatistics",
        "/CreateGroup" => "CreateGroup",
        "/GetGroup" => "GetGroup",
        "/Groups" => "GetGroups",
        "/UpdateGroup" => "UpdateGroup",
        "/DeleteGroup" => "DeleteGroup",
        "/CreateSamplingRule" => "CreateSamplingRule",
        "/UpdateSamplingRule" => "UpdateSamplingRule",
        "/DeleteSamplingRule" => "DeleteSamplingRule",
        "/GetSamplingRules" => "GetSamplingRules",
        "/SamplingTargets" => "GetSamplingTargets",
        "/SamplingStatisticSummaries" => "GetSamplingStatisticSummaries",
        "/v1/traces" => "OtlpExport",
        "/healthz" => "healthz",
        "/metrics" => "metrics",
        crate::session::PATH => "ConsoleSession",
        p if crate::console::is_console_path(p) => "console",
        _ => "other",
    }
}

/// With `--auth`, verifies the signature of every request but `GET`/`HEAD` (health,
/// metrics, console files) before any handler runs, then checks the key's role for
/// the operation and hands the [`Caller`](crate::auth::Caller) to the handlers.
async fn authenticate(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    if matches!(state.auth, Auth::Open)
        || matches!(
            *req.method(),
            axum::http::Method::GET | axum::http::Method::HEAD
        )
    {
        return next.run(req).await;
    }
    let refuse = |e: ApiError| {
        state.metrics.auth_failure(e.kind());
        AwsError(e).into_response()
    };
    let allowed = |caller: &crate::auth::Caller, path: &str| {
        let operation = operation_of(path);
        match crate::auth::role_for(operation) {
            Some(needed) if !caller.role.allows(needed) => Err(ApiError::new(
                roentgen_api::ErrorCode::AccessDenied,
                format!(
                    "User: {} (role {}) is not authorized to perform: xray:{operation}",
                    caller.key_id, caller.role
                ),
            )),
            _ => Ok(()),
        }
    };
    let keys = match &state.auth {
        Auth::Open => return next.run(req).await,
        Auth::Proxy(caller) => {
            if let Err(e) = allowed(caller, req.uri().path()) {
                return refuse(e);
            }
            let mut req = req;
            req.extensions_mut().insert(caller.clone());
            return next.run(req).await;
        }
        Auth::Keys(keys) => Arc::clone(keys),
    };
    // The console signs in and out without a signature; a cookie stands in for one.
    let signed = req.headers().contains_key(header::AUTHORIZATION)
        || req
            .uri()
            .query()
            .is_some_and(|q| q.contains("X-Amz-Signature="));
    let path = req.uri().path();
    let token = if signed {
        None
    } else {
        crate::session::token_of(req.headers())
    };
    if !signed && (path == crate::session::PATH || token.is_some()) {
        if !crate::session::has_csrf_header(req.headers()) {
            return refuse(crate::session::csrf_refusal());
        }
        // Sign-in and sign-out: their handlers judge the key pair or the cookie.
        let Some(token) = token.filter(|_| path != crate::session::PATH) else {
            return next.run(req).await;
        };
        let caller = match state.sessions.check(&keys, &token, SystemTime::now()) {
            Ok(session) => session.caller,
            Err(e) => return refuse(e),
        };
        if let Err(e) = allowed(&caller, path) {
            return refuse(e);
        }
        let mut req = req;
        req.extensions_mut().insert(caller);
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    // The signature covers the body: read it whole, within the body limit.
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return refuse(ApiError::payload_too_large(format!(
            "request body is larger than {MAX_BODY_BYTES} bytes, or was cut off"
        )));
    };
    let signed = crate::auth::SignedRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query(),
        headers: &parts.headers,
        body: &bytes,
    };
    let caller = match crate::auth::verify(&keys, &signed, SystemTime::now()) {
        Ok(c) => c,
        Err(e) => return refuse(e),
    };
    if let Err(e) = allowed(&caller, parts.uri.path()) {
        return refuse(e);
    }
    parts.extensions.insert(caller);
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// The state a handler acts with: the server's, scoped to the tenant of the request's
/// verified key (its tenant and that tenant's sampling state), or the server's own
/// tenant without `--auth`.
pub struct Scoped(pub AppState);

impl axum::extract::FromRequestParts<AppState> for Scoped {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let mut scoped = state.clone();
        if let Some(caller) = parts.extensions.get::<crate::auth::Caller>()
            && caller.tenant != state.tenant
        {
            scoped.sampling = state.tenant_sampling.of(&caller.tenant);
            scoped.tenant = caller.tenant.clone();
        }
        Ok(Scoped(scoped))
    }
}

async fn count_requests(
    State(state): State<AppState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    let operation = operation_of(req.uri().path());
    let resp = next.run(req).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            operation,
            status: resp.status().as_u16(),
        })
        .inc();
    resp
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}

/// Routes nothing else answers: the console's pages and assets for `GET`, else an
/// `UnknownOperationException`.
async fn unknown_operation(req: Request) -> Response {
    if let Some(page) = crate::console::serve(&req) {
        return page;
    }
    AwsError(ApiError::unknown_operation(format!(
        "no X-Ray operation at {} {}",
        req.method(),
        req.uri().path()
    )))
    .into_response()
}

/// The `id` of a refused document, when it can be read at all.
fn document_id(raw: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<serde_json::Value>,
    }
    match serde_json::from_str::<IdOnly>(raw).ok()?.id? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

async fn put_trace_segments(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<PutTraceSegmentsRequest>,
) -> Result<Response, AwsError> {
    req.validate()?;
    let m = &state.metrics;
    m.received
        .get_or_create(&crate::metrics::SourceLabels { source: "api" })
        .inc_by(req.trace_segment_documents.len() as u64);
    let mut good = Vec::with_capacity(req.trace_segment_documents.len());
    let mut unprocessed = Vec::new();
    for raw in req.trace_segment_documents {
        match Document::parse(raw.as_str()) {
            Ok(doc) => match state.ingest.check_policy(&doc) {
                Ok(()) => good.push(doc),
                Err(reason) => {
                    m.reject("api", reason);
                    unprocessed.push(UnprocessedTraceSegment {
                        id: Some(doc.id().to_string()),
                        error_code: Some(reason.to_string()),
                        message: Some(state.ingest.policy_message(reason)),
                    });
                }
            },
            Err(e) => {
                m.reject("api", e.error_code());
                unprocessed.push(UnprocessedTraceSegment {
                    id: document_id(&raw),
                    error_code: Some(e.error_code().to_string()),
                    message: Some(e.to_string()),
                });
            }
        }
    }
    match state.ingest.submit(&state.tenant, good, QUEUE_WAIT).await {
        Ok(()) => {}
        Err(SubmitError::QueueFull) => {
            return Err(ApiError::throttled("ingest queue is full; retry with backoff").into());
        }
        Err(SubmitError::ShuttingDown) => {
            return Err(ApiError::service_unavailable("server is shutting down").into());
        }
        Err(SubmitError::StoreUnavailable(e)) => {
            return Err(ApiError::throttled(format!(
                "the store is unavailable ({e}); retry with backoff"
            ))
            .into());
        }
        Err(SubmitError::Store(e)) => {
            return Err(
                ApiError::internal_failure(format!("failed to store segments: {e}")).into(),
            );
        }
    }
    Ok(json(&PutTraceSegmentsResult {
        unprocessed_trace_segments: unprocessed,
    }))
}

/// Daemons report their counters once a minute; Roentgen adds them up on `/metrics`
/// (`roentgen_telemetry_*`), so losses upstream of the server are visible here.
async fn put_telemetry_records(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<roentgen_api::telemetry::PutTelemetryRecordsRequest>,
) -> Result<Response, AwsError> {
    req.validate()?;
    let m = &state.metrics;
    for record in &req.telemetry_records {
        m.telemetry_records.inc();
        let counts = [
            ("received", record.segments_received_count),
            ("sent", record.segments_sent_count),
            ("spillover", record.segments_spillover_count),
            ("rejected", record.segments_rejected_count),
        ];
        for (kind, value) in counts {
            if let Some(v) = value.filter(|v| *v > 0) {
                m.telemetry_segments
                    .get_or_create(&crate::metrics::KindLabels { kind })
                    .inc_by(v as u64);
            }
        }
    }
    Ok(json(&serde_json::json!({})))
}

/// The service map of a window, from the per-minute rollups only: its cost grows with
/// minutes × nodes and edges, never with the number of segments.
async fn get_service_graph(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<roentgen_api::graph::GetServiceGraphRequest>,
) -> Result<Response, AwsError> {
    req.validate()?;
    let (start, end) = (req.start_time.as_f64(), req.end_time.as_f64());
    if end < start {
        return Err(ApiError::invalid_request(format!(
            "EndTime {end} is before StartTime {start}"
        ))
        .into());
    }
    let group_filter = if req.group_name.is_some() || req.group_arn.is_some() {
        let reference = roentgen_api::groups::GroupRef {
            group_name: req.group_name.clone(),
            group_arn: req.group_arn.clone(),
        };
        crate::groups::resolve(&state, &reference).await?.filter
    } else {
        None
    };
    let services = match group_filter {
        None => {
            let (first, last) = (start.max(0.0) as u64 / 60, end.max(0.0) as u64 / 60);
            // One row per node and edge, summed by the store (from hour rows inside the
            // window).
            let rows = state
                .store
                .rollups(&state.tenant, first, last, u64::MAX)
                .await?;
            roentgen_api::convert::service_graph(
                rows.into_iter()
                    .map(|r| (r.minute, r.last_minute, r.key, r.stats)),
                (start, end),
            )
        }
        Some(filter) => group_graph(&state, start, end, filter).await?,
    };
    Ok(json(&roentgen_api::graph::GetServiceGraphResult {
        start_time: Some(req.start_time),
        end_time: Some(req.end_time),
        services,
        contains_old_group_versions: Some(false),
        next_token: None,
    }))
}

/// Statistics of the selected nodes or edges per period, from the rollups (or, for a
/// group, from the graph statistics of the traces its filter matches).
async fn get_time_series_service_statistics(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<roentgen_api::graph::GetTimeSeriesServiceStatisticsRequest>,
) -> Result<Response, AwsError> {
    use roentgen_api::graph::{GetTimeSeriesServiceStatisticsResult, TimeSeriesServiceStatistics};
    use roentgen_store::EntitySelector;

    let (start, end) = (req.start_time.as_f64(), req.end_time.as_f64());
    if !start.is_finite() || !end.is_finite() || end < start {
        return Err(ApiError::invalid_request("StartTime must not be after EndTime").into());
    }
    let period = req.period.unwrap_or(60);
    if period < 60 || period % 60 != 0 {
        return Err(ApiError::invalid_request(format!(
            "Period {period} must be a positive multiple of 60 seconds"
        ))
        .into());
    }
    let selector = EntitySelector::parse(req.entity_selector_expression.as_deref())?;
    let group_filter = if req.group_name.is_some() || req.group_arn.is_some() {
        let reference = roentgen_api::groups::GroupRef {
            group_name: req.group_name.clone(),
            group_arn: req.group_arn.clone(),
        };
        crate::groups::resolve(&state, &reference).await?.filter
    } else {
        None
    };
    let rows: Vec<(u64, roentgen_model::GraphKey, roentgen_model::Stats)> = match group_filter {
        None => {
            let (first, last) = (start.max(0.0) as u64 / 60, end.max(0.0) as u64 / 60);
            // Hour rows fall into one period when the period is whole hours.
            let step = if period % 3600 == 0 { 60 } else { 1 };
            state
                .store
                .rollups(&state.tenant, first, last, step)
                .await?
                .into_iter()
                .map(|r| (r.minute, r.key, r.stats))
                .collect()
        }
        Some(filter) => group_rows(&state, start, end, filter)
            .await?
            .into_iter()
            .map(|((minute, key), stats)| (minute, key, stats))
            .collect(),
    };
    let period_minutes = (period / 60) as u64;
    let mut points: std::collections::BTreeMap<u64, roentgen_model::Stats> = Default::default();
    for (minute, key, stats) in rows {
        if selector.selects(&key) {
            let bucket = minute / period_minutes * period_minutes;
            points.entry(bucket).or_default().add(&stats, 1);
        }
    }
    let edge = !matches!(selector, EntitySelector::Service { .. });
    let series = points
        .iter()
        .map(|(minute, stats)| TimeSeriesServiceStatistics {
            timestamp: Some(roentgen_api::EpochSeconds((minute * 60) as f64)),
            edge_summary_statistics: edge.then(|| roentgen_api::convert::statistics(stats)),
            service_summary_statistics: (!edge).then(|| roentgen_api::convert::statistics(stats)),
            response_time_histogram: roentgen_api::convert::histogram(stats),
        })
        .collect();
    Ok(json(&GetTimeSeriesServiceStatisticsResult {
        time_series_service_statistics: series,
        contains_old_group_versions: Some(false),
        next_token: None,
    }))
}

/// The graph of the given traces, from their summaries.
async fn get_trace_graph(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<roentgen_api::graph::GetTraceGraphRequest>,
) -> Result<Response, AwsError> {
    if req.trace_ids.len() > MAX_BATCH_GET_IDS {
        return Err(ApiError::invalid_request(format!(
            "TraceIds has {} ids; at most {MAX_BATCH_GET_IDS} per call",
            req.trace_ids.len()
        ))
        .into());
    }
    let ids: Vec<TraceId> = req
        .trace_ids
        .iter()
        .filter_map(|t| t.parse::<TraceId>().ok())
        .collect();
    let found = state.store.get_traces(&state.tenant, &ids).await?;
    let mut rows = roentgen_model::GraphContribution::new();
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for t in &found {
        if let Some(s) = &t.summary {
            lo = lo.min(s.summary.start_time);
            hi = hi.max(s.summary.end_time.unwrap_or(s.summary.start_time));
            for (key, stats) in roentgen_model::graph_of_summary(&s.summary) {
                rows.entry(key).or_default().add(&stats, 1);
            }
        }
    }
    let window = if lo.is_finite() {
        (lo, hi.max(lo) + 60.0)
    } else {
        (0.0, 0.0)
    };
    let services = roentgen_api::convert::service_graph(
        rows.into_iter()
            .map(|((minute, key), stats)| (minute, minute, key, stats)),
        (window.0.floor() - 60.0, window.1),
    );
    Ok(json(&roentgen_api::graph::GetTraceGraphResult {
        services,
        next_token: None,
    }))
}

/// Most traces a group's service graph adds up before it answers with what it has.
const GROUP_GRAPH_MAX_TRACES: usize = 2_000_000;

/// A group's service graph: the rollups hold every trace, so a group's graph adds up
/// the graph statistics of the traces its filter matches (each trace in the minute it
/// started; see `roentgen_model::graph_of_summary`). Its cost grows with the traces in
/// the window, unlike the ungrouped graph.
async fn group_graph(
    state: &AppState,
    start: f64,
    end: f64,
    filter: String,
) -> Result<Vec<roentgen_api::graph::Service>, AwsError> {
    let rows = group_rows(state, start, end, filter).await?;
    Ok(roentgen_api::convert::service_graph(
        rows.into_iter()
            .map(|((minute, key), stats)| (minute, minute, key, stats)),
        (start, end),
    ))
}

/// The graph statistics of the traces in the window that `filter` matches.
async fn group_rows(
    state: &AppState,
    start: f64,
    end: f64,
    filter: String,
) -> Result<roentgen_model::GraphContribution, AwsError> {
    let groups = crate::groups::definitions(state).await?;
    let mut rows = roentgen_model::GraphContribution::new();
    let mut cursor = None;
    let mut seen = 0usize;
    loop {
        let page = state
            .store
            .query_summaries(
                &state.tenant,
                SummaryQuery {
                    start,
                    end,
                    time_range_type: TimeRangeType::TraceId,
                    service: None,
                    groups: groups.clone(),
                    filter: Some(filter.clone()),
                    predicate: None,
                    cursor,
                    limit: 1000,
                    scan_budget: SUMMARY_SCAN_BUDGET,
                },
            )
            .await?;
        for s in &page.summaries {
            for (key, stats) in roentgen_model::graph_of_summary(&s.summary) {
                rows.entry(key).or_default().add(&stats, 1);
            }
        }
        seen += page.scanned;
        match page.next {
            Some(next) if seen < GROUP_GRAPH_MAX_TRACES => cursor = Some(next),
            Some(_) => {
                tracing::warn!(seen, "group statistics stopped at their trace limit");
                break;
            }
            None => break,
        }
    }
    Ok(rows)
}

async fn batch_get_traces(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<BatchGetTracesRequest>,
) -> Result<Response, AwsError> {
    req.validate()?;
    if req.trace_ids.len() > MAX_BATCH_GET_IDS {
        return Err(ApiError::invalid_request(format!(
            "TraceIds has {} ids; at most {MAX_BATCH_GET_IDS} per call",
            req.trace_ids.len()
        ))
        .into());
    }
    let mut ids = Vec::new();
    let mut unprocessed = Vec::new();
    for text in &req.trace_ids {
        match text.parse::<TraceId>() {
            Ok(id) if !ids.contains(&id) => ids.push(id),
            Ok(_) => {}
            Err(_) => unprocessed.push(text.clone()),
        }
    }
    let found = state.store.get_traces(&state.tenant, &ids).await?;
    for id in &ids {
        if !found.iter().any(|t| t.trace_id == *id) {
            unprocessed.push(id.to_string());
        }
    }
    let traces = found
        .into_iter()
        .map(|t| roentgen_api::Trace {
            id: Some(t.trace_id.to_string()),
            duration: t.summary.as_ref().and_then(|s| s.summary.duration),
            limit_exceeded: Some(false),
            segments: t
                .documents
                .into_iter()
                .map(|(id, raw)| roentgen_api::Segment {
                    id: Some(id.to_string()),
                    document: Some(raw),
                })
                .collect(),
        })
        .collect();
    Ok(json(&BatchGetTracesResult {
        traces,
        unprocessed_trace_ids: unprocessed,
        next_token: None,
    }))
}

/// The filter expressions understood until the full language lands (issue 5):
/// empty, or `service("name")`.
/// Share of traces `Sampling: true` returns when no `SamplingStrategy` value is given.
const DEFAULT_SUMMARY_SAMPLING: f64 = 0.1;

/// `Sampling: true`: a deterministic subset of the traces, the same on every page and
/// every call — a trace is in it when the random part of its id, read as a fraction of
/// 2^64, is below the strategy's value. AWS does not document the strategies beyond
/// their names; both `FixedRate` and `PartialScan` take the value as the share of
/// traces to return (0 < value ≤ 1; 10 % when absent).
fn sampling_predicate(
    req: &GetTraceSummariesRequest,
) -> Result<Option<roentgen_store::SummaryPredicate>, ApiError> {
    if req.sampling != Some(true) {
        return Ok(None);
    }
    let rate = req
        .sampling_strategy
        .as_ref()
        .and_then(|s| s.value)
        .unwrap_or(DEFAULT_SUMMARY_SAMPLING);
    if !(rate > 0.0 && rate <= 1.0) {
        return Err(ApiError::invalid_request(format!(
            "SamplingStrategy Value {rate} must be more than 0 and at most 1"
        )));
    }
    Ok(Some(Arc::new(move |s: &roentgen_model::TraceSummary| {
        let random = s.trace_id.random();
        let mut first = [0u8; 8];
        first.copy_from_slice(&random[..8]);
        (u64::from_be_bytes(first) as f64 / u64::MAX as f64) < rate
    })))
}

async fn get_trace_summaries(
    Scoped(state): Scoped,
    AwsJson(req): AwsJson<GetTraceSummariesRequest>,
) -> Result<Response, AwsError> {
    req.validate()?;
    let (start, end) = (req.start_time.as_f64(), req.end_time.as_f64());
    if end < start {
        return Err(ApiError::invalid_request(format!(
            "EndTime {end} is before StartTime {start}"
        ))
        .into());
    }
    // `group.name` / `group.arn` need the groups' expressions.
    let groups = match req.filter_expression.as_deref() {
        Some(f) if f.to_ascii_lowercase().contains("group.") => {
            crate::groups::definitions(&state).await?
        }
        _ => Vec::new(),
    };
    let time_range_type = match req.time_range_type {
        None | Some(WireRange::TraceId) => TimeRangeType::TraceId,
        Some(WireRange::Event) => TimeRangeType::Event,
        Some(WireRange::Service) => TimeRangeType::Service,
    };
    let predicate = sampling_predicate(&req)?;
    let page = state
        .store
        .query_summaries(
            &state.tenant,
            SummaryQuery {
                start,
                end,
                time_range_type,
                service: None,
                groups,
                filter: req.filter_expression.clone(),
                predicate,
                cursor: req.next_token.clone(),
                limit: SUMMARIES_PER_PAGE,
                scan_budget: SUMMARY_SCAN_BUDGET,
            },
        )
        .await?;
    let summaries = page
        .summaries
        .iter()
        .map(|s| {
            let matched = match time_range_type {
                TimeRangeType::Event => Some(s.updated_at),
                _ => None,
            };
            trace_summary(&s.summary, s.revision, matched)
        })
        .collect();
    Ok(json(&GetTraceSummariesResult {
        trace_summaries: summaries,
        approximate_time: Some(roentgen_api::EpochSeconds(now_seconds().floor())),
        traces_processed_count: Some(page.scanned as i64),
        next_token: page.next,
    }))
}
