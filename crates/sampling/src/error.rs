//! Why a sampling-rule operation was refused.

use std::fmt;

/// Why a rule could not be created, changed, found or deleted.
///
/// Every variant is the caller's fault; [`SamplingError::class`] says which AWS error a
/// service answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SamplingError {
    /// A field breaks a documented constraint. The message has the shape AWS gives
    /// validation errors.
    #[error(
        "1 validation error detected: Value {value} at '{field}' failed to satisfy constraint: {constraint}"
    )]
    Invalid {
        /// The member, as the X-Ray API names it (`Priority`, `Attributes`).
        field: &'static str,
        /// The offending value, quoted and shortened for the message.
        value: Shown,
        /// The constraint, as a sentence (`Member must have value less than or equal to 9999`).
        constraint: String,
    },
    /// A rule of that name exists already (`Default` always does).
    #[error("a sampling rule named {0:?} already exists")]
    AlreadyExists(String),
    /// Creating one more rule would pass the limit.
    #[error(
        "{limit} sampling rules exist besides Default, the most there may be; delete one first"
    )]
    LimitExceeded {
        /// The limit ([`crate::MAX_RULES`]).
        limit: usize,
    },
    /// No rule has that name or ARN.
    #[error("no sampling rule {0}")]
    NotFound(String),
    /// Neither `RuleName` nor `RuleARN` was given.
    #[error("give RuleName or RuleARN to say which sampling rule")]
    MissingReference,
    /// Both `RuleName` and `RuleARN` were given; AWS asks for one of them.
    #[error("give RuleName or RuleARN, not both")]
    AmbiguousReference,
    /// `Default` cannot be deleted.
    #[error(
        "the Default sampling rule cannot be deleted; set its FixedRate and ReservoirSize instead"
    )]
    DefaultNotDeletable,
    /// Only `FixedRate` and `ReservoirSize` of `Default` can change.
    #[error(
        "only FixedRate and ReservoirSize of the Default sampling rule can be changed, not {field}"
    )]
    DefaultFieldFixed {
        /// The member that was to change.
        field: &'static str,
    },
}

/// The AWS error class of a [`SamplingError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// `InvalidRequestException`: the request is wrong as it stands.
    InvalidRequest,
    /// `RuleLimitExceededException`: the request is fine, the rule count is not.
    RuleLimitExceeded,
}

impl SamplingError {
    /// Which AWS error this is.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::LimitExceeded { .. } => ErrorClass::RuleLimitExceeded,
            _ => ErrorClass::InvalidRequest,
        }
    }

    pub(crate) fn invalid(
        field: &'static str,
        value: impl fmt::Display,
        constraint: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field,
            value: Shown::new(value),
            constraint: constraint.into(),
        }
    }
}

/// A value as an error message shows it: in single quotes and at most 64 characters,
/// or `null` for a missing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown(String);

impl Shown {
    const MAX_CHARS: usize = 64;

    fn new(value: impl fmt::Display) -> Self {
        let text = value.to_string();
        let mut shown: String = text.chars().take(Self::MAX_CHARS).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        Self(format!("'{shown}'"))
    }

    /// A missing value.
    pub(crate) fn null() -> Self {
        Self("null".into())
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_like_aws_validation_errors() {
        let e = SamplingError::invalid(
            "Priority",
            10000,
            "Member must have value less than or equal to 9999",
        );
        assert_eq!(
            e.to_string(),
            "1 validation error detected: Value '10000' at 'Priority' failed to satisfy \
             constraint: Member must have value less than or equal to 9999"
        );
        assert_eq!(e.class(), ErrorClass::InvalidRequest);
        assert_eq!(
            SamplingError::LimitExceeded { limit: 25 }.class(),
            ErrorClass::RuleLimitExceeded
        );
    }

    #[test]
    fn long_values_are_shortened() {
        let e = SamplingError::invalid("URLPath", "x".repeat(1000), "too long");
        assert!(e.to_string().len() < 200, "{e}");
        assert!(e.to_string().contains("…'"), "{e}");
    }
}
