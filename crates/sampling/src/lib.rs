//! X-Ray centralized sampling: the rules, how a request is matched against them, the
//! reservoir and fixed-rate decision an SDK makes, and the reservoir quotas the service
//! hands out through `GetSamplingTargets`.
//!
//! This crate owns the sampling logic and nothing else. It does no I/O: time comes in
//! as epoch seconds and randomness as a number in `[0, 1)`; storage and the wire belong
//! to the server, which turns API requests into [`RuleDefinition`]s and
//! [`RuleChanges`], keeps [`Rule`]s (serde) in its store, and maps [`SamplingError`]s to
//! AWS errors by [`SamplingError::class`]. It depends on nothing of Roentgen's.
//!
//! - [`rule`]: a rule's fields, the constraints AWS documents for them, `Default`
//!   (1 request per second and 5 %, editable but not deletable), matching.
//! - [`rules`]: an account's rules in evaluation order (priority, then name), creation
//!   with unique names and the limit of [`MAX_RULES`], updates, deletion.
//! - [`wildcard`]: `*` and `?` patterns, case-insensitive.
//! - [`reservoir`]: a client's take / borrow / fixed-rate decision.
//! - [`targets`]: quota assignment for `GetSamplingTargets`, and the statistics for
//!   `GetSamplingStatisticSummaries`. Its module documentation describes the algorithm.
//!
//! ```
//! use roentgen_sampling::{Rule, RuleSet, SamplingRequest};
//!
//! let rules = RuleSet::new([], Rule::default_rule("arn:aws:xray:local:0:sampling-rule/Default".into()));
//! let request = SamplingRequest { service_name: Some("checkout"), ..Default::default() };
//! let rule = rules.matching(&request);
//! assert_eq!((rule.name.as_str(), rule.reservoir_size, rule.fixed_rate), ("Default", 1, 0.05));
//! ```

pub mod error;
pub mod reservoir;
pub mod rule;
pub mod rules;
pub mod targets;
pub mod wildcard;

pub use error::{ErrorClass, SamplingError};
pub use reservoir::{Counts, Decision, Reservoir};
pub use rule::{RateBoost, Rule, RuleChanges, RuleDefinition, SamplingRequest};
pub use rules::{MAX_RULES, RuleRef, RuleSet};
pub use targets::{
    ClientId, Grant, InvalidClientId, StatisticSummary, Target, Targets, TargetsConfig,
};
pub use wildcard::wildcard_match;
