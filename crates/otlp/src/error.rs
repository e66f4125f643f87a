//! Why an OTLP request as a whole was refused (single spans are rejected in the
//! partial-success answer instead; see [`crate::convert::Rejection`]).

/// A request that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OtlpError {
    /// The body is not a valid `ExportTraceServiceRequest` in protobuf.
    #[error("body is not a valid protobuf ExportTraceServiceRequest: {0}")]
    Protobuf(String),
    /// The body is not a valid `ExportTraceServiceRequest` in OTLP JSON.
    #[error("body is not a valid OTLP JSON ExportTraceServiceRequest: {0}")]
    Json(String),
    /// The body claims gzip but is not.
    #[error("body is not valid gzip: {0}")]
    Gzip(String),
    /// The body (or what it decompresses to) is over the limit.
    #[error("body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// `Content-Type` is neither protobuf nor JSON.
    #[error("content type {0:?} is not supported; use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    /// `Content-Encoding` is neither absent, `identity` nor `gzip`.
    #[error("content encoding {0:?} is not supported; use gzip or none")]
    UnsupportedEncoding(String),
}

impl OtlpError {
    /// The HTTP status the OTLP/HTTP specification gives this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Protobuf(_) | Self::Json(_) | Self::Gzip(_) => 400,
            Self::TooLarge { .. } => 413,
            Self::UnsupportedContentType(_) | Self::UnsupportedEncoding(_) => 415,
        }
    }

    /// A short, stable code for the `reason` label of the rejection counters.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Protobuf(_) => "malformed_protobuf",
            Self::Json(_) => "malformed_json",
            Self::Gzip(_) => "malformed_gzip",
            Self::TooLarge { .. } => "too_large",
            Self::UnsupportedContentType(_) => "unsupported_content_type",
            Self::UnsupportedEncoding(_) => "unsupported_encoding",
        }
    }

    /// Every code [`OtlpError::reason`] can return.
    pub const ALL_REASONS: &'static [&'static str] = &[
        "malformed_protobuf",
        "malformed_json",
        "malformed_gzip",
        "too_large",
        "unsupported_content_type",
        "unsupported_encoding",
    ];
}
