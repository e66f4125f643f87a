//! A UDP datagram as an SDK sends it: header line, then a segment document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(body) = roentgen_api::daemon_protocol::split_datagram(data)
        && let Ok(text) = std::str::from_utf8(body)
    {
        let _ = roentgen_model::Document::parse(text);
    }
});
