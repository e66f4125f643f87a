//! The TCP listener: an HTTP proxy to the endpoint, as the official daemon runs one.
//!
//! SDKs poll the sampling API through it (`POST /GetSamplingRules`,
//! `POST /SamplingTargets`) without credentials; the proxy forwards every path and
//! method unchanged to the endpoint and hands the answer back. Hop-by-hop headers are
//! not forwarded. When the endpoint is away the caller gets a 502 in the AWS error shape.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use crate::config::Endpoint;
use crate::metrics::Metrics;

/// Largest request body the proxy forwards.
pub const MAX_BODY: usize = 1024 * 1024;

#[derive(Clone)]
struct ProxyState {
    client: reqwest::Client,
    endpoint: Endpoint,
    metrics: Arc<Metrics>,
    signer: Option<Arc<crate::auth::Signer>>,
}

/// Headers of a client's own signature, replaced when the proxy signs.
fn signature_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "authorization" | "x-amz-date" | "x-amz-security-token" | "x-amz-content-sha256"
    )
}

/// Headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1),
/// plus `host`, which the client sets for the endpoint.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

fn bad_gateway(message: String) -> Response {
    let body = serde_json::json!({ "__type": "ServiceUnavailableException", "message": message });
    (
        StatusCode::BAD_GATEWAY,
        [
            ("content-type", "application/json"),
            ("x-amzn-errortype", "ServiceUnavailableException"),
        ],
        body.to_string(),
    )
        .into_response()
}

async fn forward(
    State(state): State<ProxyState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state.metrics.proxied.inc();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let url = state.endpoint.url(path);
    let mut request = state.client.request(method.clone(), &url);
    let resigning = state.signer.is_some();
    for (name, value) in &headers {
        let replaced = resigning && signature_header(name);
        if !hop_by_hop(name) && !replaced {
            request = request.header(name, value);
        }
    }
    // Like the official daemon, the proxy signs with its own credentials, so SDKs can
    // poll without any.
    if let Some(signer) = &state.signer {
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let signed: Vec<(&str, &str)> = content_type
            .map(|c| vec![("content-type", c)])
            .unwrap_or_default();
        match signer.sign(method.as_str(), &url, &signed, &body).await {
            Ok(extra) => {
                for (k, v) in extra {
                    request = request.header(k, v);
                }
            }
            Err(e) => return bad_gateway(format!("cannot sign the request: {e}")),
        }
    }
    let response = match request.body(body).send().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!("proxy request to {} failed: {e:#}", state.endpoint.base);
            return bad_gateway(format!("the X-Ray endpoint did not answer: {e}"));
        }
    };
    let status = response.status();
    let mut out_headers = HeaderMap::new();
    for (name, value) in response.headers() {
        if !hop_by_hop(name) {
            out_headers.append(name.clone(), value.clone());
        }
    }
    match response.bytes().await {
        Ok(bytes) => (status, out_headers, bytes).into_response(),
        Err(e) => bad_gateway(format!("reading the X-Ray endpoint's answer failed: {e}")),
    }
}

/// The proxy's router.
pub fn router(
    client: reqwest::Client,
    endpoint: Endpoint,
    metrics: Arc<Metrics>,
    signer: Option<Arc<crate::auth::Signer>>,
) -> Router {
    Router::new()
        .fallback(forward)
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(ProxyState {
            client,
            endpoint,
            metrics,
            signer,
        })
}
