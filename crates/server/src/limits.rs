//! Connection limits of the HTTP and gRPC listeners: how many connections are open at once, and
//! how long one may sit without a byte moving either way.
//!
//! Past [`Limits::max_connections`] the listener stops accepting until a connection
//! closes: new clients wait in the kernel's backlog instead of costing memory. A
//! connection that neither sends nor receives for [`Limits::idle_timeout`] (an idle
//! keep-alive connection, or a client that stalls mid-request) is closed. Header sizes
//! are hyper's limits (at most 100 headers, about 400 KiB of request head); bodies are
//! the API's ([`crate::http::MAX_BODY_BYTES`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_io_timeout::TimeoutStream;

/// Limits of one listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most connections open at once.
    pub max_connections: usize,
    /// Longest a connection may go without reading or writing a byte.
    pub idle_timeout: Duration,
}

/// A listener that holds its connections to [`Limits`].
#[derive(Debug)]
pub struct LimitedListener<L> {
    inner: L,
    permits: Arc<Semaphore>,
    idle_timeout: Duration,
    open: prometheus_client::metrics::gauge::Gauge,
}

impl<L> LimitedListener<L> {
    /// Wraps `inner`; `open` counts the connections open now.
    pub fn new(inner: L, limits: Limits, open: prometheus_client::metrics::gauge::Gauge) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            idle_timeout: limits.idle_timeout,
            open,
        }
    }
}

impl<L> axum::serve::Listener for LimitedListener<L>
where
    L: axum::serve::Listener,
{
    type Io = Limited<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let permit = match Arc::clone(&self.permits).acquire_owned().await {
            Ok(p) => p,
            // The semaphore is never closed.
            Err(_) => std::future::pending().await,
        };
        let (io, addr) = self.inner.accept().await;
        let mut timed = TimeoutStream::new(io);
        timed.set_read_timeout(Some(self.idle_timeout));
        timed.set_write_timeout(Some(self.idle_timeout));
        self.open.inc();
        (
            Limited {
                io: Box::pin(timed),
                _permit: permit,
                open: self.open.clone(),
            },
            addr,
        )
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection of a [`LimitedListener`]: frees its slot when dropped.
#[derive(Debug)]
pub struct Limited<T> {
    io: Pin<Box<TimeoutStream<T>>>,
    _permit: OwnedSemaphorePermit,
    open: prometheus_client::metrics::gauge::Gauge,
}

impl<T> Drop for Limited<T> {
    fn drop(&mut self) {
        self.open.dec();
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncRead for Limited<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncWrite for Limited<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.io.as_mut().poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.io.as_mut().poll_shutdown(cx)
    }
}

impl<L> LimitedListener<L>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    /// The connections as tonic's `serve_with_incoming` takes them, under the same
    /// limits as an HTTP listener's.
    pub fn into_grpc_incoming(
        self,
    ) -> impl futures_core::Stream<Item = Result<GrpcConnection<L::Io>, std::io::Error>> + Send + 'static
    {
        futures_util::stream::unfold(self, |mut listener| async move {
            let (io, remote) = axum::serve::Listener::accept(&mut listener).await;
            Some((Ok(GrpcConnection { io, remote }), listener))
        })
    }
}

/// A [`Limited`] connection for tonic, which wants to know its peer.
#[derive(Debug)]
pub struct GrpcConnection<T> {
    io: Limited<T>,
    remote: SocketAddr,
}

impl<T> tonic::transport::server::Connected for GrpcConnection<T> {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: None,
            remote_addr: Some(self.remote),
        }
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncRead for GrpcConnection<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite> AsyncWrite for GrpcConnection<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
