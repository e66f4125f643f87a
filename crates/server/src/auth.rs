//! AWS Signature Version 4 authentication of the HTTP API (`roentgen serve --auth FILE`).
//!
//! With a key file, every request that is not a `GET` or `HEAD` (the X-Ray API and
//! OTLP/HTTP are all `POST`; health, metrics and the console's static files are `GET`)
//! must carry a SigV4 signature made with one of the file's keys, in the header form
//! (`Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`) or
//! the query-string form (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//! `X-Amz-SignedHeaders`, `X-Amz-Signature`, optional `X-Amz-Expires`), for the
//! service `xray` in any region, so the AWS SDKs, the AWS CLI and the X-Ray daemon
//! sign for Roentgen exactly as for AWS. The request time (`X-Amz-Date`, or `Date`)
//! may be at most [`MAX_SKEW`] away from the server clock; a presigned request is
//! good until its `X-Amz-Expires` (at most seven days). The payload is always signed:
//! its SHA-256 must be what was signed.
//!
//! Each key has a tenant (whose traces, graph, groups and rules it sees and writes)
//! and a role: `read` (queries), `write` (what the daemon and the SDKs call: segments,
//! telemetry, sampling rules and targets, OTLP) or `admin` (everything, including
//! changing groups and sampling rules). Failures answer with the AWS error shapes
//! (`MissingAuthenticationTokenException`, `IncompleteSignatureException`,
//! `InvalidSignatureException`, `UnrecognizedClientException`,
//! `AccessDeniedException`), decided before the request reaches any handler, so they
//! never depend on, or reveal, what is stored.
//!
//! The key file is TOML:
//!
//! ```toml
//! [[keys]]
//! id = "AKIDEXAMPLE"
//! secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
//! tenant = "default"   # optional, `default`
//! role = "admin"       # read | write | admin
//! ```

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use roentgen_api::{ApiError, ErrorCode};
use roentgen_store::TenantId;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Largest distance between a request's signing time and the server clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);
/// Longest validity of a presigned request (`X-Amz-Expires`), as AWS allows.
pub const MAX_EXPIRES: u64 = 7 * 24 * 3600;
/// The only algorithm SigV4 has.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The signing name of the X-Ray service.
pub const SERVICE: &str = "xray";

/// What SigV4 leaves unencoded: `A-Z a-z 0-9 - _ . ~`.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (paths).
const PATH: &AsciiSet = &UNRESERVED.remove(b'/');

/// What a key may do; each role includes nothing of the others but `admin`, which
/// includes both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Queries: traces, summaries, graphs, statistics, groups and rules read back.
    Read,
    /// What a daemon or an SDK sends: segments, telemetry, sampling rules and
    /// targets, OTLP.
    Write,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether a key of this role may call something that needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self == Role::Admin || self == needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// The role an operation needs (by the name [`crate::http`] counts requests
/// under); `None` for what is no operation (answered `UnknownOperationException`
/// once authenticated).
pub fn role_for(operation: &str) -> Option<Role> {
    Some(match operation {
        "PutTraceSegments"
        | "PutTelemetryRecords"
        | "GetSamplingRules"
        | "GetSamplingTargets"
        | "OtlpExport" => Role::Write,
        "BatchGetTraces"
        | "GetTraceSummaries"
        | "GetServiceGraph"
        | "GetTraceGraph"
        | "GetTimeSeriesServiceStatistics"
        | "GetGroup"
        | "GetGroups"
        | "GetSamplingStatisticSummaries" => Role::Read,
        "CreateGroup" | "UpdateGroup" | "DeleteGroup" | "CreateSamplingRule"
        | "UpdateSamplingRule" | "DeleteSamplingRule" => Role::Admin,
        _ => return None,
    })
}

/// A key file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read the key file {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("the key file {path} does not parse: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// An entry is unusable (empty or duplicate id, empty secret, bad tenant).
    #[error("the key file {path}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<KeyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    id: String,
    secret: String,
    #[serde(default)]
    tenant: Option<String>,
    role: Role,
}

struct Key {
    secret: String,
    tenant: TenantId,
    role: Role,
}

/// The access keys of `--auth FILE`.
pub struct Keys {
    by_id: HashMap<String, Key>,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secrets.
        f.debug_struct("Keys")
            .field("ids", &self.by_id.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Keys {
    /// Reads and checks a key file.
    pub fn load(path: &Path) -> Result<Self, KeyFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text, &shown)
    }

    /// Parses key-file text (`path` names it in errors).
    pub fn parse(text: &str, path: &str) -> Result<Self, KeyFileError> {
        let file: KeyFile = toml::from_str(text).map_err(|e| KeyFileError::Parse {
            path: path.to_string(),
            message: e.to_string(),
        })?;
        let invalid = |message: String| KeyFileError::Invalid {
            path: path.to_string(),
            message,
        };
        if file.keys.is_empty() {
            return Err(invalid(
                "no [[keys]]: every request would be refused".into(),
            ));
        }
        let mut by_id = HashMap::new();
        for (i, k) in file.keys.into_iter().enumerate() {
            if k.id.is_empty() || !k.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(invalid(format!(
                    "key {}: the id must be letters and digits",
                    i + 1
                )));
            }
            if k.secret.is_empty() {
                return Err(invalid(format!("key {}: empty secret", k.id)));
            }
            let tenant = TenantId::new(k.tenant.unwrap_or_else(|| "default".into()))
                .map_err(|e| invalid(format!("key {}: {e}", k.id)))?;
            let id = k.id.clone();
            let key = Key {
                secret: k.secret,
                tenant,
                role: k.role,
            };
            if by_id.insert(id.clone(), key).is_some() {
                return Err(invalid(format!("key {id} is listed twice")));
            }
        }
        Ok(Self { by_id })
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The caller of `id` if `secret` is its secret (compared in constant time; an
    /// unknown id costs the same comparison).
    pub fn check_secret(&self, id: &str, secret: &str) -> Option<Caller> {
        let key = self.by_id.get(id);
        let expected = key.map_or(secret.as_bytes(), |k| k.secret.as_bytes());
        let same = bool::from(expected.ct_eq(secret.as_bytes()));
        match key {
            Some(_) if same => self.caller_of(id),
            _ => None,
        }
    }

    /// The caller a key acts as.
    pub fn caller_of(&self, id: &str) -> Option<Caller> {
        self.by_id.get(id).map(|k| Caller {
            key_id: id.to_string(),
            tenant: k.tenant.clone(),
            role: k.role,
        })
    }

    /// A key's secret.
    pub(crate) fn secret_of(&self, id: &str) -> Option<&str> {
        self.by_id.get(id).map(|k| k.secret.as_str())
    }

    /// True when there are none (a parsed file always has some).
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

/// Who a verified request comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key id.
    pub key_id: String,
    /// The key's tenant.
    pub tenant: TenantId,
    /// The key's role.
    pub role: Role,
}

/// The parts of a request a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `POST`, …
    pub method: &'a str,
    /// The path as received (still percent-encoded).
    pub path: &'a str,
    /// The query string as received, without `?`.
    pub query: Option<&'a str>,
    /// The headers.
    pub headers: &'a HeaderMap,
    /// The body.
    pub body: &'a [u8],
}

fn err(kind: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(kind, message)
}

fn incomplete(message: impl Into<String>) -> ApiError {
    err(ErrorCode::IncompleteSignature, message)
}

/// The signature's parts, from either form.
struct Parts {
    key_id: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
    amz_date: String,
    /// Presigned: seconds of validity.
    expires: Option<u64>,
    /// Query parameters without `X-Amz-Signature` (presigned) or all of them.
    query: Vec<(String, String)>,
}

fn decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn parse_credential(cred: &str) -> Result<(String, String, String, String), ApiError> {
    let parts: Vec<&str> = cred.split('/').collect();
    match parts.as_slice() {
        [id, date, region, service, "aws4_request"] if !id.is_empty() => Ok((
            id.to_string(),
            date.to_string(),
            region.to_string(),
            service.to_string(),
        )),
        _ => Err(incomplete(format!(
            "Credential must have the form <key id>/<date>/<region>/<service>/aws4_request, got '{cred}'"
        ))),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parts_of(req: &SignedRequest<'_>) -> Result<Parts, ApiError> {
    let query = query_pairs(req.query);
    let q = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    if let Some(auth) = header_str(req.headers, "authorization") {
        let rest = auth.strip_prefix(ALGORITHM).ok_or_else(|| {
            incomplete(format!(
                "Authorization header must start with {ALGORITHM}, got '{}'",
                auth.split_whitespace().next().unwrap_or("")
            ))
        })?;
        let mut fields: HashMap<&str, &str> = HashMap::new();
        for item in rest.split(',') {
            if let Some((k, v)) = item.trim().split_once('=') {
                fields.insert(k.trim(), v.trim());
            }
        }
        let field = |name: &str| {
            fields.get(name).map(|v| v.to_string()).ok_or_else(|| {
                incomplete(format!("Authorization header requires '{name}' parameter"))
            })
        };
        let (key_id, date, region, service) = parse_credential(&field("Credential")?)?;
        let amz_date = header_str(req.headers, "x-amz-date")
            .map(str::to_string)
            .ok_or_else(|| incomplete("Authorization header requires an 'X-Amz-Date' header"))?;
        Ok(Parts {
            key_id,
            date,
            region,
            service,
            signed_headers: field("SignedHeaders")?
                .split(';')
                .map(str::to_string)
                .collect(),
            signature: field("Signature")?,
            amz_date,
            expires: None,
            query,
        })
    } else if let Some(algorithm) = q("X-Amz-Algorithm") {
        if algorithm != ALGORITHM {
            return Err(incomplete(format!(
                "X-Amz-Algorithm must be {ALGORITHM}, got '{algorithm}'"
            )));
        }
        let need = |name: &str| {
            q(name).ok_or_else(|| {
                incomplete(format!(
                    "query-string authentication requires the {name} parameter"
                ))
            })
        };
        let (key_id, date, region, service) = parse_credential(&need("X-Amz-Credential")?)?;
        let expires = match q("X-Amz-Expires") {
            None => MAX_EXPIRES,
            Some(e) => e
                .parse::<u64>()
                .ok()
                .filter(|e| *e <= MAX_EXPIRES)
                .ok_or_else(|| {
                    incomplete(format!(
                        "X-Amz-Expires must be a number of seconds up to {MAX_EXPIRES}, got '{e}'"
                    ))
                })?,
        };
        Ok(Parts {
            key_id,
            date,
            region,
            service,
            signed_headers: need("X-Amz-SignedHeaders")?
                .split(';')
                .map(str::to_string)
                .collect(),
            signature: need("X-Amz-Signature")?,
            amz_date: need("X-Amz-Date")?,
            expires: Some(expires),
            query: query
                .iter()
                .filter(|(k, _)| k != "X-Amz-Signature")
                .cloned()
                .collect(),
        })
    } else {
        Err(err(
            ErrorCode::MissingAuthenticationToken,
            "Missing Authentication Token",
        ))
    }
}

/// `YYYYMMDD'T'HHMMSS'Z'` as seconds since the epoch.
fn parse_amz_date(s: &str) -> Option<u64> {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = time::PrimitiveDateTime::parse(s, format).ok()?;
    u64::try_from(t.assume_utc().unix_timestamp()).ok()
}

fn amz_date_of(epoch: u64) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    time::OffsetDateTime::from_unix_timestamp(epoch as i64)
        .ok()
        .and_then(|t| t.format(format).ok())
        .unwrap_or_default()
}

/// The path as SigV4 canonicalizes it for every service but S3: dot segments and
/// empty segments removed, then each byte outside the unreserved set percent-encoded
/// (a `%` of the received, already encoded path becomes `%25`).
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    utf8_percent_encode(&out, PATH).to_string()
}

fn canonical_query(pairs: &[(String, String)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| {
            (
                utf8_percent_encode(k, UNRESERVED).to_string(),
                utf8_percent_encode(v, UNRESERVED).to_string(),
            )
        })
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn canonical_header_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<String> = headers
        .get_all(name)
        .iter()
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// Checks the request's signature against `keys` at time `now`.
pub fn verify(keys: &Keys, req: &SignedRequest<'_>, now: SystemTime) -> Result<Caller, ApiError> {
    let p = parts_of(req)?;
    if p.service != SERVICE {
        return Err(err(
            ErrorCode::InvalidSignature,
            format!(
                "Credential should be scoped to correct service: '{SERVICE}', not '{}'",
                p.service
            ),
        ));
    }
    let signed_at = parse_amz_date(&p.amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z', got '{}'",
            p.amz_date
        ))
    })?;
    if !p.amz_date.starts_with(&p.date) {
        return Err(err(
            ErrorCode::InvalidSignature,
            format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
                p.date,
                &p.amz_date[..8.min(p.amz_date.len())]
            ),
        ));
    }
    let now_s = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let skew = MAX_SKEW.as_secs();
    if signed_at > now_s + skew {
        return Err(err(
            ErrorCode::InvalidSignature,
            format!(
                "Signature not yet current: {} is still later than {} ({} + 15 min.)",
                p.amz_date,
                amz_date_of(now_s + skew),
                amz_date_of(now_s)
            ),
        ));
    }
    let window = p.expires.unwrap_or(skew);
    if signed_at + window < now_s {
        return Err(err(
            ErrorCode::InvalidSignature,
            match p.expires {
                None => format!(
                    "Signature expired: {} is now earlier than {} ({} - 15 min.)",
                    p.amz_date,
                    amz_date_of(now_s - skew),
                    amz_date_of(now_s)
                ),
                Some(_) => format!(
                    "Signature expired: {} is now earlier than {} ({} - {window} s)",
                    p.amz_date,
                    amz_date_of(now_s - window),
                    amz_date_of(now_s)
                ),
            },
        ));
    }
    if !p.signed_headers.iter().any(|h| h == "host") {
        return Err(incomplete("SignedHeaders must include 'host'"));
    }
    let Some(key) = keys.by_id.get(&p.key_id) else {
        return Err(err(
            ErrorCode::UnrecognizedClient,
            "The security token included in the request is invalid.",
        ));
    };
    if req.headers.contains_key("x-amz-security-token") {
        // Roentgen's keys are long-term keys: a session token names credentials
        // it never issued.
        return Err(err(
            ErrorCode::UnrecognizedClient,
            "The security token included in the request is invalid.",
        ));
    }
    let mut canonical_headers = String::new();
    for name in &p.signed_headers {
        let value = canonical_header_value(req.headers, name).ok_or_else(|| {
            incomplete(format!(
                "'{name}' is in SignedHeaders but not in the request"
            ))
        })?;
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(&value);
        canonical_headers.push('\n');
    }
    let payload = hex::encode(Sha256::digest(req.body));
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.path),
        canonical_query(&p.query),
        canonical_headers,
        p.signed_headers.join(";"),
        payload
    );
    let scope = format!("{}/{}/{}/aws4_request", p.date, p.region, p.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{scope}\n{}",
        p.amz_date,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let signing_key = aws_sigv4::sign::v4::generate_signing_key(
        &key.secret,
        UNIX_EPOCH + Duration::from_secs(signed_at),
        &p.region,
        &p.service,
    );
    let expected = aws_sigv4::sign::v4::calculate_signature(signing_key, string_to_sign.as_bytes());
    if !bool::from(expected.as_bytes().ct_eq(p.signature.as_bytes())) {
        return Err(err(
            ErrorCode::InvalidSignature,
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
        ));
    }
    Ok(Caller {
        key_id: p.key_id,
        tenant: key.tenant.clone(),
        role: key.role,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    use aws_sigv4::sign::v4;
    use axum::http::{HeaderName, HeaderValue};

    /// A key file of an admin key and a `read` key of tenant `team-b`.
    pub(crate) const FILE: &str = r#"
[[keys]]
id = "AKIDADMIN"
secret = "admin/secret"
role = "admin"

[[keys]]
id = "AKIDREADER"
secret = "reader/secret"
tenant = "team-b"
role = "read"
"#;

    fn keys() -> Keys {
        Keys::parse(FILE, "test.toml").expect("parses")
    }

    /// A request signed by the AWS SDK's own signer (an implementation independent
    /// of [`verify`]): method, URL, headers, body.
    struct Signed {
        path: String,
        query: Option<String>,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    fn signed(
        id: &str,
        secret: &str,
        at: SystemTime,
        url: &str,
        body: &[u8],
        in_query: bool,
        service: &str,
    ) -> Signed {
        let identity = Credentials::new(id, secret, None, None, "test").into();
        let mut settings = SigningSettings::default();
        if in_query {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(Duration::from_secs(300));
        }
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-west-3")
            .name(service)
            .time(at)
            .settings(settings)
            .build()
            .expect("params")
            .into();
        let base = [("content-type", "application/x-amz-json-1.1")];
        let request =
            SignableRequest::new("POST", url, base.into_iter(), SignableBody::Bytes(body))
                .expect("signable");
        let (instructions, _) = sign(request, &params).expect("signs").into_parts();
        let mut req = http::Request::builder()
            .method("POST")
            .uri(url)
            .header("content-type", "application/x-amz-json-1.1")
            .body(())
            .expect("request");
        instructions.apply_to_request_http1x(&mut req);
        let uri = req.uri().clone();
        let mut headers = req.headers().clone();
        headers.insert(
            HeaderName::from_static("host"),
            HeaderValue::from_str(uri.authority().expect("authority").as_str()).expect("host"),
        );
        Signed {
            path: uri.path().to_string(),
            query: uri.query().map(str::to_string),
            headers,
            body: body.to_vec(),
        }
    }

    fn check(s: &Signed, now: SystemTime) -> Result<Caller, ApiError> {
        verify(
            &keys(),
            &SignedRequest {
                method: "POST",
                path: &s.path,
                query: s.query.as_deref(),
                headers: &s.headers,
                body: &s.body,
            },
            now,
        )
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const T: u64 = 1_795_000_000;
    const URL: &str = "http://127.0.0.1:2772/TraceSummaries";

    #[test]
    fn sdk_signatures_verify_in_both_forms() {
        let body = br#"{"StartTime":1,"EndTime":2}"#;
        for in_query in [false, true] {
            let s = signed(
                "AKIDADMIN",
                "admin/secret",
                at(T),
                URL,
                body,
                in_query,
                "xray",
            );
            let caller = check(&s, at(T + 60)).expect("verifies");
            assert_eq!(caller.key_id, "AKIDADMIN");
            assert_eq!(caller.role, Role::Admin);
            assert_eq!(caller.tenant, TenantId::default());
        }
        let s = signed(
            "AKIDREADER",
            "reader/secret",
            at(T),
            URL,
            body,
            false,
            "xray",
        );
        let caller = check(&s, at(T)).expect("verifies");
        assert_eq!(caller.tenant, TenantId::new("team-b").expect("tenant"));
        // Query parameters and an encoded path take part.
        let url = "http://127.0.0.1:2772/Traces%20x/a?b=c%2Fd&a=1";
        let s = signed("AKIDADMIN", "admin/secret", at(T), url, b"", false, "xray");
        check(&s, at(T)).expect("query and path canonicalized as the SDK does");
    }

    fn code(r: Result<Caller, ApiError>) -> ErrorCode {
        r.expect_err("refused").kind()
    }

    #[test]
    fn tampering_wrong_keys_and_time_are_refused() {
        let body = br#"{"StartTime":1}"#;
        let good = || signed("AKIDADMIN", "admin/secret", at(T), URL, body, false, "xray");

        let mut s = good();
        s.body = br#"{"StartTime":2}"#.to_vec();
        assert_eq!(code(check(&s, at(T))), ErrorCode::InvalidSignature);

        let mut s = good();
        s.path = "/Traces".into();
        assert_eq!(code(check(&s, at(T))), ErrorCode::InvalidSignature);

        let mut s = good();
        s.headers
            .insert("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(code(check(&s, at(T))), ErrorCode::InvalidSignature);

        let s = signed(
            "AKIDADMIN",
            "not/the/secret",
            at(T),
            URL,
            body,
            false,
            "xray",
        );
        assert_eq!(code(check(&s, at(T))), ErrorCode::InvalidSignature);

        let s = signed(
            "AKIDNOBODY",
            "admin/secret",
            at(T),
            URL,
            body,
            false,
            "xray",
        );
        assert_eq!(code(check(&s, at(T))), ErrorCode::UnrecognizedClient);

        let s = signed("AKIDADMIN", "admin/secret", at(T), URL, body, false, "s3");
        assert_eq!(code(check(&s, at(T))), ErrorCode::InvalidSignature);

        // 15 minutes either way.
        check(&good(), at(T + 15 * 60)).expect("at the edge");
        let late = check(&good(), at(T + 15 * 60 + 1)).expect_err("expired");
        assert_eq!(late.kind(), ErrorCode::InvalidSignature);
        assert!(
            late.message().starts_with("Signature expired"),
            "{}",
            late.message()
        );
        check(&good(), at(T - 15 * 60)).expect("at the edge");
        let early = check(&good(), at(T - 15 * 60 - 1)).expect_err("future");
        assert!(
            early.message().contains("not yet current"),
            "{}",
            early.message()
        );

        // A presigned request lives for its X-Amz-Expires.
        let q = signed("AKIDADMIN", "admin/secret", at(T), URL, body, true, "xray");
        check(&q, at(T + 300)).expect("within 300 s");
        assert_eq!(code(check(&q, at(T + 301))), ErrorCode::InvalidSignature);

        let mut s = good();
        s.headers.insert(
            "x-amz-security-token",
            HeaderValue::from_static("FwoGZXIvYXdzEXAMPLE"),
        );
        assert_eq!(code(check(&s, at(T))), ErrorCode::UnrecognizedClient);
    }

    #[test]
    fn missing_and_malformed_signatures_say_so() {
        let s = Signed {
            path: "/TraceSummaries".into(),
            query: None,
            headers: HeaderMap::new(),
            body: Vec::new(),
        };
        assert_eq!(
            code(check(&s, at(T))),
            ErrorCode::MissingAuthenticationToken
        );
        for auth in [
            "Bearer abc",
            "AWS4-HMAC-SHA256 Credential=AKIDADMIN/20260101/us-east-1/xray/aws4_request",
            "AWS4-HMAC-SHA256 Credential=AKIDADMIN/x, SignedHeaders=host, Signature=00",
        ] {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_static(auth));
            headers.insert("x-amz-date", HeaderValue::from_static("20260101T000000Z"));
            let s = Signed {
                headers,
                ..Signed {
                    path: "/".into(),
                    query: None,
                    headers: HeaderMap::new(),
                    body: Vec::new(),
                }
            };
            assert_eq!(
                code(check(&s, at(T))),
                ErrorCode::IncompleteSignature,
                "{auth}"
            );
        }
    }

    #[test]
    fn roles_and_key_files() {
        assert!(Role::Admin.allows(Role::Write) && Role::Admin.allows(Role::Read));
        assert!(!Role::Write.allows(Role::Read) && !Role::Read.allows(Role::Write));
        assert_eq!(role_for("PutTraceSegments"), Some(Role::Write));
        assert_eq!(role_for("GetTraceSummaries"), Some(Role::Read));
        assert_eq!(role_for("DeleteSamplingRule"), Some(Role::Admin));
        assert_eq!(role_for("other"), None);
        for (bad, why) in [
            ("", "no [[keys]]"),
            (
                "[[keys]]\nid = \"A\"\nsecret = \"s\"\nrole = \"root\"",
                "unknown variant",
            ),
            (
                "[[keys]]\nid = \"A-1\"\nsecret = \"s\"\nrole = \"read\"",
                "letters and digits",
            ),
            (
                "[[keys]]\nid = \"A\"\nsecret = \"\"\nrole = \"read\"",
                "empty secret",
            ),
            (
                "[[keys]]\nid = \"A\"\nsecret = \"s\"\nrole = \"read\"\ntenant = \"a b\"",
                "tenant",
            ),
            (
                "[[keys]]\nid = \"A\"\nsecret = \"s\"\nrole = \"read\"\n[[keys]]\nid = \"A\"\nsecret = \"t\"\nrole = \"read\"",
                "twice",
            ),
        ] {
            let e = Keys::parse(bad, "k.toml").expect_err(why).to_string();
            assert!(e.contains(why), "{e} lacks {why}");
        }
        // Debug never shows a secret.
        assert!(!format!("{:?}", keys()).contains("secret"));
    }
}
