//! The ClickHouse schema and its versioned, idempotent migrations.
//!
//! Every statement is `CREATE … IF NOT EXISTS` (or otherwise safe to repeat), so several
//! nodes starting together may all run the same migration; each records its version in
//! `roentgen_schema` afterwards, and a node refuses a database whose recorded version is
//! newer than it knows. With a cluster name, the tables below are created as
//! `<name>_local` on every listed host (one per shard) and a `Distributed` table
//! `<name>` over them on every host; without, `<name>` is the MergeTree table itself.
//!
//! The SQL is the subset ClickHouse 18.16 and current releases share (see
//! `docs/clickhouse.md`): no `TTL`, no `LowCardinality`, no `IF NOT EXISTS` on columns.

use crate::StoreError;
use crate::clickhouse::client::Client;

/// The schema version this build writes and reads.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// One table: name, columns, engine with its keys, and the sharding key used by its
/// `Distributed` table.
pub(crate) struct Table {
    pub(crate) name: &'static str,
    columns: &'static str,
    engine: &'static str,
    shard_by: &'static str,
}

/// Raw documents: one row per version of a document; the newest `version` wins
/// (`argMax` on read, `ReplacingMergeTree` merges old versions away).
pub(crate) const DOCS: Table = Table {
    name: "docs",
    columns: "tenant String, day UInt32, trace_id String, doc_id UInt64, version UInt64, raw String",
    engine: "ReplacingMergeTree(version) PARTITION BY day ORDER BY (tenant, trace_id, doc_id)",
    shard_by: "cityHash64(trace_id)",
};

/// Trace summaries, one row per revision; the newest revision wins. The columns before
/// `summary` are what filter pushdown turns into SQL.
pub(crate) const SUMMARIES: Table = Table {
    name: "summaries",
    columns: "tenant String, day UInt32, trace_id String, revision UInt32, \
              updated_at Float64, start_time Float64, end_time Nullable(Float64), \
              duration Nullable(Float64), response_time Nullable(Float64), \
              has_fault UInt8, has_error UInt8, has_throttle UInt8, is_partial UInt8, \
              services Array(String), annotation_keys Array(String), \
              summary String, graph String, docs_version UInt64",
    engine: "ReplacingMergeTree(revision) PARTITION BY day ORDER BY (tenant, trace_id)",
    shard_by: "cityHash64(trace_id)",
};

/// Per-minute rollups of nodes and edges: rows are deltas (a re-derived trace adds its
/// new contribution and subtracts its old one), summed by background merges and by
/// `sum()`/`sumMap()` on read.
pub(crate) const ROLLUPS: Table = Table {
    name: "rollups",
    columns: "tenant String, day UInt32, minute UInt64, key String, count Int64, ok Int64, \
              error_other Int64, throttle Int64, fault Int64, total_response_time Float64, \
              histogramMap Nested(bucket UInt32, count Int64)",
    engine: "SummingMergeTree PARTITION BY day ORDER BY (tenant, day, minute, key)",
    shard_by: "cityHash64(key)",
};

/// Sampling rules and groups: newest `version` of a name wins; `deleted` marks removal.
pub(crate) const CONFIG: Table = Table {
    name: "config",
    columns: "tenant String, kind String, name String, version UInt64, deleted UInt8, value String",
    engine: "ReplacingMergeTree(version) ORDER BY (tenant, kind, name)",
    shard_by: "cityHash64(name)",
};

/// Marks of written traces not yet derived: a write inserts a `+1` row per trace before
/// its documents, the derivation a matching `-1` row after the summary; merges collapse
/// the pairs. At start-up a node derives the traces its own marks (by `node`) still
/// hold, so a crash between an acknowledged write and its derivation loses no summary.
/// Partitioned by the day of the write (days since the epoch); dropped after two days.
pub(crate) const PENDING: Table = Table {
    name: "pending",
    columns: "node String, day UInt32, tenant String, trace_id String, version UInt64, sign Int8",
    engine: "CollapsingMergeTree(sign) PARTITION BY day ORDER BY (node, tenant, trace_id, version)",
    shard_by: "cityHash64(trace_id)",
};

/// Tables holding day partitions (retention drops them).
pub(crate) const PARTITIONED: [&Table; 3] = [&DOCS, &SUMMARIES, &ROLLUPS];
const TABLES: [&Table; 5] = [&DOCS, &SUMMARIES, &ROLLUPS, &CONFIG, &PENDING];

/// The name of the table that holds a shard's rows.
pub(crate) fn local_name(table: &Table, cluster: Option<&str>) -> String {
    match cluster {
        Some(_) => format!("{}_local", table.name),
        None => table.name.to_string(),
    }
}

/// The statements of migration 1 for one host, in order.
pub(crate) fn migration_v1(db: &str, cluster: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for t in TABLES {
        let local = local_name(t, cluster);
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS {db}.{local} ({}) ENGINE = {}",
            t.columns, t.engine
        ));
        if let Some(c) = cluster {
            out.push(format!(
                "CREATE TABLE IF NOT EXISTS {db}.{} AS {db}.{local} \
                 ENGINE = Distributed({c}, {db}, {local}, {})",
                t.name, t.shard_by
            ));
        }
    }
    out
}

/// An error a concurrent start-up may cause and that leaves the schema as wanted.
fn already_there(e: &StoreError) -> bool {
    // 57 TABLE_ALREADY_EXISTS, 82 DATABASE_ALREADY_EXISTS.
    matches!(e, StoreError::ClickHouse(m)
        if matches!(super::client::error_code(m), Some(57 | 82)))
}

async fn run_idempotent(
    client: &Client,
    host: &str,
    sql: &str,
    database: bool,
) -> Result<(), StoreError> {
    match client.query_on(host, sql, database).await {
        Ok(_) => Ok(()),
        Err(e) if already_there(&e) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates or migrates the schema on every host; returns the version found before.
pub(crate) async fn migrate(client: &Client) -> Result<u32, StoreError> {
    let config = client.config().clone();
    let db = &config.database;
    let cluster = config.cluster.as_deref();
    // Without a cluster the hosts are alternatives for one server: migrate through the
    // first that answers.
    let hosts: Vec<String> = match cluster {
        Some(_) => config.hosts.clone(),
        None => vec![first_answering(client).await?],
    };
    let mut found = u32::MAX;
    for host in &hosts {
        run_idempotent(
            client,
            host,
            &format!("CREATE DATABASE IF NOT EXISTS {db}"),
            false,
        )
        .await?;
        run_idempotent(
            client,
            host,
            &format!(
                "CREATE TABLE IF NOT EXISTS {db}.roentgen_schema \
                 (version UInt32, applied_at DateTime DEFAULT now()) \
                 ENGINE = MergeTree ORDER BY version"
            ),
            false,
        )
        .await?;
        let text = client
            .query_on(
                host,
                &format!("SELECT max(version) FROM {db}.roentgen_schema FORMAT TabSeparated"),
                false,
            )
            .await?;
        let have: u32 = text.trim().parse().unwrap_or(0);
        if have > SCHEMA_VERSION {
            return Err(StoreError::Config(format!(
                "database {db} on {host} has schema version {have}; this roentgen knows \
                 only up to {SCHEMA_VERSION}: upgrade roentgen"
            )));
        }
        found = found.min(have);
        if have < 1 {
            for sql in migration_v1(db, cluster) {
                run_idempotent(client, host, &sql, false).await?;
            }
            client
                .query_on(
                    host,
                    &format!("INSERT INTO {db}.roentgen_schema (version) VALUES (1)"),
                    false,
                )
                .await?;
        }
    }
    Ok(found)
}

async fn first_answering(client: &Client) -> Result<String, StoreError> {
    let mut last = None;
    for host in &client.config().hosts {
        match client.query_on(host, "SELECT 1", false).await {
            Ok(_) => return Ok(host.clone()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| StoreError::Config("no host given".into())))
}
