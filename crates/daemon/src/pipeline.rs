//! Where received documents wait: the memory buffer, and the spool behind it.
//!
//! The receiver calls [`Pipeline::accept`]; senders take batches from the buffer and put
//! back the ones that failed with [`Pipeline::requeue`]. Whatever the memory bound
//! pushes out goes to the spool when there is one and is dropped (counted) otherwise.
//! While the endpoint answers, [`Pipeline::unspool`] brings the oldest spool file back
//! into memory ahead of everything newer.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::buffer::{Buffer, Doc};
use crate::metrics::Metrics;
use crate::spool::Spool;

/// The buffer, the spool and the counters they share.
pub struct Pipeline {
    pub(crate) buffer: Buffer,
    spool: Option<Spool>,
    metrics: Arc<Metrics>,
    capacity: u64,
    /// The endpoint accepted the last call.
    healthy: AtomicBool,
    /// Rate limit for overflow warnings: the last one, in ms since `started`.
    last_warning_ms: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("capacity", &self.capacity)
            .field("spool", &self.spool)
            .finish_non_exhaustive()
    }
}

const WARN_EVERY: Duration = Duration::from_secs(10);

impl Pipeline {
    /// A pipeline holding at most `capacity` bytes in memory.
    pub fn new(
        capacity: u64,
        linger: Duration,
        spool: Option<Spool>,
        metrics: Arc<Metrics>,
    ) -> Self {
        if let Some(s) = &spool {
            metrics.spool_bytes.set(s.bytes() as i64);
        }
        Self {
            buffer: Buffer::new(capacity, linger),
            spool,
            metrics,
            capacity,
            healthy: AtomicBool::new(true),
            last_warning_ms: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    /// The spool, when there is one.
    pub fn spool(&self) -> Option<&Spool> {
        self.spool.as_ref()
    }

    /// Publishes the buffer's depth.
    pub(crate) fn gauges(&self) {
        let (docs, bytes) = self.buffer.depth();
        self.metrics.buffered.set(docs as i64);
        self.metrics.buffered_bytes.set(bytes as i64);
    }

    fn warn_limited(&self, message: &str, n: usize) {
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64)
            && self
                .last_warning_ms
                .compare_exchange(last, now.max(1), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(segments = n, "{message}");
        }
    }

    /// New documents from the receiver.
    pub fn accept(&self, docs: Vec<Doc>) {
        let evicted = self.buffer.push(docs);
        self.overflow(evicted);
        self.gauges();
    }

    /// A batch that failed with a retryable error goes back to the front.
    pub fn requeue(&self, batch: Vec<Doc>) {
        let evicted = self.buffer.requeue_front(batch);
        self.overflow(evicted);
        self.gauges();
    }

    /// Documents pushed out of memory: to the spool, or dropped and counted.
    fn overflow(&self, evicted: Vec<Doc>) {
        if evicted.is_empty() {
            return;
        }
        self.spill(evicted, "buffer_full", || {
            "segment buffer is full; dropping the oldest segments (raise --buffer-memory or \
             set --spool-dir)"
        });
    }

    /// Writes documents to the spool; without one (or when it fails) they are dropped
    /// and counted under `reason`.
    fn spill(&self, docs: Vec<Doc>, reason: &'static str, message: impl FnOnce() -> &'static str) {
        let n = docs.len();
        match &self.spool {
            Some(spool) => match spool.append(&docs) {
                Ok(appended) => {
                    self.metrics.spooled.inc_by(appended.written);
                    if appended.dropped_oldest > 0 {
                        self.metrics
                            .drop_docs("spool_full", appended.dropped_oldest);
                        self.warn_limited(
                            "spool is full; deleted its oldest segments (raise --spool-size)",
                            appended.dropped_oldest as usize,
                        );
                    }
                    self.metrics.spool_bytes.set(spool.bytes() as i64);
                }
                Err(e) => {
                    self.metrics.drop_docs("spool_error", n as u64);
                    tracing::error!(segments = n, "failed to spool segments: {e}");
                }
            },
            None => {
                self.metrics.drop_docs(reason, n as u64);
                self.warn_limited(message(), n);
            }
        }
    }

    /// Records whether the endpoint accepted the last call.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// While the endpoint answers and memory has room, moves the oldest spool file back
    /// into memory. Returns whether it moved anything.
    pub fn unspool(&self) -> bool {
        let Some(spool) = &self.spool else {
            return false;
        };
        if !self.healthy.load(Ordering::Relaxed) {
            return false;
        }
        let Some(oldest) = spool.oldest_bytes() else {
            return false;
        };
        let (_, held) = self.buffer.depth();
        if held + oldest > self.capacity / 2 {
            return false;
        }
        match spool.take_oldest() {
            Ok(Some(read)) => {
                self.metrics.unspooled.inc_by(read.docs.len() as u64);
                self.metrics.drop_docs("spool_error", read.corrupt);
                self.metrics.spool_bytes.set(spool.bytes() as i64);
                let moved = !read.docs.is_empty();
                self.requeue(read.docs);
                moved || read.corrupt > 0
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!("failed to read the spool: {e}");
                false
            }
        }
    }

    /// At the end of a shutdown: whatever is still in memory goes to the spool (synced)
    /// or is counted as dropped. Returns how many documents were dropped.
    pub fn finish(&self) -> u64 {
        let rest = self.buffer.drain_all();
        let dropped_before = Metrics::total(&self.metrics.dropped, crate::metrics::DROP_REASONS);
        if !rest.is_empty() {
            self.spill(rest, "shutdown", || {
                "shutting down with segments not yet sent; they are lost (set --spool-dir to keep them)"
            });
        }
        if let Some(spool) = &self.spool
            && let Err(e) = spool.sync()
        {
            tracing::error!("failed to sync the spool: {e}");
        }
        self.gauges();
        let dropped_after = Metrics::total(&self.metrics.dropped, crate::metrics::DROP_REASONS);
        dropped_after - dropped_before
    }
}
