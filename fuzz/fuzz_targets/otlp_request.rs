//! An OTLP/HTTP export request body, protobuf and JSON, decoded and converted to
//! segment documents (every one of which must then parse as a valid document).
#![no_main]

use libfuzzer_sys::fuzz_target;
use roentgen_otlp::http::{Format, decode};

fuzz_target!(|data: &[u8]| {
    for format in [Format::Protobuf, Format::Json] {
        if let Ok(req) = decode(format, data) {
            let batch = roentgen_otlp::convert::convert(&req, 1_795_000_000);
            // What conversion calls valid must be a document the ingest path accepts
            // as is, and spans are neither lost nor counted twice.
            for c in &batch.documents {
                roentgen_model::Document::parse(c.document.raw())
                    .expect("a converted document parses again");
            }
            assert_eq!(batch.converted_spans() + batch.rejected_spans(), batch.spans);
        }
    }
});
