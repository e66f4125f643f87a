//! `PutTelemetryRecords`: once per interval (a minute, as the official daemon), the
//! counters of the interval, sent only once the daemon has received something. Records
//! that fail to send are kept (at most 30) and sent with the next ones.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use roentgen_api::EpochSeconds;
use roentgen_api::telemetry::{
    BackendConnectionErrors, PutTelemetryRecordsRequest, TelemetryRecord,
};
use tokio_util::sync::CancellationToken;

use crate::config::Endpoint;
use crate::metrics::{
    DATAGRAM_REASONS, DROP_REASONS, ENDPOINT_REJECT_REASONS, Metrics, ReasonLabels,
};

/// Records kept while the endpoint is away.
const MAX_PENDING: usize = 30;
/// Records per request.
const PER_REQUEST: usize = 10;

/// Totals of the counters the records report, to take differences.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    received: u64,
    sent: u64,
    spillover: u64,
    rejected: u64,
    timeout: u64,
    refused: u64,
    http_4xx: u64,
    http_5xx: u64,
    other: u64,
}

impl Totals {
    fn read(m: &Metrics) -> Self {
        let failures = |kind: &'static str| {
            m.send_failures
                .get_or_create(&ReasonLabels { reason: kind })
                .get()
        };
        let rejected_reasons: Vec<&'static str> = DATAGRAM_REASONS
            .iter()
            .chain(ENDPOINT_REJECT_REASONS)
            .copied()
            .collect();
        Self {
            received: m.received.get(),
            sent: m.sent.get(),
            spillover: Metrics::total(&m.dropped, DROP_REASONS),
            rejected: Metrics::total(&m.rejected, &rejected_reasons),
            timeout: failures("timeout"),
            refused: failures("connect"),
            http_4xx: failures("http_4xx") + failures("throttled"),
            http_5xx: failures("http_5xx"),
            other: failures("other"),
        }
    }

    fn record_since(self, before: Self) -> TelemetryRecord {
        let d = |now: u64, then: u64| Some(now.saturating_sub(then) as i64);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64);
        TelemetryRecord {
            timestamp: EpochSeconds(now),
            segments_received_count: d(self.received, before.received),
            segments_sent_count: d(self.sent, before.sent),
            segments_spillover_count: d(self.spillover, before.spillover),
            segments_rejected_count: d(self.rejected, before.rejected),
            backend_connection_errors: Some(BackendConnectionErrors {
                timeout_count: d(self.timeout, before.timeout),
                connection_refused_count: d(self.refused, before.refused),
                http_code_4xx_count: d(self.http_4xx, before.http_4xx),
                http_code_5xx_count: d(self.http_5xx, before.http_5xx),
                unknown_host_count: Some(0),
                other_count: d(self.other, before.other),
            }),
        }
    }
}

/// The reporter task.
pub(crate) struct Telemetry {
    pub(crate) client: reqwest::Client,
    pub(crate) endpoint: Endpoint,
    pub(crate) signer: Option<Arc<crate::auth::Signer>>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) interval: Duration,
    pub(crate) resource_arn: Option<String>,
    pub(crate) hostname: Option<String>,
    pub(crate) instance_id: Option<String>,
}

impl Telemetry {
    async fn flush(&self, pending: &mut VecDeque<TelemetryRecord>) {
        while !pending.is_empty() {
            let n = pending.len().min(PER_REQUEST);
            let request = PutTelemetryRecordsRequest {
                telemetry_records: pending.iter().take(n).cloned().collect(),
                ec2_instance_id: self.instance_id.clone(),
                hostname: self.hostname.clone(),
                resource_arn: self.resource_arn.clone(),
            };
            let url = self.endpoint.url("/TelemetryRecords");
            let body = serde_json::to_vec(&request).unwrap_or_default();
            let req = match crate::auth::json_post(&self.client, self.signer.as_deref(), &url, body)
                .await
            {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!("cannot sign telemetry, kept for later: {e}");
                    return;
                }
            };
            let sent = req.send().await;
            match sent {
                Ok(r) if r.status().is_success() => {
                    pending.drain(..n);
                    self.metrics.telemetry_sent.inc_by(n as u64);
                }
                Ok(r) => {
                    tracing::debug!(status = %r.status(), "telemetry not accepted; kept for later");
                    return;
                }
                Err(e) => {
                    tracing::debug!("failed to send telemetry, kept for later: {e}");
                    return;
                }
            }
        }
    }

    /// Reports every interval until `cancel`, then once more.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut before = Totals::default();
        let mut pending = VecDeque::new();
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        loop {
            let last = tokio::select! {
                _ = ticker.tick() => false,
                () = cancel.cancelled() => true,
            };
            let now = Totals::read(&self.metrics);
            // Like the official daemon: nothing is reported before the first segment.
            if now.received > 0 {
                pending.push_back(now.record_since(before));
                before = now;
                while pending.len() > MAX_PENDING {
                    pending.pop_front();
                }
                self.flush(&mut pending).await;
            }
            if last {
                break;
            }
        }
    }
}
