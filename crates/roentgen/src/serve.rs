//! `roentgen serve`: wiring and the shutdown order.
//!
//! Start: open the store (embedded under --data-dir, or ClickHouse with --store), bind every listener (HTTP with OTLP/HTTP, the daemon's UDP
//! and TCP, OTLP/gRPC) failing before serving anything, log each bound address. Stop on SIGTERM/SIGINT: stop accepting (HTTP graceful shutdown,
//! UDP reads what the kernel already holds), drain the ingest queue into the store,
//! exit 0, all within `--grace`. A second signal exits at once with status 130.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use roentgen_daemon::receiver::{self, DatagramHandler};
use roentgen_server::limits::LimitedListener;
use roentgen_server::tls::TlsListener;
use roentgen_server::{AppState, Auth, Ingest, IngestOptions, Metrics, Sampling, router, udp};
use roentgen_store::Store;
use roentgen_store::clickhouse::ClickHouseStore;
use roentgen_store::embedded::{EmbeddedOptions, EmbeddedStore};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::cli::{ServeConfig, StoreChoice};

/// `serve` reads UDP with the daemon's receive loop and ingests in the server.
struct UdpHandler(udp::UdpIngest);

impl DatagramHandler for UdpHandler {
    fn datagram(&mut self, data: &[u8]) {
        self.0.datagram(data);
    }

    fn batch_done(&mut self, _received: u64) {
        self.0.batch_done();
    }

    fn idle(&mut self) {
        self.0.flush();
    }
}

/// How often expired day partitions are looked for.
const RETENTION_INTERVAL: Duration = Duration::from_secs(3600);

pub(crate) fn run(config: ServeConfig) -> anyhow::Result<ExitCode> {
    init_logging(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("roentgen")
        .build()
        .context("start the async runtime")?;
    runtime.block_on(serve(config))
}

fn init_logging(config: &ServeConfig) -> anyhow::Result<()> {
    // The storage engine logs routine work at info; keep it quiet unless asked for.
    let mut directives = config.log_level.clone();
    for noisy in ["fjall", "lsm_tree"] {
        if !directives.contains(noisy) {
            directives.push_str(&format!(",{noisy}=warn"));
        }
    }
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .with_context(|| format!("--log-level {:?} is not a valid filter", config.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = if config.log_json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    result.map_err(|e| anyhow::anyhow!("set up logging: {e}"))
}

async fn serve(config: ServeConfig) -> anyhow::Result<ExitCode> {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        "starting roentgen serve"
    );
    // Before anything can answer: a SIGTERM that follows the first answer (a readiness
    // probe, say) must find the handler, not the default action that kills the
    // process without the drain.
    let mut sigterm = signal(SignalKind::terminate()).context("install SIGTERM handler")?;
    let mut sigint = signal(SignalKind::interrupt()).context("install SIGINT handler")?;
    let mut sighup = signal(SignalKind::hangup()).context("install SIGHUP handler")?;
    let store = open_store(&config).await?;

    // Bind everything before serving anything, so a taken port fails the start.
    let http = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| format!("bind --http-addr {}", config.http_addr))?;
    let tcp = match config.tcp_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("bind --tcp-addr {a}"))?,
        ),
        None => None,
    };
    let otlp_grpc = match config.otlp_grpc_addr {
        Some(a) => Some(
            tokio::net::TcpListener::bind(a)
                .await
                .with_context(|| format!("bind --otlp-grpc-addr {a}"))?,
        ),
        None => None,
    };
    let udp_socket = match config.udp_addr {
        Some(a) => Some(receiver::bind(a).with_context(|| format!("bind --udp-addr {a}"))?),
        None => None,
    };
    info!(listener = "http", addr = %http.local_addr()?, "listening");
    if roentgen_server::console::is_built() {
        info!(url = %format!("http://{}/", http.local_addr()?), "web console");
    } else {
        info!(
            "web console not built into this binary; build it with: (cd ui && npm ci && npm run build) && cargo build -p roentgen"
        );
    }
    if let Some(t) = &tcp {
        info!(listener = "tcp", addr = %t.local_addr()?, "listening");
    }
    if let Some(u) = &udp_socket {
        info!(listener = "udp", addr = %u.local_addr()?, "listening");
    }
    if let Some(g) = &otlp_grpc {
        info!(listener = "otlp-grpc", addr = %g.local_addr()?, "listening");
    }

    let mut metrics = Metrics::new();
    metrics.register_store(Arc::clone(&store));
    let metrics = Arc::new(metrics);
    let (ingest, writer) = Ingest::start(
        Arc::clone(&store),
        Arc::clone(&metrics),
        IngestOptions {
            queue_capacity: config.queue_capacity,
            retention: config.retention,
            ..IngestOptions::default()
        },
    );
    let tenant = config.tenant.clone();
    let state = AppState {
        store: Arc::clone(&store),
        ingest: ingest.clone(),
        metrics,
        tenant: tenant.clone(),
        sampling: Arc::new(Sampling::default()),
        auth: config.auth.clone().map_or(Auth::Open, Auth::Keys),
        tenant_sampling: Arc::default(),
        sessions: Arc::new(roentgen_server::session::Sessions::new(
            config.tls.is_some(),
        )),
    };
    if let Some(keys) = &config.auth {
        info!(
            keys = keys.len(),
            "--auth: API requests must be signed (SigV4)"
        );
    }
    // The daemon-protocol TCP port is the X-Ray daemon's proxy: SDKs call it unsigned.
    let proxy_state = match &config.auth {
        None => state.clone(),
        Some(_) => AppState {
            auth: Auth::Proxy(roentgen_server::auth::Caller {
                key_id: "daemon-proxy".into(),
                tenant: tenant.clone(),
                role: roentgen_server::auth::Role::Write,
            }),
            ..state.clone()
        },
    };

    let cancel = CancellationToken::new();
    let mut servers = Vec::new();
    // Every listener holds to --max-connections and --idle-timeout on its own; the
    // gauge counts them all.
    let open = || state.metrics.http_connections.clone();
    let http_server = match &config.tls {
        None => serve_http(
            LimitedListener::new(http, config.limits, open()),
            router(state.clone()),
            &cancel,
        ),
        Some(certs) => {
            let tls = TlsListener::new(http, certs.server_config(&[b"h2", b"http/1.1"])?)
                .context("start the TLS listener")?;
            serve_http(
                LimitedListener::new(tls, config.limits, open()),
                router(state.clone()),
                &cancel,
            )
        }
    };
    servers.push(http_server);
    // Every AppState holds an ingest handle, and the writer stops only when all are
    // gone: the proxy's state must not outlive a --tcp-addr that is off.
    if let Some(listener) = tcp {
        servers.push(serve_http(
            LimitedListener::new(listener, config.limits, open()),
            router(proxy_state),
            &cancel,
        ));
    } else {
        drop(proxy_state);
    }
    if let Some(listener) = otlp_grpc {
        let otlp = roentgen_server::OtlpIngest::new(ingest.clone(), tenant.clone());
        servers.push(match &config.tls {
            Some(certs) => {
                let tls = TlsListener::new(listener, certs.server_config(&[b"h2"])?)
                    .context("start the OTLP/gRPC TLS listener")?;
                serve_otlp_grpc(
                    LimitedListener::new(tls, config.limits, open()),
                    otlp,
                    &cancel,
                )
            }
            None => serve_otlp_grpc(
                LimitedListener::new(listener, config.limits, open()),
                otlp,
                &cancel,
            ),
        });
    }
    let udp_thread = match udp_socket {
        Some(s) => Some(
            receiver::spawn_loop(
                "roentgen-udp",
                s,
                UdpHandler(udp::UdpIngest::new(ingest.clone(), tenant)),
                cancel.clone(),
            )
            .context("start the UDP listener")?,
        ),
        None => None,
    };
    let retention = tokio::spawn(retention_loop(
        Arc::clone(&store),
        config.retention,
        cancel.clone(),
    ));
    // The writer stops once every ingest handle is gone: the servers' and UDP's.
    drop(state);
    drop(ingest);

    let which = loop {
        tokio::select! {
            _ = sigterm.recv() => break "SIGTERM",
            _ = sigint.recv() => break "SIGINT",
            _ = sighup.recv() => match &config.tls {
                Some(certs) => match certs.reload() {
                    Ok(()) => info!("SIGHUP: TLS certificate and key read again"),
                    Err(e) => error!("SIGHUP: kept the current TLS certificate: {e}"),
                },
                None => info!("SIGHUP: nothing to reload (no --tls-cert)"),
            },
        }
    };
    info!(signal = which, grace = ?config.grace, "shutting down: stop accepting, drain, flush");
    cancel.cancel();

    let drain = async {
        for s in servers {
            match s.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => error!("failed to shut down an HTTP listener: {e}"),
                Err(e) => error!("HTTP listener task failed: {e}"),
            }
        }
        if let Some(t) = udp_thread
            && !matches!(
                tokio::task::spawn_blocking(move || t.join()).await,
                Ok(Ok(()))
            )
        {
            error!("UDP listener thread panicked");
        }
        let _ = retention.await;
        if let Err(e) = writer.await {
            error!("ingest writer failed: {e}");
        }
        if let Err(e) = store.close().await {
            error!("failed to close the store: {e}");
        }
    };
    tokio::select! {
        r = tokio::time::timeout(config.grace, drain) => match r {
            Ok(()) => {
                info!("shutdown complete");
                Ok(ExitCode::SUCCESS)
            }
            Err(_) => {
                error!(grace = ?config.grace, "shutdown did not finish within the grace period");
                Ok(ExitCode::FAILURE)
            }
        },
        _ = sigterm.recv() => {
            warn!("second signal: exiting without waiting for the drain");
            Ok(ExitCode::from(130))
        }
        _ = sigint.recv() => {
            warn!("second signal: exiting without waiting for the drain");
            Ok(ExitCode::from(130))
        }
    }
}

async fn open_store(config: &ServeConfig) -> anyhow::Result<Arc<dyn Store>> {
    match &config.store {
        StoreChoice::Embedded => {
            std::fs::create_dir_all(&config.data_dir)
                .with_context(|| format!("create data directory {}", config.data_dir.display()))?;
            let embedded = EmbeddedStore::open(
                &config.data_dir,
                EmbeddedOptions {
                    min_free_bytes: config.min_free_bytes,
                    ..EmbeddedOptions::default()
                },
            )
            .with_context(|| format!("open the store in {}", config.data_dir.display()))?;
            info!(data_dir = %config.data_dir.display(), days = embedded.days().len(), "store opened");
            Ok(Arc::new(embedded))
        }
        StoreChoice::ClickHouse(ch) => {
            let mut ch = ch.clone();
            if ch.node.is_empty() {
                // Stable across restarts, distinct between nodes on one machine.
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "roentgen".into());
                ch.node = format!("{host}:{}", config.http_addr.port());
            }
            let store = ClickHouseStore::open(ch.clone()).await.with_context(|| {
                format!(
                    "open the ClickHouse store {} at {}",
                    ch.database,
                    ch.hosts.join(",")
                )
            })?;
            info!(
                hosts = %ch.hosts.join(","),
                database = %ch.database,
                cluster = ch.cluster.as_deref().unwrap_or("-"),
                node = %ch.node,
                server_version = store.server_version(),
                "store opened"
            );
            Ok(Arc::new(store))
        }
    }
}

async fn retention_loop(store: Arc<dyn Store>, retention: Duration, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(RETENTION_INTERVAL);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match store
            .drop_before(now.saturating_sub(retention.as_secs()))
            .await
        {
            Ok(days) if !days.is_empty() => info!(?days, "dropped expired day partitions"),
            Ok(_) => {}
            Err(e) => error!("failed to drop expired partitions: {e}"),
        }
    }
}

/// Serves `app` on `listener` until `cancel` fires, then finishes the requests under way.
fn serve_http<L>(
    listener: L,
    app: axum::Router,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<std::io::Result<()>>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    let stop = cancel.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    })
}

/// Serves OTLP/gRPC on `listener` until `cancel` fires.
fn serve_otlp_grpc<L>(
    listener: LimitedListener<L>,
    otlp: roentgen_server::OtlpIngest,
    cancel: &CancellationToken,
) -> tokio::task::JoinHandle<std::io::Result<()>>
where
    L: axum::serve::Listener<Addr = std::net::SocketAddr>,
{
    let stop = cancel.clone().cancelled_owned();
    tokio::spawn(async move {
        roentgen_server::otlp::serve_grpc(listener, otlp, stop)
            .await
            .map_err(std::io::Error::other)
    })
}
