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
    long_about = "Roentgen receives segments from X-Ray SDKs (UDP, the daemon protocol) and \
                  from the PutTraceSegments API, stores them, and answers the X-Ray API so \
                  the AWS CLI and boto3 read traces with --endpoint-url."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the collector, the X-Ray API and the embedded store in one process.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address of the HTTP listener: the X-Ray API (point the AWS CLI or boto3 here with
    /// --endpoint-url), /healthz and /metrics.
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

    /// Directory of the embedded store (created if missing).
    #[arg(long, env = "ROENTGEN_DATA_DIR", default_value = "./roentgen-data")]
    data_dir: PathBuf,

    /// How long traces are kept, e.g. `30d`, `12h`. Whole days are dropped once they
    /// are older than this; segments of older traces are refused.
    #[arg(long, env = "ROENTGEN_RETENTION", default_value = "30d")]
    retention: String,

    /// Most segment documents queued and not yet stored; past it UDP drops (counted)
    /// and PutTraceSegments answers ThrottledException.
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

/// Validated `serve` settings.
#[derive(Debug, Clone)]
pub(crate) struct ServeConfig {
    pub(crate) http_addr: SocketAddr,
    pub(crate) udp_addr: Option<SocketAddr>,
    pub(crate) tcp_addr: Option<SocketAddr>,
    pub(crate) data_dir: PathBuf,
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
            data_dir: self.data_dir,
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
        let Command::Serve(a) = cli.command;
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
    }

    #[test]
    fn off_and_errors() {
        let c = parse(&["--udp-addr", "off", "--tcp-addr", "OFF"]).expect("valid");
        assert!(c.udp_addr.is_none() && c.tcp_addr.is_none());
        let e = parse(&["--retention", "forever"]).expect_err("bad duration");
        assert!(e.to_string().contains("--retention"), "{e}");
        let e = parse(&["--http-addr", "nope"]).expect_err("bad address");
        assert!(e.to_string().contains("--http-addr"), "{e}");
        assert!(parse(&["--retention", "5m"]).is_err());
    }
}
