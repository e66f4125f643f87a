//! Store errors.

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The embedded engine failed; after a failed sync it refuses every later write
    /// (fail-stop), and the process should restart to recover from its journal.
    #[error("embedded store: {0}")]
    Engine(#[from] fjall::Error),
    /// A stored record could not be decoded.
    #[error("corrupt {what} record: {message}")]
    Corrupt {
        /// Which record kind.
        what: &'static str,
        /// Decoder message.
        message: String,
    },
    /// A paging cursor is not one this store issued.
    #[error("invalid paging token")]
    InvalidCursor,
    /// A filter expression does not parse (the message names the position).
    #[error("invalid filter expression: {0}")]
    InvalidFilter(String),
    /// A tenant id is malformed.
    #[error("invalid tenant id {0:?}: 1 to 64 ASCII letters, digits, '-' or '_'")]
    InvalidTenant(String),
    /// The store is shutting down.
    #[error("store is shutting down")]
    ShuttingDown,
    /// A blocking task failed.
    #[error("store task failed: {0}")]
    Task(String),
    /// The data directory holds files that are not a Roentgen store.
    #[error(
        "{path} is not a Roentgen data directory (it holds {found}); point --data-dir at an empty directory or one Roentgen created"
    )]
    ForeignDirectory {
        /// The directory.
        path: String,
        /// A few of the names found there.
        found: String,
    },
    /// The data directory's file system is down to its reserve: the write was
    /// refused, nothing was written; writes succeed again once space is freed.
    #[error(
        "the file system of {path} has {available} bytes free, below the {reserve}-byte reserve: writes are refused until space is freed"
    )]
    DiskFull {
        /// The data directory.
        path: String,
        /// Bytes free now.
        available: u64,
        /// The reserve (`--min-free-space`).
        reserve: u64,
    },
    /// The data directory cannot be read.
    #[error("cannot read the data directory {path}")]
    Directory {
        /// The directory.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// ClickHouse refused a statement (an answer other than 200 that retrying will not
    /// change: bad SQL, a missing table, a type error).
    #[error("clickhouse: {0}")]
    ClickHouse(String),
    /// ClickHouse could not be reached, or was overloaded, after the retries.
    #[error("clickhouse unavailable: {0}")]
    Unavailable(String),
    /// The store address or options are malformed.
    #[error("invalid store configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// True when trying again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::ShuttingDown | Self::Task(_) | Self::Unavailable(_) | Self::DiskFull { .. }
        )
    }

    /// True when the caller's input (not the store) is at fault.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            Self::InvalidCursor | Self::InvalidTenant(_) | Self::InvalidFilter(_)
        )
    }
}
