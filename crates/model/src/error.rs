//! Why a document was refused.

use std::borrow::Cow;

/// The name (or path, like `subsegments[2].id`) of a document field.
pub type FieldName = Cow<'static, str>;

/// One violation of the segment document rules. Each variant names the field; the
/// [`DocumentError::error_code`] is what `PutTraceSegments` reports in
/// `UnprocessedTraceSegments` and what the UDP listener counts drops by.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum DocumentError {
    /// The document exceeds the size limit.
    #[error("document is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Size of the document.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The text is not JSON.
    #[error("document is not valid JSON: {message}")]
    Json {
        /// The JSON parser's message.
        message: String,
    },
    /// The JSON is not an object.
    #[error("document must be a JSON object")]
    NotAnObject,
    /// A field has the wrong JSON type.
    #[error("field {field}: {message}")]
    WrongType {
        /// Path of the field.
        field: String,
        /// What was wrong.
        message: String,
    },
    /// A required field is absent.
    #[error("field {field} is required")]
    Missing {
        /// Path of the field.
        field: FieldName,
    },
    /// `end_time` is absent and `in_progress` is not true.
    #[error("field {field} is required unless in_progress is true")]
    MissingEnd {
        /// Path of the field.
        field: String,
    },
    /// The trace id is malformed.
    #[error("field {field}: {value:?} is not a trace id of the form 1-{{8 hex}}-{{24 hex}}")]
    InvalidTraceId {
        /// Path of the field.
        field: String,
        /// The value (truncated).
        value: String,
    },
    /// An id is not 16 hex digits.
    #[error("field {field}: {value:?} is not 16 hex digits")]
    InvalidId {
        /// Path of the field.
        field: String,
        /// The value (truncated).
        value: String,
    },
    /// `type` is present but not `subsegment`.
    #[error("field type: {value:?} is not \"subsegment\" (omit type for a segment)")]
    InvalidType {
        /// The value (truncated).
        value: String,
    },
    /// A segment name is too long.
    #[error("field {field}: name has {chars} characters, over the limit of {limit}")]
    NameTooLong {
        /// Path of the field.
        field: String,
        /// Length in characters.
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// A segment name holds a character X-Ray does not allow.
    #[error(
        "field name: {name:?} contains {character:?}; segment names allow letters, digits, \
         whitespace and _ . : / % & # = + \\ - @"
    )]
    InvalidName {
        /// The name (truncated).
        name: String,
        /// The first disallowed character.
        character: char,
    },
    /// A time is not a positive finite number of epoch seconds.
    #[error("field {field}: {value} is not a positive number of epoch seconds")]
    InvalidTime {
        /// Path of the field.
        field: String,
        /// The value.
        value: f64,
    },
    /// `end_time` is before `start_time`.
    #[error("field {field}: end {end} is before start {start}")]
    EndBeforeStart {
        /// Path of the field.
        field: String,
        /// `start_time`.
        start: f64,
        /// `end_time`.
        end: f64,
    },
    /// An annotation key is empty, too long, or has characters other than ASCII letters,
    /// digits and underscore.
    #[error(
        "field {field}: key {key:?} is invalid; annotation keys are 1 to 500 ASCII letters, \
         digits or underscores"
    )]
    InvalidAnnotationKey {
        /// Path of the annotations object.
        field: String,
        /// The key (truncated).
        key: String,
    },
    /// Too many annotations in one document.
    #[error("document has {count} annotations, over the limit of {limit}")]
    TooManyAnnotations {
        /// Count.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// Subsegments are nested too deeply.
    #[error("subsegments are nested more than {limit} levels deep")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
}

impl DocumentError {
    /// A short, stable code: the `ErrorCode` of an `UnprocessedTraceSegments` entry and
    /// the `reason` label of the drop counter.
    pub fn error_code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "DocumentTooLarge",
            Self::Json { .. } => "InvalidJson",
            Self::NotAnObject => "NotAnObject",
            Self::WrongType { .. } => "WrongFieldType",
            Self::Missing { .. } | Self::MissingEnd { .. } => "MissingField",
            Self::InvalidTraceId { .. } => "InvalidTraceId",
            Self::InvalidId { .. } => "InvalidId",
            Self::InvalidType { .. } => "InvalidType",
            Self::NameTooLong { .. } | Self::InvalidName { .. } => "InvalidName",
            Self::InvalidTime { .. } | Self::EndBeforeStart { .. } => "InvalidTime",
            Self::InvalidAnnotationKey { .. } | Self::TooManyAnnotations { .. } => {
                "InvalidAnnotation"
            }
            Self::TooDeep { .. } => "TooDeep",
        }
    }

    /// Every code [`DocumentError::error_code`] can return, for pre-registering counters.
    pub const ALL_CODES: &'static [&'static str] = &[
        "DocumentTooLarge",
        "InvalidJson",
        "NotAnObject",
        "WrongFieldType",
        "MissingField",
        "InvalidTraceId",
        "InvalidId",
        "InvalidType",
        "InvalidName",
        "InvalidTime",
        "InvalidAnnotation",
        "TooDeep",
    ];
}
