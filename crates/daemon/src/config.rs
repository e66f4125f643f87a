//! Configuration exactly as the official daemon takes it: built-in defaults, then a
//! `cfg.yaml` (the file given with `-c`, else the first of the search paths that exists),
//! then the command-line flags. Zero and empty values in the file mean "the default",
//! as they do for the official daemon.
//!
//! Resolution is one pure function, [`Settings::resolve`], over its sources: the flags
//! ([`Overrides`]), the file's text, the environment as a map and the host's memory. The
//! binary gathers the sources; tests pass them in.

use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::ConfigError;

/// Where the official daemon looks for `cfg.yaml` when `-c` is not given, in order.
pub const CONFIG_SEARCH_PATHS: &[&str] = &[
    "/etc/amazon/xray/cfg.yaml",
    "cfg.yaml",
    "github.com/aws/aws-xray-daemon/pkg/cfg.yaml",
];

/// Default UDP and TCP address of the daemon.
pub const DEFAULT_ADDRESS: &str = "127.0.0.1:2000";
/// Parallel `PutTraceSegments` senders unless `Concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// The smallest buffer the official daemon accepts, in MB.
pub const MIN_BUFFER_MB: u64 = 3;
/// Spool size unless `SpoolSizeMB` / `--spool-size` says otherwise, in MB.
pub const DEFAULT_SPOOL_MB: u64 = 1024;

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `-b/--bind`.
    pub bind: Option<String>,
    /// `-t/--bind-tcp`.
    pub bind_tcp: Option<String>,
    /// `-c/--config`.
    pub config: Option<PathBuf>,
    /// `-f/--log-file`.
    pub log_file: Option<PathBuf>,
    /// `-l/--log-level`.
    pub log_level: Option<String>,
    /// `-m/--buffer-memory`, MB.
    pub buffer_memory_mb: Option<u64>,
    /// `-n/--region`.
    pub region: Option<String>,
    /// `-o/--local-mode`.
    pub local_mode: Option<bool>,
    /// `-r/--role-arn`.
    pub role_arn: Option<String>,
    /// `-a/--resource-arn`.
    pub resource_arn: Option<String>,
    /// `-p/--proxy-address`.
    pub proxy_address: Option<String>,
    /// `-e/--endpoint` (Roentgen's addition).
    pub endpoint: Option<String>,
    /// `--spool-dir` (Roentgen's addition).
    pub spool_dir: Option<PathBuf>,
    /// `--spool-size`, MB (Roentgen's addition).
    pub spool_size_mb: Option<u64>,
    /// `--concurrency` (Roentgen's addition; the official daemon has the key only).
    pub concurrency: Option<usize>,
    /// `--metrics-addr` (Roentgen's addition).
    pub metrics_addr: Option<String>,
    /// `--otlp-http-addr` (Roentgen's addition; off unless given).
    pub otlp_http_addr: Option<String>,
    /// `--otlp-grpc-addr` (Roentgen's addition; off unless given).
    pub otlp_grpc_addr: Option<String>,
}

/// The `cfg.yaml` keys. Unknown keys are refused with their name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct FileConfig {
    #[serde(rename = "TotalBufferSizeMB")]
    total_buffer_size_mb: Option<u64>,
    concurrency: Option<usize>,
    region: Option<String>,
    endpoint: Option<String>,
    socket: Option<FileSocket>,
    logging: Option<FileLogging>,
    local_mode: Option<bool>,
    #[serde(rename = "ResourceARN")]
    resource_arn: Option<String>,
    #[serde(rename = "RoleARN")]
    role_arn: Option<String>,
    #[serde(rename = "NoVerifySSL")]
    no_verify_ssl: Option<bool>,
    proxy_address: Option<String>,
    version: Option<u32>,
    #[serde(rename = "ProxyServer")]
    _proxy_server: Option<FileProxyServer>,
    spool_dir: Option<PathBuf>,
    #[serde(rename = "SpoolSizeMB")]
    spool_size_mb: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct FileSocket {
    #[serde(rename = "UDPAddress")]
    udp_address: Option<String>,
    #[serde(rename = "TCPAddress")]
    tcp_address: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct FileLogging {
    log_rotation: Option<bool>,
    log_level: Option<String>,
    log_path: Option<String>,
}

/// Accepted for compatibility; the official daemon resets these to its defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "PascalCase")]
struct FileProxyServer {
    #[serde(rename = "IdleConnTimeout")]
    _idle_conn_timeout: Option<u64>,
    #[serde(rename = "MaxIdleConnsPerHost")]
    _max_idle_conns_per_host: Option<u64>,
    #[serde(rename = "MaxIdleConns")]
    _max_idle_conns: Option<u64>,
}

/// Keys older daemons took and the current one refuses, with what to do instead.
const RETIRED_KEYS: &[(&str, &str)] = &[
    (
        "Profile",
        "profiling keys are not supported any more; remove them",
    ),
    (
        "Socket.BufferSizeKB",
        "is not supported any more; remove it",
    ),
    ("Logging.LogFormat", "is not supported any more; remove it"),
    (
        "Processor.BatchProcessorQueueSize",
        "is not supported any more; remove it",
    ),
    ("Processor.Region", "moved: use the top-level Region key"),
    (
        "Processor.Endpoint",
        "moved: use the top-level Endpoint key",
    ),
    (
        "Processor.Routine",
        "moved: use the top-level Concurrency key",
    ),
    ("MemoryLimit", "moved: use TotalBufferSizeMB"),
    ("LogRotation", "moved: use Logging.LogRotation"),
];

/// Log verbosity, by the official daemon's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    /// `dev`: everything (trace).
    Dev,
    /// `debug`.
    Debug,
    /// `info`, and `prod` (the default), which is info.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

impl LogLevel {
    fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "dev" | "trace" => Self::Dev,
            "debug" => Self::Debug,
            "info" | "prod" => Self::Info,
            "warn" => Self::Warn,
            "error" => Self::Error,
            _ => return None,
        })
    }

    /// The `tracing` directive for this level.
    pub fn directive(self) -> &'static str {
        match self {
            Self::Dev => "trace",
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Where segments go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Base URL without a trailing slash, e.g. `http://127.0.0.1:2772`.
    pub base: String,
}

impl Endpoint {
    /// Checks that `url` is an absolute http(s) URL with a host.
    pub fn parse(url: &str) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{url:?} is not an http or https URL"));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("{url:?} has no host"));
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(format!("{url:?} must not have a query or fragment"));
        }
        Ok(Self {
            base: url.trim_end_matches('/').to_string(),
        })
    }

    /// The X-Ray endpoint of an AWS region, as the official daemon builds it.
    pub fn for_region(region: &str) -> Self {
        let domain = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else if region.starts_with("us-isob-") {
            "sc2s.sgov.gov"
        } else if region.starts_with("us-iso-") {
            "c2s.ic.gov"
        } else {
            "amazonaws.com"
        };
        Self {
            base: format!("https://xray.{region}.{domain}"),
        }
    }

    /// True when the endpoint is an AWS X-Ray endpoint (by its host name).
    pub fn is_aws(&self) -> bool {
        reqwest::Url::parse(&self.base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|h| {
                [
                    "amazonaws.com",
                    "amazonaws.com.cn",
                    "c2s.ic.gov",
                    "sc2s.sgov.gov",
                ]
                .iter()
                .any(|d| h.ends_with(&format!(".{d}")))
            })
    }

    /// `base` + `path` (`path` starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// Every setting of a running daemon, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// UDP listen address.
    pub udp_addr: SocketAddr,
    /// TCP (sampling proxy) listen address.
    pub tcp_addr: SocketAddr,
    /// Where segments and proxied requests go.
    pub endpoint: Endpoint,
    /// AWS region, when known.
    pub region: Option<String>,
    /// Memory for buffered segments, bytes.
    pub buffer_bytes: u64,
    /// Parallel senders.
    pub concurrency: usize,
    /// Log level.
    pub log_level: LogLevel,
    /// Log file; `None` logs to stderr.
    pub log_file: Option<PathBuf>,
    /// Rotate the log file (kept for compatibility; see docs/daemon.md).
    pub log_rotation: bool,
    /// Skip instance metadata lookups.
    pub local_mode: bool,
    /// Sent with telemetry.
    pub resource_arn: Option<String>,
    /// Role to assume for signing.
    pub role_arn: Option<String>,
    /// Outbound proxy.
    pub proxy_address: Option<String>,
    /// Skip TLS verification of the endpoint.
    pub no_verify_ssl: bool,
    /// Directory for segments that cannot be sent yet; `None` keeps them in memory only.
    pub spool_dir: Option<PathBuf>,
    /// Most bytes the spool may hold.
    pub spool_bytes: u64,
    /// Address for `/metrics`, when asked for.
    pub metrics_addr: Option<SocketAddr>,
    /// OTLP/HTTP listener (`/v1/traces`), when asked for.
    pub otlp_http_addr: Option<SocketAddr>,
    /// OTLP/gRPC listener, when asked for.
    pub otlp_grpc_addr: Option<SocketAddr>,
    /// The config file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Longest a graceful stop may take to flush.
    pub flush_timeout: Duration,
}

const MIB: u64 = 1024 * 1024;

/// The config file to read: `-c` if given (it must exist), else the first search path
/// that exists. Returns its path and text.
pub fn find_config_file(
    explicit: Option<&Path>,
    search: &[&str],
) -> Result<Option<(PathBuf, String)>, ConfigError> {
    if let Some(path) = explicit {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.to_path_buf(),
            source: e,
        })?;
        return Ok(Some((path.to_path_buf(), text)));
    }
    for candidate in search {
        let path = Path::new(candidate);
        if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
                path: path.to_path_buf(),
                source: e,
            })?;
            return Ok(Some((path.to_path_buf(), text)));
        }
    }
    Ok(None)
}

/// Total memory of the host in bytes, from `/proc/meminfo`.
pub fn host_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

fn socket_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ConfigError::Invalid {
            key: key.to_string(),
            message: format!("{value:?} is not a host:port address"),
        })
}

/// Finds keys of retired daemon versions before the typed parse, for a better message.
fn check_retired_keys(value: &serde_yaml_ng::Value) -> Result<(), ConfigError> {
    let serde_yaml_ng::Value::Mapping(top) = value else {
        return Ok(());
    };
    for (key, message) in RETIRED_KEYS {
        let mut parts = key.split('.');
        let Some(first) = parts.next() else { continue };
        let mut node = top.get(first);
        for part in parts {
            node = node.and_then(|n| n.get(part));
        }
        if node.is_some() {
            return Err(ConfigError::Invalid {
                key: (*key).to_string(),
                message: (*message).to_string(),
            });
        }
    }
    Ok(())
}

fn parse_file(path: &Path, text: &str, explicit: bool) -> Result<FileConfig, ConfigError> {
    let value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(text).map_err(|e| ConfigError::Yaml {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    if value.is_null() {
        if explicit {
            return Err(ConfigError::Invalid {
                key: "Version".into(),
                message: format!(
                    "{} is empty; it needs at least `Version: 2`",
                    path.display()
                ),
            });
        }
        return Ok(FileConfig::default());
    }
    check_retired_keys(&value)?;
    let file: FileConfig = serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(
        text,
    ))
    .map_err(|e| {
        let key = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if key == "." || inner.starts_with(&key) {
            inner
        } else {
            format!("{key}: {inner}")
        };
        ConfigError::Yaml {
            path: path.to_path_buf(),
            message,
        }
    })?;
    match file.version {
        Some(1 | 2) => {}
        Some(v) => {
            return Err(ConfigError::Invalid {
                key: "Version".into(),
                message: format!("{v} is not a config version this daemon knows (1 or 2)"),
            });
        }
        None if explicit => {
            return Err(ConfigError::Invalid {
                key: "Version".into(),
                message: format!("{} has no Version key; add `Version: 2`", path.display()),
            });
        }
        None => {}
    }
    Ok(file)
}

impl Settings {
    /// Resolves flags over file over defaults. `file` is the config file's path and text
    /// (see [`find_config_file`]); `env` is the process environment; `host_memory` the
    /// host's total memory in bytes (for the default buffer of 1 % of it).
    pub fn resolve(
        flags: &Overrides,
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
        host_memory: Option<u64>,
    ) -> Result<Self, ConfigError> {
        Self::resolve_with(flags, file, env, host_memory, &|| None)
    }

    /// [`Settings::resolve`], asking `metadata_region` for the region when neither an
    /// endpoint nor a region is configured and the daemon is not in local mode — as the
    /// official daemon reads it from ECS or EC2 metadata.
    pub fn resolve_with(
        flags: &Overrides,
        file: Option<(&Path, &str)>,
        env: &HashMap<String, String>,
        host_memory: Option<u64>,
        metadata_region: &dyn Fn() -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let parsed = match file {
            Some((path, text)) => parse_file(path, text, flags.config.is_some())?,
            None => FileConfig::default(),
        };
        let socket = parsed.socket.unwrap_or_default();
        let logging = parsed.logging.unwrap_or_default();

        let udp = flags
            .bind
            .clone()
            .or(non_empty(socket.udp_address))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
        let udp_key = if flags.bind.is_some() {
            "--bind"
        } else {
            "Socket.UDPAddress"
        };
        let udp_addr = socket_addr(udp_key, &udp)?;
        let tcp = flags
            .bind_tcp
            .clone()
            .or(non_empty(socket.tcp_address))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_string());
        let tcp_key = if flags.bind_tcp.is_some() {
            "--bind-tcp"
        } else {
            "Socket.TCPAddress"
        };
        let tcp_addr = socket_addr(tcp_key, &tcp)?;

        let local_mode = flags.local_mode.or(parsed.local_mode).unwrap_or(false);
        let mut region = non_empty(flags.region.clone())
            .or(non_empty(parsed.region))
            .or(non_empty(env.get("AWS_REGION").cloned()))
            .or(non_empty(env.get("AWS_DEFAULT_REGION").cloned()));
        let endpoint_given = non_empty(flags.endpoint.clone()).is_some()
            || non_empty(parsed.endpoint.clone()).is_some();
        if region.is_none() && !endpoint_given && !local_mode {
            region = metadata_region();
        }

        let endpoint = match (
            non_empty(flags.endpoint.clone()),
            non_empty(parsed.endpoint),
        ) {
            (Some(url), _) => Endpoint::parse(&url).map_err(|message| ConfigError::Invalid {
                key: "--endpoint".into(),
                message,
            })?,
            (None, Some(url)) => Endpoint::parse(&url).map_err(|message| ConfigError::Invalid {
                key: "Endpoint".into(),
                message,
            })?,
            (None, None) => match &region {
                Some(r) => Endpoint::for_region(r),
                None => {
                    return Err(ConfigError::Invalid {
                        key: "Endpoint".into(),
                        message: "no endpoint and no region (nor one from ECS or EC2 \
                                  metadata): give --endpoint (for example \
                                  http://127.0.0.1:2772 for roentgen serve), or --region / \
                                  AWS_REGION to send to AWS X-Ray"
                            .into(),
                    });
                }
            },
        };

        let buffer_mb = match flags
            .buffer_memory_mb
            .or(parsed.total_buffer_size_mb.filter(|m| *m > 0))
        {
            Some(mb) => mb,
            None => host_memory.map_or(64, |bytes| bytes / MIB / 100),
        };
        if buffer_mb < MIN_BUFFER_MB {
            let key = if flags.buffer_memory_mb.is_some() {
                "--buffer-memory"
            } else {
                "TotalBufferSizeMB"
            };
            return Err(ConfigError::Invalid {
                key: key.into(),
                message: format!("{buffer_mb} MB is below the minimum of {MIN_BUFFER_MB} MB"),
            });
        }

        let concurrency = flags
            .concurrency
            .or(parsed.concurrency.filter(|c| *c > 0))
            .unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 || concurrency > 1024 {
            return Err(ConfigError::Invalid {
                key: "--concurrency".into(),
                message: format!("{concurrency} is not between 1 and 1024"),
            });
        }

        let level_text = non_empty(flags.log_level.clone())
            .or(non_empty(logging.log_level))
            .unwrap_or_else(|| "prod".to_string());
        let log_level = LogLevel::parse(&level_text).ok_or_else(|| ConfigError::Invalid {
            key: if flags.log_level.is_some() {
                "--log-level".into()
            } else {
                "Logging.LogLevel".into()
            },
            message: format!("{level_text:?} is not one of dev, debug, info, warn, error, prod"),
        })?;

        let spool_mb = flags
            .spool_size_mb
            .or(parsed.spool_size_mb.filter(|m| *m > 0))
            .unwrap_or(DEFAULT_SPOOL_MB);
        if spool_mb == 0 {
            return Err(ConfigError::Invalid {
                key: "--spool-size".into(),
                message: "must be at least 1 MB".into(),
            });
        }

        let optional = |flag: &str, value: &Option<String>| match value {
            Some(a) if !a.eq_ignore_ascii_case("off") => socket_addr(flag, a).map(Some),
            _ => Ok(None),
        };
        let metrics_addr = optional("--metrics-addr", &flags.metrics_addr)?;
        let otlp_http_addr = optional("--otlp-http-addr", &flags.otlp_http_addr)?;
        let otlp_grpc_addr = optional("--otlp-grpc-addr", &flags.otlp_grpc_addr)?;

        Ok(Self {
            udp_addr,
            tcp_addr,
            endpoint,
            region,
            buffer_bytes: buffer_mb * MIB,
            concurrency,
            log_level,
            log_file: flags
                .log_file
                .clone()
                .or(non_empty(logging.log_path).map(PathBuf::from)),
            log_rotation: logging.log_rotation.unwrap_or(true),
            local_mode,
            resource_arn: non_empty(flags.resource_arn.clone()).or(non_empty(parsed.resource_arn)),
            role_arn: non_empty(flags.role_arn.clone()).or(non_empty(parsed.role_arn)),
            proxy_address: non_empty(flags.proxy_address.clone())
                .or(non_empty(parsed.proxy_address))
                .or(non_empty(env.get("HTTPS_PROXY").cloned())),
            no_verify_ssl: parsed.no_verify_ssl.unwrap_or(false),
            spool_dir: flags.spool_dir.clone().or(parsed.spool_dir),
            spool_bytes: spool_mb * MIB,
            metrics_addr,
            otlp_http_addr,
            otlp_grpc_addr,
            config_file: file.map(|(p, _)| p.to_path_buf()),
            flush_timeout: Duration::from_secs(5),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1024 * MIB;

    fn endpoint_flags() -> Overrides {
        Overrides {
            endpoint: Some("http://127.0.0.1:2772/".into()),
            ..Overrides::default()
        }
    }

    fn resolve(flags: &Overrides, file: Option<&str>) -> Result<Settings, ConfigError> {
        Settings::resolve(
            flags,
            file.map(|t| (Path::new("cfg.yaml"), t)),
            &HashMap::new(),
            Some(16 * GIB),
        )
    }

    #[test]
    fn official_defaults() {
        let s = resolve(&endpoint_flags(), None).expect("valid");
        assert_eq!(s.udp_addr.to_string(), "127.0.0.1:2000");
        assert_eq!(s.tcp_addr.to_string(), "127.0.0.1:2000");
        assert_eq!(s.endpoint.base, "http://127.0.0.1:2772");
        assert_eq!(s.concurrency, 8);
        // 1 % of host memory.
        assert_eq!(s.buffer_bytes, 163 * MIB);
        assert_eq!(s.log_level, LogLevel::Info);
        assert!(s.log_rotation);
        assert!(!s.local_mode);
        assert!(s.spool_dir.is_none());
    }

    /// The sample `cfg.yaml` of the official daemon, with its documented defaults.
    const SAMPLE: &str = r#"
# Maximum buffer size in MB (minimum 3). Choose 0 to use 1% of host memory.
TotalBufferSizeMB: 0
# Maximum number of concurrent calls to AWS X-Ray to upload segment documents.
Concurrency: 8
# Send segments to AWS X-Ray service in a specific region
Region: ""
# Change the X-Ray service endpoint to which the daemon sends segment documents.
Endpoint: ""
Socket:
  # Change the address and port on which the daemon listens for UDP packets containing segment documents.
  UDPAddress: "127.0.0.1:2000"
  # Change the address and port on which the daemon listens for HTTP requests to proxy to AWS X-Ray.
  TCPAddress: "127.0.0.1:2000"
Logging:
  LogRotation: true
  # Change the log level, from most verbose to least: dev, debug, info, warn, error, prod (default).
  LogLevel: "prod"
  # Output logs to the specified file path.
  LogPath: ""
# Turn on local mode to skip EC2 instance metadata check.
LocalMode: false
# Amazon Resource Name (ARN) of the AWS resource running the daemon.
ResourceARN: ""
# Assume an IAM role to upload segments to a different account.
RoleARN: ""
# Disable TLS certificate verification.
NoVerifySSL: false
# Upload segments to AWS X-Ray through a proxy.
ProxyAddress: ""
# Daemon configuration file format version.
Version: 2
"#;

    #[test]
    fn sample_file_equals_defaults() {
        let with = resolve(&endpoint_flags(), Some(SAMPLE)).expect("sample parses");
        let without = resolve(&endpoint_flags(), None).expect("valid");
        assert_eq!(with.udp_addr, without.udp_addr);
        assert_eq!(with.tcp_addr, without.tcp_addr);
        assert_eq!(with.buffer_bytes, without.buffer_bytes);
        assert_eq!(with.concurrency, without.concurrency);
        assert_eq!(with.log_level, without.log_level);
        assert_eq!(with.log_file, without.log_file);
        assert_eq!(with.region, without.region);
        assert_eq!(with.endpoint, without.endpoint);
    }

    #[test]
    fn flags_beat_file_beats_defaults() {
        let file = "Version: 2\nConcurrency: 3\nTotalBufferSizeMB: 10\nEndpoint: http://a:1\nSocket:\n  UDPAddress: 0.0.0.0:3000\nLogging:\n  LogLevel: warn\n";
        let s = resolve(&Overrides::default(), Some(file)).expect("valid");
        assert_eq!(s.concurrency, 3);
        assert_eq!(s.buffer_bytes, 10 * MIB);
        assert_eq!(s.endpoint.base, "http://a:1");
        assert_eq!(s.udp_addr.to_string(), "0.0.0.0:3000");
        assert_eq!(s.tcp_addr.to_string(), "127.0.0.1:2000");
        assert_eq!(s.log_level, LogLevel::Warn);
        let flags = Overrides {
            bind: Some("127.0.0.1:4000".into()),
            buffer_memory_mb: Some(5),
            endpoint: Some("http://b:2".into()),
            log_level: Some("debug".into()),
            ..Overrides::default()
        };
        let s = resolve(&flags, Some(file)).expect("valid");
        assert_eq!(s.udp_addr.to_string(), "127.0.0.1:4000");
        assert_eq!(s.buffer_bytes, 5 * MIB);
        assert_eq!(s.endpoint.base, "http://b:2");
        assert_eq!(s.log_level, LogLevel::Debug);
        assert_eq!(s.concurrency, 3);
    }

    #[test]
    fn region_decides_the_aws_endpoint() {
        let flags = Overrides {
            region: Some("eu-west-1".into()),
            ..Overrides::default()
        };
        let s = resolve(&flags, None).expect("valid");
        assert_eq!(s.endpoint.base, "https://xray.eu-west-1.amazonaws.com");
        assert!(s.endpoint.is_aws());
        assert!(!Endpoint::parse("http://127.0.0.1:2772").is_ok_and(|e| e.is_aws()));
        assert!(!Endpoint::parse("http://amazonaws.com.evil.example").is_ok_and(|e| e.is_aws()));
        assert_eq!(
            Endpoint::for_region("cn-north-1").base,
            "https://xray.cn-north-1.amazonaws.com.cn"
        );
        let env = HashMap::from([("AWS_REGION".to_string(), "us-east-2".to_string())]);
        let s = Settings::resolve(&Overrides::default(), None, &env, Some(GIB)).expect("valid");
        assert_eq!(s.region.as_deref(), Some("us-east-2"));
        assert_eq!(s.endpoint.base, "https://xray.us-east-2.amazonaws.com");
    }

    #[test]
    fn region_from_metadata_only_when_needed() {
        let env = HashMap::new();
        let asked = std::cell::Cell::new(0);
        let lookup = || {
            asked.set(asked.get() + 1);
            Some("sa-east-1".to_string())
        };
        let s = Settings::resolve_with(&Overrides::default(), None, &env, Some(GIB), &lookup)
            .expect("valid");
        assert_eq!(s.endpoint.base, "https://xray.sa-east-1.amazonaws.com");
        // An endpoint, a region or local mode: no metadata lookup.
        for flags in [
            endpoint_flags(),
            Overrides {
                region: Some("eu-west-1".into()),
                ..Overrides::default()
            },
            Overrides {
                local_mode: Some(true),
                endpoint: Some("http://a:1".into()),
                ..Overrides::default()
            },
        ] {
            Settings::resolve_with(&flags, None, &env, Some(GIB), &lookup).expect("valid");
        }
        assert_eq!(asked.get(), 1);
        let e = Settings::resolve_with(
            &Overrides {
                local_mode: Some(true),
                ..Overrides::default()
            },
            None,
            &env,
            Some(GIB),
            &lookup,
        )
        .map(|_| ())
        .expect_err("local mode without region");
        assert!(e.to_string().contains("--region"), "{e}");
    }

    fn error_of(flags: &Overrides, file: Option<&str>) -> String {
        match resolve(flags, file) {
            Ok(_) => panic!("expected an error for {file:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn errors_name_the_key() {
        let flags = endpoint_flags();
        let cases = [
            ("Version: 2\nBogus: 1\n", "Bogus"),
            ("Version: 2\nSocket:\n  UDPAdress: x\n", "UDPAdress"),
            (
                "Version: 2\nSocket:\n  BufferSizeKB: 64\n",
                "Socket.BufferSizeKB",
            ),
            (
                "Version: 2\nProcessor:\n  Routine: 4\n",
                "Processor.Routine",
            ),
            ("Version: 2\nMemoryLimit: 4\n", "MemoryLimit"),
            ("Version: 3\n", "Version"),
            ("Version: 2\nConcurrency: many\n", "Concurrency"),
            ("Version: 2\nTotalBufferSizeMB: 2\n", "TotalBufferSizeMB"),
            (
                "Version: 2\nLogging:\n  LogLevel: loud\n",
                "Logging.LogLevel",
            ),
            (
                "Version: 2\nSocket:\n  UDPAddress: nowhere\n",
                "Socket.UDPAddress",
            ),
            ("Version: 2\nEndpoint: ftp://x\n", "--endpoint"),
        ];
        for (file, key) in cases {
            // `--endpoint` wins over the file's Endpoint, so check that key without it.
            let flags = if file.contains("Endpoint") {
                Overrides {
                    endpoint: None,
                    ..flags.clone()
                }
            } else {
                flags.clone()
            };
            let key = if key == "--endpoint" { "Endpoint" } else { key };
            let e = error_of(&flags, Some(file));
            assert!(e.contains(key), "{file:?}: {e}");
        }
        let e = error_of(
            &Overrides {
                buffer_memory_mb: Some(1),
                ..endpoint_flags()
            },
            None,
        );
        assert!(
            e.contains("--buffer-memory") && e.contains("minimum"),
            "{e}"
        );
        let e = error_of(&Overrides::default(), None);
        assert!(e.contains("--endpoint") && e.contains("--region"), "{e}");
    }

    #[test]
    fn explicit_file_needs_a_version() {
        let flags = Overrides {
            config: Some("cfg.yaml".into()),
            ..endpoint_flags()
        };
        let e = error_of(&flags, Some("Concurrency: 2\n"));
        assert!(e.contains("Version"), "{e}");
        // A file found on the search path may omit it, as with the official daemon.
        assert!(resolve(&endpoint_flags(), Some("Concurrency: 2\n")).is_ok());
    }

    #[test]
    fn search_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = dir.path().join("first.yaml");
        let second = dir.path().join("second.yaml");
        std::fs::write(&second, "Version: 2\n").expect("write");
        let paths = [
            first.to_str().expect("utf-8"),
            second.to_str().expect("utf-8"),
        ];
        let found = find_config_file(None, &paths).expect("reads");
        assert_eq!(found.map(|(p, _)| p), Some(second.clone()));
        std::fs::write(&first, "Version: 1\n").expect("write");
        let found = find_config_file(None, &paths).expect("reads");
        assert_eq!(found.map(|(p, _)| p), Some(first.clone()));
        let e = find_config_file(Some(&dir.path().join("missing.yaml")), &paths)
            .expect_err("missing explicit file");
        assert!(e.to_string().contains("missing.yaml"), "{e}");
    }
}
