//! The OTLP counters every receiver keeps (`roentgen serve`, `roentgen daemon`), with
//! the same names, labels and reasons, registered under the receiver's prefix.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

use crate::convert::Batch;

/// How OTLP spans arrived.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TransportLabels {
    /// `http` or `grpc`.
    pub transport: &'static str,
}

/// Why OTLP spans or requests were rejected.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OtlpLabels {
    /// `http` or `grpc`.
    pub transport: &'static str,
    /// A stable reason code.
    pub reason: &'static str,
}

/// The transports a receiver listens on.
pub const TRANSPORTS: [&str; 2] = ["http", "grpc"];

/// Spans received, converted (`stored` says what that means for the receiver) and
/// rejected by reason, and whole requests refused by reason.
#[derive(Clone, Default)]
pub struct OtlpMetrics {
    received: Family<TransportLabels, Counter>,
    converted: Family<TransportLabels, Counter>,
    rejected: Family<OtlpLabels, Counter>,
    refused: Family<OtlpLabels, Counter>,
}

impl std::fmt::Debug for OtlpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpMetrics").finish_non_exhaustive()
    }
}

impl OtlpMetrics {
    /// Counters with every transport and reason at zero: the conversion's span and
    /// document reasons and [`crate::OtlpError::ALL_REASONS`], plus the receiver's own
    /// (`span_reasons`, `request_reasons`).
    pub fn new(span_reasons: &[&'static str], request_reasons: &[&'static str]) -> Self {
        let m = Self::default();
        for transport in TRANSPORTS {
            let _ = m.received.get_or_create(&TransportLabels { transport });
            let _ = m.converted.get_or_create(&TransportLabels { transport });
            let spans = crate::convert::SPAN_REASONS
                .iter()
                .chain(crate::convert::DOCUMENT_REASONS)
                .chain(span_reasons);
            for reason in spans {
                let _ = m.rejected.get_or_create(&OtlpLabels { transport, reason });
            }
            for reason in crate::OtlpError::ALL_REASONS.iter().chain(request_reasons) {
                let _ = m.refused.get_or_create(&OtlpLabels { transport, reason });
            }
        }
        m
    }

    /// Registers the counters as `{prefix}otlp_…`; `stored` completes the help text of
    /// the converted count ("buffered", "stored").
    pub fn register(&self, registry: &mut Registry, prefix: &str, stored: &str) {
        registry.register(
            format!("{prefix}otlp_received_spans"),
            "OTLP spans received, by transport",
            self.received.clone(),
        );
        registry.register(
            format!("{prefix}otlp_converted_spans"),
            format!("OTLP spans converted to segment documents and {stored}, by transport"),
            self.converted.clone(),
        );
        registry.register(
            format!("{prefix}otlp_rejected_spans"),
            "OTLP spans rejected in a partial success, by transport and reason",
            self.rejected.clone(),
        );
        registry.register(
            format!("{prefix}otlp_rejected_requests"),
            "OTLP requests refused as a whole, by transport and reason",
            self.refused.clone(),
        );
    }

    /// Counts a converted batch's spans and its rejections by reason.
    pub fn received(&self, transport: &'static str, batch: &Batch) {
        self.received
            .get_or_create(&TransportLabels { transport })
            .inc_by(batch.spans as u64);
        for r in &batch.rejected {
            self.rejected
                .get_or_create(&OtlpLabels {
                    transport,
                    reason: r.reason,
                })
                .inc_by(r.spans as u64);
        }
    }

    /// Counts spans whose documents the receiver took (buffered or stored).
    pub fn converted(&self, transport: &'static str, spans: usize) {
        self.converted
            .get_or_create(&TransportLabels { transport })
            .inc_by(spans as u64);
    }

    /// Counts a request refused as a whole.
    pub fn refused(&self, transport: &'static str, reason: &'static str) {
        self.refused
            .get_or_create(&OtlpLabels { transport, reason })
            .inc();
    }
}
