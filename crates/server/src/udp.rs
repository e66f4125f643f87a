//! The X-Ray daemon protocol on UDP: `{"format":"json","version":1}` + `\n` + document.
//!
//! One thread reads the socket (blocking, with a short timeout so it sees shutdown),
//! validates each datagram and hands batches to the ingest queue. Junk is counted per
//! reason and dropped; a full queue drops the newest documents and counts them. On
//! shutdown the thread keeps reading until the kernel buffer is empty, so datagrams the
//! kernel already accepted are still stored.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use roentgen_api::daemon_protocol::split_datagram;
use roentgen_model::Document;
use roentgen_store::TenantId;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::ingest::{Ingest, SubmitError};
use crate::metrics::{Metrics, ReasonLabels, SourceLabels};

/// Receive buffer asked of the kernel (it may grant less; see `net.core.rmem_max`).
pub const SOCKET_RECV_BUFFER: usize = 16 * 1024 * 1024;
/// Documents handed to the ingest queue at once.
const BATCH: usize = 512;
/// Longest a received document waits in a partial batch.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(5);
const READ_TIMEOUT: Duration = Duration::from_millis(20);

/// Binds the UDP socket with a large receive buffer.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps it, and a small buffer only means earlier drops.
    let _ = socket.set_recv_buffer_size(SOCKET_RECV_BUFFER);
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(socket)
}

struct Receiver {
    socket: UdpSocket,
    ingest: Ingest,
    metrics: Arc<Metrics>,
    tenant: TenantId,
    batch: Vec<Document>,
    oldest: Option<Instant>,
    /// Datagrams received since the counter was last published.
    received: u64,
}

/// Datagrams read per `recvmmsg` call.
const RECV_BATCH: usize = 32;

impl Receiver {
    fn handle(&mut self, data: &[u8]) {
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

    fn flush(&mut self) {
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
        let docs = std::mem::take(&mut self.batch);
        let n = docs.len() as u64;
        self.oldest = None;
        if let Err(e) = self.ingest.try_submit(&self.tenant, docs) {
            let reason = match e {
                SubmitError::QueueFull => "queue_full",
                SubmitError::ShuttingDown => "shutting_down",
                SubmitError::Store(_) => "store_error",
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

    fn run(mut self, cancel: CancellationToken) {
        use std::io::IoSliceMut;
        use std::os::fd::AsRawFd;

        use nix::errno::Errno;
        use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

        // One byte more than any UDP payload per slot, so nothing is silently truncated.
        let mut bufs: Vec<Vec<u8>> = (0..RECV_BATCH).map(|_| vec![0u8; 65_536]).collect();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECV_BATCH, None);
        let mut lens = [0usize; RECV_BATCH];
        let fd = self.socket.as_raw_fd();
        let mut draining = false;
        loop {
            if !draining && cancel.is_cancelled() {
                // Read what the kernel already holds, then stop.
                draining = true;
                if self.socket.set_nonblocking(true).is_err() {
                    break;
                }
            }
            // Blocks until one datagram (or the read timeout), then takes what is there.
            let got = {
                let mut iovs: Vec<[IoSliceMut<'_>; 1]> =
                    bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
                recvmmsg(
                    fd,
                    &mut headers,
                    iovs.iter_mut(),
                    MsgFlags::MSG_WAITFORONE,
                    None,
                )
                .map(|results| {
                    let mut n = 0;
                    for (slot, msg) in results.enumerate() {
                        lens[slot] = msg.bytes;
                        n = slot + 1;
                    }
                    n
                })
            };
            match got {
                Ok(n) => {
                    for (buf, len) in bufs.iter().zip(lens).take(n) {
                        if len > 0 {
                            self.handle(&buf[..len]);
                        }
                    }
                    if self.batch.len() >= BATCH
                        || self.oldest.is_some_and(|t| t.elapsed() >= MAX_BATCH_DELAY)
                    {
                        self.flush();
                    }
                }
                Err(Errno::EAGAIN) => {
                    self.flush();
                    if draining {
                        break;
                    }
                }
                Err(Errno::EINTR) => {}
                Err(e) => {
                    // ICMP errors and the like surface here on some systems: keep going.
                    tracing::warn!("udp receive failed: {e}");
                }
            }
        }
        self.flush();
        tracing::debug!("udp listener stopped");
    }
}

/// Starts the listener thread on a bound socket; it stops after `cancel` once the
/// socket's buffer is drained.
pub fn spawn(
    socket: UdpSocket,
    ingest: Ingest,
    tenant: TenantId,
    cancel: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let metrics = Arc::clone(ingest.metrics());
    let receiver = Receiver {
        socket,
        ingest,
        metrics,
        tenant,
        batch: Vec::with_capacity(BATCH),
        oldest: None,
        received: 0,
    };
    std::thread::Builder::new()
        .name("roentgen-udp".into())
        .spawn(move || receiver.run(cancel))
}
