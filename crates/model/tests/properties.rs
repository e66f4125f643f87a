//! Property tests: hostile input never panics, and valid documents keep their identity.

use proptest::prelude::*;
use roentgen_model::{Document, TraceId};

fn hex(n: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(b"0123456789abcdef".to_vec()), n)
        .prop_map(|v| String::from_utf8(v).unwrap_or_default())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary text: parse returns Ok or Err, never panics.
    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,300}") {
        let _ = Document::parse(s);
    }

    /// Mutations of a valid document: never panic; when accepted, ids are intact.
    #[test]
    fn mutated_documents_never_panic(cut in 0usize..400, insert in "[\\[\\]{}\",:0-9a-z\\\\ ]{0,8}") {
        let base = r#"{"name":"web","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1.5,"end_time":2.5,"annotations":{"k":1},"subsegments":[{"id":"53995c3f42cd8ad8","name":"db","start_time":1.6,"end_time":1.7}]}"#;
        let cut = cut.min(base.len());
        let cut = (0..=cut).rev().find(|i| base.is_char_boundary(*i)).unwrap_or(0);
        let text = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
        if let Ok(d) = Document::parse(text.as_str()) {
            prop_assert_eq!(d.raw(), text.as_str());
        }
    }

    /// A document whose typed view was built beside its text (OTLP conversion) is
    /// judged exactly as its text is: `from_parts` and `parse` accept the same documents
    /// and refuse the others with the same error.
    #[test]
    fn from_parts_agrees_with_parse(cut in 0usize..400, insert in "[\\[\\]{}\",:0-9a-z\\\\ ]{0,8}") {
        let base = r#"{"name":"web","id":"70de5b6f19ff9a0a","trace_id":"1-5759e988-bd862e3fe1be46a994272793","start_time":1.5,"end_time":2.5,"http":{"request":{"method":"GET"},"response":{"status":500}},"fault":true,"annotations":{"k":1,"b":true},"metadata":{"default":{"x":[1,2]}},"subsegments":[{"id":"53995c3f42cd8ad8","name":"db","start_time":1.6,"end_time":1.7,"namespace":"aws","aws":{"operation":"GetItem"}}]}"#;
        let cut = cut.min(base.len());
        let cut = (0..=cut).rev().find(|i| base.is_char_boundary(*i)).unwrap_or(0);
        let text = format!("{}{}{}", &base[..cut], insert, &base[cut..]);
        if let Ok(segment) = roentgen_model::document::parse_segment(&text) {
            let from_parts = Document::from_parts(text.clone(), segment);
            let parsed = Document::parse(text);
            prop_assert_eq!(from_parts, parsed);
        }
    }

    /// Generated valid segments parse, and their ids round-trip.
    #[test]
    fn valid_segments_round_trip(
        time in 1u32..u32::MAX,
        random in hex(24),
        id in hex(16),
        name in "[A-Za-z0-9 _.:/%&#=+@-]{1,200}",
        start in 1.0f64..4e9,
        dur in 0.0f64..1e5,
    ) {
        let trace = format!("1-{time:08x}-{random}");
        let doc = serde_json::json!({
            "trace_id": trace, "id": id, "name": name,
            "start_time": start, "end_time": start + dur,
        }).to_string();
        let d = Document::parse(doc).expect("valid by construction");
        prop_assert_eq!(d.trace_id().to_string(), trace.clone());
        prop_assert_eq!(d.id().to_string(), id);
        let parsed: TraceId = trace.parse().expect("valid");
        prop_assert_eq!(TraceId::from_bytes(parsed.to_bytes()), parsed);
    }
}
