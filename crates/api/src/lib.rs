//! The AWS X-Ray API as it is on the wire.
//!
//! This crate owns the X-Ray API request and response types exactly as the
//! rest-json protocol carries them — PascalCase member names as in the X-Ray
//! service model (botocore `xray/2016-04-12/service-2.json`), timestamps as
//! epoch-seconds numbers that may be fractional ([`EpochSeconds`]) — and the
//! AWS-style errors the service returns ([`ApiError`]), including their
//! status codes and response body.
//!
//! It must not know about storage or HTTP frameworks: it has no routes,
//! handlers or persistence, and depends on nothing but serde, serde_json
//! and thiserror, plus roentgen-model for [`convert`], which turns model summaries into
//! wire summaries. Trace ids are plain strings here; checking their format
//! belongs to the model crate. The HTTP layer turns a body into a request
//! with [`decode_request`] and the request's `validate()`, and turns an
//! [`ApiError`] into a response with [`ApiError::status`],
//! [`ERROR_TYPE_HEADER`] and [`ApiError::to_body`].

pub mod convert;
pub mod daemon_protocol;
pub mod decode;
pub mod error;
pub mod graph;
pub mod groups;
pub mod sampling;
pub mod telemetry;
pub mod timestamp;
pub mod traces;

pub use decode::{decode_request, json_error_to_api_error};
pub use error::{ApiError, ERROR_TYPE_HEADER, ErrorCode};
pub use timestamp::{EpochSeconds, TimestampParseError};
pub use traces::{
    AnnotationValue, Annotations, AvailabilityZoneDetail, BatchGetTracesRequest,
    BatchGetTracesResult, ErrorRootCause, ErrorRootCauseEntity, ErrorRootCauseService,
    FaultRootCause, FaultRootCauseEntity, FaultRootCauseService, GetTraceSummariesRequest,
    GetTraceSummariesResult, Http, InstanceIdDetail, PutTraceSegmentsRequest,
    PutTraceSegmentsResult, ResourceARNDetail, ResponseTimeRootCause, ResponseTimeRootCauseEntity,
    ResponseTimeRootCauseService, RootCauseException, SamplingStrategy, SamplingStrategyName,
    Segment, ServiceId, TRACE_ID_MAX_LEN, TRACE_ID_MIN_LEN, TimeRangeType, Trace, TraceSummary,
    TraceUser, UnprocessedTraceSegment, ValueWithServiceIds,
};
