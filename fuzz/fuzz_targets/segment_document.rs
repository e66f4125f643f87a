//! A segment document: parsing, validation, and the trace summary and graph derived
//! from it (what the indexer does with every stored document).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(doc) = roentgen_model::Document::parse(text) {
        let _ = roentgen_model::derive(doc.trace_id(), &[doc.segment()]);
    }
});
