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

use roentgen_model::Document;
use roentgen_store::TenantId;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::ingest::{Ingest, SubmitError};
use crate::metrics::{Metrics, ReasonLabels, SourceLabels};

/// The header every X-Ray SDK sends, byte for byte.
pub const PROTOCOL_HEADER: &[u8] = br#"{"format":"json","version":1}"#;
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

/// Why a datagram was refused before its document was looked at.
fn split_datagram(data: &[u8]) -> Result<&[u8], &'static str> {
    let Some(nl) = data.iter().position(|b| *b == b'\n') else {
        return Err("missing_header");
    };
    let (header, body) = (&data[..nl], &data[nl + 1..]);
    if header != PROTOCOL_HEADER {
        #[derive(serde::Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<serde_json::Value>,
        }
        let ok = serde_json::from_slice::<Header>(header).is_ok_and(|h| {
            h.format.is_some_and(|f| f.eq_ignore_ascii_case("json"))
                && h.version.is_some_and(|v| v.as_i64() == Some(1))
        });
        if !ok {
            return Err("invalid_header");
        }
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err("empty_body");
    }
    Ok(body)
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
            Err(reason) => return self.metrics.reject("udp", reason),
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

#[cfg(test)]
mod tests {
    use super::split_datagram;

    #[test]
    fn daemon_header_rules() {
        let body = br#"{"a":1}"#;
        let cases: &[(&[u8], Result<(), &str>)] = &[
            (b"{\"format\":\"json\",\"version\":1}\n{\"a\":1}", Ok(())),
            (b"{\"format\": \"JSON\", \"version\": 1}\n{\"a\":1}", Ok(())),
            (
                b"{\"format\":\"json\",\"version\":2}\n{\"a\":1}",
                Err("invalid_header"),
            ),
            (
                b"{\"format\":\"json\",\"version\":\"1\"}\n{\"a\":1}",
                Err("invalid_header"),
            ),
            (
                b"{\"format\":\"json\",\"version\":1}",
                Err("missing_header"),
            ),
            (b"{\"format\":\"json\",\"version\":1}\n", Err("empty_body")),
            (b"garbage\n{\"a\":1}", Err("invalid_header")),
        ];
        for (input, expected) in cases {
            let got = split_datagram(input).map(|b| assert_eq!(b, body));
            assert_eq!(got, *expected, "{}", String::from_utf8_lossy(input));
        }
        // The body is everything after the first newline, newlines included.
        assert_eq!(
            split_datagram(b"{\"format\":\"json\",\"version\":1}\n{\"a\":\"x\ny\"}"),
            Ok(&b"{\"a\":\"x\ny\"}"[..])
        );
    }
}
