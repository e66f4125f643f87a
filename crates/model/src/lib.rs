//! X-Ray segment documents and what Roentgen derives from them.
//!
//! This crate owns the typed view of segment documents (with the original JSON kept
//! verbatim), trace and segment ids, validation against the documented limits, and the
//! derivation of trace summaries and service-graph statistics from a trace's documents.
//!
//! It must not do I/O and depends on no other Roentgen crate: every other crate builds
//! on it.

mod causes;
pub mod document;
pub mod error;
pub mod ids;
mod stored;
pub mod timeline;
pub mod trace;

pub use compact_str::CompactString;
pub use document::{AnnotationValue, Document, Segment};
pub use error::DocumentError;
pub use ids::{IdError, SegmentId, TraceId};
pub use trace::{
    CallStatus, Derived, EdgeSummary, GraphContribution, GraphKey, NodeSummary, RootCause,
    RootCauseEntity, RootCauseException, RootCauseService, ServiceKey, ServiceKeyFields, Stats,
    TraceSummary, derive, graph_of_summary,
};
