//! The segment buffer between the UDP receiver and the senders: a FIFO of documents
//! bounded by bytes (`--buffer-memory`).
//!
//! When a push would pass the bound, the oldest documents leave first: to the spool
//! when there is one, otherwise they are dropped and counted. A batch whose send failed
//! with a retryable error goes back to the front, so "oldest first" stays true while
//! the endpoint is away and the bound covers every document the daemon holds in memory
//! except the batches on the wire (at most `concurrency` × 50).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Most documents in one `PutTraceSegments` call (the API's limit).
pub const MAX_BATCH: usize = 50;

/// One segment document as received (checked to be UTF-8).
pub type Doc = Box<str>;

/// Per-document overhead counted against the bound besides the text itself.
const DOC_OVERHEAD: u64 = 16;

fn cost(doc: &Doc) -> u64 {
    doc.len() as u64 + DOC_OVERHEAD
}

/// What a sender gets when it asks for work.
#[derive(Debug)]
pub enum Take {
    /// Documents to send, oldest first.
    Batch(Vec<Doc>),
    /// Documents are waiting for more to fill a batch; ask again at this instant.
    WaitUntil(Instant),
    /// Nothing is buffered.
    Empty,
    /// Closed and empty: the sender is done.
    Closed,
}

struct Inner {
    queue: VecDeque<Doc>,
    bytes: u64,
    /// When the oldest document of a partial batch arrived.
    partial_since: Option<Instant>,
    closed: bool,
}

/// The bounded FIFO.
pub struct Buffer {
    inner: Mutex<Inner>,
    capacity: u64,
    linger: Duration,
    /// Wakes a waiting sender.
    pub(crate) ready: Notify,
}

impl Buffer {
    /// A buffer holding at most `capacity` bytes; a partial batch waits at most `linger`.
    pub fn new(capacity: u64, linger: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                bytes: 0,
                partial_since: None,
                closed: false,
            }),
            capacity,
            linger,
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the queue half-changed (every
        // change is a single push/pop plus a counter), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the oldest documents out until the bound holds again.
    fn evict_over_bound(&self, inner: &mut Inner, evicted: &mut Vec<Doc>) {
        while inner.bytes > self.capacity {
            match inner.queue.pop_front() {
                Some(old) => {
                    inner.bytes -= cost(&old);
                    evicted.push(old);
                }
                None => break,
            }
        }
    }

    /// Appends documents; returns the documents evicted (oldest first) to make room.
    pub fn push(&self, docs: impl IntoIterator<Item = Doc>) -> Vec<Doc> {
        let mut evicted = Vec::new();
        let wake;
        {
            let mut inner = self.lock();
            let before = inner.queue.len();
            for doc in docs {
                let c = cost(&doc);
                inner.bytes += c;
                inner.queue.push_back(doc);
                self.evict_over_bound(&mut inner, &mut evicted);
            }
            if before == 0 && !inner.queue.is_empty() {
                inner.partial_since = Some(Instant::now());
            }
            let after = inner.queue.len();
            // Wake a sender when a batch fills or the first document starts the clock.
            wake = (before == 0 && after > 0) || after / MAX_BATCH > before / MAX_BATCH;
        }
        if wake {
            self.ready.notify_one();
        }
        evicted
    }

    /// Puts a batch whose send failed back at the front, in its order; returns what had
    /// to be evicted to respect the bound (the oldest, which may be the batch itself).
    pub fn requeue_front(&self, batch: Vec<Doc>) -> Vec<Doc> {
        let mut evicted = Vec::new();
        {
            let mut inner = self.lock();
            for doc in batch.into_iter().rev() {
                inner.bytes += cost(&doc);
                inner.queue.push_front(doc);
            }
            self.evict_over_bound(&mut inner, &mut evicted);
            if inner.partial_since.is_none() && !inner.queue.is_empty() {
                inner.partial_since = Some(Instant::now());
            }
        }
        self.ready.notify_one();
        evicted
    }

    /// Takes a full batch, or a partial one that has waited `linger` (at once when
    /// closed or when `flush` is set).
    pub fn take(&self, flush: bool) -> Take {
        let mut inner = self.lock();
        let len = inner.queue.len();
        if len == 0 {
            return if inner.closed {
                Take::Closed
            } else {
                Take::Empty
            };
        }
        let due = inner
            .partial_since
            .map_or(Instant::now(), |since| since + self.linger);
        if len < MAX_BATCH && !inner.closed && !flush && Instant::now() < due {
            return Take::WaitUntil(due);
        }
        let n = len.min(MAX_BATCH);
        let batch: Vec<Doc> = inner.queue.drain(..n).collect();
        let taken: u64 = batch.iter().map(cost).sum();
        inner.bytes -= taken;
        let remaining = inner.queue.len();
        inner.partial_since = (remaining > 0).then(Instant::now);
        drop(inner);
        if remaining > 0 {
            // Another sender can start on what is left.
            self.ready.notify_one();
        }
        Take::Batch(batch)
    }

    /// Takes everything (used at the end of a shutdown to spool or count it).
    pub fn drain_all(&self) -> Vec<Doc> {
        let mut inner = self.lock();
        inner.bytes = 0;
        inner.partial_since = None;
        inner.queue.drain(..).collect()
    }

    /// No more pushes will come: senders send what is left without waiting to fill.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
    }

    /// Documents and bytes held.
    pub fn depth(&self) -> (usize, u64) {
        let inner = self.lock();
        (inner.queue.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: usize) -> Doc {
        format!("{{\"n\":{n:04}}}").into_boxed_str()
    }

    #[test]
    fn bound_evicts_oldest_first() {
        // Each doc costs 10 + 16 bytes; room for four.
        let b = Buffer::new(4 * 26, Duration::from_secs(1));
        assert!(b.push((0..4).map(doc)).is_empty());
        let evicted = b.push((4..6).map(doc));
        assert_eq!(evicted, vec![doc(0), doc(1)]);
        let Take::Batch(batch) = b.take(true) else {
            panic!("expected a batch")
        };
        assert_eq!(batch, (2..6).map(doc).collect::<Vec<_>>());
        assert_eq!(b.depth(), (0, 0));
    }

    #[test]
    fn failed_batch_goes_back_to_the_front() {
        let b = Buffer::new(4 * 26, Duration::from_secs(1));
        b.push((0..2).map(doc));
        let Take::Batch(batch) = b.take(true) else {
            panic!("expected a batch")
        };
        b.push((2..4).map(doc));
        assert!(b.requeue_front(batch).is_empty());
        // Full now: the next push evicts the requeued (oldest) documents first.
        assert_eq!(b.push([doc(4)]), vec![doc(0)]);
        let Take::Batch(batch) = b.take(true) else {
            panic!("expected a batch")
        };
        assert_eq!(batch, (1..5).map(doc).collect::<Vec<_>>());
    }

    #[test]
    fn partial_batches_linger_full_ones_do_not() {
        let b = Buffer::new(1 << 20, Duration::from_secs(60));
        b.push((0..3).map(doc));
        assert!(matches!(b.take(false), Take::WaitUntil(_)));
        b.push((3..120).map(doc));
        let Take::Batch(first) = b.take(false) else {
            panic!("a full batch is due at once")
        };
        assert_eq!(first.len(), MAX_BATCH);
        assert_eq!(first[0], doc(0));
        let Take::Batch(second) = b.take(false) else {
            panic!("a full batch is due at once")
        };
        assert_eq!(second[0], doc(50));
        assert!(matches!(b.take(false), Take::WaitUntil(_)));
        b.close();
        let Take::Batch(rest) = b.take(false) else {
            panic!("closed: the partial batch goes")
        };
        assert_eq!(rest.len(), 20);
        assert!(matches!(b.take(false), Take::Closed));
    }
}
