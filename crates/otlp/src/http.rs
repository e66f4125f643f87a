//! OTLP/HTTP bodies: the content types, gzip, decoding and the answers the OTLP
//! specification prescribes (`ExportTraceServiceResponse` on success, a
//! `google.rpc.Status` on failure, each in the request's encoding).

use std::io::Read;

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

use crate::convert::Batch;
use crate::error::OtlpError;

/// Largest body accepted, before and after decompression.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP JSON: hex ids, lowerCamelCase names).
    Json,
}

impl Format {
    /// The format of a `Content-Type` header.
    pub fn from_content_type(content_type: Option<&str>) -> Result<Self, OtlpError> {
        let raw = content_type.unwrap_or("");
        let essence = raw
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/x-protobuf" | "application/protobuf" => Ok(Self::Protobuf),
            "application/json" => Ok(Self::Json),
            _ => Err(OtlpError::UnsupportedContentType(raw.to_string())),
        }
    }

    /// The `Content-Type` of answers in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

/// The body after `Content-Encoding`, at most `limit` bytes.
pub fn decompress<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
    limit: usize,
) -> Result<std::borrow::Cow<'a, [u8]>, OtlpError> {
    if body.len() > limit {
        return Err(OtlpError::TooLarge { limit });
    }
    match content_encoding
        .map(|e| e.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("") | Some("identity") => Ok(std::borrow::Cow::Borrowed(body)),
        Some("gzip") | Some("x-gzip") => {
            let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(limit));
            let read = flate2::read::MultiGzDecoder::new(body)
                .take(limit as u64 + 1)
                .read_to_end(&mut out);
            match read {
                Ok(n) if n > limit => Err(OtlpError::TooLarge { limit }),
                Ok(_) => Ok(std::borrow::Cow::Owned(out)),
                Err(e) => Err(OtlpError::Gzip(e.to_string())),
            }
        }
        Some(other) => Err(OtlpError::UnsupportedEncoding(other.to_string())),
    }
}

/// Decodes a (decompressed) request body.
pub fn decode(format: Format, body: &[u8]) -> Result<ExportTraceServiceRequest, OtlpError> {
    match format {
        Format::Protobuf => {
            ExportTraceServiceRequest::decode(body).map_err(|e| OtlpError::Protobuf(e.to_string()))
        }
        Format::Json => serde_json::from_slice(body).map_err(|e| OtlpError::Json(e.to_string())),
    }
}

/// An OTLP/HTTP request from its `Content-Type`, `Content-Encoding` and body (`None`:
/// the body passed [`MAX_BODY_BYTES`]), at most [`MAX_BODY_BYTES`] before and after
/// decompression. On failure: the error and the format to answer it in (JSON when the
/// content type itself is not OTLP's). The one reading of a request for every
/// OTLP/HTTP receiver.
pub fn read_request(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: Option<&[u8]>,
) -> Result<(Format, ExportTraceServiceRequest), (Format, OtlpError)> {
    let format = Format::from_content_type(content_type).map_err(|e| (Format::Json, e))?;
    let body = body.ok_or((
        format,
        OtlpError::TooLarge {
            limit: MAX_BODY_BYTES,
        },
    ))?;
    let plain = decompress(content_encoding, body, MAX_BODY_BYTES).map_err(|e| (format, e))?;
    let request = decode(format, &plain).map_err(|e| (format, e))?;
    Ok((format, request))
}

/// The answer to an export: empty when everything landed, else the partial success
/// with the number of rejected spans and why.
pub fn response(batch: &Batch) -> ExportTraceServiceResponse {
    let rejected = batch.rejected_spans();
    ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: batch.error_message(),
        }),
    }
}

/// An answer body in `format`.
pub fn encode_response(format: Format, response: &ExportTraceServiceResponse) -> Vec<u8> {
    match format {
        Format::Protobuf => response.encode_to_vec(),
        // Everything landed: `{}` (no `"partialSuccess": null`).
        Format::Json if response.partial_success.is_none() => b"{}".to_vec(),
        // Serializing these plain structs cannot fail.
        Format::Json => serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
    }
}

/// `google.rpc.Status`, the error body of OTLP/HTTP (the `details` field left out).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RpcStatus {
    /// A gRPC status code (`3` INVALID_ARGUMENT, …).
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// What went wrong.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC code of an HTTP status, for the `code` of the error body.
pub fn grpc_code_of_http(status: u16) -> i32 {
    match status {
        400 | 413 | 415 => 3, // INVALID_ARGUMENT
        429 => 8,             // RESOURCE_EXHAUSTED
        503 => 14,            // UNAVAILABLE
        _ => 13,              // INTERNAL
    }
}

/// The body of an error answer with HTTP `status`: a `google.rpc.Status` in `format`
/// whose code is the gRPC code of that status.
pub fn error_body(format: Format, status: u16, message: &str) -> Vec<u8> {
    encode_status(format, grpc_code_of_http(status), message)
}

/// An error body in `format`.
pub fn encode_status(format: Format, code: i32, message: &str) -> Vec<u8> {
    match format {
        Format::Protobuf => RpcStatus {
            code,
            message: message.to_string(),
        }
        .encode_to_vec(),
        Format::Json => serde_json::json!({ "code": code, "message": message })
            .to_string()
            .into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type(Some("application/x-protobuf")),
            Ok(Format::Protobuf)
        );
        assert_eq!(
            Format::from_content_type(Some("Application/JSON; charset=utf-8")),
            Ok(Format::Json)
        );
        let e = Format::from_content_type(Some("text/plain")).expect_err("refused");
        assert_eq!(e.http_status(), 415);
        assert_eq!(
            Format::from_content_type(None)
                .expect_err("refused")
                .http_status(),
            415
        );
    }

    #[test]
    fn gzip_is_bounded() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&vec![b'a'; 10_000]).expect("write");
        let gz = enc.finish().expect("finish");
        assert_eq!(
            decompress(Some("gzip"), &gz, 10_000).expect("fits").len(),
            10_000
        );
        assert_eq!(
            decompress(Some("gzip"), &gz, 9_999),
            Err(OtlpError::TooLarge { limit: 9_999 })
        );
        assert!(matches!(
            decompress(Some("gzip"), b"not gzip", 100),
            Err(OtlpError::Gzip(_))
        ));
        assert!(matches!(
            decompress(Some("br"), b"x", 100),
            Err(OtlpError::UnsupportedEncoding(_))
        ));
        assert_eq!(
            decompress(None, &[0u8; 101], 100),
            Err(OtlpError::TooLarge { limit: 100 })
        );
    }

    #[test]
    fn malformed_bodies() {
        let e = decode(Format::Protobuf, &[0x0a, 0xff, 0xff]).expect_err("truncated");
        assert_eq!((e.http_status(), e.reason()), (400, "malformed_protobuf"));
        let e = decode(Format::Json, b"{\"resourceSpans\": 3}").expect_err("wrong type");
        assert_eq!((e.http_status(), e.reason()), (400, "malformed_json"));
        let status = RpcStatus::decode(encode_status(Format::Protobuf, 3, "bad").as_slice())
            .expect("status decodes");
        assert_eq!((status.code, status.message.as_str()), (3, "bad"));
    }
}
