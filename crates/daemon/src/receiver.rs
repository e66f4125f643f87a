//! The UDP receiver: one thread reading datagrams with `recvmmsg` from a socket with a
//! large receive buffer. The loop ([`receive_loop`]) hands datagrams to a
//! [`DatagramHandler`]; the daemon's checks the header line and that the document is
//! UTF-8 (a JSON string must be) and puts it in the buffer — anything more is the
//! endpoint's job, as with the official daemon. `roentgen serve` runs the same loop with
//! a handler that validates and stores (the binary wires it), so both read UDP alike.

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
const RECV_BATCH: usize = 16;
/// How often a blocked read looks at the shutdown signal.
const READ_TIMEOUT: Duration = Duration::from_millis(20);

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

/// What a receive loop hands its datagrams to.
pub trait DatagramHandler {
    /// One non-empty datagram.
    fn datagram(&mut self, data: &[u8]);
    /// The end of one `recvmmsg` call that returned `received` non-empty datagrams.
    fn batch_done(&mut self, received: u64);
    /// The socket had nothing for a while (or the loop is about to stop).
    fn idle(&mut self);
}

/// Reads `socket` with `recvmmsg` until `cancel`, then reads what the kernel already
/// holds and stops. `socket` should come from [`bind`] (it relies on its read timeout).
pub fn receive_loop(
    socket: &UdpSocket,
    handler: &mut impl DatagramHandler,
    cancel: &CancellationToken,
) {
    use std::io::IoSliceMut;
    use std::os::fd::AsRawFd;

    use nix::errno::Errno;
    use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg};

    // One byte more than any UDP payload per slot, so nothing is silently truncated.
    let mut bufs: Vec<Vec<u8>> = (0..RECV_BATCH).map(|_| vec![0u8; 65_536]).collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECV_BATCH, None);
    let mut lens = [0usize; RECV_BATCH];
    let fd = socket.as_raw_fd();
    let mut draining = false;
    loop {
        if !draining && cancel.is_cancelled() {
            // Read what the kernel already holds, then stop.
            draining = true;
            if socket.set_nonblocking(true).is_err() {
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
                let mut received = 0;
                for (buf, len) in bufs.iter().zip(lens).take(n) {
                    if len > 0 {
                        received += 1;
                        handler.datagram(&buf[..len]);
                    }
                }
                handler.batch_done(received);
            }
            Err(Errno::EAGAIN) => {
                handler.idle();
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
    handler.idle();
}

/// Starts a thread running [`receive_loop`] into `handler`.
pub fn spawn_loop<H: DatagramHandler + Send + 'static>(
    name: &str,
    socket: UdpSocket,
    mut handler: H,
    cancel: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            receive_loop(&socket, &mut handler, &cancel);
            tracing::debug!("udp receiver stopped");
        })
}

/// The daemon's handler: header check, UTF-8 check, into the pipeline.
struct Receiver {
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    docs: Vec<Doc>,
}

impl DatagramHandler for Receiver {
    fn datagram(&mut self, data: &[u8]) {
        let body = match split_datagram(data) {
            Ok(b) => b,
            Err(e) => return self.metrics.reject(e.reason(), 1),
        };
        match std::str::from_utf8(body) {
            Ok(text) => self.docs.push(Box::from(text)),
            Err(_) => self.metrics.reject("not_utf8", 1),
        }
    }

    fn batch_done(&mut self, received: u64) {
        self.metrics.received.inc_by(received);
        if !self.docs.is_empty() {
            self.pipeline.accept(std::mem::take(&mut self.docs));
        }
    }

    fn idle(&mut self) {}
}

/// Starts the daemon's receiver thread; it stops after `cancel` once the socket's
/// buffer is empty.
pub fn spawn(
    socket: UdpSocket,
    pipeline: Arc<Pipeline>,
    metrics: Arc<Metrics>,
    cancel: CancellationToken,
) -> std::io::Result<JoinHandle<()>> {
    let receiver = Receiver {
        pipeline,
        metrics,
        docs: Vec::with_capacity(RECV_BATCH),
    };
    spawn_loop("roentgen-daemon-udp", socket, receiver, cancel)
}
