//! The X-Ray daemon protocol on UDP: `{"format":"json","version":1}` + `\n` + document.
//!
//! [`UdpIngest`] validates each datagram and hands batches to the ingest queue. Junk is
//! counted per reason and dropped; a full queue drops the newest documents and counts
//! them. It does not read the socket itself: `roentgen serve` runs the same receive loop
//! as `roentgen daemon` (`roentgen_daemon::receiver`) and feeds each datagram here, so
//! the two read UDP alike (batched `recvmmsg`, a large receive buffer, and on shutdown
//! everything the kernel already accepted).

use std::sync::Arc;
use std::time::{Duration, Instant};

use roentgen_api::daemon_protocol::split_datagram;
use roentgen_model::Document;
use roentgen_store::TenantId;

use crate::ingest::{Ingest, SubmitError};
use crate::metrics::{Metrics, ReasonLabels, SourceLabels};

/// Documents handed to the ingest queue at once.
const BATCH: usize = 512;
/// Longest a received document waits in a partial batch.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(5);

/// Turns datagrams into validated documents for the ingest queue.
pub struct UdpIngest {
    ingest: Ingest,
    metrics: Arc<Metrics>,
    tenant: TenantId,
    batch: Vec<Document>,
    oldest: Option<Instant>,
    /// Datagrams received since the counter was last published.
    received: u64,
}

impl std::fmt::Debug for UdpIngest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UdpIngest")
            .field("batch", &self.batch.len())
            .finish_non_exhaustive()
    }
}

impl UdpIngest {
    /// Feeds `ingest` for `tenant`.
    pub fn new(ingest: Ingest, tenant: TenantId) -> Self {
        let metrics = Arc::clone(ingest.metrics());
        Self {
            ingest,
            metrics,
            tenant,
            batch: Vec::with_capacity(BATCH),
            oldest: None,
            received: 0,
        }
    }

    /// One datagram: checked, parsed, validated, and batched or counted as rejected.
    pub fn datagram(&mut self, data: &[u8]) {
        self.received += 1;
        let body = match split_datagram(data) {
            Ok(b) => b,
            Err(e) => return self.metrics.reject("udp", e.reason()),
        };
        let Ok(text) = std::str::from_utf8(body) else {
            return self.metrics.reject("udp", "not_utf8");
        };
        match Document::parse(text) {
            Ok(doc) => match self.ingest.check_policy(&doc) {
                Ok(()) => {
                    if self.batch.is_empty() {
                        self.oldest = Some(Instant::now());
                    }
                    self.batch.push(doc);
                }
                Err(reason) => self.metrics.reject("udp", reason),
            },
            Err(e) => {
                self.metrics.reject("udp", e.error_code());
                tracing::debug!("dropped datagram: {e}");
            }
        }
    }

    /// After a read of several datagrams: submit when the batch is full or old enough.
    pub fn batch_done(&mut self) {
        if self.batch.len() >= BATCH || self.oldest.is_some_and(|t| t.elapsed() >= MAX_BATCH_DELAY)
        {
            self.flush();
        }
    }

    /// Publishes the counters and submits the partial batch.
    pub fn flush(&mut self) {
        if self.received > 0 {
            self.metrics
                .received
                .get_or_create(&SourceLabels { source: "udp" })
                .inc_by(self.received);
            self.received = 0;
        }
        if self.batch.is_empty() {
            return;
        }
        // The next batch starts with the room this one needed: grown from empty, a full
        // batch would copy its documents (~400 bytes each) eight times on the way to 512.
        let room = self.batch.len();
        let docs = std::mem::replace(&mut self.batch, Vec::with_capacity(room));
        let n = docs.len() as u64;
        self.oldest = None;
        if let Err(e) = self.ingest.try_submit(&self.tenant, docs) {
            let reason = match e {
                SubmitError::QueueFull => "queue_full",
                SubmitError::ShuttingDown => "shutting_down",
                SubmitError::Store(_) | SubmitError::StoreUnavailable(_) => "store_error",
            };
            self.metrics
                .dropped
                .get_or_create(&ReasonLabels {
                    source: "udp",
                    reason,
                })
                .inc_by(n);
        }
    }
}
