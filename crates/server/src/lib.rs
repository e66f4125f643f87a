//! The network surface of `roentgen serve`.
//!
//! This crate owns the X-Ray API over HTTP (rest-json, AWS-shaped errors), the X-Ray
//! daemon protocol on UDP, OTLP (`/v1/traces` and the gRPC `TraceService`, converted by
//! `roentgen-otlp`), the ingest queue that all of them feed, `/healthz` and the
//! Prometheus `/metrics`, and serves the web console's embedded assets at `/`. It
//! translates between the wire (`roentgen-api`) and the store
//! (`roentgen-store`); query logic belongs in the store (and the filter crate), and
//! sampling logic in `roentgen-sampling`, not here.

pub mod auth;
pub mod console;
mod groups;
pub mod http;
pub mod ingest;
pub mod limits;
pub mod metrics;
pub mod otlp;
pub mod sampling;
pub mod session;
pub mod tls;
pub mod udp;

pub use http::{AppState, Auth, router};
pub use ingest::{Ingest, IngestOptions, SubmitError};
pub use metrics::Metrics;
pub use otlp::OtlpIngest;
pub use sampling::Sampling;
