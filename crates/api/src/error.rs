//! AWS-style errors, as X-Ray's rest-json protocol puts them on the wire.
//!
//! # Wire form
//!
//! An error response has the HTTP status of the error ([`ApiError::status`]),
//! a `Content-Type` of `application/json`, the header
//! [`ERROR_TYPE_HEADER`]` (x-amzn-ErrorType): <Code>` and the body produced by
//! [`ApiError::to_body`]:
//!
//! ```json
//! {"__type":"InvalidRequestException","message":"..."}
//! ```
//!
//! This matches what botocore's `RestJSONParser` reads (botocore/parsers.py,
//! `BaseJSONParser._do_error_parse` and `RestJSONParser._inject_error_code`):
//!
//! * the message comes from the body key `message`, falling back to `Message`;
//! * the code comes from the body key `__type` (anything before a `#` and
//!   after a `:` is stripped), falling back to the HTTP status code; the
//!   `x-amzn-ErrorType` header, when present, **overrides** it (again with
//!   `#` prefix and `:` suffix stripped), and a body `code`/`Code` key is
//!   consulted only when that header is absent.
//!
//! So the HTTP layer must set `x-amzn-ErrorType: <Code>` (the value of
//! [`ApiError::code`]) on every error response; the body `__type` carries
//! the same code for clients that ignore headers.
//!
//! Modeled error members other than the message (`ResourceName` on
//! `ResourceNotFoundException` and `TooManyTagsException`) are body keys
//! with their model names, which botocore copies onto the parsed error.

use std::fmt;

use serde::Serialize;

/// The response header that carries the error code; botocore's rest-json
/// parser prefers it over the body's `__type`. The HTTP layer must set it on
/// every error response to [`ApiError::code`].
pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// Every error code this service can return.
///
/// The first ten are the error shapes of the X-Ray service model; the rest
/// are the generic errors of the AWS service front end, which are not in the
/// model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// `InvalidRequestException` (400; the model gives no status, so the
    /// client-error default applies). The request is missing a required
    /// parameter or has an invalid parameter.
    InvalidRequest,
    /// `ThrottledException` (429). The request exceeds the maximum number of
    /// requests per second.
    Throttled,
    /// `RuleLimitExceededException` (400; the model gives no status). The
    /// sampling-rule limit was reached.
    RuleLimitExceeded,
    /// `ResourceNotFoundException` (404). The resource was not found.
    ResourceNotFound,
    /// `InvalidPolicyRevisionIdException` (400). A policy revision id was
    /// provided which does not match the latest revision.
    InvalidPolicyRevisionId,
    /// `LockoutPreventionException` (400). The policy would lock out the
    /// caller.
    LockoutPrevention,
    /// `MalformedPolicyDocumentException` (400). Invalid policy document.
    MalformedPolicyDocument,
    /// `PolicyCountLimitExceededException` (400). Too many resource policies.
    PolicyCountLimitExceeded,
    /// `PolicySizeLimitExceededException` (400). The policy document is too
    /// large.
    PolicySizeLimitExceeded,
    /// `TooManyTagsException` (400). Too many tags on the resource.
    TooManyTags,
    /// `UnknownOperationException` (404): no operation matches the request's
    /// method and path. Not in the model.
    UnknownOperation,
    /// `SerializationException` (400): the body is not valid JSON or a
    /// member has the wrong JSON type. Not in the model.
    Serialization,
    /// `PayloadTooLargeException` (413): the request body exceeds the size
    /// limit. Not in the model; the name is our choice, taken from the
    /// API-Gateway-fronted AWS services (API Gateway Management API,
    /// AppConfig, Pinpoint), which model exactly this error with 413.
    PayloadTooLarge,
    /// `InternalFailure` (500): an unexpected server-side failure. Not in the
    /// model.
    InternalFailure,
    /// `ServiceUnavailableException` (503): the server is temporarily
    /// unable to serve (e.g. shutting down or overloaded). Not in the model.
    ServiceUnavailable,
    /// `MissingAuthenticationTokenException` (403): the request carries no
    /// signature. Not in the model (AWS's common errors).
    MissingAuthenticationToken,
    /// `IncompleteSignatureException` (400): the signature lacks a part or a
    /// part does not parse. Not in the model.
    IncompleteSignature,
    /// `InvalidSignatureException` (403): the signature does not match, or
    /// it is outside its time window. Not in the model.
    InvalidSignature,
    /// `UnrecognizedClientException` (403): the access key id is unknown.
    /// Not in the model.
    UnrecognizedClient,
    /// `AccessDeniedException` (403): the key may not call this operation.
    /// Not in the model.
    AccessDenied,
    /// `ExpiredTokenException` (403): the console session (or security token) has
    /// expired or was signed out. Not in the model.
    ExpiredToken,
}

impl ErrorCode {
    /// Every error code, model errors first.
    pub const ALL: [ErrorCode; 21] = [
        ErrorCode::InvalidRequest,
        ErrorCode::Throttled,
        ErrorCode::RuleLimitExceeded,
        ErrorCode::ResourceNotFound,
        ErrorCode::InvalidPolicyRevisionId,
        ErrorCode::LockoutPrevention,
        ErrorCode::MalformedPolicyDocument,
        ErrorCode::PolicyCountLimitExceeded,
        ErrorCode::PolicySizeLimitExceeded,
        ErrorCode::TooManyTags,
        ErrorCode::UnknownOperation,
        ErrorCode::Serialization,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InternalFailure,
        ErrorCode::ServiceUnavailable,
        ErrorCode::MissingAuthenticationToken,
        ErrorCode::IncompleteSignature,
        ErrorCode::InvalidSignature,
        ErrorCode::UnrecognizedClient,
        ErrorCode::AccessDenied,
        ErrorCode::ExpiredToken,
    ];

    /// The code as it goes on the wire (`__type` and `x-amzn-ErrorType`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "InvalidRequestException",
            ErrorCode::Throttled => "ThrottledException",
            ErrorCode::RuleLimitExceeded => "RuleLimitExceededException",
            ErrorCode::ResourceNotFound => "ResourceNotFoundException",
            ErrorCode::InvalidPolicyRevisionId => "InvalidPolicyRevisionIdException",
            ErrorCode::LockoutPrevention => "LockoutPreventionException",
            ErrorCode::MalformedPolicyDocument => "MalformedPolicyDocumentException",
            ErrorCode::PolicyCountLimitExceeded => "PolicyCountLimitExceededException",
            ErrorCode::PolicySizeLimitExceeded => "PolicySizeLimitExceededException",
            ErrorCode::TooManyTags => "TooManyTagsException",
            ErrorCode::UnknownOperation => "UnknownOperationException",
            ErrorCode::Serialization => "SerializationException",
            ErrorCode::PayloadTooLarge => "PayloadTooLargeException",
            ErrorCode::InternalFailure => "InternalFailure",
            ErrorCode::ServiceUnavailable => "ServiceUnavailableException",
            ErrorCode::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            ErrorCode::IncompleteSignature => "IncompleteSignatureException",
            ErrorCode::InvalidSignature => "InvalidSignatureException",
            ErrorCode::UnrecognizedClient => "UnrecognizedClientException",
            ErrorCode::AccessDenied => "AccessDeniedException",
            ErrorCode::ExpiredToken => "ExpiredTokenException",
        }
    }

    /// The HTTP status code of the error.
    pub const fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidRequest
            | ErrorCode::RuleLimitExceeded
            | ErrorCode::InvalidPolicyRevisionId
            | ErrorCode::LockoutPrevention
            | ErrorCode::MalformedPolicyDocument
            | ErrorCode::PolicyCountLimitExceeded
            | ErrorCode::PolicySizeLimitExceeded
            | ErrorCode::TooManyTags
            | ErrorCode::Serialization
            | ErrorCode::IncompleteSignature => 400,
            ErrorCode::MissingAuthenticationToken
            | ErrorCode::InvalidSignature
            | ErrorCode::UnrecognizedClient
            | ErrorCode::AccessDenied
            | ErrorCode::ExpiredToken => 403,
            ErrorCode::ResourceNotFound | ErrorCode::UnknownOperation => 404,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::Throttled => 429,
            ErrorCode::InternalFailure => 500,
            ErrorCode::ServiceUnavailable => 503,
        }
    }

    /// Whether AWS SDKs retry this error: throttling codes (botocore's
    /// standard retry mode lists `ThrottledException`) and the transient
    /// 500/503 statuses.
    pub const fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Throttled | ErrorCode::InternalFailure | ErrorCode::ServiceUnavailable
        )
    }

    /// Looks a wire code up, e.g. `"ThrottledException"`.
    pub fn from_code(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error as the X-Ray API returns it: an AWS error code, a message and,
/// for the errors that model one, the name of the resource concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ApiError {
    kind: ErrorCode,
    message: String,
    resource_name: Option<String>,
}

impl ApiError {
    /// An error with the given code and message.
    pub fn new(kind: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
            resource_name: None,
        }
    }

    /// `InvalidRequestException` (400): a parameter is missing or invalid.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// `ThrottledException` (429): too many requests.
    pub fn throttled(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Throttled, message)
    }

    /// `RuleLimitExceededException` (400): too many sampling rules.
    pub fn rule_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::RuleLimitExceeded, message)
    }

    /// `ResourceNotFoundException` (404). Add the modeled `ResourceName`
    /// member with [`ApiError::with_resource_name`].
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }

    /// `InvalidPolicyRevisionIdException` (400).
    pub fn invalid_policy_revision_id(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidPolicyRevisionId, message)
    }

    /// `LockoutPreventionException` (400).
    pub fn lockout_prevention(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::LockoutPrevention, message)
    }

    /// `MalformedPolicyDocumentException` (400).
    pub fn malformed_policy_document(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::MalformedPolicyDocument, message)
    }

    /// `PolicyCountLimitExceededException` (400).
    pub fn policy_count_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PolicyCountLimitExceeded, message)
    }

    /// `PolicySizeLimitExceededException` (400).
    pub fn policy_size_limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PolicySizeLimitExceeded, message)
    }

    /// `TooManyTagsException` (400). Add the modeled `ResourceName` member
    /// with [`ApiError::with_resource_name`].
    pub fn too_many_tags(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::TooManyTags, message)
    }

    /// `UnknownOperationException` (404): no route for the method and path.
    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnknownOperation, message)
    }

    /// `SerializationException` (400): the body is not valid JSON or has a
    /// member of the wrong type.
    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Serialization, message)
    }

    /// `PayloadTooLargeException` (413): the body exceeds the size limit.
    /// The code name is our choice (see [`ErrorCode::PayloadTooLarge`]).
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::PayloadTooLarge, message)
    }

    /// `InternalFailure` (500). The message goes to the client: keep
    /// internal details out of it.
    pub fn internal_failure(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalFailure, message)
    }

    /// `ServiceUnavailableException` (503).
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ServiceUnavailable, message)
    }

    /// Sets the modeled `ResourceName` member (meaningful on
    /// `ResourceNotFoundException` and `TooManyTagsException`).
    #[must_use]
    pub fn with_resource_name(mut self, name: impl Into<String>) -> Self {
        self.resource_name = Some(name.into());
        self
    }

    /// The error code as it goes on the wire, e.g. `"InvalidRequestException"`.
    pub fn code(&self) -> &str {
        self.kind.as_str()
    }

    /// The error code as an enum.
    pub fn kind(&self) -> ErrorCode {
        self.kind
    }

    /// The HTTP status code to respond with.
    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The modeled `ResourceName` member, if set.
    pub fn resource_name(&self) -> Option<&str> {
        self.resource_name.as_deref()
    }

    /// Whether a client may retry the request (see
    /// [`ErrorCode::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        self.kind.is_retryable()
    }

    /// The rest-json error body:
    /// `{"__type":"<Code>","message":"<msg>"}`, plus `"ResourceName"` when
    /// set. Send it with the header [`ERROR_TYPE_HEADER`] set to
    /// [`ApiError::code`].
    pub fn to_body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(rename = "__type")]
            code: &'a str,
            message: &'a str,
            #[serde(rename = "ResourceName", skip_serializing_if = "Option::is_none")]
            resource_name: Option<&'a str>,
        }
        let body = Body {
            code: self.code(),
            message: &self.message,
            resource_name: self.resource_name.as_deref(),
        };
        // Serializing a struct of strings cannot fail; fall back to a fixed
        // body rather than panic should that ever change.
        serde_json::to_string(&body).unwrap_or_else(|_| {
            format!(
                r#"{{"__type":"{}","message":"error message could not be encoded"}}"#,
                self.code()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn model_error_statuses() {
        let cases = [
            (
                ApiError::invalid_request("m"),
                "InvalidRequestException",
                400,
            ),
            (ApiError::throttled("m"), "ThrottledException", 429),
            (
                ApiError::rule_limit_exceeded("m"),
                "RuleLimitExceededException",
                400,
            ),
            (
                ApiError::resource_not_found("m"),
                "ResourceNotFoundException",
                404,
            ),
            (
                ApiError::invalid_policy_revision_id("m"),
                "InvalidPolicyRevisionIdException",
                400,
            ),
            (
                ApiError::lockout_prevention("m"),
                "LockoutPreventionException",
                400,
            ),
            (
                ApiError::malformed_policy_document("m"),
                "MalformedPolicyDocumentException",
                400,
            ),
            (
                ApiError::policy_count_limit_exceeded("m"),
                "PolicyCountLimitExceededException",
                400,
            ),
            (
                ApiError::policy_size_limit_exceeded("m"),
                "PolicySizeLimitExceededException",
                400,
            ),
            (ApiError::too_many_tags("m"), "TooManyTagsException", 400),
            (
                ApiError::unknown_operation("m"),
                "UnknownOperationException",
                404,
            ),
            (ApiError::serialization("m"), "SerializationException", 400),
            (
                ApiError::payload_too_large("m"),
                "PayloadTooLargeException",
                413,
            ),
            (ApiError::internal_failure("m"), "InternalFailure", 500),
            (
                ApiError::service_unavailable("m"),
                "ServiceUnavailableException",
                503,
            ),
            (
                ApiError::new(ErrorCode::MissingAuthenticationToken, "m"),
                "MissingAuthenticationTokenException",
                403,
            ),
            (
                ApiError::new(ErrorCode::IncompleteSignature, "m"),
                "IncompleteSignatureException",
                400,
            ),
            (
                ApiError::new(ErrorCode::InvalidSignature, "m"),
                "InvalidSignatureException",
                403,
            ),
            (
                ApiError::new(ErrorCode::UnrecognizedClient, "m"),
                "UnrecognizedClientException",
                403,
            ),
            (
                ApiError::new(ErrorCode::AccessDenied, "m"),
                "AccessDeniedException",
                403,
            ),
            (
                ApiError::new(ErrorCode::ExpiredToken, "m"),
                "ExpiredTokenException",
                403,
            ),
        ];
        assert_eq!(cases.len(), ErrorCode::ALL.len());
        for (err, code, status) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.status(), status, "{code}");
            assert_eq!(err.message(), "m");
            assert_eq!(ErrorCode::from_code(code), Some(err.kind()));
        }
    }

    #[test]
    fn codes_are_distinct() {
        for (i, a) in ErrorCode::ALL.iter().enumerate() {
            for b in &ErrorCode::ALL[i + 1..] {
                assert_ne!(a.as_str(), b.as_str());
            }
        }
        assert_eq!(ErrorCode::from_code("NoSuchThing"), None);
    }

    #[test]
    fn retryable() {
        let retryable: Vec<&str> = ErrorCode::ALL
            .iter()
            .filter(|c| c.is_retryable())
            .map(|c| c.as_str())
            .collect();
        assert_eq!(
            retryable,
            [
                "ThrottledException",
                "InternalFailure",
                "ServiceUnavailableException"
            ]
        );
        assert!(ApiError::throttled("slow down").is_retryable());
        assert!(!ApiError::invalid_request("bad").is_retryable());
    }

    #[test]
    fn body_shape() {
        let err = ApiError::invalid_request("TraceIds must not be \"empty\"");
        assert_eq!(
            err.to_body(),
            r#"{"__type":"InvalidRequestException","message":"TraceIds must not be \"empty\""}"#
        );
        let v: Value = serde_json::from_str(&err.to_body()).unwrap();
        assert_eq!(
            v,
            json!({"__type": "InvalidRequestException", "message": "TraceIds must not be \"empty\""})
        );
    }

    #[test]
    fn body_with_resource_name() {
        let err = ApiError::resource_not_found("Group not found").with_resource_name("arn:x");
        assert_eq!(err.resource_name(), Some("arn:x"));
        let v: Value = serde_json::from_str(&err.to_body()).unwrap();
        assert_eq!(
            v,
            json!({
                "__type": "ResourceNotFoundException",
                "message": "Group not found",
                "ResourceName": "arn:x"
            })
        );
    }

    #[test]
    fn display_and_header() {
        assert_eq!(
            ApiError::throttled("Rate exceeded").to_string(),
            "ThrottledException: Rate exceeded"
        );
        assert_eq!(ERROR_TYPE_HEADER, "x-amzn-ErrorType");
        assert_eq!(ERROR_TYPE_HEADER.to_ascii_lowercase(), "x-amzn-errortype");
    }
}
