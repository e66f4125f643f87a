//! The web console: the single-page app built from `ui/` (`npm run build` writes
//! `ui/dist`), embedded in the binary at compile time and served at `/`.
//!
//! The console is a client of the public X-Ray API on the same origin and nothing else.
//! It is served only for `GET`/`HEAD` of its own paths (`/`, the views it links to, and
//! `/assets/…`), so it never shadows an API route: anything else still answers
//! `UnknownOperationException`. A binary built before `ui/dist` existed serves a page
//! that says how to build the console.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The built console, embedded (in debug builds too, `debug-embed`). Empty when
/// `ui/dist` did not exist at compile time.
#[derive(rust_embed::Embed)]
#[folder = "../../ui/dist/"]
#[allow_missing = true]
struct Assets;

/// Top-level paths of the console's views; a deep link to any of them (or below
/// them) gets `index.html` and the app routes on the client.
const VIEWS: &[&str] = &["map", "traces", "analytics", "groups", "sampling"];

/// Hashed file names under `assets/` never change content: cache them for a year.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The console loads only its own files and talks only to this origin; nothing may
/// frame it (its buttons delete groups and rules).
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   script-src 'self'; connect-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'none'";

/// The page served when the binary was built without `ui/dist`.
const NOT_BUILT: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Roentgen</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:4rem auto;padding:0 1rem}
code,pre{background:#f2f2f2;padding:.1rem .3rem;border-radius:4px}pre{padding:.8rem}</style></head>
<body><h1>Roentgen is running; its console is not built into this binary</h1>
<p>The X-Ray API, <code>/metrics</code> and <code>/healthz</code> work. To get the web console,
build it and then the binary (Node 20 and npm are needed once):</p>
<pre>(cd ui &amp;&amp; npm ci &amp;&amp; npm run build) &amp;&amp; cargo build -p roentgen</pre>
<p><code>scripts/run</code> and <code>scripts/test</code> do both for you.</p>
</body></html>
"#;

/// Whether `path` is one the console answers.
pub fn is_console_path(path: &str) -> bool {
    let rest = path.trim_start_matches('/');
    if rest.is_empty() || rest == "index.html" || rest.starts_with("assets/") {
        return true;
    }
    let first = rest.split('/').next().unwrap_or("");
    VIEWS.contains(&first)
}

/// Whether the console's assets are embedded in this binary.
pub fn is_built() -> bool {
    Assets::get("index.html").is_some()
}

/// Serve `req` from the console if it is a `GET`/`HEAD` of a console path, else `None`.
pub fn serve(req: &Request) -> Option<Response> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let path = req.uri().path();
    if !is_console_path(path) {
        return None;
    }
    let file = path.trim_start_matches('/');
    if let Some(asset) = file.strip_prefix("assets/").and(Assets::get(file)) {
        return Some(asset_response(&asset, IMMUTABLE, req.method()));
    }
    if file.starts_with("assets/") {
        return Some(
            (
                StatusCode::NOT_FOUND,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "no such console asset\n",
            )
                .into_response(),
        );
    }
    // `/`, `index.html` and every view: the app's shell, never cached so that a new
    // binary's console is picked up at once.
    Some(match Assets::get("index.html") {
        Some(index) => asset_response(&index, "no-cache", req.method()),
        None => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            NOT_BUILT,
        )
            .into_response(),
    })
}

fn asset_response(
    file: &rust_embed::EmbeddedFile,
    cache: &'static str,
    method: &Method,
) -> Response {
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime == "application/javascript" {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from(file.data.clone().into_owned())
    };
    let mut resp = Response::new(body);
    let headers = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths_do_not_cover_api_routes() {
        for p in [
            "/",
            "/map",
            "/traces",
            "/traces/1-abc-def",
            "/groups",
            "/assets/x.js",
        ] {
            assert!(is_console_path(p), "{p}");
        }
        for p in [
            "/TraceSummaries",
            "/ServiceGraph",
            "/metrics",
            "/healthz",
            "/v1/traces",
            "/nope",
            "/mapping",
        ] {
            assert!(!is_console_path(p), "{p}");
        }
    }

    #[test]
    fn served_only_for_get_and_head() {
        let post = Request::builder()
            .method(Method::POST)
            .uri("/")
            .body(Body::empty())
            .expect("request");
        assert!(serve(&post).is_none());
        let get = Request::builder()
            .uri("/traces/1-5f000000-000000000000000000000000")
            .body(Body::empty())
            .expect("request");
        let resp = serve(&get).expect("console answers a deep link");
        assert_eq!(resp.status(), StatusCode::OK);
        let ct = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .expect("ascii");
        assert!(ct.starts_with("text/html"), "{ct}");
        let missing = Request::builder()
            .uri("/assets/no-such-file.js")
            .body(Body::empty())
            .expect("request");
        assert_eq!(
            serve(&missing).expect("asset path").status(),
            StatusCode::NOT_FOUND
        );
    }
}
