//! ClickHouse over its HTTP interface: the store address, statements with retries and
//! fail-over between the listed hosts, and the TabSeparated format both ways.
//!
//! Plain HTTP (reqwest) rather than the `clickhouse` crate: every statement is ours, in
//! the SQL subset that ClickHouse 18.16 (Debian's) and current releases share, with
//! settings passed as URL parameters that every release understands, and with nothing
//! sent that an old server would refuse (the crate asks for settings 18.16 does not
//! know unless validation is turned off).

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use crate::StoreError;

/// Where the store is and how to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// Base URLs (`http://host:port` or `https://…`), tried in order.
    pub hosts: Vec<String>,
    /// Database (created if missing).
    pub database: String,
    /// User (`default` when not given).
    pub user: String,
    /// Password.
    pub password: String,
    /// Cluster name from `remote_servers`: local tables on every listed host and
    /// `Distributed` tables over them.
    pub cluster: Option<String>,
    /// This node's name in the marks of traces it has not derived yet (the `node`
    /// parameter; `roentgen serve` defaults it to HOSTNAME:HTTP-PORT). It must stay the
    /// same across restarts of a node and differ between nodes.
    pub node: String,
}

impl std::fmt::Debug for ClickHouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("hosts", &self.hosts)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &"…")
            .field("cluster", &self.cluster)
            .field("node", &self.node)
            .finish()
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !s.as_bytes()[0].is_ascii_digit()
}

impl ClickHouseConfig {
    /// Parses `clickhouse://[USER[:PASSWORD]@]HOST:PORT[,HOST:PORT…]/DB[?user=…&password=…&cluster=…&secure=true&node=…]`
    /// (`clickhouses://` or `secure=true` for HTTPS). The port is ClickHouse's HTTP port
    /// (8123 by default, 8443 with TLS).
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        // The address may hold a password: it is never quoted back.
        let bad = |why: &str| StoreError::Config(format!("{why} in the ClickHouse address"));
        let (mut secure, rest) = if let Some(r) = url.strip_prefix("clickhouse://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("clickhouses://") {
            (true, r)
        } else {
            return Err(bad("expected clickhouse:// or clickhouses://"));
        };
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = rest.split_once('/').unwrap_or((rest, "roentgen"));
        let database = if database.is_empty() {
            "roentgen"
        } else {
            database
        };
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let decode = |s: &str| -> String {
            form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (mut user, mut password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((a, b)) => (decode(a), decode(b)),
                None => (decode(u), String::new()),
            },
            None => ("default".to_string(), String::new()),
        };
        let mut cluster = None;
        let mut node = String::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "user" => user = v.into_owned(),
                "password" => password = v.into_owned(),
                "cluster" => cluster = Some(v.into_owned()),
                "node" => node = v.into_owned(),
                "secure" => {
                    secure = match &*v {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(bad("secure must be true or false")),
                    }
                }
                other => return Err(bad(&format!("unknown parameter {other:?}"))),
            }
        }
        if !valid_name(database) {
            return Err(bad("the database must be letters, digits and '_'"));
        }
        if let Some(c) = &cluster
            && !valid_name(c)
        {
            return Err(bad("the cluster must be letters, digits and '_'"));
        }
        let scheme = if secure { "https" } else { "http" };
        let mut list = Vec::new();
        for h in hosts.split(',') {
            if h.is_empty() || h.contains(['/', ' ']) {
                return Err(bad("a host is empty or malformed"));
            }
            let h = if h.contains(':') {
                h.to_string()
            } else {
                format!("{h}:{}", if secure { 8443 } else { 8123 })
            };
            list.push(format!("{scheme}://{h}"));
        }
        Ok(Self {
            hosts: list,
            database: database.to_string(),
            user,
            password,
            cluster,
            node,
        })
    }
}

/// Attempts per statement against each host before it counts as unavailable.
const ATTEMPTS: u32 = 4;
/// First pause between attempts; doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The HTTP client of one store.
#[derive(Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    config: ClickHouseConfig,
    /// Settings sent with every statement (`&name=value`).
    settings: String,
    failures: std::sync::Arc<Failures>,
}

/// How statements failed, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Failures {
    /// Attempts that failed transiently on one host (each followed by another attempt
    /// on the next host or after a pause, or by giving up).
    pub(crate) transient: std::sync::atomic::AtomicU64,
    /// Statements that failed for good: refused by ClickHouse, or out of attempts.
    pub(crate) statements: std::sync::atomic::AtomicU64,
}

/// A statement's failure, classified.
enum Failure {
    /// Worth another attempt (connection, timeout, overload, a shard down).
    Transient(String),
    /// Not worth one.
    Permanent(String),
}

impl Client {
    pub(crate) fn new(config: ClickHouseConfig) -> Result<Self, StoreError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(120))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| StoreError::Config(format!("build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            config,
            settings: String::new(),
            failures: std::sync::Arc::default(),
        })
    }

    /// How statements failed so far.
    pub(crate) fn failures(&self) -> &Failures {
        &self.failures
    }

    pub(crate) fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// Adds a setting sent with every later statement.
    pub(crate) fn set(&mut self, name: &str, value: &str) {
        self.settings.push('&');
        self.settings.push_str(name);
        self.settings.push('=');
        self.settings.push_str(value);
    }

    fn url(&self, host: &str, database: bool, query: Option<&str>) -> String {
        let mut url = format!("{host}/?");
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("user", &self.config.user);
        if !self.config.password.is_empty() {
            q.append_pair("password", &self.config.password);
        }
        if database {
            q.append_pair("database", &self.config.database);
        }
        if let Some(query) = query {
            q.append_pair("query", query);
        }
        url.push_str(&q.finish());
        url.push_str(&self.settings);
        url
    }

    async fn attempt(&self, url: &str, body: Bytes) -> Result<String, Failure> {
        let resp = self
            .http
            .post(url)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Transient(format!("send: {e}")))?;
        let status = resp.status();
        // Current servers name the error's code in a header; 18.16 only in the text.
        let header_code = resp
            .headers()
            .get("x-clickhouse-exception-code")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok());
        let text = resp
            .text()
            .await
            .map_err(|e| Failure::Transient(format!("read the answer: {e}")))?;
        if status.is_success() {
            return Ok(text);
        }
        let message = format!("HTTP {}: {}", status.as_u16(), text.trim());
        // 5xx with a network or overload error code is transient; a statement error is
        // not. ClickHouse's codes: 32 unexpected end of stream, 159 timeout, 202 too many
        // simultaneous queries, 209/210 socket timeout / network error, 252 too many
        // parts, 279 all connection tries failed, 319 unknown status of insert, 425
        // system error, 1000 POCO exception; 516+ (auth) is permanent.
        const TRANSIENT: [u32; 10] = [32, 159, 202, 209, 210, 252, 279, 319, 425, 1000];
        let code = header_code.or_else(|| error_code(&text));
        if status.as_u16() == 503 || code.is_some_and(|c| TRANSIENT.contains(&c)) {
            Err(Failure::Transient(message))
        } else {
            Err(Failure::Permanent(message))
        }
    }

    /// Runs a statement with retries and host fail-over; the body follows the query
    /// (an `INSERT`'s rows) or is the query itself.
    async fn run(
        &self,
        query_in_url: Option<&str>,
        body: Bytes,
        database: bool,
        hosts: &[String],
    ) -> Result<String, StoreError> {
        let mut last = String::new();
        let mut backoff = FIRST_BACKOFF;
        for attempt in 0..ATTEMPTS {
            for host in hosts {
                let url = self.url(host, database, query_in_url);
                let started = std::time::Instant::now();
                // A clone shares the buffer: a retry sends the same bytes again.
                match self.attempt(&url, body.clone()).await {
                    Ok(t) => {
                        tracing::trace!(
                            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                            bytes = body.len(),
                            statement = %query_in_url.unwrap_or("query"),
                            "clickhouse statement"
                        );
                        return Ok(t);
                    }
                    Err(Failure::Permanent(m)) => {
                        self.failures.statements.fetch_add(1, Ordering::Relaxed);
                        return Err(StoreError::ClickHouse(m));
                    }
                    Err(Failure::Transient(m)) => {
                        self.failures.transient.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%host, attempt, "clickhouse statement failed: {m}");
                        last = format!("{host}: {m}");
                    }
                }
            }
            if attempt + 1 < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        self.failures.statements.fetch_add(1, Ordering::Relaxed);
        Err(StoreError::Unavailable(last))
    }

    /// A statement that returns text (a `SELECT … FORMAT TabSeparated`), or none.
    pub(crate) async fn query(&self, sql: &str) -> Result<String, StoreError> {
        self.statement(sql, true, &self.config.hosts).await
    }

    /// A statement outside the store's database (it may not exist yet).
    pub(crate) async fn query_server(&self, sql: &str) -> Result<String, StoreError> {
        self.statement(sql, false, &self.config.hosts).await
    }

    /// `sql` as the body, on the first of `hosts` that answers, in the store's
    /// database or not.
    async fn statement(
        &self,
        sql: &str,
        database: bool,
        hosts: &[String],
    ) -> Result<String, StoreError> {
        let body = Bytes::copy_from_slice(sql.as_bytes());
        self.run(None, body, database, hosts).await
    }

    /// A statement against one host only (schema on each shard).
    pub(crate) async fn query_on(
        &self,
        host: &str,
        sql: &str,
        database: bool,
    ) -> Result<String, StoreError> {
        self.statement(sql, database, &[host.to_string()]).await
    }

    /// `INSERT INTO table (columns) FORMAT TabSeparated` with `rows` as the body (taken
    /// as it is: an insert body is megabytes, and a retry sends the same buffer).
    pub(crate) async fn insert(
        &self,
        table: &str,
        columns: &str,
        rows: Bytes,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let q = format!("INSERT INTO {table} ({columns}) FORMAT TabSeparated");
        self.run(Some(&q), rows, true, &self.config.hosts)
            .await
            .map(|_| ())
    }
}

/// Appends `s` to a TabSeparated row, escaped.
pub(crate) fn tsv_escape(out: &mut Vec<u8>, s: &str) {
    // Runs without special bytes are copied whole, and found eight bytes at a time:
    // documents are most of what a node sends, and looking at them a byte at a time
    // was 6-9 % of its CPU on the ingest path.
    let bytes = s.as_bytes();
    out.reserve(bytes.len());
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8)
            && let Ok(word) = <[u8; 8]>::try_from(chunk)
            && !may_need_tsv_escape(u64::from_le_bytes(word))
        {
            i += 8;
            continue;
        }
        let escaped: &[u8] = match bytes[i] {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\0' => b"\\0",
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run..i]);
        out.extend_from_slice(escaped);
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
}

/// Whether any of the eight bytes of `word` may need escaping: a byte below `0x0e`
/// (which covers NUL, tab, newline and carriage return) or a backslash. False
/// positives only send the word through the byte-by-byte path.
fn may_need_tsv_escape(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte below n (n <= 0x80) sets its high bit in (w - n) & !w; a zero byte is
    // the case n = 1 of it, applied to w XOR backslashes.
    let below = word.wrapping_sub(ONES * 0x0e) & !word & HIGH;
    let x = word ^ (ONES * u64::from(b'\\'));
    let backslash = x.wrapping_sub(ONES) & !x & HIGH;
    (below | backslash) != 0
}

/// Reads one TabSeparated field back.
pub(crate) fn tsv_unescape(s: &str) -> String {
    if !s.contains('\\') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('0') => out.push('\0'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

/// A SQL string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The rows of a TabSeparated answer, each split into its (still escaped) fields.
pub(crate) fn rows(text: &str) -> impl Iterator<Item = Vec<&str>> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').collect())
}

/// The code of a ClickHouse error from its text: `Code: 57. DB::Exception: …` on
/// current releases, `Code: 57, e.displayText() = …` on 18.16 (the first `Code: `
/// is the exception's own; a message may quote others after it).
pub(crate) fn error_code(text: &str) -> Option<u32> {
    let rest = &text[text.find("Code: ")? + "Code: ".len()..];
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    match rest.as_bytes().get(digits) {
        Some(b'.' | b',') if digits > 0 => rest[..digits].parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_error_codes_of_old_and_current_releases() {
        // 18.16
        assert_eq!(
            error_code("Code: 57, e.displayText() = DB::Exception: Table x already exists"),
            Some(57)
        );
        // 26.x
        assert_eq!(
            error_code("Code: 57. DB::Exception: Table x already exists. (TABLE_ALREADY_EXISTS)"),
            Some(57)
        );
        assert_eq!(
            error_code("HTTP 500: Code: 252. DB::Exception: Too many parts (Code: 1, x)"),
            Some(252)
        );
        assert_eq!(error_code("Code: abc. nothing"), None);
        assert_eq!(error_code("Code: 57"), None);
        assert_eq!(error_code("no code here"), None);
    }

    #[test]
    fn parses_store_addresses() {
        let c = ClickHouseConfig::parse("clickhouse://127.0.0.1:8123/traces").expect("parse");
        assert_eq!(c.hosts, vec!["http://127.0.0.1:8123"]);
        assert_eq!(c.database, "traces");
        assert_eq!(c.user, "default");
        assert_eq!(c.cluster, None);
        let c = ClickHouseConfig::parse(
            "clickhouse://u:p%40ss@a:1,b:2/db?cluster=two&secure=true&password=x",
        )
        .expect("parse");
        assert_eq!(c.hosts, vec!["https://a:1", "https://b:2"]);
        assert_eq!(c.user, "u");
        assert_eq!(c.password, "x");
        assert_eq!(c.cluster.as_deref(), Some("two"));
        let c = ClickHouseConfig::parse("clickhouses://h").expect("parse");
        assert_eq!(c.hosts, vec!["https://h:8443"]);
        assert_eq!(c.database, "roentgen");
        for bad in [
            "http://h/db",
            "clickhouse://h/db;drop",
            "clickhouse://h/db?nope=1",
            "clickhouse://h/db?cluster=a-b",
            "clickhouse://h,/db",
            "clickhouse://h/db?secure=maybe",
        ] {
            assert!(ClickHouseConfig::parse(bad).is_err(), "{bad}");
        }
        let p = ClickHouseConfig::parse("clickhouse://u:secret@h/db").expect("parse");
        assert!(!format!("{p:?}").contains("secret"));
        let e = ClickHouseConfig::parse("clickhouse://u:secret@h/db?x=1").expect_err("refused");
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn tsv_round_trips() {
        let s = "a\tb\nc\\d\r\0'é";
        let mut out = Vec::new();
        tsv_escape(&mut out, s);
        let text = String::from_utf8(out).expect("utf8");
        assert!(!text.contains('\t') && !text.contains('\n'));
        assert_eq!(tsv_unescape(&text), s);
        assert_eq!(quote("it's \\"), "'it\\'s \\\\'");
    }

    proptest::proptest! {
        // Special bytes at every offset within and across the eight-byte words.
        #[test]
        fn tsv_escape_round_trips_special_bytes(s in "[a-z\\\\\t\n\r\x00\x01\x0e\x7fé]{0,64}") {
            let mut out = Vec::new();
            tsv_escape(&mut out, &s);
            let text = String::from_utf8(out).expect("utf8");
            proptest::prop_assert!(!text.contains(['\t', '\n', '\r', '\0']));
            proptest::prop_assert_eq!(tsv_unescape(&text), s);
        }

        #[test]
        fn tsv_escape_round_trips_any_text(s in "(?s).{0,200}") {
            let mut out = b"x\t".to_vec();
            tsv_escape(&mut out, &s);
            let text = String::from_utf8(out).expect("utf8");
            proptest::prop_assert!(!text[2..].contains(['\t', '\n', '\r', '\0']));
            proptest::prop_assert_eq!(tsv_unescape(&text[2..]), s);
        }
    }
}
