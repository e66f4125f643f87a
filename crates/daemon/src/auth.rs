//! AWS credentials and SigV4 signing, so the daemon can send to AWS X-Ray itself.
//!
//! Credentials come from the standard chain, first match wins:
//! 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 2. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
//!    `~/.aws/credentials`), profile `AWS_PROFILE` or `default`;
//! 3. the container endpoint (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on
//!    `169.254.170.2`, or `AWS_CONTAINER_CREDENTIALS_FULL_URI` with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN[_FILE]`), as ECS and EKS pod identity provide;
//! 4. the EC2 instance role through IMDSv2 (`AWS_EC2_METADATA_SERVICE_ENDPOINT`
//!    overrides the address), unless in local mode or when the endpoint is not AWS
//!    (a daemon aimed at `roentgen serve` should not wait for a metadata service).
//!
//! With `--role-arn` those credentials assume the role through STS (session name
//! `xray-daemon`, as the official daemon; `AWS_ENDPOINT_URL_STS` overrides the STS
//! address). Temporary credentials are refreshed five minutes before they expire.
//! Requests are signed for the service `xray` in the configured region (`us-east-1`
//! when none is known, which any endpoint that ignores the region accepts).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use tokio::sync::Mutex;

/// Refresh temporary credentials this long before they expire.
const REFRESH_BEFORE: Duration = Duration::from_secs(300);
/// Default address of the ECS container credentials endpoint.
const ECS_HOST: &str = "http://169.254.170.2";
/// Default address of the EC2 instance metadata service.
const IMDS: &str = "http://169.254.169.254";

/// Failures to get credentials or sign.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A credentials source answered with something unusable.
    #[error("credentials from {source_name}: {message}")]
    Source {
        /// Which source.
        source_name: &'static str,
        /// What went wrong.
        message: String,
    },
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

fn source_err(source_name: &'static str, message: impl std::fmt::Display) -> AuthError {
    AuthError::Source {
        source_name,
        message: message.to_string(),
    }
}

/// A set of keys and when they stop working.
#[derive(Clone)]
struct Keys {
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
    expires: Option<SystemTime>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("access_key_id", &self.access_key_id)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

/// Where credentials come from.
#[derive(Debug, Clone)]
enum Source {
    Static(Keys, &'static str),
    Container { url: String, token: Option<String> },
    Imds { endpoint: String },
}

impl Source {
    fn name(&self) -> &'static str {
        match self {
            Self::Static(_, name) => name,
            Self::Container { .. } => "container credentials endpoint",
            Self::Imds { .. } => "EC2 instance metadata",
        }
    }
}

/// Parses an AWS shared credentials file and returns the profile's keys.
fn shared_file_keys(text: &str, profile: &str) -> Option<Keys> {
    let mut section = String::new();
    let mut values: HashMap<String, String> = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        if section == profile
            && let Some((k, v)) = line.split_once('=')
        {
            values.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    Some(Keys {
        access_key_id: values.get("aws_access_key_id")?.clone(),
        secret_access_key: values.get("aws_secret_access_key")?.clone(),
        session_token: values.get("aws_session_token").cloned(),
        expires: None,
    })
}

/// The JSON the container endpoint and IMDS answer with.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct JsonKeys {
    access_key_id: String,
    secret_access_key: String,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    expiration: Option<String>,
}

impl JsonKeys {
    fn keys(self) -> Keys {
        Keys {
            access_key_id: self.access_key_id,
            secret_access_key: self.secret_access_key,
            session_token: self.token,
            expires: self.expiration.as_deref().and_then(parse_rfc3339),
        }
    }
}

/// `2026-11-24T12:00:00Z` (also with fractional seconds) to a time.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let time = time.split(['+']).next()?;
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs)
        .ok()
        .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
}

/// Extracts `<tag>value</tag>` from an XML answer (STS answers are flat enough).
fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(xml[start..end].trim())
}

/// Finds, caches and refreshes credentials.
#[derive(Debug)]
pub struct CredentialsProvider {
    source: Source,
    role: Option<RoleConfig>,
    client: reqwest::Client,
    cached: Mutex<Option<Keys>>,
}

#[derive(Debug, Clone)]
struct RoleConfig {
    arn: String,
    sts_endpoint: String,
    region: String,
}

impl CredentialsProvider {
    /// Walks the chain (without network calls) and returns the first source that
    /// applies, or `None` when there are no credentials. `skip_imds` leaves the
    /// instance role out (local mode, or an endpoint that is not AWS).
    pub fn discover(
        env: &HashMap<String, String>,
        home: Option<PathBuf>,
        skip_imds: bool,
        role_arn: Option<&str>,
        region: &str,
        client: reqwest::Client,
    ) -> Option<Self> {
        let get = |k: &str| env.get(k).filter(|v| !v.is_empty()).cloned();
        let source = if let (Some(id), Some(secret)) =
            (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"))
        {
            Some(Source::Static(
                Keys {
                    access_key_id: id,
                    secret_access_key: secret,
                    session_token: get("AWS_SESSION_TOKEN"),
                    expires: None,
                },
                "environment",
            ))
        } else {
            None
        };
        let source = source.or_else(|| {
            let path = get("AWS_SHARED_CREDENTIALS_FILE")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".aws").join("credentials")))?;
            let text = std::fs::read_to_string(path).ok()?;
            let profile = get("AWS_PROFILE").unwrap_or_else(|| "default".into());
            shared_file_keys(&text, &profile).map(|k| Source::Static(k, "shared credentials file"))
        });
        let source = source.or_else(|| {
            let token = get("AWS_CONTAINER_AUTHORIZATION_TOKEN").or_else(|| {
                get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
                    .and_then(|p| std::fs::read_to_string(p).ok())
                    .map(|t| t.trim().to_string())
            });
            if let Some(rel) = get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
                Some(Source::Container {
                    url: format!("{ECS_HOST}{rel}"),
                    token,
                })
            } else {
                get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
                    .map(|url| Source::Container { url, token })
            }
        });
        let source = source.or_else(|| {
            (!skip_imds).then(|| Source::Imds {
                endpoint: get("AWS_EC2_METADATA_SERVICE_ENDPOINT")
                    .unwrap_or_else(|| IMDS.to_string())
                    .trim_end_matches('/')
                    .to_string(),
            })
        })?;
        let role = role_arn.map(|arn| RoleConfig {
            arn: arn.to_string(),
            sts_endpoint: get("AWS_ENDPOINT_URL_STS")
                .unwrap_or_else(|| format!("https://sts.{region}.amazonaws.com"))
                .trim_end_matches('/')
                .to_string(),
            region: region.to_string(),
        });
        Some(Self {
            source,
            role,
            client,
            cached: Mutex::new(None),
        })
    }

    /// Where the credentials come from, for the start-up log.
    pub fn describe(&self) -> String {
        match &self.role {
            Some(r) => format!("{}, assuming {}", self.source.name(), r.arn),
            None => self.source.name().to_string(),
        }
    }

    async fn fetch_base(&self) -> Result<Keys, AuthError> {
        match &self.source {
            Source::Static(keys, _) => Ok(keys.clone()),
            Source::Container { url, token } => {
                let name = "container credentials endpoint";
                let mut req = self.client.get(url).timeout(Duration::from_secs(2));
                if let Some(t) = token {
                    req = req.header(reqwest::header::AUTHORIZATION, t);
                }
                let resp = req.send().await.map_err(|e| source_err(name, e))?;
                if !resp.status().is_success() {
                    return Err(source_err(name, format!("answered {}", resp.status())));
                }
                let keys: JsonKeys = resp.json().await.map_err(|e| source_err(name, e))?;
                Ok(keys.keys())
            }
            Source::Imds { endpoint } => {
                let name = "EC2 instance metadata";
                let token = self
                    .client
                    .put(format!("{endpoint}/latest/api/token"))
                    .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await
                    .map_err(|e| source_err(name, e))?
                    .error_for_status()
                    .map_err(|e| source_err(name, e))?
                    .text()
                    .await
                    .map_err(|e| source_err(name, e))?;
                let get = |path: String| {
                    self.client
                        .get(format!("{endpoint}{path}"))
                        .header("x-aws-ec2-metadata-token", token.trim())
                        .timeout(Duration::from_secs(1))
                        .send()
                };
                let roles = get("/latest/meta-data/iam/security-credentials/".into())
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .map_err(|e| source_err(name, e))?
                    .text()
                    .await
                    .map_err(|e| source_err(name, e))?;
                let role = roles
                    .lines()
                    .next()
                    .filter(|r| !r.trim().is_empty())
                    .ok_or_else(|| source_err(name, "the instance has no role"))?;
                let keys: JsonKeys = get(format!(
                    "/latest/meta-data/iam/security-credentials/{}",
                    role.trim()
                ))
                .await
                .and_then(reqwest::Response::error_for_status)
                .map_err(|e| source_err(name, e))?
                .json()
                .await
                .map_err(|e| source_err(name, e))?;
                Ok(keys.keys())
            }
        }
    }

    async fn assume_role(&self, base: &Keys, role: &RoleConfig) -> Result<Keys, AuthError> {
        let name = "STS AssumeRole";
        let url = format!(
            "{}/?Action=AssumeRole&Version=2011-06-15&RoleSessionName=xray-daemon&RoleArn={}",
            role.sts_endpoint,
            percent_encode(&role.arn)
        );
        let headers = sign_headers(base, &role.region, "sts", "GET", &url, &[], b"")?;
        let mut req = self.client.get(&url).timeout(Duration::from_secs(5));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        let resp = req.send().await.map_err(|e| source_err(name, e))?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| source_err(name, e))?;
        if !status.is_success() {
            return Err(source_err(name, format!("answered {status}: {body}")));
        }
        let field = |tag: &str| {
            xml_value(&body, tag)
                .map(str::to_string)
                .ok_or_else(|| source_err(name, format!("answer has no {tag}")))
        };
        Ok(Keys {
            access_key_id: field("AccessKeyId")?,
            secret_access_key: field("SecretAccessKey")?,
            session_token: Some(field("SessionToken")?),
            expires: xml_value(&body, "Expiration").and_then(parse_rfc3339),
        })
    }

    async fn keys(&self) -> Result<Keys, AuthError> {
        let mut cached = self.cached.lock().await;
        if let Some(k) = cached.as_ref()
            && k.expires
                .is_none_or(|e| SystemTime::now() + REFRESH_BEFORE < e)
        {
            return Ok(k.clone());
        }
        let base = self.fetch_base().await?;
        let keys = match &self.role {
            Some(role) => self.assume_role(&base, role).await?,
            None => base,
        };
        *cached = Some(keys.clone());
        Ok(keys)
    }
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The headers that sign one request (`authorization`, `x-amz-date`, and
/// `x-amz-security-token` with temporary credentials).
fn sign_headers(
    keys: &Keys,
    region: &str,
    service: &str,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Vec<(String, String)>, AuthError> {
    let identity = Credentials::new(
        &keys.access_key_id,
        &keys.secret_access_key,
        keys.session_token.clone(),
        keys.expires,
        "roentgen-daemon",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| AuthError::Sign(e.to_string()))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| AuthError::Sign(e.to_string()))?;
    let (instructions, _) = sign(request, &params)
        .map_err(|e| AuthError::Sign(e.to_string()))?
        .into_parts();
    let (headers, _) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect())
}

/// Signs requests for the `xray` service.
#[derive(Debug)]
pub struct Signer {
    provider: CredentialsProvider,
    region: String,
}

impl Signer {
    /// A signer for `region` with credentials from `provider`.
    pub fn new(provider: CredentialsProvider, region: String) -> Self {
        Self { provider, region }
    }

    /// Where the credentials come from.
    pub fn describe(&self) -> String {
        self.provider.describe()
    }

    /// The headers to add to a request of `method` to `url` with `headers` (those that
    /// are sent and should be signed, such as `content-type`) and `body`.
    pub async fn sign(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Vec<(String, String)>, AuthError> {
        let keys = self.provider.keys().await?;
        sign_headers(&keys, &self.region, "xray", method, url, headers, body)
    }
}

/// A JSON `POST` of `body` to `url`, signed when there is a signer.
pub(crate) async fn json_post(
    client: &reqwest::Client,
    signer: Option<&Signer>,
    url: &str,
    body: Vec<u8>,
) -> Result<reqwest::RequestBuilder, AuthError> {
    let mut request = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json");
    if let Some(signer) = signer {
        let headers = signer
            .sign("POST", url, &[("content-type", "application/json")], &body)
            .await?;
        for (k, v) in headers {
            request = request.header(k, v);
        }
    }
    Ok(request.body(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_file_profiles() {
        let text = "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n\
                    [other]\n# comment\naws_access_key_id=AKIDOTHER\naws_secret_access_key=s2\naws_session_token = t\n";
        let d = shared_file_keys(text, "default").expect("default");
        assert_eq!(
            (d.access_key_id.as_str(), d.session_token),
            ("AKIDDEFAULT", None)
        );
        let o = shared_file_keys(text, "other").expect("other");
        assert_eq!(o.access_key_id, "AKIDOTHER");
        assert_eq!(o.session_token.as_deref(), Some("t"));
        assert!(shared_file_keys(text, "missing").is_none());
    }

    #[test]
    fn rfc3339() {
        let t = parse_rfc3339("2026-11-24T12:00:00Z").expect("parses");
        assert_eq!(
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .ok(),
            Some(1_795_521_600)
        );
        assert_eq!(
            parse_rfc3339("1970-01-01T00:00:01.5Z"),
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1))
        );
        assert!(parse_rfc3339("yesterday").is_none());
    }

    #[test]
    fn chain_order() {
        let client = reqwest::Client::new();
        let env = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let p = CredentialsProvider::discover(
            &env(&[
                ("AWS_ACCESS_KEY_ID", "AKID"),
                ("AWS_SECRET_ACCESS_KEY", "s"),
                (
                    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                    "http://127.0.0.1:1/creds",
                ),
            ]),
            None,
            false,
            None,
            "us-east-1",
            client.clone(),
        )
        .expect("env keys");
        assert_eq!(p.describe(), "environment");
        let p = CredentialsProvider::discover(
            &env(&[(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "http://127.0.0.1:1/creds",
            )]),
            None,
            true,
            Some("arn:aws:iam::123456789012:role/x"),
            "us-east-1",
            client.clone(),
        )
        .expect("container");
        assert!(p.describe().starts_with("container"), "{}", p.describe());
        // Local mode without any source: no credentials, requests go unsigned.
        assert!(
            CredentialsProvider::discover(&env(&[]), None, true, None, "us-east-1", client)
                .is_none()
        );
    }

    #[test]
    fn xml_fields() {
        let xml = "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                   <AccessKeyId>ASIA</AccessKeyId><SecretAccessKey>sec</SecretAccessKey>\
                   <SessionToken>tok</SessionToken><Expiration>2026-11-24T13:00:00Z</Expiration>\
                   </Credentials></AssumeRoleResult></AssumeRoleResponse>";
        assert_eq!(xml_value(xml, "AccessKeyId"), Some("ASIA"));
        assert_eq!(xml_value(xml, "SessionToken"), Some("tok"));
        assert_eq!(xml_value(xml, "Missing"), None);
    }
}
