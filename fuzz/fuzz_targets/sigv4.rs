//! SigV4 verification of arbitrary requests: the `Authorization` header, the query
//! string, `X-Amz-Date` and the path come from the input; verification must answer
//! (almost always with an error), never panic.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use roentgen_server::auth::{Keys, SignedRequest, verify};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(4, '\n');
    let (auth, date, path, query) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("/"),
        parts.next(),
    );
    let keys = Keys::parse(
        "[[keys]]\nid = \"AKIDFUZZ\"\nsecret = \"s\"\nrole = \"admin\"\n",
        "fuzz.toml",
    )
    .expect("keys parse");
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(auth) {
        headers.insert("authorization", v);
    }
    if let Ok(v) = HeaderValue::from_str(date) {
        headers.insert("x-amz-date", v);
    }
    headers.insert("host", HeaderValue::from_static("127.0.0.1:2772"));
    let req = SignedRequest {
        method: "POST",
        path,
        query,
        headers: &headers,
        body: data,
    };
    let _ = verify(
        &keys,
        &req,
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000),
    );
});
