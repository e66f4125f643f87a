//! Console sessions under `--auth`: the web console signs in with an access key and
//! then calls the API with a cookie instead of a SigV4 signature.
//!
//! `POST /console/session` with `{"AccessKeyId", "SecretAccessKey"}` checks the pair
//! against the key file and answers with a cookie `roentgen_session` that is
//! `HttpOnly` (no script reads it), `SameSite=Strict` (no other site's page sends it),
//! `Path=/`, `Secure` under `--tls-cert`, and good for [`SESSION_TTL`].
//! `DELETE /console/session` signs out: the token is revoked on this node and the
//! cookie cleared. `GET /console/session` says whether sign-in is needed and who is
//! signed in.
//!
//! The token is `<key id>.<expiry>.<nonce>.<mac>`: an HMAC-SHA256 over the first three
//! parts with a key derived from the access key's secret. It holds no secret, any node
//! with the same key file accepts it (stateless nodes behind a balancer), and changing
//! or removing the key in the file ends its sessions. A request authenticated by the
//! cookie must also carry the header [`CSRF_HEADER`]: a page on another origin cannot
//! set it without a CORS preflight, which this server never grants, so a forged
//! cross-site request fails even in a browser that ignores `SameSite`. The same rule
//! guards sign-in itself (no login CSRF).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use roentgen_api::{ApiError, ErrorCode};
use sha2::Sha256;

use crate::auth::{Caller, Keys};
use crate::http::{AppState, Auth, AwsError};

/// The cookie's name.
pub const COOKIE: &str = "roentgen_session";
/// The header a cookie-authenticated request must carry (any value).
pub const CSRF_HEADER: &str = "x-roentgen-console";
/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// The path of the sign-in, sign-out and who-am-I endpoint.
pub const PATH: &str = "/console/session";
/// Most signed-out tokens remembered (until they expire) on one node.
const MAX_REVOKED: usize = 65_536;
/// Separates the derived session key from every other use of the secret.
const DERIVE: &[u8] = b"roentgen console session v1";

type HmacSha256 = Hmac<Sha256>;

/// Issues and checks console session tokens.
#[derive(Debug)]
pub struct Sessions {
    /// Whether cookies get `Secure` (the listener speaks TLS).
    secure: bool,
    /// Nonces of signed-out tokens, with their expiry (seconds since the epoch).
    revoked: Mutex<HashMap<String, u64>>,
}

/// A signed-in session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token (the cookie's value).
    pub token: String,
    /// Who it acts as.
    pub caller: Caller,
    /// When it ends, seconds since the epoch.
    pub expires: u64,
}

fn unix(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn mac(secret: &str, message: &str) -> HmacSha256 {
    // HMAC takes a key of any length: neither call can fail.
    let mut derive = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    derive.update(DERIVE);
    let key = derive.finalize().into_bytes();
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key");
    mac.update(message.as_bytes());
    mac
}

fn invalid() -> ApiError {
    ApiError::new(
        ErrorCode::UnrecognizedClient,
        "The access key id or the secret access key is wrong.",
    )
}

fn expired() -> ApiError {
    ApiError::new(
        ErrorCode::ExpiredToken,
        "The console session has expired or was signed out; sign in again.",
    )
}

impl Sessions {
    /// Sessions whose cookies are `Secure` when `secure` (the listener speaks TLS).
    pub fn new(secure: bool) -> Self {
        Self {
            secure,
            revoked: Mutex::new(HashMap::new()),
        }
    }

    /// Signs in with an access key pair. A wrong id and a wrong secret get the same
    /// answer, so sign-in does not tell which ids exist.
    pub fn sign_in(
        &self,
        keys: &Keys,
        key_id: &str,
        secret: &str,
        now: SystemTime,
    ) -> Result<Session, ApiError> {
        let caller = keys.check_secret(key_id, secret).ok_or_else(invalid)?;
        let expires = unix(now) + SESSION_TTL.as_secs();
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let body = format!("{}.{expires}.{nonce}", caller.key_id);
        // `secret` is the key's secret: check_secret said so.
        let tag = hex::encode(mac(secret, &body).finalize().into_bytes());
        Ok(Session {
            token: format!("{body}.{tag}"),
            caller,
            expires,
        })
    }

    /// Checks a token: its MAC under the key's current secret, its expiry, and that it
    /// was not signed out.
    pub fn check(&self, keys: &Keys, token: &str, now: SystemTime) -> Result<Session, ApiError> {
        let Some((body, tag)) = token.rsplit_once('.') else {
            return Err(expired());
        };
        let mut parts = body.split('.');
        let (Some(key_id), Some(expires), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(expired());
        };
        let (Some(secret), Some(caller), Ok(expires), Ok(tag)) = (
            keys.secret_of(key_id),
            keys.caller_of(key_id),
            expires.parse::<u64>(),
            hex::decode(tag),
        ) else {
            return Err(expired());
        };
        if mac(secret, body).verify_slice(&tag).is_err() {
            return Err(expired());
        }
        if expires <= unix(now) || self.is_revoked(nonce) {
            return Err(expired());
        }
        Ok(Session {
            token: token.to_string(),
            caller,
            expires,
        })
    }

    /// Signs a token out on this node: it is refused from now on until it would have
    /// expired anyway. Tokens that do not verify are ignored.
    pub fn sign_out(&self, keys: &Keys, token: &str, now: SystemTime) {
        let Ok(session) = self.check(keys, token, now) else {
            return;
        };
        let Some(nonce) = session.token.split('.').nth(2) else {
            return;
        };
        let now = unix(now);
        let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        if revoked.len() >= MAX_REVOKED {
            revoked.retain(|_, expires| *expires > now);
        }
        if revoked.len() >= MAX_REVOKED {
            // Still full of live sessions: forget the one that ends soonest.
            if let Some(first) = revoked
                .iter()
                .min_by_key(|(_, e)| **e)
                .map(|(n, _)| n.clone())
            {
                revoked.remove(&first);
            }
        }
        revoked.insert(nonce.to_string(), session.expires);
    }

    fn is_revoked(&self, nonce: &str) -> bool {
        self.revoked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(nonce)
    }

    /// The `Set-Cookie` value that stores `session` in the browser.
    pub fn cookie(&self, session: &Session, now: SystemTime) -> String {
        let max_age = session.expires.saturating_sub(unix(now));
        self.cookie_with(&session.token, max_age)
    }

    /// The `Set-Cookie` value that removes the session cookie.
    pub fn clearing_cookie(&self) -> String {
        self.cookie_with("", 0)
    }

    fn cookie_with(&self, value: &str, max_age: u64) -> String {
        let mut c = cookie::Cookie::build((COOKIE, value.to_string()))
            .path("/")
            .http_only(true)
            .same_site(cookie::SameSite::Strict)
            .max_age(cookie::time::Duration::seconds(
                i64::try_from(max_age).unwrap_or(i64::MAX),
            ));
        if self.secure {
            c = c.secure(true);
        }
        c.build().to_string()
    }
}

/// The session token in a request's `Cookie` headers, if any.
pub fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_string())
}

/// Whether the request carries [`CSRF_HEADER`].
pub fn has_csrf_header(headers: &HeaderMap) -> bool {
    headers.contains_key(CSRF_HEADER)
}

/// The refusal of a cookie-authenticated request without [`CSRF_HEADER`].
pub fn csrf_refusal() -> ApiError {
    ApiError::new(
        ErrorCode::AccessDenied,
        format!(
            "console sign-in, sign-out and requests authenticated by the console session cookie must carry the {CSRF_HEADER} header (it keeps other sites' pages from sending them)"
        ),
    )
}

/// What `GET /console/session` (and sign-in) answer.
#[derive(Debug, serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct SessionInfo {
    auth_required: bool,
    signed_in: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    access_key_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires: Option<u64>,
}

impl SessionInfo {
    fn open() -> Self {
        Self {
            auth_required: false,
            signed_in: false,
            access_key_id: None,
            tenant: None,
            role: None,
            expires: None,
        }
    }

    fn of(session: Option<&Session>) -> Self {
        Self {
            auth_required: true,
            signed_in: session.is_some(),
            access_key_id: session.map(|s| s.caller.key_id.clone()),
            tenant: session.map(|s| s.caller.tenant.as_str().to_string()),
            role: session.map(|s| s.caller.role.to_string()),
            expires: session.map(|s| s.expires),
        }
    }
}

/// The body of a sign-in.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignIn {
    access_key_id: String,
    secret_access_key: String,
}

fn keys_of(state: &AppState) -> Option<&std::sync::Arc<Keys>> {
    match &state.auth {
        Auth::Keys(keys) => Some(keys),
        Auth::Open | Auth::Proxy(_) => None,
    }
}

/// `GET /console/session`: whether sign-in is needed, and who is signed in.
pub(crate) async fn info(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(keys) = keys_of(&state) else {
        return Json(SessionInfo::open()).into_response();
    };
    let session =
        token_of(&headers).and_then(|t| state.sessions.check(keys, &t, SystemTime::now()).ok());
    Json(SessionInfo::of(session.as_ref())).into_response()
}

/// `POST /console/session`: signs in with an access key pair.
pub(crate) async fn sign_in(
    State(state): State<AppState>,
    body: axum::body::Bytes,
) -> Result<Response, AwsError> {
    let Some(keys) = keys_of(&state) else {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "this listener does not take --auth keys: there is nothing to sign in to",
        )
        .into());
    };
    let request: SignIn = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the body must be {{\"AccessKeyId\": …, \"SecretAccessKey\": …}}: {e}"),
        )
    })?;
    let now = SystemTime::now();
    let session = state
        .sessions
        .sign_in(
            keys,
            &request.access_key_id,
            &request.secret_access_key,
            now,
        )
        .inspect_err(|e| state.metrics.auth_failure(e.kind()))?;
    let cookie = state.sessions.cookie(&session, now);
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(SessionInfo::of(Some(&session))),
    )
        .into_response())
}

/// `DELETE /console/session`: signs out (revokes the token on this node and clears the
/// cookie). Answers the same whether or not a session was there.
pub(crate) async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(keys) = keys_of(&state) else {
        return Json(SessionInfo::open()).into_response();
    };
    if let Some(token) = token_of(&headers) {
        state.sessions.sign_out(keys, &token, SystemTime::now());
    }
    (
        [(header::SET_COOKIE, state.sessions.clearing_cookie())],
        Json(SessionInfo::of(None)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::tests::FILE;

    fn key_file(text: &str) -> Keys {
        Keys::parse(text, "keys.toml").expect("test key file parses")
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    const NOW: u64 = 1_790_000_000;

    #[test]
    fn a_signed_in_token_acts_as_its_key_until_it_expires() {
        let keys = key_file(FILE);
        let sessions = Sessions::new(false);
        let s = sessions
            .sign_in(&keys, "AKIDREADER", "reader/secret", at(NOW))
            .expect("right pair signs in");
        assert_eq!(s.caller.key_id, "AKIDREADER");
        assert_eq!(s.caller.tenant.as_str(), "team-b");
        let checked = sessions
            .check(&keys, &s.token, at(NOW + 60))
            .expect("fresh token checks");
        assert_eq!(checked.caller, s.caller);
        let late = sessions.check(&keys, &s.token, at(NOW + SESSION_TTL.as_secs()));
        assert_eq!(
            late.map(|_| ()).unwrap_err().kind(),
            ErrorCode::ExpiredToken
        );
    }

    #[test]
    fn wrong_pairs_and_forged_tokens_are_refused_alike() {
        let keys = key_file(FILE);
        let sessions = Sessions::new(false);
        for (id, secret) in [
            ("AKIDREADER", "wrong"),
            ("AKIDNONE", "reader/secret"),
            ("", ""),
        ] {
            let e = sessions.sign_in(&keys, id, secret, at(NOW)).unwrap_err();
            assert_eq!(e.kind(), ErrorCode::UnrecognizedClient);
            assert_eq!(e.message(), invalid().message());
        }
        let s = sessions
            .sign_in(&keys, "AKIDREADER", "reader/secret", at(NOW))
            .expect("signs in");
        let mut parts: Vec<&str> = s.token.split('.').collect();
        // Another key id, a later expiry, a changed tag: none verifies.
        let later = (s.expires + 3600).to_string();
        for (i, v) in [(0, "AKIDADMIN"), (1, later.as_str()), (3, "00")] {
            let kept = parts[i];
            parts[i] = v;
            let forged = parts.join(".");
            assert!(sessions.check(&keys, &forged, at(NOW)).is_err(), "{forged}");
            parts[i] = kept;
        }
        for junk in ["", "a.b.c", "a.b.c.d.e", "AKIDREADER.x.y.zz"] {
            assert!(sessions.check(&keys, junk, at(NOW)).is_err(), "{junk}");
        }
        // A new secret for the key ends its sessions.
        let rotated = key_file(&FILE.replace("reader/secret", "reader/rotated"));
        assert!(sessions.check(&rotated, &s.token, at(NOW)).is_err());
    }

    #[test]
    fn signing_out_revokes_the_token_and_the_cookie_is_strict() {
        let keys = key_file(FILE);
        let sessions = Sessions::new(true);
        let s = sessions
            .sign_in(&keys, "AKIDADMIN", "admin/secret", at(NOW))
            .expect("signs in");
        let other = sessions
            .sign_in(&keys, "AKIDADMIN", "admin/secret", at(NOW))
            .expect("signs in");
        sessions.sign_out(&keys, &s.token, at(NOW + 1));
        assert!(sessions.check(&keys, &s.token, at(NOW + 2)).is_err());
        assert!(sessions.check(&keys, &other.token, at(NOW + 2)).is_ok());
        let cookie = sessions.cookie(&other, at(NOW));
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(cookie.contains(part), "{cookie}");
        }
        assert!(sessions.clearing_cookie().contains("Max-Age=0"));
        let mut headers = HeaderMap::new();
        headers.insert(
            axum::http::header::COOKIE,
            format!("a=b; {COOKIE}={}; c=d", other.token)
                .parse()
                .expect("header value"),
        );
        assert_eq!(token_of(&headers), Some(other.token));
    }
}
