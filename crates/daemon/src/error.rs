//! What can go wrong starting or running the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A configuration problem, found before anything is bound.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The config file is not the YAML the daemon expects (names the key when serde can).
    #[error("config file {}: {message}", path.display())]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the key and line.
        message: String,
    },
    /// A key or flag has a value the daemon cannot use.
    #[error("{key}: {message}")]
    Invalid {
        /// The key (`Socket.UDPAddress`) or flag (`--bind`).
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// Errors of the running daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot bind {what} on {addr}: {source}")]
    Bind {
        /// `udp`, `tcp`, `metrics`, `otlp-http` or `otlp-grpc`.
        what: &'static str,
        /// Address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The spool directory could not be used.
    #[error("spool {}: {source}", path.display())]
    Spool {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Other I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
