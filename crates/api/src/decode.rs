//! Reading request bodies into request types, with AWS-style errors.

use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ApiError;

/// Parses a rest-json request body into a request type.
///
/// * An empty (or all-whitespace) body is read as `{}` — botocore sends
///   `{}` for an input with no body members, other clients may send nothing.
/// * A body that is not JSON, or whose members have the wrong JSON types,
///   gives `SerializationException`.
/// * A missing required member (serde's "missing field") or a string that
///   is not one of an enum's values gives `InvalidRequestException` naming
///   the member or value, as AWS reports validation failures.
///
/// Call the request's `validate()` afterwards for the model's remaining
/// constraints.
pub fn decode_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| json_error_to_api_error(&e))
}

/// Maps a `serde_json` error from reading a request body to the AWS error
/// the service returns (see [`decode_request`]).
pub fn json_error_to_api_error(e: &serde_json::Error) -> ApiError {
    match e.classify() {
        Category::Data => {
            let text = e.to_string();
            if let Some(member) = missing_field(&text) {
                ApiError::invalid_request(format!(
                    "1 validation error detected: Value null at '{member}' failed to satisfy \
                     constraint: Member must not be null"
                ))
            } else if text.starts_with("unknown variant") {
                ApiError::invalid_request(format!("1 validation error detected: {text}"))
            } else {
                ApiError::serialization(format!("Request body has an invalid member: {text}"))
            }
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::serialization(format!("Request body is not valid JSON: {e}"))
        }
    }
}

/// The member name in serde's "missing field `Name`" message.
fn missing_field(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("missing field `")?;
    let end = rest.find('`')?;
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::{BatchGetTracesRequest, GetTraceSummariesRequest, PutTraceSegmentsRequest};

    #[test]
    fn missing_required_member_is_invalid_request() {
        let err = decode_request::<GetTraceSummariesRequest>(br#"{"EndTime": 1}"#).unwrap_err();
        assert_eq!(err.code(), "InvalidRequestException");
        assert_eq!(
            err.message(),
            "1 validation error detected: Value null at 'StartTime' failed to satisfy \
             constraint: Member must not be null"
        );
        let err = decode_request::<BatchGetTracesRequest>(b"").unwrap_err();
        assert_eq!(err.code(), "InvalidRequestException");
        assert!(err.message().contains("'TraceIds'"), "{}", err.message());
        let err = decode_request::<PutTraceSegmentsRequest>(b"{}").unwrap_err();
        assert!(
            err.message().contains("'TraceSegmentDocuments'"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn bad_json_is_serialization_exception() {
        for body in [&b"{"[..], b"not json", b"{\"TraceIds\": [}"] {
            let err = decode_request::<BatchGetTracesRequest>(body).unwrap_err();
            assert_eq!(err.code(), "SerializationException");
            assert_eq!(err.status(), 400);
        }
    }

    #[test]
    fn wrong_type_is_serialization_exception() {
        for body in [
            &br#"{"TraceIds": "1-58406520-a006649127e371903a2de979"}"#[..],
            br#"{"TraceIds": [1]}"#,
            br#"[]"#,
            br#"{"TraceIds": null}"#,
        ] {
            let err = decode_request::<BatchGetTracesRequest>(body).unwrap_err();
            assert_eq!(err.code(), "SerializationException", "{err}");
        }
        let err = decode_request::<GetTraceSummariesRequest>(
            br#"{"StartTime": "yesterday", "EndTime": 1}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), "SerializationException");
    }

    #[test]
    fn unknown_enum_value_is_invalid_request() {
        let err = decode_request::<GetTraceSummariesRequest>(
            br#"{"StartTime": 1, "EndTime": 2, "TimeRangeType": "Span"}"#,
        )
        .unwrap_err();
        assert_eq!(err.code(), "InvalidRequestException");
        assert!(err.message().contains("`Span`"), "{}", err.message());
    }

    #[test]
    fn unknown_members_are_ignored() {
        let req: BatchGetTracesRequest =
            decode_request(br#"{"TraceIds": ["a"], "Future": {"x": 1}}"#).unwrap();
        assert_eq!(req.trace_ids, ["a"]);
    }
}
