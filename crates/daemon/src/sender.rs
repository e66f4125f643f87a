//! Senders: each takes a batch of at most 50 documents from the buffer and calls
//! `PutTraceSegments` on the endpoint.
//!
//! Connection errors, timeouts, 5xx, throttling (429) and authentication failures
//! (401/403, which a restart with the right credentials fixes) are retried: the batch
//! goes back to the front of the buffer and the sender waits an exponential backoff
//! with jitter. Documents the endpoint lists in `UnprocessedTraceSegments` are retried
//! when the error code says the service was busy or failed, and counted as rejected
//! otherwise. Any other 4xx answer rejects the batch (counted and logged): sending it
//! again would fail the same way.

use std::sync::Arc;
use std::time::Duration;

use roentgen_api::{PutTraceSegmentsResult, UnprocessedTraceSegment};
use tokio_util::sync::CancellationToken;

use crate::buffer::{Doc, Take};
use crate::config::Endpoint;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// First backoff after a failure; it doubles per consecutive failure up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// How one call ended.
#[derive(Debug)]
enum Outcome {
    /// The endpoint answered 200 with these unprocessed documents.
    Accepted(Vec<UnprocessedTraceSegment>),
    /// Worth trying again; the kind of failure for the counters.
    Retry(&'static str, String),
    /// The endpoint refused the whole batch for good.
    Rejected(String),
}

/// Error codes in `UnprocessedTraceSegments` that mean "try again later".
fn retryable_code(code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    c.contains("throttl")
        || c.contains("limitexceeded")
        || c.contains("internal")
        || c.contains("unavailable")
        || c.contains("timeout")
        || c.starts_with('5')
}

/// The request body: `{"TraceSegmentDocuments":["…","…"]}` with each document as a
/// JSON string.
pub(crate) fn request_body(batch: &[Doc]) -> Vec<u8> {
    let size: usize = batch.iter().map(|d| d.len() + d.len() / 8 + 4).sum();
    let mut body = Vec::with_capacity(size + 32);
    body.extend_from_slice(br#"{"TraceSegmentDocuments":["#);
    for (i, doc) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        // Serializing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut body, &**doc);
    }
    body.extend_from_slice(b"]}");
    body
}

/// The `id` of a document, read only when the endpoint names one as unprocessed.
fn document_id(doc: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        id: Option<String>,
    }
    serde_json::from_str::<IdOnly>(doc).ok()?.id
}

/// Sends batches until the buffer is closed and empty, or `abort` fires (then the batch
/// in hand goes back to the buffer).
pub(crate) struct Sender {
    pub(crate) pipeline: Arc<Pipeline>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) client: reqwest::Client,
    pub(crate) endpoint: Endpoint,
    pub(crate) signer: Option<Arc<crate::auth::Signer>>,
}

impl Sender {
    async fn call(&self, batch: &[Doc]) -> Outcome {
        let body = request_body(batch);
        let url = self.endpoint.url("/TraceSegments");
        let request =
            match crate::auth::json_post(&self.client, self.signer.as_deref(), &url, body).await {
                Ok(r) => r,
                Err(e) => return Outcome::Retry("other", format!("{e}")),
            };
        let response = request.send().await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "other"
                };
                return Outcome::Retry(kind, with_causes(&e));
            }
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(e) => return Outcome::Retry("other", format!("reading the answer: {e}")),
        };
        if status.is_success() {
            return match serde_json::from_str::<PutTraceSegmentsResult>(&text) {
                Ok(result) => Outcome::Accepted(result.unprocessed_trace_segments),
                // The documents arrived; an answer we cannot read does not change that.
                Err(_) => Outcome::Accepted(Vec::new()),
            };
        }
        let message = format!("{status}: {}", text.chars().take(300).collect::<String>());
        match status.as_u16() {
            429 => Outcome::Retry("throttled", message),
            401 | 403 | 408 => Outcome::Retry("http_4xx", message),
            s if s >= 500 => Outcome::Retry("http_5xx", message),
            _ => Outcome::Rejected(message),
        }
    }

    /// Handles the unprocessed documents of an accepted batch; returns those to retry.
    fn unprocessed(&self, batch: Vec<Doc>, unprocessed: &[UnprocessedTraceSegment]) -> Vec<Doc> {
        let total = batch.len() as u64;
        if unprocessed.is_empty() {
            self.metrics.sent.inc_by(total);
            return Vec::new();
        }
        let mut retry_ids = std::collections::HashSet::new();
        let mut rejected = 0u64;
        for u in unprocessed {
            let code = u.error_code.as_deref().unwrap_or("");
            if retryable_code(code) {
                if let Some(id) = &u.id {
                    retry_ids.insert(id.as_str());
                }
            } else {
                rejected += 1;
                tracing::debug!(
                    id = u.id.as_deref().unwrap_or("?"),
                    code,
                    message = u.message.as_deref().unwrap_or(""),
                    "endpoint refused a segment"
                );
            }
        }
        let mut retry = Vec::new();
        if !retry_ids.is_empty() {
            for doc in batch {
                if document_id(&doc).is_some_and(|id| retry_ids.contains(id.as_str())) {
                    retry.push(doc);
                }
            }
        }
        self.metrics.reject("unprocessed", rejected);
        let done = total.saturating_sub(rejected + retry.len() as u64);
        self.metrics.sent.inc_by(done);
        retry
    }

    /// Runs until the buffer is closed and empty, or `abort`.
    pub(crate) async fn run(self, abort: CancellationToken) {
        let mut failures: u32 = 0;
        loop {
            let notified = self.pipeline.buffer.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = match self.pipeline.buffer.take(false) {
                Take::Batch(b) => b,
                Take::Closed => break,
                Take::Empty => {
                    tokio::select! {
                        () = &mut notified => continue,
                        () = abort.cancelled() => break,
                    }
                }
                Take::WaitUntil(at) => {
                    tokio::select! {
                        () = &mut notified => continue,
                        () = tokio::time::sleep_until(at.into()) => continue,
                        () = abort.cancelled() => break,
                    }
                }
            };
            self.pipeline.gauges();
            let outcome = tokio::select! {
                o = self.call(&batch) => o,
                () = abort.cancelled() => {
                    // Whether it arrived is unknown: keep it (a duplicate beats a loss).
                    self.pipeline.requeue(batch);
                    break;
                }
            };
            match outcome {
                Outcome::Accepted(unprocessed) => {
                    failures = 0;
                    self.pipeline.set_healthy(true);
                    let retry = self.unprocessed(batch, &unprocessed);
                    if !retry.is_empty() {
                        self.metrics.retried.inc_by(retry.len() as u64);
                        self.pipeline.requeue(retry);
                    }
                }
                Outcome::Rejected(message) => {
                    failures = 0;
                    self.metrics.failure("http_4xx");
                    self.metrics.reject("http_4xx", batch.len() as u64);
                    tracing::error!(
                        segments = batch.len(),
                        "endpoint refused a batch for good: {message}"
                    );
                }
                Outcome::Retry(kind, message) => {
                    self.metrics.failure(kind);
                    self.metrics.retried.inc_by(batch.len() as u64);
                    self.pipeline.set_healthy(false);
                    self.pipeline.requeue(batch);
                    failures = failures.saturating_add(1);
                    let wait = backoff(failures);
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(
                            attempt = failures,
                            retry_in_ms = wait.as_millis() as u64,
                            "failed to send segments, will retry: {message}"
                        );
                    }
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = abort.cancelled() => break,
                    }
                }
            }
        }
    }
}

/// Exponential backoff with jitter: half the doubled delay plus a random part of the
/// other half, so senders that failed together do not retry together.
pub(crate) fn backoff(failures: u32) -> Duration {
    let exp = BASE_BACKOFF.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(MAX_BACKOFF);
    let half = capped / 2;
    half + half.mul_f64(rand::random::<f64>())
}

/// An error and its causes, `outer: inner: …` (reqwest's own text stops at "error
/// sending request", leaving out, say, which certificate check failed).
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_the_api_shape() {
        let batch: Vec<Doc> = vec![r#"{"id":"a","name":"x\"y"}"#.into(), "{}".into()];
        let body = request_body(&batch);
        let parsed: roentgen_api::PutTraceSegmentsRequest =
            serde_json::from_slice(&body).expect("valid request");
        assert_eq!(parsed.trace_segment_documents.len(), 2);
        assert_eq!(parsed.trace_segment_documents[0], &*batch[0]);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for failures in 1..40 {
            let d = backoff(failures);
            let exp = BASE_BACKOFF.saturating_mul(1u32 << (failures - 1).min(16));
            let cap = exp.min(MAX_BACKOFF);
            assert!(d >= cap / 2 && d <= cap, "{failures}: {d:?}");
        }
    }

    #[test]
    fn retryable_codes() {
        for code in [
            "ThrottledException",
            "InternalFailure",
            "ServiceUnavailable",
            "500",
        ] {
            assert!(retryable_code(code), "{code}");
        }
        for code in ["InvalidTraceId", "TraceTooOld", "MissingId", ""] {
            assert!(!retryable_code(code), "{code}");
        }
    }
}
