//! Request and response types of the trace operations: `PutTraceSegments`,
//! `BatchGetTraces` and `GetTraceSummaries`, with every shape they reference.
//!
//! Type and member names follow the X-Ray service model (2016-04-12)
//! exactly. Optional members are `Option`s omitted from output when `None`;
//! list and map members default to empty when absent on input and are always
//! written on output. Unknown members are ignored on input, as AWS does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::timestamp::EpochSeconds;

/// Shortest trace id the model allows (shape `TraceId`, `min`).
pub const TRACE_ID_MIN_LEN: usize = 1;
/// Longest trace id the model allows (shape `TraceId`, `max`).
pub const TRACE_ID_MAX_LEN: usize = 35;

// ---------------------------------------------------------------------------
// PutTraceSegments — POST /TraceSegments
// ---------------------------------------------------------------------------

/// Input of `PutTraceSegments` (`POST /TraceSegments`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutTraceSegmentsRequest {
    /// Required. Each string is a JSON document holding one segment, or a
    /// subsegment, or an array of subsegments.
    pub trace_segment_documents: Vec<String>,
}

impl PutTraceSegmentsRequest {
    /// Checks the model's constraints on this input.
    ///
    /// The model puts none beyond `TraceSegmentDocuments` being present,
    /// which deserialization already enforces (see
    /// [`crate::decode_request`]); an empty list is allowed. Per-document
    /// problems are reported in
    /// [`PutTraceSegmentsResult::unprocessed_trace_segments`], not as an
    /// error.
    pub fn validate(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Output of `PutTraceSegments`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutTraceSegmentsResult {
    /// Segments that failed processing.
    #[serde(default)]
    pub unprocessed_trace_segments: Vec<UnprocessedTraceSegment>,
}

/// A segment that failed processing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnprocessedTraceSegment {
    /// The segment's ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The error that caused processing to fail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// The error message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

// ---------------------------------------------------------------------------
// BatchGetTraces — POST /Traces
// ---------------------------------------------------------------------------

/// Input of `BatchGetTraces` (`POST /Traces`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetTracesRequest {
    /// Required. The trace IDs of the traces to retrieve; each 1 to 35
    /// characters.
    pub trace_ids: Vec<String>,
    /// Pagination token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl BatchGetTracesRequest {
    /// Checks the model's constraints on this input: every member of
    /// `TraceIds` is between [`TRACE_ID_MIN_LEN`] and [`TRACE_ID_MAX_LEN`]
    /// characters long. The model sets no bound on the number of ids.
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut v = Violations::default();
        for (i, id) in self.trace_ids.iter().enumerate() {
            v.check_length(
                &format!("TraceIds.{}.member", i + 1),
                id,
                TRACE_ID_MIN_LEN,
                TRACE_ID_MAX_LEN,
            );
        }
        v.into_result()
    }
}

/// Output of `BatchGetTraces`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct BatchGetTracesResult {
    /// Full traces for the specified requests.
    #[serde(default)]
    pub traces: Vec<Trace>,
    /// Trace IDs of requests that haven't been processed.
    #[serde(default)]
    pub unprocessed_trace_ids: Vec<String>,
    /// Pagination token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// A collection of segment documents with matching trace IDs.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Trace {
    /// The trace ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Seconds between the start of the earliest segment and the end of the
    /// last segment that completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// True when the trace exceeded the trace document size limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit_exceeded: Option<bool>,
    /// The segment documents of the trace's segments and subsegments.
    #[serde(default)]
    pub segments: Vec<Segment>,
}

/// A segment as returned by `BatchGetTraces`: its id and its document as a
/// JSON string.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Segment {
    /// The segment's ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The segment document (a JSON string; the model requires at least one
    /// character).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub document: Option<String>,
}

// ---------------------------------------------------------------------------
// GetTraceSummaries — POST /TraceSummaries
// ---------------------------------------------------------------------------

/// Input of `GetTraceSummaries` (`POST /TraceSummaries`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTraceSummariesRequest {
    /// Required. The start of the time frame.
    pub start_time: EpochSeconds,
    /// Required. The end of the time frame.
    pub end_time: EpochSeconds,
    /// Which time the frame applies to; the service default is `TraceId`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time_range_type: Option<TimeRangeType>,
    /// True to get summaries for only a subset of the traces.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling: Option<bool>,
    /// How to sample, when sampling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_strategy: Option<SamplingStrategy>,
    /// A filter expression restricting the traces returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_expression: Option<String>,
    /// Pagination token from a previous result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

impl GetTraceSummariesRequest {
    /// Checks the constraints on this input. The model's are presence of
    /// `StartTime` and `EndTime` (enforced by deserialization, see
    /// [`crate::decode_request`]) and the enum values (enforced by the enum
    /// types); this also rejects non-finite timestamps, which JSON cannot
    /// carry but a value built in code can. It does not compare the two
    /// times: the model says nothing about their order or span.
    pub fn validate(&self) -> Result<(), ApiError> {
        let mut v = Violations::default();
        v.check_finite("StartTime", self.start_time);
        v.check_finite("EndTime", self.end_time);
        v.into_result()
    }
}

/// Which time of a trace `GetTraceSummaries` matches against the time frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TimeRangeType {
    /// The trace start time (encoded in the trace id).
    TraceId,
    /// The trace update time.
    Event,
    /// The trace segment end time.
    Service,
}

/// The sampling strategy of a `GetTraceSummaries` request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SamplingStrategy {
    /// The name of the strategy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<SamplingStrategyName>,
    /// The strategy's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
}

/// The kinds of [`SamplingStrategy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SamplingStrategyName {
    /// `PartialScan`.
    PartialScan,
    /// `FixedRate`.
    FixedRate,
}

/// Output of `GetTraceSummaries`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetTraceSummariesResult {
    /// Summaries of the traces found in the time frame.
    #[serde(default)]
    pub trace_summaries: Vec<TraceSummary>,
    /// The start time of this page of results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approximate_time: Option<EpochSeconds>,
    /// Number of traces processed, including those the filter excluded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traces_processed_count: Option<i64>,
    /// Token for the next page; the first page holds the most recent
    /// results.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Annotations of a trace: annotation key to the values seen, each with the
/// services that recorded it (model shape `Annotations`).
pub type Annotations = BTreeMap<String, Vec<ValueWithServiceIds>>;

/// Metadata generated from the segment documents of a trace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TraceSummary {
    /// The trace ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The earliest segment start time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<EpochSeconds>,
    /// Seconds between the earliest segment start and the last segment end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// Seconds between the start and end of the root segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_time: Option<f64>,
    /// The root segment has a 5xx fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_fault: Option<bool>,
    /// The root segment has a 4xx error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_error: Option<bool>,
    /// A segment has a 429 throttle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_throttle: Option<bool>,
    /// A segment is in progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_partial: Option<bool>,
    /// The HTTP request served by the trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<Http>,
    /// Annotations from the trace's segment documents.
    #[serde(default)]
    pub annotations: Annotations,
    /// Users from the trace's segment documents.
    #[serde(default)]
    pub users: Vec<TraceUser>,
    /// Services in the trace.
    #[serde(default)]
    pub service_ids: Vec<ServiceId>,
    /// Resource ARNs in the trace (wire name `ResourceARNs`).
    #[serde(rename = "ResourceARNs", default)]
    pub resource_arns: Vec<ResourceARNDetail>,
    /// EC2 instance ids in the trace.
    #[serde(default)]
    pub instance_ids: Vec<InstanceIdDetail>,
    /// Availability Zones in the trace.
    #[serde(default)]
    pub availability_zones: Vec<AvailabilityZoneDetail>,
    /// The root of the trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_point: Option<ServiceId>,
    /// Fault root causes.
    #[serde(default)]
    pub fault_root_causes: Vec<FaultRootCause>,
    /// Error root causes.
    #[serde(default)]
    pub error_root_causes: Vec<ErrorRootCause>,
    /// Response-time root causes.
    #[serde(default)]
    pub response_time_root_causes: Vec<ResponseTimeRootCause>,
    /// The revision number of the trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i32>,
    /// The matched time of a defined event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matched_event_time: Option<EpochSeconds>,
}

/// The HTTP request served by a trace. Note the wire spellings `HttpURL` and
/// `ClientIp`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Http {
    /// The request URL.
    #[serde(rename = "HttpURL", skip_serializing_if = "Option::is_none")]
    pub http_url: Option<String>,
    /// The response status.
    #[serde(rename = "HttpStatus", skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    /// The request method.
    #[serde(rename = "HttpMethod", skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    /// The request's user agent.
    #[serde(rename = "UserAgent", skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    /// The client's IP address.
    #[serde(rename = "ClientIp", skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<String>,
}

/// An annotation value with the services that recorded it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValueWithServiceIds {
    /// The annotation's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotation_value: Option<AnnotationValue>,
    /// Services that recorded the value.
    #[serde(default)]
    pub service_ids: Vec<ServiceId>,
}

/// The value of an annotation: a number, a boolean or a string.
///
/// The model makes this a structure of three optional members of which one
/// is set; on the wire it is an object with exactly one of the keys
/// `NumberValue`, `BooleanValue`, `StringValue`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AnnotationValue {
    /// `{"NumberValue": <number>}`.
    NumberValue(f64),
    /// `{"BooleanValue": <bool>}`.
    BooleanValue(bool),
    /// `{"StringValue": <string>}`.
    StringValue(String),
}

/// A service in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceId {
    /// The service's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service's names.
    #[serde(default)]
    pub names: Vec<String>,
    /// The account the service runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The service's type (e.g. `AWS::EC2::Instance`).
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
}

/// A user in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TraceUser {
    /// The user's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// Services the user's requests went through.
    #[serde(default)]
    pub service_ids: Vec<ServiceId>,
}

/// A resource ARN in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceARNDetail {
    /// The ARN (wire name `ARN`).
    #[serde(rename = "ARN", skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
}

/// An EC2 instance id in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InstanceIdDetail {
    /// The instance id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// An Availability Zone in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AvailabilityZoneDetail {
    /// The zone's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// An exception named as (part of) a root cause.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RootCauseException {
    /// The exception's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The exception's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The root cause of a fault (5xx) in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaultRootCause {
    /// The services involved.
    #[serde(default)]
    pub services: Vec<FaultRootCauseService>,
    /// Whether the root cause affected the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_impacting: Option<bool>,
}

/// A service in a [`FaultRootCause`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaultRootCauseService {
    /// The service's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service's names.
    #[serde(default)]
    pub names: Vec<String>,
    /// The service's type.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The account the service runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The path of entities (segments and subsegments) to the root cause.
    #[serde(default)]
    pub entity_path: Vec<FaultRootCauseEntity>,
    /// Whether the service is inferred rather than instrumented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inferred: Option<bool>,
}

/// An entity on a [`FaultRootCauseService`]'s path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct FaultRootCauseEntity {
    /// The entity's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The exceptions recorded on the entity.
    #[serde(default)]
    pub exceptions: Vec<RootCauseException>,
    /// Whether the entity is a remote subsegment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
}

/// The root cause of an error (4xx) in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorRootCause {
    /// The services involved.
    #[serde(default)]
    pub services: Vec<ErrorRootCauseService>,
    /// Whether the root cause affected the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_impacting: Option<bool>,
}

/// A service in an [`ErrorRootCause`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorRootCauseService {
    /// The service's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service's names.
    #[serde(default)]
    pub names: Vec<String>,
    /// The service's type.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The account the service runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The path of entities (segments and subsegments) to the root cause.
    #[serde(default)]
    pub entity_path: Vec<ErrorRootCauseEntity>,
    /// Whether the service is inferred rather than instrumented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inferred: Option<bool>,
}

/// An entity on an [`ErrorRootCauseService`]'s path.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ErrorRootCauseEntity {
    /// The entity's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The exceptions recorded on the entity.
    #[serde(default)]
    pub exceptions: Vec<RootCauseException>,
    /// Whether the entity is a remote subsegment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
}

/// The root cause of a response-time warning in a trace.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseTimeRootCause {
    /// The services involved.
    #[serde(default)]
    pub services: Vec<ResponseTimeRootCauseService>,
    /// Whether the root cause affected the client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_impacting: Option<bool>,
}

/// A service in a [`ResponseTimeRootCause`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseTimeRootCauseService {
    /// The service's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service's names.
    #[serde(default)]
    pub names: Vec<String>,
    /// The service's type.
    #[serde(rename = "Type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<String>,
    /// The account the service runs in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// The path of entities (segments and subsegments) to the root cause.
    #[serde(default)]
    pub entity_path: Vec<ResponseTimeRootCauseEntity>,
    /// Whether the service is inferred rather than instrumented.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inferred: Option<bool>,
}

/// An entity on a [`ResponseTimeRootCauseService`]'s path. Unlike the fault
/// and error entities it has `Coverage` (a number) instead of `Exceptions`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseTimeRootCauseEntity {
    /// The entity's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The share of the response time the entity accounts for (the model
    /// documents it, oddly, as "the type and messages of the exceptions").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
    /// Whether the entity is a remote subsegment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
}

// ---------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------

/// Most violations listed in one message; the count covers all of them.
const MAX_LISTED_VIOLATIONS: usize = 10;

/// Collects constraint violations into one `InvalidRequestException`,
/// worded as AWS words validation errors.
#[derive(Default)]
struct Violations {
    count: usize,
    listed: Vec<String>,
}

impl Violations {
    fn push(&mut self, text: String) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED_VIOLATIONS {
            self.listed.push(text);
        }
    }

    /// Length in Unicode code points, as the model's `min`/`max` count.
    fn check_length(&mut self, member: &str, value: &str, min: usize, max: usize) {
        let len = value.chars().count();
        if len < min {
            self.push(format!(
                "Value at '{member}' failed to satisfy constraint: \
                 Member must have length greater than or equal to {min}"
            ));
        } else if len > max {
            self.push(format!(
                "Value at '{member}' failed to satisfy constraint: \
                 Member must have length less than or equal to {max}"
            ));
        }
    }

    fn check_finite(&mut self, member: &str, value: EpochSeconds) {
        if !value.is_finite() {
            self.push(format!(
                "Value at '{member}' failed to satisfy constraint: \
                 Member must be a finite number of epoch seconds"
            ));
        }
    }

    fn into_result(self) -> Result<(), ApiError> {
        if self.count == 0 {
            return Ok(());
        }
        let noun = if self.count == 1 { "error" } else { "errors" };
        let mut message = format!(
            "{} validation {noun} detected: {}",
            self.count,
            self.listed.join("; ")
        );
        if self.count > self.listed.len() {
            message.push_str(&format!("; and {} more", self.count - self.listed.len()));
        }
        Err(ApiError::invalid_request(message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    /// Parses `text`, re-serializes the value and checks the output equals
    /// the input as JSON (so every member name and value survived).
    fn round_trip<T: Serialize + DeserializeOwned>(text: &str) -> T {
        let parsed: T = serde_json::from_str(text).expect("parse");
        let again = serde_json::to_value(&parsed).expect("serialize");
        let want: Value = serde_json::from_str(text).expect("json");
        assert_eq!(again, want);
        parsed
    }

    #[test]
    fn put_trace_segments_request() {
        let req: PutTraceSegmentsRequest = round_trip(
            r#"{"TraceSegmentDocuments": [
                "{\"name\":\"svc\",\"id\":\"70de5b6f19ff9a0a\",\"trace_id\":\"1-581cf771-a006649127e371903a2de979\",\"start_time\":1478293361.271,\"end_time\":1478293361.449}",
                "{\"name\":\"svc\",\"id\":\"70de5b6f19ff9a0b\",\"trace_id\":\"1-581cf771-a006649127e371903a2de979\",\"start_time\":1478293361.271,\"in_progress\":true}"
            ]}"#,
        );
        assert_eq!(req.trace_segment_documents.len(), 2);
        assert!(req.trace_segment_documents[0].starts_with("{\"name\":\"svc\""));
        assert_eq!(req.validate(), Ok(()));
    }

    #[test]
    fn put_trace_segments_result() {
        let res: PutTraceSegmentsResult = round_trip(
            r#"{"UnprocessedTraceSegments": [
                {"Id": "70de5b6f19ff9a0a", "ErrorCode": "InvalidSegment", "Message": "missing name"},
                {"Id": "70de5b6f19ff9a0b"}
            ]}"#,
        );
        assert_eq!(
            res.unprocessed_trace_segments[0],
            UnprocessedTraceSegment {
                id: Some("70de5b6f19ff9a0a".into()),
                error_code: Some("InvalidSegment".into()),
                message: Some("missing name".into()),
            }
        );
        assert_eq!(res.unprocessed_trace_segments[1].error_code, None);
        // All processed: an empty list is written, and absent reads as empty.
        assert_eq!(
            serde_json::to_string(&PutTraceSegmentsResult::default()).unwrap(),
            r#"{"UnprocessedTraceSegments":[]}"#
        );
        let empty: PutTraceSegmentsResult = serde_json::from_str("{}").unwrap();
        assert!(empty.unprocessed_trace_segments.is_empty());
    }

    #[test]
    fn batch_get_traces_request() {
        let req: BatchGetTracesRequest = round_trip(
            r#"{"TraceIds": ["1-58406520-a006649127e371903a2de979", "1-4efaaf4d-1e8720b39541901950019ee5"],
                "NextToken": "abc"}"#,
        );
        assert_eq!(req.trace_ids[1], "1-4efaaf4d-1e8720b39541901950019ee5");
        assert_eq!(req.next_token.as_deref(), Some("abc"));
        assert_eq!(req.validate(), Ok(()));
        let no_token: BatchGetTracesRequest = round_trip(r#"{"TraceIds": []}"#);
        assert_eq!(no_token.next_token, None);
    }

    #[test]
    fn batch_get_traces_result() {
        let res: BatchGetTracesResult = round_trip(
            r#"{
                "Traces": [{
                    "Id": "1-58406520-a006649127e371903a2de979",
                    "Duration": 0.178,
                    "LimitExceeded": false,
                    "Segments": [{
                        "Id": "70de5b6f19ff9a0a",
                        "Document": "{\"id\":\"70de5b6f19ff9a0a\",\"name\":\"svc\"}"
                    }]
                }],
                "UnprocessedTraceIds": ["1-58406520-000000000000000000000000"],
                "NextToken": "page2"
            }"#,
        );
        let trace = &res.traces[0];
        assert_eq!(trace.duration, Some(0.178));
        assert_eq!(trace.limit_exceeded, Some(false));
        assert_eq!(trace.segments[0].id.as_deref(), Some("70de5b6f19ff9a0a"));
        assert_eq!(
            res.unprocessed_trace_ids,
            ["1-58406520-000000000000000000000000"]
        );
        assert_eq!(res.next_token.as_deref(), Some("page2"));
    }

    #[test]
    fn get_trace_summaries_request_full() {
        let req: GetTraceSummariesRequest = round_trip(
            r#"{
                "StartTime": 1480615200.5,
                "EndTime": 1480618800.0,
                "TimeRangeType": "Event",
                "Sampling": true,
                "SamplingStrategy": {"Name": "FixedRate", "Value": 0.1},
                "FilterExpression": "service(\"api.example.com\")",
                "NextToken": "tok"
            }"#,
        );
        assert_eq!(req.start_time, EpochSeconds(1_480_615_200.5));
        assert_eq!(req.end_time, EpochSeconds(1_480_618_800.0));
        assert_eq!(req.time_range_type, Some(TimeRangeType::Event));
        assert_eq!(
            req.sampling_strategy,
            Some(SamplingStrategy {
                name: Some(SamplingStrategyName::FixedRate),
                value: Some(0.1)
            })
        );
        assert_eq!(
            req.filter_expression.as_deref(),
            Some("service(\"api.example.com\")")
        );
        assert_eq!(req.validate(), Ok(()));
    }

    #[test]
    fn get_trace_summaries_request_botocore_minimal() {
        // botocore's default timestamp precision sends integer seconds.
        let req: GetTraceSummariesRequest =
            serde_json::from_str(r#"{"StartTime": 1480615200, "EndTime": 1480618800}"#).unwrap();
        assert_eq!(req.start_time.as_f64(), 1_480_615_200.0);
        assert_eq!(req.time_range_type, None);
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"StartTime": 1480615200.0, "EndTime": 1480618800.0})
        );
    }

    #[test]
    fn get_trace_summaries_request_iso_timestamps() {
        let req: GetTraceSummariesRequest = serde_json::from_str(
            r#"{"StartTime": "2016-12-01T18:00:00Z", "EndTime": "2016-12-01T19:00:00.250+00:00",
                "TimeRangeType": "TraceId"}"#,
        )
        .unwrap();
        assert_eq!(req.start_time, EpochSeconds(1_480_615_200.0));
        assert_eq!(req.end_time, EpochSeconds(1_480_618_800.25));
        assert_eq!(req.time_range_type, Some(TimeRangeType::TraceId));
        let numeric_string: GetTraceSummariesRequest =
            serde_json::from_str(r#"{"StartTime": "1480615200", "EndTime": "1480618800.5"}"#)
                .unwrap();
        assert_eq!(numeric_string.end_time, EpochSeconds(1_480_618_800.5));
    }

    #[test]
    fn time_range_type_values() {
        for (t, s) in [
            (TimeRangeType::TraceId, "\"TraceId\""),
            (TimeRangeType::Event, "\"Event\""),
            (TimeRangeType::Service, "\"Service\""),
        ] {
            assert_eq!(serde_json::to_string(&t).unwrap(), s);
            assert_eq!(serde_json::from_str::<TimeRangeType>(s).unwrap(), t);
        }
        assert!(serde_json::from_str::<TimeRangeType>("\"traceid\"").is_err());
        assert_eq!(
            serde_json::to_string(&SamplingStrategyName::PartialScan).unwrap(),
            "\"PartialScan\""
        );
    }

    /// Every member of TraceSummary and of every shape it references.
    const FULL_TRACE_SUMMARY: &str = r#"{
        "Id": "1-58406520-a006649127e371903a2de979",
        "StartTime": 1480615200.01,
        "Duration": 0.5,
        "ResponseTime": 0.25,
        "HasFault": true,
        "HasError": false,
        "HasThrottle": false,
        "IsPartial": false,
        "Http": {
            "HttpURL": "https://api.example.com/orders",
            "HttpStatus": 500,
            "HttpMethod": "POST",
            "UserAgent": "curl/8.0",
            "ClientIp": "203.0.113.7"
        },
        "Annotations": {
            "account": [{
                "AnnotationValue": {"StringValue": "12345"},
                "ServiceIds": [{"Name": "api", "Names": ["api"], "AccountId": "123456789012", "Type": "AWS::EC2::Instance"}]
            }],
            "retries": [{"AnnotationValue": {"NumberValue": 3.0}, "ServiceIds": []}],
            "cached": [{"AnnotationValue": {"BooleanValue": false}, "ServiceIds": []}]
        },
        "Users": [{"UserName": "alice", "ServiceIds": [{"Name": "api", "Names": []}]}],
        "ServiceIds": [
            {"Name": "api", "Names": ["api", "api-v2"], "AccountId": "123456789012", "Type": "AWS::EC2::Instance"},
            {"Name": "db", "Names": [], "Type": "remote"}
        ],
        "ResourceARNs": [{"ARN": "arn:aws:lambda:us-east-1:123456789012:function:fn"}],
        "InstanceIds": [{"Id": "i-0123456789abcdef0"}],
        "AvailabilityZones": [{"Name": "us-east-1a"}],
        "EntryPoint": {"Name": "api", "Names": ["api"], "AccountId": "123456789012", "Type": "AWS::EC2::Instance"},
        "FaultRootCauses": [{
            "Services": [{
                "Name": "db",
                "Names": ["db"],
                "Type": "remote",
                "AccountId": "123456789012",
                "EntityPath": [
                    {"Name": "api", "Exceptions": [], "Remote": false},
                    {"Name": "db", "Exceptions": [{"Name": "ConnectionError", "Message": "refused"}], "Remote": true}
                ],
                "Inferred": true
            }],
            "ClientImpacting": true
        }],
        "ErrorRootCauses": [{
            "Services": [{
                "Name": "api",
                "Names": ["api"],
                "Type": "AWS::EC2::Instance",
                "AccountId": "123456789012",
                "EntityPath": [{"Name": "api", "Exceptions": [{"Name": "NotFound", "Message": "no order"}], "Remote": false}],
                "Inferred": false
            }],
            "ClientImpacting": false
        }],
        "ResponseTimeRootCauses": [{
            "Services": [{
                "Name": "db",
                "Names": ["db"],
                "Type": "remote",
                "AccountId": "123456789012",
                "EntityPath": [{"Name": "db", "Coverage": 0.75, "Remote": true}],
                "Inferred": true
            }],
            "ClientImpacting": true
        }],
        "Revision": 2,
        "MatchedEventTime": 1480615200.5
    }"#;

    #[test]
    fn full_trace_summary() {
        let s: TraceSummary = round_trip(FULL_TRACE_SUMMARY);
        assert_eq!(s.start_time, Some(EpochSeconds(1_480_615_200.01)));
        assert_eq!(s.response_time, Some(0.25));
        assert_eq!(s.has_fault, Some(true));
        let http = s.http.as_ref().unwrap();
        assert_eq!(
            http.http_url.as_deref(),
            Some("https://api.example.com/orders")
        );
        assert_eq!(http.http_status, Some(500));
        assert_eq!(http.client_ip.as_deref(), Some("203.0.113.7"));
        assert_eq!(
            s.annotations["account"][0].annotation_value,
            Some(AnnotationValue::StringValue("12345".into()))
        );
        assert_eq!(
            s.annotations["retries"][0].annotation_value,
            Some(AnnotationValue::NumberValue(3.0))
        );
        assert_eq!(
            s.annotations["cached"][0].annotation_value,
            Some(AnnotationValue::BooleanValue(false))
        );
        assert_eq!(s.users[0].user_name.as_deref(), Some("alice"));
        assert_eq!(s.service_ids[1].r#type.as_deref(), Some("remote"));
        assert_eq!(s.service_ids[1].account_id, None);
        assert_eq!(
            s.resource_arns[0].arn.as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:fn")
        );
        assert_eq!(s.instance_ids[0].id.as_deref(), Some("i-0123456789abcdef0"));
        assert_eq!(s.availability_zones[0].name.as_deref(), Some("us-east-1a"));
        assert_eq!(s.entry_point.as_ref().unwrap().name.as_deref(), Some("api"));
        let fault = &s.fault_root_causes[0].services[0];
        assert_eq!(fault.inferred, Some(true));
        assert_eq!(
            fault.entity_path[1].exceptions[0],
            RootCauseException {
                name: Some("ConnectionError".into()),
                message: Some("refused".into())
            }
        );
        assert_eq!(s.error_root_causes[0].client_impacting, Some(false));
        assert_eq!(
            s.response_time_root_causes[0].services[0].entity_path[0].coverage,
            Some(0.75)
        );
        assert_eq!(s.revision, Some(2));
        assert_eq!(s.matched_event_time, Some(EpochSeconds(1_480_615_200.5)));
    }

    #[test]
    fn get_trace_summaries_result() {
        let text = format!(
            r#"{{"TraceSummaries": [{FULL_TRACE_SUMMARY}], "ApproximateTime": 1480618800.0,
                 "TracesProcessedCount": 12, "NextToken": "next"}}"#
        );
        let res: GetTraceSummariesResult = round_trip(&text);
        assert_eq!(res.trace_summaries.len(), 1);
        assert_eq!(res.approximate_time, Some(EpochSeconds(1_480_618_800.0)));
        assert_eq!(res.traces_processed_count, Some(12));
        assert_eq!(res.next_token.as_deref(), Some("next"));
    }

    #[test]
    fn sparse_trace_summary_defaults() {
        let s: TraceSummary =
            serde_json::from_str(r#"{"Id": "1-58406520-a006649127e371903a2de979"}"#).unwrap();
        assert!(s.annotations.is_empty() && s.users.is_empty() && s.resource_arns.is_empty());
        assert_eq!(s.http, None);
        // Lists and the map are always written; absent options are not.
        let out = serde_json::to_value(&s).unwrap();
        let obj = out.as_object().unwrap();
        assert_eq!(obj["ResourceARNs"], json!([]));
        assert_eq!(obj["Annotations"], json!({}));
        assert!(!obj.contains_key("StartTime"));
        assert!(!obj.contains_key("Http"));
    }

    #[test]
    fn annotation_value_union() {
        assert_eq!(
            serde_json::to_string(&AnnotationValue::NumberValue(12.5)).unwrap(),
            r#"{"NumberValue":12.5}"#
        );
        assert_eq!(
            serde_json::to_string(&AnnotationValue::BooleanValue(true)).unwrap(),
            r#"{"BooleanValue":true}"#
        );
        assert_eq!(
            serde_json::to_string(&AnnotationValue::StringValue("x".into())).unwrap(),
            r#"{"StringValue":"x"}"#
        );
        assert_eq!(
            serde_json::from_str::<AnnotationValue>(r#"{"NumberValue": 7}"#).unwrap(),
            AnnotationValue::NumberValue(7.0)
        );
        assert!(serde_json::from_str::<AnnotationValue>(r#"{}"#).is_err());
        assert!(
            serde_json::from_str::<AnnotationValue>(r#"{"NumberValue": 1, "StringValue": "a"}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<AnnotationValue>(r#"{"NumberValue": "1"}"#).is_err());
    }

    #[test]
    fn batch_get_traces_validate() {
        let ok = BatchGetTracesRequest {
            trace_ids: vec!["x".repeat(35)],
            next_token: None,
        };
        assert_eq!(ok.validate(), Ok(()));

        let bad = BatchGetTracesRequest {
            trace_ids: vec![
                "1-58406520-a006649127e371903a2de979".into(),
                "x".repeat(36),
                String::new(),
            ],
            next_token: None,
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.code(), "InvalidRequestException");
        assert_eq!(err.status(), 400);
        assert_eq!(
            err.message(),
            "2 validation errors detected: \
             Value at 'TraceIds.2.member' failed to satisfy constraint: \
             Member must have length less than or equal to 35; \
             Value at 'TraceIds.3.member' failed to satisfy constraint: \
             Member must have length greater than or equal to 1"
        );
        // Length counts characters, not bytes.
        let wide = BatchGetTracesRequest {
            trace_ids: vec!["é".repeat(35)],
            next_token: None,
        };
        assert_eq!(wide.validate(), Ok(()));
    }

    #[test]
    fn validation_message_is_bounded() {
        let bad = BatchGetTracesRequest {
            trace_ids: vec![String::new(); 25],
            next_token: None,
        };
        let err = bad.validate().unwrap_err();
        assert!(err.message().starts_with("25 validation errors detected: "));
        assert!(
            err.message().ends_with("; and 15 more"),
            "{}",
            err.message()
        );
        assert_eq!(err.message().matches("Value at").count(), 10);
    }

    #[test]
    fn get_trace_summaries_validate() {
        let ok = GetTraceSummariesRequest {
            start_time: EpochSeconds(1.0),
            end_time: EpochSeconds(2.0),
            ..Default::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = GetTraceSummariesRequest {
            start_time: EpochSeconds(f64::NAN),
            end_time: EpochSeconds(2.0),
            ..Default::default()
        };
        let err = bad.validate().unwrap_err();
        assert_eq!(err.code(), "InvalidRequestException");
        assert_eq!(
            err.message(),
            "1 validation error detected: Value at 'StartTime' failed to satisfy \
             constraint: Member must be a finite number of epoch seconds"
        );
    }

    #[test]
    fn put_trace_segments_validate_accepts_empty() {
        assert_eq!(PutTraceSegmentsRequest::default().validate(), Ok(()));
    }
}
