//! Segment documents: the typed view Roentgen reads, next to the verbatim JSON.
//!
//! Parsing is two steps. Serde reads the JSON into [`Segment`], typed where Roentgen
//! reads a field and lenient about everything else (unknown fields are ignored and are
//! kept in the verbatim text). [`validate`] then checks the documented rules and returns
//! one [`DocumentError`] per violation kind, naming the field.

use std::collections::BTreeMap;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer};

use crate::error::DocumentError;
use crate::ids::{SegmentId, TraceId};

/// Largest accepted document, in bytes of JSON text (X-Ray's documented 64 kB).
pub const MAX_DOCUMENT_BYTES: usize = 64 * 1024;
/// Longest segment name, in characters.
pub const MAX_SEGMENT_NAME_CHARS: usize = 200;
/// Longest subsegment name, in characters (not documented by AWS: our choice).
pub const MAX_SUBSEGMENT_NAME_CHARS: usize = 250;
/// Most annotations on one document (segment plus embedded subsegments).
pub const MAX_ANNOTATIONS_PER_DOCUMENT: usize = 50;
/// Longest annotation key, in bytes (not documented by AWS: our choice).
pub const MAX_ANNOTATION_KEY_LEN: usize = 500;
/// Deepest nesting of embedded subsegments.
pub const MAX_SUBSEGMENT_DEPTH: usize = 32;

/// An annotation value: X-Ray indexes strings, numbers and booleans only.
#[derive(Debug, Clone, PartialEq)]
pub enum AnnotationValue {
    /// A string value.
    String(String),
    /// A number (integers are kept as `f64`, as X-Ray's API returns them).
    Number(f64),
    /// A boolean value.
    Bool(bool),
}

impl<'de> Deserialize<'de> for AnnotationValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Self::String(s)),
            serde_json::Value::Bool(b) => Ok(Self::Bool(b)),
            serde_json::Value::Number(n) => n
                .as_f64()
                .map(Self::Number)
                .ok_or_else(|| serde::de::Error::custom("annotation number out of range")),
            _ => Err(serde::de::Error::custom(
                "annotation values must be a string, a number or a boolean",
            )),
        }
    }
}

/// The `http` object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Http {
    /// The request as the service saw it (or, on a subsegment, the outgoing call).
    pub request: Option<HttpRequest>,
    /// The response.
    pub response: Option<HttpResponse>,
}

/// `http.request`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct HttpRequest {
    /// Request method (`GET`, `POST`, …).
    pub method: Option<CompactString>,
    /// Full request URL.
    pub url: Option<String>,
    /// `User-Agent` of the caller.
    pub user_agent: Option<String>,
    /// IP address of the caller.
    pub client_ip: Option<CompactString>,
    /// True when `client_ip` came from `X-Forwarded-For`.
    pub x_forwarded_for: Option<bool>,
    /// On a subsegment: the downstream service is itself traced.
    pub traced: Option<bool>,
}

/// `http.response`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: Option<u16>,
    /// Response body length.
    pub content_length: Option<u64>,
}

/// The `aws` object, typed where Roentgen reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Aws {
    /// Account of the resource (cross-account calls).
    pub account_id: Option<CompactString>,
    /// AWS API operation of an `aws`-namespace subsegment.
    pub operation: Option<CompactString>,
    /// Region of the called resource.
    pub region: Option<CompactString>,
    /// DynamoDB table of the call.
    pub table_name: Option<CompactString>,
    /// SQS queue of the call.
    pub queue_url: Option<String>,
    /// EC2 metadata of the host.
    pub ec2: Option<Ec2>,
    /// ECS metadata of the container.
    pub ecs: Option<Ecs>,
}

/// `aws.ec2`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Ec2 {
    /// Instance id (`i-…`).
    pub instance_id: Option<CompactString>,
    /// Availability zone.
    pub availability_zone: Option<CompactString>,
}

/// `aws.ecs`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Ecs {
    /// Container host name.
    pub container: Option<String>,
    /// Container ARN.
    pub container_arn: Option<String>,
}

/// The `sql` object of a database call.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Sql {
    /// Connection URL without password.
    pub url: Option<String>,
    /// Connection string without password.
    pub connection_string: Option<String>,
    /// Query with the values removed.
    pub sanitized_query: Option<String>,
    /// Database engine.
    pub database_type: Option<String>,
    /// Engine version.
    pub database_version: Option<String>,
    /// Database user.
    pub user: Option<String>,
}

/// The `service` object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Service {
    /// Application version.
    pub version: Option<String>,
}

/// The `cause` field: an exception object, or the id of an exception recorded elsewhere.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Cause {
    /// 16-hex id of an exception recorded in another (sub)segment of the trace.
    Reference(String),
    /// The exceptions themselves.
    Details(CauseDetails),
}

/// `cause` as an object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CauseDetails {
    /// Working directory of the process.
    pub working_directory: Option<String>,
    /// Paths of libraries and modules in use.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The exceptions.
    #[serde(default)]
    pub exceptions: Vec<Exception>,
}

/// One exception of a `cause`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Exception {
    /// 16-hex id.
    pub id: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// Exception type (class name).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Thrown by a downstream call.
    pub remote: Option<bool>,
    /// Stack frames left out.
    pub truncated: Option<u64>,
    /// Exceptions left out.
    pub skipped: Option<u64>,
    /// Id of the exception that caused this one.
    pub cause: Option<String>,
    /// Stack frames.
    #[serde(default)]
    pub stack: Vec<StackFrame>,
}

/// A stack frame.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct StackFrame {
    /// Source file.
    pub path: Option<String>,
    /// Line number.
    pub line: Option<u64>,
    /// Function or method.
    pub label: Option<String>,
}

/// A segment or subsegment as Roentgen reads it. The same shape serves top-level
/// segments, independent subsegments (`type: "subsegment"`) and embedded subsegments;
/// [`validate`] applies the rules of each.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Segment {
    /// Service name (segments) or called resource / code block (subsegments).
    pub name: Option<CompactString>,
    /// 16-hex id, unique in the trace.
    pub id: Option<CompactString>,
    /// Trace id (segments and independent subsegments).
    pub trace_id: Option<CompactString>,
    /// Upstream subsegment (segments) or parent (independent subsegments).
    pub parent_id: Option<CompactString>,
    /// `"subsegment"` on independently sent subsegments.
    #[serde(rename = "type")]
    pub kind: Option<CompactString>,
    /// Start, epoch seconds.
    pub start_time: Option<f64>,
    /// End, epoch seconds; absent while in progress.
    pub end_time: Option<f64>,
    /// Sent instead of `end_time` before the work completes.
    #[serde(default)]
    pub in_progress: bool,
    /// Resource type, e.g. `AWS::EC2::Instance`.
    pub origin: Option<CompactString>,
    /// End user of the request.
    pub user: Option<CompactString>,
    /// `aws` or `remote` on subsegments for downstream calls (they make inferred nodes);
    /// SDKs also send other values, such as the Python SDK's `local`, which are kept and
    /// mean an in-process block.
    pub namespace: Option<CompactString>,
    /// HTTP request and response.
    pub http: Option<Box<Http>>,
    /// AWS resource data.
    pub aws: Option<Box<Aws>>,
    /// SQL query data.
    pub sql: Option<Box<Sql>>,
    /// Application version data.
    pub service: Option<Box<Service>>,
    /// Client error (4xx).
    #[serde(default)]
    pub error: bool,
    /// Throttled (429).
    #[serde(default)]
    pub throttle: bool,
    /// Server error (5xx).
    #[serde(default)]
    pub fault: bool,
    /// Exceptions.
    pub cause: Option<Box<Cause>>,
    /// Indexed key/values.
    #[serde(default)]
    pub annotations: BTreeMap<CompactString, AnnotationValue>,
    /// Embedded subsegments.
    #[serde(default, deserialize_with = "exact_list")]
    pub subsegments: Vec<Segment>,
    /// Sibling subsegments that completed before this one started.
    #[serde(default)]
    pub precursor_ids: Vec<String>,
    /// On an `aws` subsegment: the called resource is itself traced.
    pub traced: Option<bool>,
}

impl Segment {
    /// True for an independently sent subsegment.
    pub fn is_subsegment(&self) -> bool {
        self.kind.as_deref() == Some("subsegment")
    }

    /// `end_time - start_time`, when both are known.
    pub fn response_time(&self) -> Option<f64> {
        match (self.start_time, self.end_time) {
            (Some(s), Some(e)) => Some(e - s),
            _ => None,
        }
    }

    /// HTTP response status, if any.
    pub fn http_status(&self) -> Option<u16> {
        self.http.as_deref()?.response.as_ref()?.status
    }

    /// This segment and every embedded subsegment, depth first.
    pub fn walk(&self) -> impl Iterator<Item = &Segment> {
        let mut stack = vec![self];
        std::iter::from_fn(move || {
            let next = stack.pop()?;
            stack.extend(next.subsegments.iter().rev());
            Some(next)
        })
    }
}

// The typed view is held for every queued and indexed document: the large optional
// parts are boxed so that a segment without them stays small, and the short strings
// (ids, names, method, zone, …) are `CompactString`s, kept inline up to 24 bytes, so a
// typical document parses with a third of the allocations. Long ones (URLs, user
// agents, queue URLs) stay `String`.

/// A validated document: the verbatim JSON and the typed view of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    raw: String,
    segment: Segment,
    trace_id: TraceId,
    id: SegmentId,
}

impl Document {
    /// Parses and validates one document.
    pub fn parse(raw: impl Into<String>) -> Result<Self, DocumentError> {
        let raw = raw.into();
        check_size(&raw)?;
        let segment = parse_segment(&raw)?;
        Self::validated(raw, segment)
    }

    /// [`Document::parse`] for a document whose text and typed view were built side by
    /// side in this process (OTLP conversion), so the text need not be lexed again. The
    /// caller guarantees that `raw` parses to exactly `segment`; the checks of `parse`
    /// (size, ids, times, names, annotations) then give the same answer on either.
    pub fn from_parts(raw: String, segment: Segment) -> Result<Self, DocumentError> {
        check_size(&raw)?;
        Self::validated(raw, segment)
    }

    fn validated(raw: String, segment: Segment) -> Result<Self, DocumentError> {
        let (trace_id, id) = validate(&segment)?;
        Ok(Self {
            raw,
            segment,
            trace_id,
            id,
        })
    }

    /// The JSON exactly as it was sent.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Gives back the verbatim JSON.
    pub fn into_raw(self) -> String {
        self.raw
    }

    /// Splits into the verbatim JSON and the typed view.
    pub fn into_parts(self) -> (String, Segment) {
        (self.raw, self.segment)
    }

    /// The typed view.
    pub fn segment(&self) -> &Segment {
        &self.segment
    }

    /// The trace this document belongs to.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// The document's own id.
    pub fn id(&self) -> SegmentId {
        self.id
    }

    /// True while the (sub)segment is still in progress.
    pub fn in_progress(&self) -> bool {
        self.segment.in_progress && self.segment.end_time.is_none()
    }
}

/// A list read from JSON into exactly the memory it needs. serde grows a list of
/// unknown length by doubling, to room for four at the first element, so a parsed
/// document with two embedded subsegments held room for two more (~700 bytes, a fifth
/// of the parsed form). Parsed documents wait for the indexer in memory, within a
/// budget counted in documents.
fn exact_list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    let list = Vec::<T>::deserialize(d)?;
    if list.capacity() == list.len() {
        return Ok(list);
    }
    // A new allocation: an allocator may keep a shrunk block where it is, whole.
    let mut exact = Vec::with_capacity(list.len());
    exact.extend(list);
    Ok(exact)
}

fn check_size(raw: &str) -> Result<(), DocumentError> {
    if raw.len() > MAX_DOCUMENT_BYTES {
        return Err(DocumentError::TooLarge {
            size: raw.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(())
}

/// Reads the JSON text into the typed view, naming the path of a type mismatch.
pub fn parse_segment(raw: &str) -> Result<Segment, DocumentError> {
    let trimmed = raw.trim_start();
    if !trimmed.starts_with('{') {
        // Distinguish "not JSON" from "JSON but not an object" for a clearer error.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(raw) {
            Ok(_) => DocumentError::NotAnObject,
            Err(e) => DocumentError::Json {
                message: e.to_string(),
            },
        });
    }
    // Fast path without path tracking; on failure parse again to name the field.
    match serde_json::from_str::<Segment>(raw) {
        Ok(segment) => return Ok(segment),
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err(DocumentError::Json {
                message: e.to_string(),
            });
        }
        Err(_) => {}
    }
    let mut de = serde_json::Deserializer::from_str(raw);
    let err = match serde_path_to_error::deserialize::<_, Segment>(&mut de) {
        Err(e) => e,
        // Unreachable in practice: the fast path failed on the same input.
        Ok(segment) => return Ok(segment),
    };
    let path = err.path().to_string();
    Err(DocumentError::WrongType {
        field: path,
        message: strip_position(&err.into_inner().to_string()),
    })
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Checks the documented rules on a top-level document and returns its trace and own id.
pub fn validate(seg: &Segment) -> Result<(TraceId, SegmentId), DocumentError> {
    let trace_id = match seg.trace_id.as_deref() {
        None => {
            return Err(DocumentError::Missing {
                field: "trace_id".into(),
            });
        }
        Some(t) => t
            .parse::<TraceId>()
            .map_err(|_| DocumentError::InvalidTraceId {
                field: "trace_id".into(),
                value: truncate(t),
            })?,
    };
    let is_sub = match seg.kind.as_deref() {
        None => false,
        Some("subsegment") => true,
        Some(other) => {
            return Err(DocumentError::InvalidType {
                value: truncate(other),
            });
        }
    };
    if is_sub && seg.parent_id.is_none() {
        return Err(DocumentError::Missing {
            field: "parent_id".into(),
        });
    }
    let id = check_entity(seg, String::new(), !is_sub, 0)?;
    let mut annotations = 0usize;
    for s in seg.walk() {
        annotations += s.annotations.len();
    }
    if annotations > MAX_ANNOTATIONS_PER_DOCUMENT {
        return Err(DocumentError::TooManyAnnotations {
            count: annotations,
            limit: MAX_ANNOTATIONS_PER_DOCUMENT,
        });
    }
    Ok((trace_id, id))
}

fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn field(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn check_id(prefix: &str, name: &str, value: &str) -> Result<SegmentId, DocumentError> {
    value
        .parse::<SegmentId>()
        .map_err(|_| DocumentError::InvalidId {
            field: field(prefix, name),
            value: truncate(value),
        })
}

/// Characters AWS documents for segment names, besides letters, digits and whitespace.
const NAME_SYMBOLS: &str = "_.:/%&#=+\\-@";

fn check_entity(
    seg: &Segment,
    prefix: String,
    is_segment: bool,
    depth: usize,
) -> Result<SegmentId, DocumentError> {
    if depth > MAX_SUBSEGMENT_DEPTH {
        return Err(DocumentError::TooDeep {
            limit: MAX_SUBSEGMENT_DEPTH,
        });
    }
    let id = match seg.id.as_deref() {
        None => {
            return Err(DocumentError::Missing {
                field: leak_field(&prefix, "id"),
            });
        }
        Some(v) => check_id(&prefix, "id", v)?,
    };
    match seg.name.as_deref() {
        None | Some("") => {
            return Err(DocumentError::Missing {
                field: leak_field(&prefix, "name"),
            });
        }
        Some(name) => {
            let limit = if is_segment {
                MAX_SEGMENT_NAME_CHARS
            } else {
                MAX_SUBSEGMENT_NAME_CHARS
            };
            let chars = name.chars().count();
            if chars > limit {
                return Err(DocumentError::NameTooLong {
                    field: field(&prefix, "name"),
                    chars,
                    limit,
                });
            }
            if is_segment
                && let Some(c) = name.chars().find(|c| {
                    !(c.is_alphanumeric() || c.is_whitespace() || NAME_SYMBOLS.contains(*c))
                })
            {
                return Err(DocumentError::InvalidName {
                    name: truncate(name),
                    character: c,
                });
            }
        }
    }
    if let Some(p) = seg.parent_id.as_deref() {
        check_id(&prefix, "parent_id", p)?;
    }
    let start = match seg.start_time {
        None => {
            return Err(DocumentError::Missing {
                field: leak_field(&prefix, "start_time"),
            });
        }
        Some(t) if !t.is_finite() || t <= 0.0 => {
            return Err(DocumentError::InvalidTime {
                field: field(&prefix, "start_time"),
                value: t,
            });
        }
        Some(t) => t,
    };
    match seg.end_time {
        None if !seg.in_progress => {
            return Err(DocumentError::MissingEnd {
                field: field(&prefix, "end_time"),
            });
        }
        None => {}
        Some(t) if !t.is_finite() || t <= 0.0 => {
            return Err(DocumentError::InvalidTime {
                field: field(&prefix, "end_time"),
                value: t,
            });
        }
        Some(end) if end < start => {
            return Err(DocumentError::EndBeforeStart {
                field: field(&prefix, "end_time"),
                start,
                end,
            });
        }
        Some(_) => {}
    }
    for (i, p) in seg.precursor_ids.iter().enumerate() {
        check_id(&prefix, &format!("precursor_ids[{i}]"), p)?;
    }
    match seg.cause.as_deref() {
        Some(Cause::Reference(r)) => {
            check_id(&prefix, "cause", r)?;
        }
        Some(Cause::Details(d)) => {
            for (i, e) in d.exceptions.iter().enumerate() {
                if let Some(eid) = e.id.as_deref() {
                    check_id(&prefix, &format!("cause.exceptions[{i}].id"), eid)?;
                }
            }
        }
        None => {}
    }
    for key in seg.annotations.keys() {
        if key.is_empty()
            || key.len() > MAX_ANNOTATION_KEY_LEN
            || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(DocumentError::InvalidAnnotationKey {
                field: field(&prefix, "annotations"),
                key: truncate(key),
            });
        }
    }
    for (i, sub) in seg.subsegments.iter().enumerate() {
        check_entity(
            sub,
            field(&prefix, &format!("subsegments[{i}]")),
            false,
            depth + 1,
        )?;
    }
    Ok(id)
}

/// Missing-field errors name a static field at the top level, and a path below it.
fn leak_field(prefix: &str, name: &'static str) -> crate::error::FieldName {
    if prefix.is_empty() {
        crate::error::FieldName::from(name)
    } else {
        crate::error::FieldName::from(format!("{prefix}.{name}"))
    }
}
