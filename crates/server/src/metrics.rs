//! Metrics of the server, declared in one place.
//!
//! Names follow `roentgen_<subsystem>_<name>_<unit>_total`; every drop is counted with a
//! `reason`. Counters are registered up front so a scrape shows zeros before traffic.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Where segments came from.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `udp` or `api`.
    pub source: &'static str,
}

/// Why segments were rejected or dropped.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// `udp` or `api`.
    pub source: &'static str,
    /// A stable reason code.
    pub reason: &'static str,
}

/// What a daemon's telemetry counted.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `received`, `sent`, `spillover` or `rejected`.
    pub kind: &'static str,
}

/// What a sampling statistics document was answered with.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct GrantLabels {
    /// `quota`, `borrow`, `zero`, `no_reservoir` or `unknown_rule`.
    pub grant: &'static str,
}

/// HTTP requests by operation and status class.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// X-Ray operation name, or `other`.
    pub operation: &'static str,
    /// HTTP status code.
    pub status: u16,
}

/// All metrics of `roentgen serve`.
pub struct Metrics {
    registry: Registry,
    /// Segment documents received (before validation).
    pub received: Family<SourceLabels, Counter>,
    /// Segment documents durably stored.
    pub stored: Counter,
    /// Documents or datagrams refused as invalid, by reason.
    pub rejected: Family<ReasonLabels, Counter>,
    /// Valid documents dropped for lack of room (UDP only; the API throttles instead).
    pub dropped: Family<ReasonLabels, Counter>,
    /// Documents waiting in the ingest queue.
    pub queue_depth: Gauge,
    /// Store write batches.
    pub store_batches: Counter,
    /// Failed store writes.
    pub store_errors: Counter,
    /// Seconds per store write batch.
    pub store_write_seconds: Histogram,
    /// HTTP requests answered.
    pub requests: Family<RequestLabels, Counter>,
    /// Telemetry records daemons sent (`PutTelemetryRecords`).
    pub telemetry_records: Counter,
    /// Segments daemons reported in their telemetry, by kind.
    pub telemetry_segments: Family<KindLabels, Counter>,
    /// `GetSamplingTargets` statistics documents, by what they were answered with.
    pub sampling_targets: Family<GrantLabels, Counter>,
    /// OTLP spans and requests (converted spans are the durably stored ones).
    pub otlp: roentgen_otlp::metrics::OtlpMetrics,
    /// Requests refused by `--auth`, by error code.
    pub auth_failures: Family<CodeLabels, Counter>,
    /// HTTP connections open now (all HTTP listeners).
    pub http_connections: Gauge,
}

/// The AWS error code of a refusal.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// `InvalidSignatureException`, …
    pub code: &'static str,
}

/// Every code an authentication failure is counted under.
pub const AUTH_FAILURE_CODES: [roentgen_api::ErrorCode; 7] = [
    roentgen_api::ErrorCode::MissingAuthenticationToken,
    roentgen_api::ErrorCode::IncompleteSignature,
    roentgen_api::ErrorCode::InvalidSignature,
    roentgen_api::ErrorCode::UnrecognizedClient,
    roentgen_api::ErrorCode::AccessDenied,
    roentgen_api::ErrorCode::ExpiredToken,
    roentgen_api::ErrorCode::PayloadTooLarge,
];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Reasons a UDP datagram is refused before its document is parsed.
pub const DATAGRAM_REASONS: &[&str] =
    &["missing_header", "invalid_header", "empty_body", "not_utf8"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let received = Family::<SourceLabels, Counter>::default();
        let stored = Counter::default();
        let rejected = Family::<ReasonLabels, Counter>::default();
        let dropped = Family::<ReasonLabels, Counter>::default();
        let queue_depth = Gauge::default();
        let store_batches = Counter::default();
        let store_errors = Counter::default();
        let store_write_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        let requests = Family::<RequestLabels, Counter>::default();
        let telemetry_records = Counter::default();
        let telemetry_segments = Family::<KindLabels, Counter>::default();
        let sampling_targets = Family::<GrantLabels, Counter>::default();
        let auth_failures = Family::<CodeLabels, Counter>::default();
        let http_connections = Gauge::default();
        registry.register(
            "roentgen_http_connections",
            "HTTP and gRPC connections open now (bounded by --max-connections per listener)",
            http_connections.clone(),
        );
        registry.register(
            "roentgen_auth_failures",
            "Requests refused by --auth (signature missing, malformed, wrong, expired, unknown key, role), by AWS error code",
            auth_failures.clone(),
        );
        for code in AUTH_FAILURE_CODES {
            let _ = auth_failures.get_or_create(&CodeLabels {
                code: code.as_str(),
            });
        }
        registry.register(
            "roentgen_sampling_targets",
            "GetSamplingTargets statistics documents, by what they were answered with",
            sampling_targets.clone(),
        );
        for grant in roentgen_sampling::Grant::ALL {
            let _ = sampling_targets.get_or_create(&GrantLabels {
                grant: grant.as_str(),
            });
        }
        let _ = sampling_targets.get_or_create(&GrantLabels {
            grant: "unknown_rule",
        });
        let otlp = roentgen_otlp::metrics::OtlpMetrics::new(
            crate::ingest::POLICY_REASONS,
            crate::otlp::REQUEST_REASONS,
        );
        otlp.register(&mut registry, "roentgen_", "stored");
        registry.register(
            "roentgen_telemetry_records",
            "Telemetry records received from daemons (PutTelemetryRecords)",
            telemetry_records.clone(),
        );
        registry.register(
            "roentgen_telemetry_segments",
            "Segments daemons reported in their telemetry, by kind",
            telemetry_segments.clone(),
        );
        for kind in ["received", "sent", "spillover", "rejected"] {
            let _ = telemetry_segments.get_or_create(&KindLabels { kind });
        }
        registry.register(
            "roentgen_ingest_received_segments",
            "Segment documents received, before validation",
            received.clone(),
        );
        registry.register(
            "roentgen_ingest_stored_segments",
            "Segment documents durably stored",
            stored.clone(),
        );
        registry.register(
            "roentgen_ingest_rejected_segments",
            "Segment documents or datagrams refused as invalid, by reason",
            rejected.clone(),
        );
        registry.register(
            "roentgen_ingest_dropped_segments",
            "Valid segment documents dropped because the ingest queue was full",
            dropped.clone(),
        );
        registry.register(
            "roentgen_ingest_queue_depth_segments",
            "Segment documents waiting to be written",
            queue_depth.clone(),
        );
        registry.register(
            "roentgen_store_write_batches",
            "Write batches committed to the store",
            store_batches.clone(),
        );
        registry.register(
            "roentgen_store_write_errors",
            "Write batches the store failed",
            store_errors.clone(),
        );
        registry.register(
            "roentgen_store_write_seconds",
            "Time to write one batch durably",
            store_write_seconds.clone(),
        );
        registry.register(
            "roentgen_http_requests",
            "HTTP requests answered, by operation and status",
            requests.clone(),
        );
        let _ = received.get_or_create(&SourceLabels { source: "otlp" });
        for source in ["udp", "api"] {
            let _ = received.get_or_create(&SourceLabels { source });
            for reason in roentgen_model::DocumentError::ALL_CODES {
                let _ = rejected.get_or_create(&ReasonLabels { source, reason });
            }
        }
        for reason in DATAGRAM_REASONS {
            let _ = rejected.get_or_create(&ReasonLabels {
                source: "udp",
                reason,
            });
        }
        for reason in crate::ingest::POLICY_REASONS {
            let _ = rejected.get_or_create(&ReasonLabels {
                source: "udp",
                reason,
            });
            let _ = rejected.get_or_create(&ReasonLabels {
                source: "api",
                reason,
            });
            let _ = rejected.get_or_create(&ReasonLabels {
                source: "otlp",
                reason,
            });
        }
        for reason in ["queue_full", "store_error", "shutting_down"] {
            let _ = dropped.get_or_create(&ReasonLabels {
                source: "udp",
                reason,
            });
        }
        Self {
            registry,
            received,
            stored,
            rejected,
            dropped,
            queue_depth,
            store_batches,
            store_errors,
            store_write_seconds,
            requests,
            telemetry_records,
            telemetry_segments,
            sampling_targets,
            otlp,
            auth_failures,
            http_connections,
        }
    }

    /// Counts a request refused by `--auth`.
    pub fn auth_failure(&self, code: roentgen_api::ErrorCode) {
        self.auth_failures
            .get_or_create(&CodeLabels {
                code: code.as_str(),
            })
            .inc();
    }

    /// Counts one answered sampling statistics document.
    pub fn sampling_target(&self, grant: &'static str) {
        self.sampling_targets
            .get_or_create(&GrantLabels { grant })
            .inc();
    }

    /// Counts a rejection.
    pub fn reject(&self, source: &'static str, reason: &'static str) {
        self.rejected
            .get_or_create(&ReasonLabels { source, reason })
            .inc();
    }

    /// Adds the store's own counters ([`roentgen_store::Store::counters`]), read at
    /// every scrape.
    pub fn register_store(&mut self, store: std::sync::Arc<dyn roentgen_store::Store>) {
        self.registry
            .register_collector(Box::new(StoreCollector(store)));
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Reads the store's counters at scrape time.
struct StoreCollector(std::sync::Arc<dyn roentgen_store::Store>);

impl std::fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCollector").finish_non_exhaustive()
    }
}

impl prometheus_client::collector::Collector for StoreCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        for c in self.0.counters() {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(c.value);
            let metric = encoder.encode_descriptor(c.name, c.help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
