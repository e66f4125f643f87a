//! Fuzz the filter parser: any text parses to a tree or an error without panicking;
//! a tree prints to text that parses back to the same tree; evaluating it over a
//! derived summary does not panic, and the pushdown admits the summary when it matches.
//!
//! Run: `cd crates/filter/fuzz && cargo +nightly fuzz run parse -- -max_total_time=60`

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use roentgen_filter::{Filter, NoGroups, pushdown};
use roentgen_model::trace::TraceSummary;
use roentgen_model::{Document, derive};

const DOCS: &[&str] = &[
    r#"{"name":"web","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1.0,"end_time":2.25,"origin":"AWS::EC2::Instance","user":"alice","http":{"request":{"method":"GET","url":"https://web.example.com/api"},"response":{"status":200}},"annotations":{"k":"v","n":3,"b":true},"subsegments":[{"id":"53995c3f42cd8ad8","name":"DynamoDB","namespace":"aws","start_time":1.1,"end_time":1.4,"throttle":true,"error":true},{"id":"6b1b6b3f42cd8a01","name":"orders","namespace":"remote","start_time":1.5,"end_time":2.1,"fault":true,"cause":{"exceptions":[{"type":"E","message":"m"}]}}]}"#,
    r#"{"name":"orders","id":"a1b2c3d4e5f60718","trace_id":"1-5759e988-bd862e3fe1be46a994272793","parent_id":"6b1b6b3f42cd8a01","start_time":1.55,"end_time":2.05,"fault":true}"#,
];

fn summary() -> &'static TraceSummary {
    static SUMMARY: OnceLock<TraceSummary> = OnceLock::new();
    SUMMARY.get_or_init(|| {
        let docs: Vec<Document> = DOCS
            .iter()
            .map(|d| Document::parse(*d).expect("valid fixture"))
            .collect();
        let segs: Vec<_> = docs.iter().map(|d| d.segment()).collect();
        derive(docs[0].trace_id(), &segs)
            .expect("non-empty")
            .summary
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Filter::parse(text) {
        Ok(filter) => {
            let printed = filter.to_string();
            let back = Filter::parse(&printed).expect("printed text parses");
            assert_eq!(back, filter, "{printed}");
            let s = summary();
            if filter.matches(s, &NoGroups) {
                assert!(pushdown(&filter).admits(s), "{printed}");
            }
        }
        Err(e) => {
            assert!(e.span.start <= e.span.end && e.span.end <= text.len());
            let _ = format!("{e:#}");
        }
    }
});
