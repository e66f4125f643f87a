//! Metrics of the daemon, declared in one place.
//!
//! Names follow `roentgen_daemon_<name>_<unit>_total`; every document that does not
//! reach the endpoint is counted with a `reason`. Every received document ends up in
//! exactly one of: sent, rejected, dropped, spooled (and later sent from the spool), or
//! still buffered. The same counters feed `PutTelemetryRecords`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A stable reason code.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// The reason.
    pub reason: &'static str,
}

/// Reasons a datagram is refused before it is buffered.
pub const DATAGRAM_REASONS: &[&str] =
    &["missing_header", "invalid_header", "empty_body", "not_utf8"];
/// Reasons the endpoint refused documents (non-retryable).
pub const ENDPOINT_REJECT_REASONS: &[&str] = &["unprocessed", "http_4xx"];
/// Reasons documents were dropped after they were accepted.
pub const DROP_REASONS: &[&str] = &["buffer_full", "spool_full", "spool_error", "shutdown"];
/// Kinds of failed calls to the endpoint.
pub const FAILURE_KINDS: &[&str] = &[
    "timeout",
    "connect",
    "http_4xx",
    "http_5xx",
    "throttled",
    "other",
];

/// All metrics of `roentgen daemon`.
pub struct Metrics {
    registry: Registry,
    /// Non-empty datagrams read.
    pub received: Counter,
    /// Documents the endpoint accepted.
    pub sent: Counter,
    /// Datagrams or documents refused, by reason.
    pub rejected: Family<ReasonLabels, Counter>,
    /// Valid documents that will never be sent, by reason.
    pub dropped: Family<ReasonLabels, Counter>,
    /// Documents sent again after a retryable failure.
    pub retried: Counter,
    /// Failed `PutTraceSegments` calls by kind.
    pub send_failures: Family<ReasonLabels, Counter>,
    /// Documents written to the spool.
    pub spooled: Counter,
    /// Documents read back from the spool to be sent.
    pub unspooled: Counter,
    /// Documents held in memory.
    pub buffered: Gauge,
    /// Bytes held in memory.
    pub buffered_bytes: Gauge,
    /// Bytes held in the spool.
    pub spool_bytes: Gauge,
    /// Proxied TCP requests.
    pub proxied: Counter,
    /// Telemetry records the endpoint accepted.
    pub telemetry_sent: Counter,
    /// OTLP spans and requests (converted spans are the buffered ones).
    pub otlp: roentgen_otlp::metrics::OtlpMetrics,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric, with every reason at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("roentgen_daemon");
        let m = Self {
            received: Counter::default(),
            sent: Counter::default(),
            rejected: Family::default(),
            dropped: Family::default(),
            retried: Counter::default(),
            send_failures: Family::default(),
            spooled: Counter::default(),
            unspooled: Counter::default(),
            buffered: Gauge::default(),
            buffered_bytes: Gauge::default(),
            spool_bytes: Gauge::default(),
            proxied: Counter::default(),
            telemetry_sent: Counter::default(),
            otlp: roentgen_otlp::metrics::OtlpMetrics::new(&[], &[]),
            registry: Registry::default(),
        };
        for reason in DATAGRAM_REASONS.iter().chain(ENDPOINT_REJECT_REASONS) {
            let _ = m.rejected.get_or_create(&ReasonLabels { reason });
        }
        for reason in DROP_REASONS {
            let _ = m.dropped.get_or_create(&ReasonLabels { reason });
        }
        for reason in FAILURE_KINDS {
            let _ = m.send_failures.get_or_create(&ReasonLabels { reason });
        }
        registry.register(
            "received_segments",
            "Non-empty datagrams read from the UDP socket",
            m.received.clone(),
        );
        registry.register(
            "sent_segments",
            "Segment documents the endpoint accepted",
            m.sent.clone(),
        );
        registry.register(
            "rejected_segments",
            "Datagrams or documents refused as invalid, by reason",
            m.rejected.clone(),
        );
        registry.register(
            "dropped_segments",
            "Valid documents that will not be sent, by reason",
            m.dropped.clone(),
        );
        registry.register(
            "retried_segments",
            "Documents sent again after a retryable failure",
            m.retried.clone(),
        );
        registry.register(
            "send_failures",
            "Failed PutTraceSegments calls, by kind",
            m.send_failures.clone(),
        );
        registry.register(
            "spooled_segments",
            "Documents written to the spool",
            m.spooled.clone(),
        );
        registry.register(
            "unspooled_segments",
            "Documents read back from the spool",
            m.unspooled.clone(),
        );
        registry.register(
            "buffered_segments",
            "Documents held in memory",
            m.buffered.clone(),
        );
        registry.register(
            "buffered_bytes",
            "Bytes of documents held in memory",
            m.buffered_bytes.clone(),
        );
        registry.register(
            "spool_bytes",
            "Bytes held in the spool",
            m.spool_bytes.clone(),
        );
        registry.register(
            "proxied_requests",
            "Requests proxied from the TCP listener to the endpoint",
            m.proxied.clone(),
        );
        registry.register(
            "telemetry_records",
            "Telemetry records the endpoint accepted",
            m.telemetry_sent.clone(),
        );
        m.otlp.register(&mut registry, "", "buffered");
        Self { registry, ..m }
    }

    /// Counts refused datagrams or documents.
    pub fn reject(&self, reason: &'static str, n: u64) {
        self.rejected
            .get_or_create(&ReasonLabels { reason })
            .inc_by(n);
    }

    /// Counts dropped documents.
    pub fn drop_docs(&self, reason: &'static str, n: u64) {
        if n > 0 {
            self.dropped
                .get_or_create(&ReasonLabels { reason })
                .inc_by(n);
        }
    }

    /// Counts a failed call.
    pub fn failure(&self, kind: &'static str) {
        self.send_failures
            .get_or_create(&ReasonLabels { reason: kind })
            .inc();
    }

    /// Sum of a family's counters.
    pub fn total(family: &Family<ReasonLabels, Counter>, reasons: &[&'static str]) -> u64 {
        reasons
            .iter()
            .map(|reason| family.get_or_create(&ReasonLabels { reason }).get())
            .sum()
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
