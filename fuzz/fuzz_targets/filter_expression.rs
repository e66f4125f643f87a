//! A filter expression: parsing; a parsed one prints to text that parses back to the
//! same tree and evaluates over summaries without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roentgen_filter::{Filter, NoGroups};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(text) else {
        return;
    };
    let printed = filter.to_string();
    let again = Filter::parse(&printed).expect("printed text parses");
    assert_eq!(again, filter, "print then parse changed the tree: {printed}");
    let _ = filter.needs();
    let _ = filter.annotation_keys();
    let doc = roentgen_model::Document::parse(
        r#"{"trace_id":"1-5759e988-bd862e3fe1be46a994272793","id":"70de5b6f19ff9a0a","name":"web","start_time":1465510280.0,"end_time":1465510281.25,"user":"alice","http":{"request":{"method":"GET","url":"https://x/a"},"response":{"status":502}},"annotations":{"n":3,"s":"x","b":true},"fault":true,"subsegments":[{"id":"53995c3f42cd8ad8","name":"DynamoDB","namespace":"aws","start_time":1465510280.1,"end_time":1465510280.4,"throttle":true,"error":true}]}"#,
    )
    .expect("fixture parses");
    if let Some(derived) = roentgen_model::derive(doc.trace_id(), &[doc.segment()]) {
        let _ = filter.matches(&derived.summary, &NoGroups);
    }
});
