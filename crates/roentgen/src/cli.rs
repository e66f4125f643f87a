//! Flags. Every flag also reads from an environment variable `ROENTGEN_<FLAG>`; a flag
//! given on the command line wins over the environment.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

/// Exit status for bad flags or configuration (`EX_USAGE`).
pub(crate) const EX_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "roentgen",
    version,
    about = "Self-hosted distributed tracing that speaks AWS X-Ray",
    long_about = "Roentgen receives segments from X-Ray SDKs (UDP, the daemon protocol), \
                  from the PutTraceSegments API and from OpenTelemetry exporters (OTLP/HTTP \
                  and OTLP/gRPC), stores them, and answers the X-Ray API so the AWS CLI and \
                  boto3 read traces with --endpoint-url."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the collector, the X-Ray API and the store (embedded, or ClickHouse with
    /// --store) in one process.
    Serve(ServeArgs),
    /// Run a drop-in for the AWS X-Ray daemon: UDP in, batched PutTraceSegments out.
    Daemon(DaemonArgs),
    /// Container entrypoint: run CMD with the daemon beside it in this process; forward
    /// signals, reap zombies, flush every segment, exit with CMD's status.
    Run(RunArgs),
    /// List recent traces, optionally matching an X-Ray filter expression.
    Traces(TracesArgs),
    /// Show one trace as a waterfall.
    Trace(TraceArgs),
    /// Print the service graph: each edge with requests, error and fault percentages and
    /// mean latency.
    Map(MapArgs),
}

/// `roentgen map`.
#[derive(Debug, Args)]
pub(crate) struct MapArgs {
    /// How far back to look, e.g. `15m`, `1h`, `2d`.
    #[arg(long, default_value = "1h")]
    pub(crate) since: String,
    #[command(flatten)]
    pub(crate) api: ApiEndpoint,
}

/// Where the terminal client sends its X-Ray API calls.
#[derive(Debug, Args)]
pub(crate) struct ApiEndpoint {
    /// The X-Ray API to ask (a `roentgen serve`).
    #[arg(
        long,
        env = "ROENTGEN_ENDPOINT",
        default_value = "http://127.0.0.1:2772"
    )]
    pub(crate) endpoint: String,
}

/// `roentgen traces`.
#[derive(Debug, Args)]
pub(crate) struct TracesArgs {
    /// X-Ray filter expression, e.g. `service("api") AND responsetime > 1`.
    #[arg(long)]
    pub(crate) filter: Option<String>,
    /// How far back to look, e.g. `15m`, `1h`, `2d`.
    #[arg(long, default_value = "1h")]
    pub(crate) since: String,
    /// Most traces to print.
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    #[command(flatten)]
    pub(crate) api: ApiEndpoint,
}

impl TracesArgs {
    /// The look-back window.
    pub(crate) fn since(&self) -> anyhow::Result<Duration> {
        duration("since", &self.since)
    }
}

/// `roentgen trace ID`.
#[derive(Debug, Args)]
pub(crate) struct TraceArgs {
    /// The trace id, `1-xxxxxxxx-xxxxxxxxxxxxxxxxxxxxxxxx`.
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) api: ApiEndpoint,
}

/// `roentgen run [daemon flags] -- CMD ARGS…`.
#[derive(Debug, Args)]
#[command(version, disable_version_flag = true)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) daemon: DaemonArgs,

    /// Longest the daemon may take, once CMD has exited, to send what it holds (what is
    /// left goes to the spool, or is reported on stderr as lost).
    #[arg(long = "flush-timeout", default_value = "5s", value_name = "DURATION")]
    pub(crate) flush_timeout: String,

    /// Forward signals to CMD's whole process group instead of CMD alone (tini's -g).
    #[arg(short = 'g', long = "process-group")]
    pub(crate) process_group: bool,

    /// The application and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub(crate) command: Vec<std::ffi::OsString>,
}

impl RunArgs {
    /// The flush timeout.
    pub(crate) fn flush_timeout(&self) -> anyhow::Result<Duration> {
        duration("flush-timeout", &self.flush_timeout)
    }
}

/// The official daemon's flags (Go's `flag` package also takes `-bind` with one dash;
/// [`go_style_args`] rewrites those), plus `--endpoint`, `--spool-dir`, `--spool-size`,
/// `--concurrency`, `--metrics-addr`, `--otlp-http-addr` and `--otlp-grpc-addr`.
#[derive(Debug, Args)]
#[command(version, disable_version_flag = true)]
pub(crate) struct DaemonArgs {
    /// Overrides the UDP address the daemon listens on for segments (default
    /// 127.0.0.1:2000).
    #[arg(short = 'b', long = "bind", value_name = "HOST:PORT")]
    pub(crate) bind: Option<String>,

    /// Overrides the TCP address of the sampling proxy (default 127.0.0.1:2000).
    #[arg(short = 't', long = "bind-tcp", value_name = "HOST:PORT")]
    pub(crate) bind_tcp: Option<String>,

    /// Loads a configuration file (cfg.yaml); without it the daemon reads
    /// /etc/amazon/xray/cfg.yaml or ./cfg.yaml when one exists.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Writes logs to this file instead of stderr.
    #[arg(short = 'f', long = "log-file", value_name = "FILE")]
    pub(crate) log_file: Option<PathBuf>,

    /// Log level: dev, debug, info, warn, error, prod (the default, which is info).
    #[arg(short = 'l', long = "log-level", value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,

    /// Memory for buffered segments in MB (minimum 3; default 1% of host memory).
    #[arg(short = 'm', long = "buffer-memory", value_name = "MB")]
    pub(crate) buffer_memory: Option<u64>,

    /// AWS region of the X-Ray endpoint (else AWS_REGION).
    #[arg(short = 'n', long = "region")]
    pub(crate) region: Option<String>,

    /// Skips EC2 instance metadata lookups.
    #[arg(short = 'o', long = "local-mode", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", value_name = "BOOL")]
    pub(crate) local_mode: Option<bool>,

    /// Assumes this IAM role to upload segments to a different account.
    #[arg(short = 'r', long = "role-arn", value_name = "ARN")]
    pub(crate) role_arn: Option<String>,

    /// ARN of the AWS resource running the daemon (sent with telemetry).
    #[arg(short = 'a', long = "resource-arn", value_name = "ARN")]
    pub(crate) resource_arn: Option<String>,

    /// Proxy for uploads to the endpoint (else HTTPS_PROXY).
    #[arg(short = 'p', long = "proxy-address", value_name = "URL")]
    pub(crate) proxy_address: Option<String>,

    /// X-Ray endpoint URL, e.g. http://127.0.0.1:2772 for roentgen serve (the official
    /// daemon takes it only from the config file's Endpoint key).
    #[arg(short = 'e', long = "endpoint", value_name = "URL")]
    pub(crate) endpoint: Option<String>,

    /// Keeps segments that cannot be sent yet in this directory; they survive a restart
    /// and are sent when the endpoint is back. Without it, the memory buffer drops its
    /// oldest segments when full.
    #[arg(long = "spool-dir", value_name = "DIR")]
    pub(crate) spool_dir: Option<PathBuf>,

    /// Most the spool may hold, in MB (default 1024); past it the oldest are dropped.
    #[arg(long = "spool-size", value_name = "MB")]
    pub(crate) spool_size: Option<u64>,

    /// Parallel PutTraceSegments senders (default 8, or the Concurrency key).
    #[arg(long = "concurrency", value_name = "N")]
    pub(crate) concurrency: Option<usize>,

    /// Serves /metrics and /healthz on this address (off by default).
    #[arg(long = "metrics-addr", value_name = "HOST:PORT")]
    pub(crate) metrics_addr: Option<String>,

    /// Accepts OpenTelemetry spans over OTLP/HTTP (POST /v1/traces, protobuf or JSON)
    /// on this address and forwards them as segments (off by default; 4318 is OTLP's).
    #[arg(long = "otlp-http-addr", value_name = "HOST:PORT")]
    pub(crate) otlp_http_addr: Option<String>,

    /// Accepts OpenTelemetry spans over OTLP/gRPC on this address and forwards them as
    /// segments (off by default; 4317 is OTLP's).
    #[arg(long = "otlp-grpc-addr", value_name = "HOST:PORT")]
    pub(crate) otlp_grpc_addr: Option<String>,

    /// Prints the version and exits.
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,

    /// How often telemetry is reported (PutTelemetryRecords).
    #[arg(long = "telemetry-interval", default_value = "60s", hide = true)]
    pub(crate) telemetry_interval: String,
}

impl DaemonArgs {
    /// The flags as the daemon crate takes them.
    pub(crate) fn overrides(&self) -> roentgen_daemon::Overrides {
        roentgen_daemon::Overrides {
            bind: self.bind.clone(),
            bind_tcp: self.bind_tcp.clone(),
            config: self.config.clone(),
            log_file: self.log_file.clone(),
            log_level: self.log_level.clone(),
            buffer_memory_mb: self.buffer_memory,
            region: self.region.clone(),
            local_mode: self.local_mode,
            role_arn: self.role_arn.clone(),
            resource_arn: self.resource_arn.clone(),
            proxy_address: self.proxy_address.clone(),
            endpoint: self.endpoint.clone(),
            spool_dir: self.spool_dir.clone(),
            spool_size_mb: self.spool_size,
            concurrency: self.concurrency,
            metrics_addr: self.metrics_addr.clone(),
            otlp_http_addr: self.otlp_http_addr.clone(),
            otlp_grpc_addr: self.otlp_grpc_addr.clone(),
        }
    }

    /// How often telemetry is reported.
    pub(crate) fn telemetry_interval(&self) -> anyhow::Result<Duration> {
        duration("telemetry-interval", &self.telemetry_interval)
    }
}

/// Long flags of the daemon that Go's `flag` package accepts with a single dash.
const GO_LONG_FLAGS: &[&str] = &[
    "bind",
    "bind-tcp",
    "config",
    "log-file",
    "log-level",
    "buffer-memory",
    "region",
    "local-mode",
    "role-arn",
    "resource-arn",
    "proxy-address",
    "version",
    "help",
    "endpoint",
];

/// Rewrites `-bind x` / `-bind=x` to `--bind x` / `--bind=x` for the `daemon`
/// subcommand, as the official daemon (Go `flag`) accepts both forms. Arguments after
/// `--` are left alone.
pub(crate) fn go_style_args(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let is_daemon = args.get(1).is_some_and(|a| a == "daemon" || a == "run");
    if !is_daemon {
        return args;
    }
    let mut out = Vec::with_capacity(args.len());
    let mut rest = false;
    for arg in args {
        if rest {
            out.push(arg);
            continue;
        }
        let Some(text) = arg.to_str() else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let rewritten = text
            .strip_prefix('-')
            .filter(|t| !t.starts_with('-'))
            .and_then(|t| {
                let name = t.split('=').next().unwrap_or(t);
                GO_LONG_FLAGS.contains(&name).then(|| format!("--{t}"))
            });
        out.push(rewritten.map_or(arg, Into::into));
    }
    out
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address of the HTTP listener: the X-Ray API (point the AWS CLI or boto3 here with
    /// --endpoint-url), the web console at /, /healthz and /metrics.
    #[arg(long, env = "ROENTGEN_HTTP_ADDR", default_value = "127.0.0.1:2772")]
    http_addr: String,

    /// UDP address for X-Ray SDKs (the daemon protocol), or `off`. The default is the
    /// X-Ray daemon's, so SDKs need no setting.
    #[arg(long, env = "ROENTGEN_UDP_ADDR", default_value = "127.0.0.1:2000")]
    udp_addr: String,

    /// TCP address where SDKs expect the daemon's HTTP proxy, or `off`; serves the same
    /// X-Ray API as --http-addr.
    #[arg(long, env = "ROENTGEN_TCP_ADDR", default_value = "127.0.0.1:2000")]
    tcp_addr: String,

    /// Address of the OTLP/gRPC listener (OpenTelemetry exporters' `TraceService`), or
    /// `off`. OTLP/HTTP is always on the --http-addr listener at /v1/traces.
    #[arg(
        long,
        env = "ROENTGEN_OTLP_GRPC_ADDR",
        default_value = "127.0.0.1:4317"
    )]
    otlp_grpc_addr: String,

    /// Where traces are kept: `embedded` (a store under --data-dir) or ClickHouse,
    /// `clickhouse://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/DB` with optional
    /// `?user=…&password=…&cluster=…&secure=true&node=…` (`clickhouses://` is HTTPS). PORT is
    /// ClickHouse's HTTP port (8123). With `cluster`, list one host per shard: Roentgen
    /// creates local tables on each and `Distributed` tables over them.
    #[arg(long, env = "ROENTGEN_STORE", default_value = "embedded")]
    store: String,

    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "ROENTGEN_DATA_DIR", default_value = "./roentgen-data")]
    data_dir: PathBuf,

    /// Access keys (a TOML file; see docs/security.md). With it, every X-Ray API and
    /// OTLP/HTTP request on --http-addr must carry an AWS SigV4 signature (service
    /// `xray`, any region) by one of the keys, and acts only on its key's tenant within
    /// its role (read, write or admin). The --tcp-addr port, like the X-Ray daemon's
    /// proxy, takes unsigned requests as a `write` caller of --tenant; UDP and OTLP/gRPC
    /// carry no credentials and write to --tenant. The web console signs in with one of
    /// the keys and then calls the API with an HttpOnly session cookie.
    #[arg(long, env = "ROENTGEN_AUTH")]
    auth: Option<PathBuf>,

    /// Tenant of what arrives without credentials: UDP segments, OTLP/gRPC, the
    /// --tcp-addr port, and every request when --auth is not given.
    #[arg(long, env = "ROENTGEN_TENANT", default_value = "default")]
    tenant: String,

    /// PEM certificate chain: with --tls-key, the --http-addr and --otlp-grpc-addr
    /// listeners speak TLS only (rustls; TLS 1.2 and 1.3). SIGHUP reads both files
    /// again for new connections. The --tcp-addr daemon port stays plain, like the
    /// X-Ray daemon's.
    #[arg(long, env = "ROENTGEN_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "ROENTGEN_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Free space the embedded store keeps on the data directory's file system: below
    /// it, writes are refused (PutTraceSegments answers ThrottledException, UDP drops
    /// are counted) and resume by themselves once space is freed. E.g. `256MiB`, `2GB`.
    #[arg(long, env = "ROENTGEN_MIN_FREE_SPACE", default_value = "256MiB")]
    min_free_space: String,

    /// Most connections open at once on each listener (--http-addr, --tcp-addr,
    /// --otlp-grpc-addr); past it new connections wait to be accepted.
    #[arg(long, env = "ROENTGEN_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,

    /// A connection (HTTP or gRPC) that moves no byte for this long is closed (idle
    /// keep-alive connections, clients that stall mid-request).
    #[arg(long, env = "ROENTGEN_IDLE_TIMEOUT", default_value = "120s")]
    idle_timeout: String,

    /// How long traces are kept, e.g. `30d`, `12h`. Whole days are dropped once they
    /// are older than this; segments of older traces are refused.
    #[arg(long, env = "ROENTGEN_RETENTION", default_value = "30d")]
    retention: String,

    /// Most segment documents queued and not yet stored; past it UDP drops (counted)
    /// and PutTraceSegments answers ThrottledException. On ClickHouse, UDP batches are
    /// held open (up to 1 s or 20,000 documents) until they fill half of it, so a
    /// larger queue makes larger, cheaper inserts for more memory.
    #[arg(long, env = "ROENTGEN_QUEUE_CAPACITY", default_value_t = 10_000)]
    queue_capacity: usize,

    /// Longest a graceful shutdown may take after SIGTERM/SIGINT before the process
    /// gives up and exits non-zero.
    #[arg(long, env = "ROENTGEN_GRACE", default_value = "30s")]
    grace: String,

    /// Log filter: a level (`error`, `warn`, `info`, `debug`, `trace`) or a tracing
    /// directive such as `info,roentgen_server=debug`.
    #[arg(long, env = "ROENTGEN_LOG_LEVEL", default_value = "info")]
    log_level: String,

    /// Log format on stderr.
    #[arg(long, env = "ROENTGEN_LOG_FORMAT", value_parser = ["text", "json"], default_value = "text")]
    log_format: String,
}

/// Which store `serve` uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreChoice {
    /// fjall under --data-dir.
    Embedded,
    /// ClickHouse over HTTP.
    ClickHouse(roentgen_store::clickhouse::ClickHouseConfig),
}

/// Validated `serve` settings.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    pub(crate) http_addr: SocketAddr,
    pub(crate) udp_addr: Option<SocketAddr>,
    pub(crate) tcp_addr: Option<SocketAddr>,
    pub(crate) otlp_grpc_addr: Option<SocketAddr>,
    pub(crate) data_dir: PathBuf,
    pub(crate) auth: Option<std::sync::Arc<roentgen_server::auth::Keys>>,
    pub(crate) tenant: roentgen_store::TenantId,
    pub(crate) tls: Option<std::sync::Arc<roentgen_server::tls::CertStore>>,
    pub(crate) limits: roentgen_server::limits::Limits,
    pub(crate) min_free_bytes: u64,
    pub(crate) store: StoreChoice,
    pub(crate) retention: Duration,
    pub(crate) queue_capacity: usize,
    pub(crate) grace: Duration,
    pub(crate) log_level: String,
    pub(crate) log_json: bool,
}

fn addr(flag: &str, value: &str) -> anyhow::Result<SocketAddr> {
    value
        .to_socket_addrs()
        .with_context(|| format!("--{flag} {value:?} is not a host:port address"))?
        .next()
        .with_context(|| format!("--{flag} {value:?} resolves to no address"))
}

fn optional_addr(flag: &str, value: &str) -> anyhow::Result<Option<SocketAddr>> {
    if value.eq_ignore_ascii_case("off") {
        Ok(None)
    } else {
        addr(flag, value).map(Some)
    }
}

fn duration(flag: &str, value: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(value)
        .with_context(|| format!("--{flag} {value:?} is not a duration like 30d, 12h or 90s"))
}

impl ServeArgs {
    /// Checks every flag before anything is bound or opened.
    pub(crate) fn validate(self) -> anyhow::Result<ServeConfig> {
        let retention = duration("retention", &self.retention)?;
        if retention < Duration::from_secs(3600) {
            bail!("--retention {:?} is shorter than one hour", self.retention);
        }
        if self.queue_capacity == 0 {
            bail!("--queue-capacity must be at least 1");
        }
        Ok(ServeConfig {
            http_addr: addr("http-addr", &self.http_addr)?,
            udp_addr: optional_addr("udp-addr", &self.udp_addr)?,
            tcp_addr: optional_addr("tcp-addr", &self.tcp_addr)?,
            otlp_grpc_addr: optional_addr("otlp-grpc-addr", &self.otlp_grpc_addr)?,
            data_dir: self.data_dir,
            auth: match &self.auth {
                None => None,
                Some(path) => Some(std::sync::Arc::new(
                    roentgen_server::auth::Keys::load(path).context("--auth")?,
                )),
            },
            tenant: roentgen_store::TenantId::new(self.tenant.clone())
                .with_context(|| format!("--tenant {:?}", self.tenant))?,
            min_free_bytes: self
                .min_free_space
                .parse::<bytesize::ByteSize>()
                .map_err(|e| {
                    anyhow::anyhow!(
                        "--min-free-space {:?} is not a size like 256MiB or 2GB: {e}",
                        self.min_free_space
                    )
                })?
                .as_u64(),
            limits: roentgen_server::limits::Limits {
                max_connections: match self.max_connections {
                    0 => bail!("--max-connections must be at least 1"),
                    n => n,
                },
                idle_timeout: match duration("idle-timeout", &self.idle_timeout)? {
                    d if d.is_zero() => bail!("--idle-timeout must be longer than zero"),
                    d => d,
                },
            },
            tls: match (&self.tls_cert, &self.tls_key) {
                (Some(cert), Some(key)) => Some(roentgen_server::tls::CertStore::open(cert, key)?),
                _ => None,
            },
            store: if self.store == "embedded" {
                StoreChoice::Embedded
            } else {
                StoreChoice::ClickHouse(
                    roentgen_store::clickhouse::ClickHouseConfig::parse(&self.store)
                        .map_err(|e| anyhow::anyhow!("--store: {e}"))?,
                )
            },
            retention,
            queue_capacity: self.queue_capacity,
            grace: duration("grace", &self.grace)?,
            log_level: self.log_level,
            log_json: self.log_format == "json",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<ServeConfig> {
        let mut full = vec!["roentgen", "serve"];
        full.extend_from_slice(args);
        let cli = Cli::try_parse_from(full)?;
        let Command::Serve(a) = cli.command else {
            anyhow::bail!("not serve")
        };
        a.validate()
    }

    #[test]
    fn defaults() {
        let c = parse(&[]).expect("defaults are valid");
        assert_eq!(c.http_addr.to_string(), "127.0.0.1:2772");
        assert_eq!(
            c.udp_addr.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:2000")
        );
        assert_eq!(
            c.tcp_addr.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:2000")
        );
        assert_eq!(c.retention, Duration::from_secs(30 * 86_400));
        assert_eq!(c.data_dir, PathBuf::from("./roentgen-data"));
        assert_eq!(c.store, StoreChoice::Embedded);
        assert_eq!(
            c.otlp_grpc_addr.map(|a| a.to_string()).as_deref(),
            Some("127.0.0.1:4317")
        );
    }

    #[test]
    fn store_addresses() {
        let c =
            parse(&["--store", "clickhouse://127.0.0.1:8123/traces?cluster=two"]).expect("valid");
        let StoreChoice::ClickHouse(ch) = c.store else {
            panic!("not clickhouse: {:?}", c.store)
        };
        assert_eq!(ch.database, "traces");
        assert_eq!(ch.cluster.as_deref(), Some("two"));
        let e = parse(&["--store", "postgres://x"]).expect_err("refused");
        assert!(e.to_string().contains("--store"), "{e}");
    }

    #[test]
    fn off_and_errors() {
        let c = parse(&[
            "--udp-addr",
            "off",
            "--tcp-addr",
            "OFF",
            "--otlp-grpc-addr",
            "off",
        ])
        .expect("valid");
        assert!(c.udp_addr.is_none() && c.tcp_addr.is_none() && c.otlp_grpc_addr.is_none());
        let e = parse(&["--otlp-grpc-addr", "4317"]).expect_err("bad address");
        assert!(e.to_string().contains("--otlp-grpc-addr"), "{e}");
        let e = parse(&["--retention", "forever"]).expect_err("bad duration");
        assert!(e.to_string().contains("--retention"), "{e}");
        let e = parse(&["--http-addr", "nope"]).expect_err("bad address");
        assert!(e.to_string().contains("--http-addr"), "{e}");
        assert!(parse(&["--retention", "5m"]).is_err());
    }

    fn daemon(args: &[&str]) -> DaemonArgs {
        let mut full = vec!["roentgen", "daemon"];
        full.extend_from_slice(args);
        let full = go_style_args(full.into_iter().map(Into::into).collect());
        match Cli::try_parse_from(full).map(|c| c.command) {
            Ok(Command::Daemon(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn daemon_flags_as_the_official_daemon_takes_them() {
        let a = daemon(&[
            "-b",
            "127.0.0.1:3000",
            "-t",
            "0.0.0.0:3001",
            "-c",
            "x.yaml",
            "-f",
            "d.log",
            "-l",
            "dev",
            "-m",
            "16",
            "-n",
            "eu-west-1",
            "-o",
            "-r",
            "arn:role",
            "-a",
            "arn:res",
            "-p",
            "http://proxy:3128",
            "-e",
            "http://127.0.0.1:2772",
        ]);
        let o = a.overrides();
        assert_eq!(o.bind.as_deref(), Some("127.0.0.1:3000"));
        assert_eq!(o.bind_tcp.as_deref(), Some("0.0.0.0:3001"));
        assert_eq!(o.config, Some(PathBuf::from("x.yaml")));
        assert_eq!(o.log_file, Some(PathBuf::from("d.log")));
        assert_eq!(o.log_level.as_deref(), Some("dev"));
        assert_eq!(o.buffer_memory_mb, Some(16));
        assert_eq!(o.region.as_deref(), Some("eu-west-1"));
        assert_eq!(o.local_mode, Some(true));
        assert_eq!(o.role_arn.as_deref(), Some("arn:role"));
        assert_eq!(o.resource_arn.as_deref(), Some("arn:res"));
        assert_eq!(o.proxy_address.as_deref(), Some("http://proxy:3128"));
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:2772"));

        // Long names with one or two dashes, and `=` forms.
        for form in [
            &[
                "--bind",
                "1.2.3.4:5",
                "--local-mode=false",
                "--buffer-memory=8",
            ][..],
            &[
                "-bind",
                "1.2.3.4:5",
                "-local-mode=false",
                "-buffer-memory=8",
            ][..],
        ] {
            let o = daemon(form).overrides();
            assert_eq!(o.bind.as_deref(), Some("1.2.3.4:5"), "{form:?}");
            assert_eq!(o.local_mode, Some(false), "{form:?}");
            assert_eq!(o.buffer_memory_mb, Some(8), "{form:?}");
        }
        let o = daemon(&[
            "--otlp-http-addr",
            "127.0.0.1:4318",
            "--otlp-grpc-addr=127.0.0.1:4317",
        ])
        .overrides();
        assert_eq!(o.otlp_http_addr.as_deref(), Some("127.0.0.1:4318"));
        assert_eq!(o.otlp_grpc_addr.as_deref(), Some("127.0.0.1:4317"));
        // Nothing given: every value comes from the config file or the defaults.
        let o = daemon(&[]).overrides();
        assert!(o.otlp_http_addr.is_none() && o.otlp_grpc_addr.is_none());
        assert!(o.bind.is_none() && o.local_mode.is_none() && o.buffer_memory_mb.is_none());
    }

    #[test]
    fn run_takes_daemon_flags_and_a_command() {
        let args = go_style_args(
            [
                "roentgen",
                "run",
                "-e",
                "http://x:1",
                "-bind",
                "127.0.0.1:9",
                "-g",
                "--",
                "app",
                "-bind",
                "--",
                "x",
            ]
            .into_iter()
            .map(Into::into)
            .collect(),
        );
        let Ok(Command::Run(r)) = Cli::try_parse_from(args).map(|c| c.command) else {
            panic!("run parses")
        };
        assert_eq!(r.daemon.overrides().bind.as_deref(), Some("127.0.0.1:9"));
        assert!(r.process_group);
        // Everything after `--` is the application's, untouched.
        assert_eq!(
            r.command,
            ["app", "-bind", "--", "x"].map(std::ffi::OsString::from)
        );
        assert_eq!(r.flush_timeout().expect("default"), Duration::from_secs(5));
        assert!(Cli::try_parse_from(["roentgen", "run", "-e", "http://x:1"]).is_err());
    }

    #[test]
    fn daemon_version_flag() {
        for flag in ["-v", "--version", "-version"] {
            let args = go_style_args(
                ["roentgen", "daemon", flag]
                    .into_iter()
                    .map(Into::into)
                    .collect(),
            );
            let e = Cli::try_parse_from(args).expect_err("prints the version");
            assert_eq!(e.kind(), clap::error::ErrorKind::DisplayVersion, "{flag}");
        }
    }
}
