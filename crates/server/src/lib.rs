//! The network surface of `roentgen serve`.
//!
//! This crate owns the X-Ray API over HTTP (rest-json, AWS-shaped errors), the X-Ray
//! daemon protocol on UDP, the ingest queue that both feed, `/healthz` and the
//! Prometheus `/metrics`. It translates between the wire (`roentgen-api`) and the store
//! (`roentgen-store`); query logic belongs in the store (and the filter crate), and
//! sampling logic in `roentgen-sampling`, not here.

mod groups;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod sampling;
pub mod udp;

pub use http::{AppState, router};
pub use ingest::{Ingest, IngestOptions, SubmitError};
pub use metrics::Metrics;
pub use sampling::Sampling;
