//! `roentgen daemon`: a drop-in for the AWS X-Ray daemon.
//!
//! SDKs send segment documents over UDP; the daemon checks the header line, buffers the
//! documents in memory bounded by `--buffer-memory`, and sends them in batches of at
//! most 50 with `PutTraceSegments` to the endpoint (`roentgen serve`, or AWS X-Ray)
//! from several concurrent senders, retrying what failed. With `--spool-dir`, what does
//! not fit in memory while the endpoint is away waits on disk, survives a restart and
//! drains when the endpoint is back. The TCP listener proxies the sampling API to the
//! endpoint. On shutdown the daemon stops receiving, sends what it holds within the
//! flush timeout, and spools (or counts as dropped) what it could not send.
//!
//! With `--otlp-http-addr` / `--otlp-grpc-addr` it also takes OpenTelemetry spans,
//! converts them with `roentgen-otlp` and buffers the documents like datagrams.
//!
//! The crate reads no more of a UDP document than its routing needs: the header line,
//! that the body is UTF-8, and a document's `id` only when the endpoint names it as
//! unprocessed. It depends on `roentgen-api` for the wire shapes and on `roentgen-otlp`
//! for OTLP, never on the server or the store.

pub mod auth;
pub mod buffer;
pub mod config;
pub mod error;
pub mod metadata;
pub mod metrics;
pub mod otlp;
pub mod pipeline;
pub mod proxy;
pub mod receiver;
pub mod sender;
pub mod spool;
mod telemetry;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Overrides, Settings};
pub use error::{ConfigError, DaemonError};
pub use metrics::Metrics;

use crate::pipeline::Pipeline;
use crate::sender::Sender;
use crate::spool::Spool;
use crate::telemetry::Telemetry;

/// Longest a partial batch waits for more documents before it is sent.
pub const LINGER: Duration = Duration::from_millis(100);
/// How often the spool is looked at for documents to bring back.
const UNSPOOL_EVERY: Duration = Duration::from_millis(100);

/// What happened over the daemon's life, for the exit message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Non-empty datagrams read.
    pub received: u64,
    /// Documents the endpoint accepted.
    pub sent: u64,
    /// Datagrams or documents refused as invalid.
    pub rejected: u64,
    /// Valid documents that will never be sent.
    pub dropped: u64,
    /// Documents left in the spool for the next start.
    pub left_in_spool_bytes: u64,
}

/// A daemon whose sockets are bound, ready to run.
pub struct Daemon {
    settings: Settings,
    udp: std::net::UdpSocket,
    tcp: std::net::TcpListener,
    metrics_listener: Option<std::net::TcpListener>,
    otlp_http: Option<std::net::TcpListener>,
    otlp_grpc: Option<std::net::TcpListener>,
    metrics: Arc<Metrics>,
    pipeline: Arc<Pipeline>,
    telemetry_interval: Duration,
    signer: Option<Arc<auth::Signer>>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn bind_tcp(what: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, DaemonError> {
    let listener = std::net::TcpListener::bind(addr).map_err(|source| DaemonError::Bind {
        what,
        addr,
        source,
    })?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

impl Daemon {
    /// Binds every socket and opens the spool, so a bad address or directory fails
    /// before anything runs.
    pub fn bind(settings: Settings) -> Result<Self, DaemonError> {
        let udp = receiver::bind(settings.udp_addr).map_err(|source| DaemonError::Bind {
            what: "udp",
            addr: settings.udp_addr,
            source,
        })?;
        let tcp = bind_tcp("tcp", settings.tcp_addr)?;
        let metrics_listener = settings
            .metrics_addr
            .map(|addr| bind_tcp("metrics", addr))
            .transpose()?;
        let otlp_http = settings
            .otlp_http_addr
            .map(|addr| bind_tcp("otlp-http", addr))
            .transpose()?;
        let otlp_grpc = settings
            .otlp_grpc_addr
            .map(|addr| bind_tcp("otlp-grpc", addr))
            .transpose()?;
        let metrics = Arc::new(Metrics::new());
        let spool = match &settings.spool_dir {
            Some(dir) => {
                // Files small enough that one fits in half the memory buffer.
                let file_bytes = (settings.buffer_bytes / 4).min(8 * 1024 * 1024);
                Some(Spool::open(dir, settings.spool_bytes, file_bytes)?)
            }
            None => None,
        };
        let pipeline = Arc::new(Pipeline::new(
            settings.buffer_bytes,
            LINGER,
            spool,
            Arc::clone(&metrics),
        ));
        Ok(Self {
            settings,
            udp,
            tcp,
            metrics_listener,
            otlp_http,
            otlp_grpc,
            metrics,
            pipeline,
            telemetry_interval: Duration::from_secs(60),
            signer: None,
        })
    }

    /// Sets how often telemetry is reported (a minute unless changed).
    pub fn with_telemetry_interval(mut self, interval: Duration) -> Self {
        self.telemetry_interval = interval;
        self
    }

    /// Finds AWS credentials in the standard chain (see [`auth`]) given the process
    /// environment and home directory; with them every request is signed with SigV4.
    /// Without any, requests go unsigned (fine for `roentgen serve` without `--auth`).
    pub fn with_credentials_from(
        mut self,
        env: &std::collections::HashMap<String, String>,
        home: Option<std::path::PathBuf>,
    ) -> Self {
        let region = self
            .settings
            .region
            .clone()
            .unwrap_or_else(|| "us-east-1".to_string());
        let client = reqwest::Client::builder()
            .danger_accept_invalid_certs(self.settings.no_verify_ssl)
            .build()
            .unwrap_or_default();
        // The instance role is only worth asking for when the endpoint is AWS itself:
        // a daemon aimed at `roentgen serve` elsewhere should not wait on IMDS.
        let skip_imds = self.settings.local_mode || !self.settings.endpoint.is_aws();
        self.signer = auth::CredentialsProvider::discover(
            env,
            home,
            skip_imds,
            self.settings.role_arn.as_deref(),
            &region,
            client,
        )
        .map(|p| Arc::new(auth::Signer::new(p, region)));
        self
    }

    /// The bound UDP address.
    pub fn udp_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// The bound TCP address.
    pub fn tcp_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// The daemon's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    fn client(&self) -> Result<reqwest::Client, DaemonError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("roentgen-daemon/", env!("CARGO_PKG_VERSION")))
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(self.settings.concurrency.max(2))
            .danger_accept_invalid_certs(self.settings.no_verify_ssl);
        if let Some(proxy) = &self.settings.proxy_address {
            builder = builder.proxy(reqwest::Proxy::all(proxy.as_str())?);
        }
        Ok(builder.build()?)
    }

    /// Runs until `cancel`, then stops receiving, flushes within the flush timeout and
    /// returns what happened.
    pub async fn run(self, cancel: CancellationToken) -> Result<Report, DaemonError> {
        let client = self.client()?;
        let settings = &self.settings;
        tracing::info!(
            udp = %settings.udp_addr,
            tcp = %settings.tcp_addr,
            endpoint = %settings.endpoint.base,
            buffer_mb = settings.buffer_bytes / (1024 * 1024),
            concurrency = settings.concurrency,
            spool = ?settings.spool_dir,
            config = ?settings.config_file,
            "roentgen daemon started"
        );
        match &self.signer {
            Some(s) => {
                tracing::info!(credentials = %s.describe(), "requests are signed with SigV4")
            }
            None => tracing::info!("no AWS credentials found; requests are not signed"),
        }
        if let Some(spool) = self.pipeline.spool()
            && !spool.is_empty()
        {
            tracing::info!(
                bytes = spool.bytes(),
                "spool holds segments from an earlier run; draining it"
            );
        }

        let tasks = TaskTracker::new();
        let stop_servers = CancellationToken::new();

        // TCP proxy.
        let proxy = proxy::router(
            client.clone(),
            settings.endpoint.clone(),
            Arc::clone(&self.metrics),
            self.signer.clone(),
        );
        let tcp = tokio::net::TcpListener::from_std(self.tcp)?;
        let stop = stop_servers.clone();
        tasks.spawn(async move {
            let served = axum::serve(tcp, proxy)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await;
            if let Err(e) = served {
                tracing::error!("tcp proxy failed: {e}");
            }
        });

        // Metrics.
        if let Some(listener) = self.metrics_listener {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracing::info!(addr = %listener.local_addr()?, "metrics listening");
            let metrics = Arc::clone(&self.metrics);
            let app = axum::Router::new()
                .route(
                    "/metrics",
                    axum::routing::get(move || {
                        let metrics = Arc::clone(&metrics);
                        async move {
                            (
                                [(
                                    "content-type",
                                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                                )],
                                metrics.encode(),
                            )
                        }
                    }),
                )
                .route("/healthz", axum::routing::get(|| async { "ok\n" }));
            let stop = stop_servers.clone();
            tasks.spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!("metrics listener failed: {e}");
                }
            });
        }

        // OTLP receivers, into the same buffer as UDP.
        let otlp_servers = TaskTracker::new();
        let stop_otlp = CancellationToken::new();
        let otlp = otlp::OtlpReceiver {
            pipeline: Arc::clone(&self.pipeline),
            metrics: Arc::clone(&self.metrics),
        };
        if let Some(listener) = self.otlp_http {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracing::info!(addr = %listener.local_addr()?, "otlp http listening");
            let app = otlp::router(otlp.clone());
            let stop = stop_otlp.clone();
            otlp_servers.spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { stop.cancelled().await })
                    .await;
                if let Err(e) = served {
                    tracing::error!("otlp http listener failed: {e}");
                }
            });
        }
        if let Some(listener) = self.otlp_grpc {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            tracing::info!(addr = %listener.local_addr()?, "otlp grpc listening");
            let stop = stop_otlp.clone();
            let otlp = otlp.clone();
            otlp_servers.spawn(async move {
                if let Err(e) = otlp::serve_grpc(listener, otlp, stop.cancelled_owned()).await {
                    tracing::error!("otlp grpc listener failed: {e}");
                }
            });
        }
        otlp_servers.close();

        // Receiver.
        let receiving = CancellationToken::new();
        let receiver = receiver::spawn(
            self.udp,
            Arc::clone(&self.pipeline),
            Arc::clone(&self.metrics),
            receiving.clone(),
        )?;

        // Senders.
        let abort = CancellationToken::new();
        let senders = TaskTracker::new();
        for _ in 0..settings.concurrency {
            let sender = Sender {
                pipeline: Arc::clone(&self.pipeline),
                metrics: Arc::clone(&self.metrics),
                client: client.clone(),
                endpoint: settings.endpoint.clone(),
                signer: self.signer.clone(),
            };
            senders.spawn(sender.run(abort.clone()));
        }
        senders.close();

        // Spool drain.
        let stop_unspool = CancellationToken::new();
        if self.pipeline.spool().is_some() {
            let pipeline = Arc::clone(&self.pipeline);
            let stop = stop_unspool.clone();
            tasks.spawn(async move {
                loop {
                    while pipeline.unspool() {}
                    tokio::select! {
                        () = tokio::time::sleep(UNSPOOL_EVERY) => {}
                        () = stop.cancelled() => break,
                    }
                }
            });
        }

        // Telemetry.
        let stop_telemetry = CancellationToken::new();
        let telemetry = Telemetry {
            client: client.clone(),
            endpoint: settings.endpoint.clone(),
            signer: self.signer.clone(),
            metrics: Arc::clone(&self.metrics),
            interval: self.telemetry_interval,
            resource_arn: settings.resource_arn.clone(),
            hostname: std::env::var("AWS_HOSTNAME")
                .ok()
                .or_else(|| nix::unistd::gethostname().ok()?.into_string().ok()),
            instance_id: std::env::var("AWS_INSTANCE_ID").ok(),
        };
        let telemetry_task = tokio::spawn(telemetry.run(stop_telemetry.clone()));

        cancel.cancelled().await;
        tracing::info!("stopping: no new segments; sending what is buffered");

        // Stop receiving (the thread reads what the kernel already holds first).
        receiving.cancel();
        stop_servers.cancel();
        stop_unspool.cancel();
        stop_otlp.cancel();
        let joined = tokio::task::spawn_blocking(move || receiver.join()).await;
        if !matches!(joined, Ok(Ok(()))) {
            tracing::error!("udp receiver ended abnormally");
        }
        // Requests in flight finish (their documents are buffered) before the flush.
        if tokio::time::timeout(Duration::from_secs(2), otlp_servers.wait())
            .await
            .is_err()
        {
            tracing::warn!("otlp listeners did not stop within 2 s");
        }

        // Flush within the deadline.
        self.pipeline.buffer.close();
        if tokio::time::timeout(settings.flush_timeout, senders.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_ms = settings.flush_timeout.as_millis() as u64,
                "flush timeout reached with segments unsent"
            );
            abort.cancel();
            senders.wait().await;
        }
        let dropped_now = self.pipeline.finish();
        if dropped_now > 0 {
            tracing::error!(
                segments = dropped_now,
                "segments not sent before exit were dropped"
            );
        }

        stop_telemetry.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), telemetry_task).await;
        tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(2), tasks.wait()).await;

        let m = &self.metrics;
        let rejected_reasons: Vec<&'static str> = metrics::DATAGRAM_REASONS
            .iter()
            .chain(metrics::ENDPOINT_REJECT_REASONS)
            .copied()
            .collect();
        let report = Report {
            received: m.received.get(),
            sent: m.sent.get(),
            rejected: Metrics::total(&m.rejected, &rejected_reasons),
            dropped: Metrics::total(&m.dropped, metrics::DROP_REASONS),
            left_in_spool_bytes: self.pipeline.spool().map_or(0, Spool::bytes),
        };
        tracing::info!(
            received = report.received,
            sent = report.sent,
            rejected = report.rejected,
            dropped = report.dropped,
            spooled_bytes = report.left_in_spool_bytes,
            "roentgen daemon stopped"
        );
        Ok(report)
    }
}
