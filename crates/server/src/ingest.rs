//! The one ingest path: UDP datagrams and `PutTraceSegments` both end here.
//!
//! Callers validate documents, check them against the retention policy, and submit
//! them. A bounded queue (counted in documents, `queue_capacity`) sits in front of one
//! writer task. When the queue is full, UDP drops the newest documents and counts them
//! (`DropNewest`); the API waits a short while and then answers `ThrottledException`
//! (`Block` with a deadline). The writer takes everything queued (up to `max_batch`
//! documents) in one store write, so concurrent requests share one fsync (group
//! commit), and acknowledges each request only after the store says it is durable.
//! Batches of UDP documents only (nobody waits on them) are written with
//! `Store::write_unacknowledged`: safe from a crash of the process at once, synced
//! within a second. A store that pays per write (ClickHouse) asks, through
//! `Store::write_batching`, for such batches to be held open a moment so that they
//! grow; a document a client waits on ends the wait at once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use roentgen_model::Document;
use roentgen_store::{Store, TenantId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, ReasonLabels};

/// Reasons a valid document is refused by policy (counted like validation errors).
pub const POLICY_REASONS: &[&str] = &["TraceTooOld", "TraceInFuture"];

/// Ingest settings.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Most documents queued and not yet durable.
    pub queue_capacity: usize,
    /// Most documents in one store write, unless the store asks for lingering
    /// batches (`Store::write_batching`), whose own limit then applies.
    pub max_batch: usize,
    /// Documents of traces that started longer ago than this are refused.
    pub retention: Duration,
    /// Documents of traces that start further in the future than this are refused.
    pub future_tolerance: Duration,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            max_batch: 5_000,
            retention: Duration::from_secs(30 * 86_400),
            future_tolerance: Duration::from_secs(86_400),
        }
    }
}

/// Why a submission was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SubmitError {
    /// No room in the queue (in time).
    #[error("ingest queue is full")]
    QueueFull,
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// The store failed the write.
    #[error("store write failed: {0}")]
    Store(String),
    /// The store could not be reached after its retries (ClickHouse down or
    /// overloaded); trying again later may succeed.
    #[error("store unavailable: {0}")]
    StoreUnavailable(String),
}

struct Job {
    tenant: TenantId,
    docs: Vec<Document>,
    ack: Option<oneshot::Sender<Result<(), SubmitError>>>,
    _permit: OwnedSemaphorePermit,
}

struct Shared {
    tx: mpsc::UnboundedSender<Job>,
    permits: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    options: IngestOptions,
}

/// A handle on the ingest queue. Cheap to clone; the writer stops after the last handle
/// is dropped and everything queued is written.
#[derive(Clone)]
pub struct Ingest {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("options", &self.shared.options)
            .finish()
    }
}

/// The current epoch second (0 if the clock is before 1970).
pub(crate) fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Ingest {
    /// Starts the writer task.
    pub fn start(
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
        options: IngestOptions,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(options.queue_capacity.max(1)));
        let writer = tokio::spawn(write_loop(
            store,
            rx,
            Arc::clone(&metrics),
            Arc::clone(&permits),
            options.clone(),
        ));
        (
            Self {
                shared: Arc::new(Shared {
                    tx,
                    permits,
                    metrics,
                    options,
                }),
            },
            writer,
        )
    }

    /// The metrics this ingest path counts into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.shared.metrics
    }

    /// Checks a valid document against the retention window; returns the reason code
    /// when it must be refused.
    pub fn check_policy(&self, doc: &Document) -> Result<(), &'static str> {
        let t = u64::from(doc.trace_id().epoch_seconds());
        let now = now_seconds();
        if t + self.shared.options.retention.as_secs() < now {
            return Err("TraceTooOld");
        }
        if t > now + self.shared.options.future_tolerance.as_secs() {
            return Err("TraceInFuture");
        }
        Ok(())
    }

    /// A human explanation of a policy reason code.
    pub fn policy_message(&self, reason: &str) -> String {
        match reason {
            "TraceTooOld" => format!(
                "trace id time is older than the retention of {} days",
                self.shared.options.retention.as_secs() / 86_400
            ),
            _ => format!(
                "trace id time is more than {} hours in the future",
                self.shared.options.future_tolerance.as_secs() / 3600
            ),
        }
    }

    fn clamp(&self, n: usize) -> u32 {
        n.clamp(1, self.shared.options.queue_capacity.max(1))
            .min(u32::MAX as usize) as u32
    }

    fn update_depth(&self) {
        let cap = self.shared.options.queue_capacity.max(1);
        let free = self.shared.permits.available_permits();
        self.shared
            .metrics
            .queue_depth
            .set(cap.saturating_sub(free) as i64);
    }

    /// Queues documents without waiting (UDP). Full queue → `QueueFull`, and the caller
    /// counts the drop.
    pub fn try_submit(&self, tenant: &TenantId, docs: Vec<Document>) -> Result<(), SubmitError> {
        if docs.is_empty() {
            return Ok(());
        }
        let permit = Arc::clone(&self.shared.permits)
            .try_acquire_many_owned(self.clamp(docs.len()))
            .map_err(|e| match e {
                tokio::sync::TryAcquireError::Closed => SubmitError::ShuttingDown,
                tokio::sync::TryAcquireError::NoPermits => SubmitError::QueueFull,
            })?;
        self.shared
            .tx
            .send(Job {
                tenant: tenant.clone(),
                docs,
                ack: None,
                _permit: permit,
            })
            .map_err(|_| SubmitError::ShuttingDown)?;
        self.update_depth();
        Ok(())
    }

    /// Queues documents, waiting up to `wait` for room, and returns once they are
    /// durable (API).
    pub async fn submit(
        &self,
        tenant: &TenantId,
        docs: Vec<Document>,
        wait: Duration,
    ) -> Result<(), SubmitError> {
        if docs.is_empty() {
            return Ok(());
        }
        let n = self.clamp(docs.len());
        let permit =
            tokio::time::timeout(wait, Arc::clone(&self.shared.permits).acquire_many_owned(n))
                .await
                .map_err(|_| SubmitError::QueueFull)?
                .map_err(|_| SubmitError::ShuttingDown)?;
        let (ack, done) = oneshot::channel();
        self.shared
            .tx
            .send(Job {
                tenant: tenant.clone(),
                docs,
                ack: Some(ack),
                _permit: permit,
            })
            .map_err(|_| SubmitError::ShuttingDown)?;
        self.update_depth();
        done.await.map_err(|_| SubmitError::ShuttingDown)?
    }
}

/// The jobs of one store write being gathered.
#[derive(Default)]
struct Batch {
    jobs: Vec<Job>,
    documents: usize,
    /// A client waits on one of the jobs.
    waited_on: bool,
}

impl Batch {
    fn push(&mut self, job: Job) {
        self.documents += job.docs.len();
        self.waited_on |= job.ack.is_some();
        self.jobs.push(job);
    }
}

async fn write_loop(
    store: Arc<dyn Store>,
    mut rx: mpsc::UnboundedReceiver<Job>,
    metrics: Arc<Metrics>,
    permits: Arc<Semaphore>,
    options: IngestOptions,
) {
    let cap = options.queue_capacity.max(1);
    let batching = store.write_batching();
    let limit = if batching.linger.is_zero() {
        options.max_batch
    } else {
        batching.max_documents
    };
    while let Some(first) = rx.recv().await {
        let opened = tokio::time::Instant::now();
        let mut batch = Batch::default();
        batch.push(first);
        loop {
            while batch.documents < limit {
                match rx.try_recv() {
                    Ok(j) => batch.push(j),
                    Err(_) => break,
                }
            }
            // A batch nobody waits on stays open while the store asks for larger
            // writes, it is short of the limit, and the queue (which its documents
            // still occupy) is less than half full.
            let lingers = !batching.linger.is_zero()
                && batch.documents < limit
                && !batch.waited_on
                && permits.available_permits().saturating_mul(2) > cap;
            if !lingers {
                break;
            }
            match tokio::time::timeout_at(opened + batching.linger, rx.recv()).await {
                Ok(Some(j)) => batch.push(j),
                // Linger over, or every sender gone (shutdown): write what is held.
                Ok(None) | Err(_) => break,
            }
        }
        let mut by_tenant: HashMap<TenantId, (Vec<Document>, Vec<Job>)> = HashMap::new();
        for mut job in batch.jobs {
            let entry = by_tenant.entry(job.tenant.clone()).or_default();
            entry.0.append(&mut job.docs);
            entry.1.push(job);
        }
        for (tenant, (docs, jobs)) in by_tenant {
            let count = docs.len();
            let started = Instant::now();
            // Only what a client waits on is synced before the write returns; the rest
            // (UDP) is synced by the store within a second.
            let result = if jobs.iter().any(|j| j.ack.is_some()) {
                store.write(&tenant, docs).await
            } else {
                store.write_unacknowledged(&tenant, docs).await
            };
            metrics
                .store_write_seconds
                .observe(started.elapsed().as_secs_f64());
            let outcome = match result {
                Ok(_) => {
                    metrics.store_batches.inc();
                    metrics.stored.inc_by(count as u64);
                    Ok(())
                }
                Err(e) => {
                    metrics.store_errors.inc();
                    tracing::error!(documents = count, "failed to write batch: {e}");
                    Err(if e.is_retryable() {
                        SubmitError::StoreUnavailable(e.to_string())
                    } else {
                        SubmitError::Store(e.to_string())
                    })
                }
            };
            for job in jobs {
                match job.ack {
                    Some(ack) => {
                        // The requester may have gone away; nothing to do then.
                        let _ = ack.send(outcome.clone());
                    }
                    None if outcome.is_err() => {
                        metrics
                            .dropped
                            .get_or_create(&ReasonLabels {
                                source: "udp",
                                reason: "store_error",
                            })
                            .inc_by(job.docs.len().max(1) as u64);
                    }
                    None => {}
                }
                drop(job._permit);
            }
            metrics
                .queue_depth
                .set(cap.saturating_sub(permits.available_permits()) as i64);
        }
    }
    tracing::debug!("ingest writer drained");
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use roentgen_store::{
        ConfigKind, RollupRow, StoreError, StoredTrace, SummaryPage, SummaryQuery, WriteBatching,
        WriteOutcome,
    };

    use super::*;

    /// A store that records the size of every write and asks for `batching`.
    struct Recording {
        batching: WriteBatching,
        writes: Mutex<Vec<(usize, bool)>>,
    }

    impl Recording {
        fn new(linger: Duration, max_documents: usize) -> Arc<Self> {
            Arc::new(Self {
                batching: WriteBatching {
                    linger,
                    max_documents,
                },
                writes: Mutex::new(Vec::new()),
            })
        }

        /// (documents, acknowledged) of each write so far.
        fn writes(&self) -> Vec<(usize, bool)> {
            self.writes.lock().map(|w| w.clone()).unwrap_or_default()
        }

        fn record(&self, docs: &[Document], acknowledged: bool) -> WriteOutcome {
            if let Ok(mut w) = self.writes.lock() {
                w.push((docs.len(), acknowledged));
            }
            WriteOutcome {
                documents: docs.len(),
                traces: docs.len(),
            }
        }
    }

    #[async_trait]
    impl Store for Recording {
        fn write_batching(&self) -> WriteBatching {
            self.batching
        }
        async fn write(
            &self,
            _: &TenantId,
            docs: Vec<Document>,
        ) -> Result<WriteOutcome, StoreError> {
            Ok(self.record(&docs, true))
        }
        async fn write_unacknowledged(
            &self,
            _: &TenantId,
            docs: Vec<Document>,
        ) -> Result<WriteOutcome, StoreError> {
            Ok(self.record(&docs, false))
        }
        async fn get_traces(
            &self,
            _: &TenantId,
            _: &[roentgen_model::TraceId],
        ) -> Result<Vec<StoredTrace>, StoreError> {
            Ok(Vec::new())
        }
        async fn query_summaries(
            &self,
            _: &TenantId,
            _: SummaryQuery,
        ) -> Result<SummaryPage, StoreError> {
            Ok(SummaryPage::default())
        }
        async fn rollups(
            &self,
            _: &TenantId,
            _: u64,
            _: u64,
            _: u64,
        ) -> Result<Vec<RollupRow>, StoreError> {
            Ok(Vec::new())
        }
        async fn put_config(
            &self,
            _: &TenantId,
            _: ConfigKind,
            _: &str,
            _: serde_json::Value,
        ) -> Result<(), StoreError> {
            Ok(())
        }
        async fn list_config(
            &self,
            _: &TenantId,
            _: ConfigKind,
        ) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
            Ok(Vec::new())
        }
        async fn delete_config(
            &self,
            _: &TenantId,
            _: ConfigKind,
            _: &str,
        ) -> Result<bool, StoreError> {
            Ok(false)
        }
        async fn close(&self) -> Result<(), StoreError> {
            Ok(())
        }
        async fn sync_index(&self) -> Result<(), StoreError> {
            Ok(())
        }
        async fn drop_before(&self, _: u64) -> Result<Vec<u32>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn doc(n: u64) -> Document {
        let now = now_seconds();
        let raw = format!(
            r#"{{"trace_id":"1-{now:08x}-{n:024x}","id":"{n:016x}","name":"svc","start_time":{now},"end_time":{now}.5}}"#
        );
        Document::parse(raw).expect("valid document")
    }

    fn start(store: &Arc<Recording>, queue_capacity: usize) -> (Ingest, JoinHandle<()>) {
        let store: Arc<dyn Store> = Arc::clone(store) as Arc<dyn Store>;
        Ingest::start(
            store,
            Arc::new(Metrics::new()),
            IngestOptions {
                queue_capacity,
                ..IngestOptions::default()
            },
        )
    }

    /// A recording store that lingers for an hour up to `max_documents`, the ingest
    /// path in front of it, and the tenant to submit as.
    fn lingering(
        max_documents: usize,
        queue_capacity: usize,
    ) -> (Arc<Recording>, Ingest, JoinHandle<()>, TenantId) {
        let store = Recording::new(LONG, max_documents);
        let (ingest, writer) = start(&store, queue_capacity);
        (
            store,
            ingest,
            writer,
            TenantId::new(TENANT).expect("tenant"),
        )
    }

    /// Lets the writer task take what is queued.
    async fn settle() {
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
    }

    /// Waits (up to 30 s) until the store has seen a write; `what` says which.
    async fn first_write(store: &Recording, what: &str) {
        tokio::time::timeout(Duration::from_secs(30), async {
            while store.writes().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no write: {what}"));
    }

    const LONG: Duration = Duration::from_secs(3600);
    const TENANT: &str = "default";

    #[tokio::test]
    async fn unacknowledged_batches_linger_until_they_reach_the_store_limit() {
        let (store, ingest, writer, tenant) = lingering(3, 100);
        ingest.try_submit(&tenant, vec![doc(1)]).expect("queued");
        settle().await;
        ingest.try_submit(&tenant, vec![doc(2)]).expect("queued");
        settle().await;
        assert!(store.writes().is_empty(), "a short batch waits for more");
        ingest.try_submit(&tenant, vec![doc(3)]).expect("queued");
        first_write(&store, "the batch is written once it holds the limit").await;
        assert_eq!(store.writes(), vec![(3, false)]);
        drop(ingest);
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn a_waiting_client_ends_the_linger_and_shares_the_write() {
        let (store, ingest, writer, tenant) = lingering(1_000, 100);
        ingest.try_submit(&tenant, vec![doc(1)]).expect("queued");
        settle().await;
        tokio::time::timeout(
            Duration::from_secs(30),
            ingest.submit(&tenant, vec![doc(2)], Duration::from_secs(1)),
        )
        .await
        .expect("an acknowledged write does not linger")
        .expect("written");
        assert_eq!(store.writes(), vec![(2, true)]);
        drop(ingest);
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn a_half_full_queue_is_written_at_once() {
        let (store, ingest, writer, tenant) = lingering(1_000, 4);
        ingest.try_submit(&tenant, vec![doc(1)]).expect("queued");
        settle().await;
        assert!(store.writes().is_empty(), "a quarter full queue lingers");
        ingest.try_submit(&tenant, vec![doc(2)]).expect("queued");
        first_write(&store, "half full: written").await;
        assert_eq!(store.writes(), vec![(2, false)]);
        drop(ingest);
        writer.await.expect("writer");
    }

    #[tokio::test]
    async fn shutdown_writes_a_lingering_batch() {
        let (store, ingest, writer, tenant) = lingering(1_000, 100);
        ingest.try_submit(&tenant, vec![doc(1)]).expect("queued");
        settle().await;
        drop(ingest);
        tokio::time::timeout(Duration::from_secs(30), writer)
            .await
            .expect("the writer stops without waiting out the linger")
            .expect("writer");
        assert_eq!(store.writes(), vec![(1, false)]);
    }

    #[tokio::test]
    async fn without_a_linger_what_is_queued_is_written_at_once() {
        let store = Recording::new(Duration::ZERO, usize::MAX);
        let (ingest, writer) = start(&store, 100);
        let tenant = TenantId::new(TENANT).expect("tenant");
        ingest.try_submit(&tenant, vec![doc(1)]).expect("queued");
        first_write(&store, "written").await;
        assert_eq!(store.writes(), vec![(1, false)]);
        drop(ingest);
        writer.await.expect("writer");
    }
}
