//! The UDP receiver: one thread reading datagrams with `recvmmsg` from a socket with a
//! large receive buffer, checking the header line and handing the documents to the
//! buffer. The document is only checked to be UTF-8 (a JSON string must be); anything
//! more is the endpoint's job, as with the official daemon.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use roentgen_api::daemon_protocol::split_datagram;
use socket2::{Domain, Protocol, Socket, Type};
use tokio_util::sync::CancellationToken;

use crate::buffer::Doc;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;

/// Receive buffer asked of the kernel (it may grant less; see `net.core.rmem_max`).
/// The official daemon keeps the default (about 200 KB), which is why bursts overflow it.
pub const SOCKET_RECV_BUFFER: usize = 32 * 1024 * 1024;
/// Datagrams read per `recvmmsg` call.
const RECV_BATCH: usize = 64;
/// How often a blocked read looks at the shutdown signal.
const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// Binds the UDP socket with a large receive buffer.
pub fn bind(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Best effort: the kernel caps the size at `net.core.rmem_max` unless the process
    // may force it (CAP_NET_ADMIN), and a small buffer only means earlier drops under
    // bursts.
    let forced = nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::RcvBufForce,
        &SOCKET_RECV_BUFFER,
    )
    .is_ok();
    if !forced && socket.set_recv_buffer_size(SOCKET_RECV_BUFFER).is_err()
        || socket
            .recv_buffer_size()
            .is_ok_and(|granted| granted < SOCKET_RECV_BUFFER)
    {
        tracing::debug!(
            asked = SOCKET_RECV_BUFFER,
            granted = socket.recv_buffer_size().unwrap_or(0),
            "kernel granted a smaller udp receive buffer (net.core.rmem_max)"
        );
    }
    socket.bind(&addr.into())?;
    let socket: UdpSocket = socket.into();
    socket.set_read_timeout(Some(READ_TIMEOUT))?;
    Ok(socket)
}

struct Receiver {
    socket: UdpSocket,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    docs: Vec<Doc>,
}

impl Receiver {
    fn handle(&mut self, data: &[u8]) {
        let body = match split_datagram(data) {
            Ok(b) => b,
            Err(e) => return self.metrics.reject(e.reason(), 1),
        };
        match std::str::from_utf8(body) {
            Ok(text) => self.docs.push(Box::from(text)),
            Err(_) => self.metrics.reject("not_utf8", 1),
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
                    let mut received = 0;
                    for (buf, len) in bufs.iter().zip(lens).take(n) {
                        if len > 0 {
                            received += 1;
                            self.handle(&buf[..len]);
                        }
                    }
                    self.metrics.received.inc_by(received);
                    if !self.docs.is_empty() {
                        self.pipeline.accept(std::mem::take(&mut self.docs));
                    }
                }
                Err(Errno::EAGAIN) => {
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
        tracing::debug!("udp receiver stopped");
    }
}

/// Starts the receiver thread; it stops after `cancel` once the socket's buffer is empty.
pub fn spawn(
    socket: UdpSocket,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let receiver = Receiver {
        socket,
        pipeline,
        metrics,
        docs: Vec::with_capacity(RECV_BATCH),
    };
    std::thread::Builder::new()
        .name("roentgen-daemon-udp".into())
        .spawn(move || receiver.run(cancel))
}
