//! What a store can narrow by before it evaluates an expression on summaries.
//!
//! [`pushdown`] derives, from the expression alone, facts that every matching trace
//! has: services it must contain, annotation keys it must carry, values of its
//! fault/error/throttle/partial flags, and bounds on its response time and duration.
//! The facts are conservative: a trace that matches the expression always satisfies
//! them ([`Pushdown::admits`] is the reference check), so a store may skip every trace
//! that does not and evaluate the expression on the rest.
//!
//! How facts combine: an `AND` keeps the facts of every operand; an `OR` keeps only
//! what all its operands imply (a service required by one branch and another by the
//! other becomes "one of the two"); `!`/`NOT` is pushed down to the clauses (De
//! Morgan), where the negation of a boolean keyword is exact and the negation of
//! anything else implies nothing. Sub-filters inside `service() { }`, `edge() { }`
//! and root-cause blocks add nothing beyond the presence of the named services.

use std::collections::BTreeSet;

use roentgen_model::trace::TraceSummary;

use crate::Filter;
use crate::ast::{BoolKey, CmpOp, Expr, NumberKey};
use crate::eval::{GroupFilter, GroupResolver, MAX_GROUP_DEPTH, NoGroups};

/// Most "one of" clauses kept for services or annotation keys; past it clauses are
/// dropped, which only weakens (never breaks) the pushdown.
const MAX_CLAUSES: usize = 16;

/// Most alternatives in one "one of" clause; a wider clause is dropped.
const MAX_ALTERNATIVES: usize = 16;

/// One end of a [`Range`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// The limit, in seconds.
    pub value: f64,
    /// The limit itself is in the range.
    pub inclusive: bool,
}

/// Bounds on a number a matching trace must have. When either end is set, the value
/// must be present (a comparison with a missing value does not match).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Range {
    /// Lower end.
    pub min: Option<Bound>,
    /// Upper end.
    pub max: Option<Bound>,
}

impl Range {
    /// True when no end is set.
    pub fn is_unbounded(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    /// True when `value` satisfies the range (a missing value satisfies only an
    /// unbounded range).
    pub fn admits(&self, value: Option<f64>) -> bool {
        if self.is_unbounded() {
            return true;
        }
        let Some(v) = value else {
            return false;
        };
        let above = self.min.is_none_or(|b| {
            if b.inclusive {
                v >= b.value
            } else {
                v > b.value
            }
        });
        let below = self.max.is_none_or(|b| {
            if b.inclusive {
                v <= b.value
            } else {
                v < b.value
            }
        });
        above && below
    }

    fn from_cmp(op: CmpOp, n: f64) -> Option<Self> {
        let incl = |inclusive| {
            Some(Bound {
                value: n,
                inclusive,
            })
        };
        Some(match op {
            CmpOp::Eq => Range {
                min: incl(true),
                max: incl(true),
            },
            CmpOp::Lt => Range {
                min: None,
                max: incl(false),
            },
            CmpOp::Le => Range {
                min: None,
                max: incl(true),
            },
            CmpOp::Gt => Range {
                min: incl(false),
                max: None,
            },
            CmpOp::Ge => Range {
                min: incl(true),
                max: None,
            },
            _ => return None,
        })
    }

    /// Both ranges at once; `None` when nothing satisfies both.
    fn intersect(self, other: Range) -> Option<Range> {
        let min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(
                if a.value > b.value || (a.value == b.value && !a.inclusive) {
                    a
                } else {
                    b
                },
            ),
            (a, b) => a.or(b),
        };
        let max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(
                if a.value < b.value || (a.value == b.value && !a.inclusive) {
                    a
                } else {
                    b
                },
            ),
            (a, b) => a.or(b),
        };
        if let (Some(lo), Some(hi)) = (min, max)
            && (lo.value > hi.value || (lo.value == hi.value && !(lo.inclusive && hi.inclusive)))
        {
            return None;
        }
        Some(Range { min, max })
    }

    /// The smallest range holding both.
    fn hull(self, other: Range) -> Range {
        let min = match (self.min, other.min) {
            (Some(a), Some(b)) => Some(
                if a.value < b.value || (a.value == b.value && a.inclusive) {
                    a
                } else {
                    b
                },
            ),
            _ => None,
        };
        let max = match (self.max, other.max) {
            (Some(a), Some(b)) => Some(
                if a.value > b.value || (a.value == b.value && a.inclusive) {
                    a
                } else {
                    b
                },
            ),
            _ => None,
        };
        // An unbounded side of either operand leaves that side open; if one operand
        // is entirely unbounded, so is the hull (presence is no longer implied).
        if self.is_unbounded() || other.is_unbounded() {
            return Range::default();
        }
        Range { min, max }
    }
}

/// Facts every trace matching an expression has; see the module documentation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Pushdown {
    /// No trace can match (for example `fault AND !fault`).
    pub matches_nothing: bool,
    /// For each inner list, the trace contains a service (node) named like one of its
    /// entries. An empty outer list requires nothing.
    pub services: Vec<Vec<String>>,
    /// For each inner list, the trace carries an annotation with one of these keys.
    pub annotation_keys: Vec<Vec<String>>,
    /// Required `has_fault`.
    pub has_fault: Option<bool>,
    /// Required `has_error`.
    pub has_error: Option<bool>,
    /// Required `has_throttle`.
    pub has_throttle: Option<bool>,
    /// Required `is_partial`.
    pub is_partial: Option<bool>,
    /// Bounds on the response time.
    pub response_time: Range,
    /// Bounds on the duration.
    pub duration: Range,
}

impl Pushdown {
    fn nothing() -> Self {
        Self {
            matches_nothing: true,
            ..Self::default()
        }
    }

    /// True when the pushdown narrows nothing.
    pub fn is_unrestricted(&self) -> bool {
        *self == Self::default()
    }

    /// True when `summary` has every fact; a trace that matches the expression is
    /// always admitted.
    pub fn admits(&self, summary: &TraceSummary) -> bool {
        let flag = |want: Option<bool>, have: bool| want.is_none_or(|w| w == have);
        !self.matches_nothing
            && self
                .services
                .iter()
                .all(|any| any.iter().any(|name| summary.has_service(name)))
            && self
                .annotation_keys
                .iter()
                .all(|any| any.iter().any(|k| summary.annotations.contains_key(k)))
            && flag(self.has_fault, summary.has_fault)
            && flag(self.has_error, summary.has_error)
            && flag(self.has_throttle, summary.has_throttle)
            && flag(self.is_partial, summary.is_partial)
            && self.response_time.admits(summary.response_time)
            && self.duration.admits(summary.duration)
    }

    /// Both sets of facts (an `AND`).
    fn and(mut self, other: Pushdown) -> Pushdown {
        if self.matches_nothing || other.matches_nothing {
            return Self::nothing();
        }
        for c in other.services {
            add_clause(&mut self.services, c);
        }
        for c in other.annotation_keys {
            add_clause(&mut self.annotation_keys, c);
        }
        let mut conflict = false;
        for (mine, theirs) in [
            (&mut self.has_fault, other.has_fault),
            (&mut self.has_error, other.has_error),
            (&mut self.has_throttle, other.has_throttle),
            (&mut self.is_partial, other.is_partial),
        ] {
            match (*mine, theirs) {
                (Some(a), Some(b)) if a != b => conflict = true,
                (None, b) => *mine = b,
                _ => {}
            }
        }
        match (
            self.response_time.intersect(other.response_time),
            self.duration.intersect(other.duration),
        ) {
            (Some(rt), Some(d)) if !conflict => {
                self.response_time = rt;
                self.duration = d;
                self
            }
            _ => Self::nothing(),
        }
    }

    /// What both sets of facts have in common (an `OR`).
    fn or(self, other: Pushdown) -> Pushdown {
        if self.matches_nothing {
            return other;
        }
        if other.matches_nothing {
            return self;
        }
        let same = |a: Option<bool>, b: Option<bool>| if a == b { a } else { None };
        Pushdown {
            matches_nothing: false,
            services: cross(&self.services, &other.services),
            annotation_keys: cross(&self.annotation_keys, &other.annotation_keys),
            has_fault: same(self.has_fault, other.has_fault),
            has_error: same(self.has_error, other.has_error),
            has_throttle: same(self.has_throttle, other.has_throttle),
            is_partial: same(self.is_partial, other.is_partial),
            response_time: self.response_time.hull(other.response_time),
            duration: self.duration.hull(other.duration),
        }
    }
}

/// Adds a "one of" clause to a conjunction, skipping duplicates and respecting the
/// caps.
fn add_clause(clauses: &mut Vec<Vec<String>>, clause: Vec<String>) {
    if clause.is_empty() || clause.len() > MAX_ALTERNATIVES || clauses.len() >= MAX_CLAUSES {
        return;
    }
    if !clauses.contains(&clause) {
        clauses.push(clause);
    }
}

/// The conjunction implied by either of two conjunctions of "one of" clauses: every
/// union of a clause of each.
fn cross(a: &[Vec<String>], b: &[Vec<String>]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for x in a {
        for y in b {
            let union: BTreeSet<&String> = x.iter().chain(y).collect();
            add_clause(&mut out, union.into_iter().cloned().collect());
        }
    }
    out
}

fn requirements(e: &Expr, negated: bool, groups: &dyn GroupResolver, depth: usize) -> Pushdown {
    let all = |items: &[Expr]| {
        items
            .iter()
            .map(|i| requirements(i, negated, groups, depth))
            .reduce(Pushdown::and)
            .unwrap_or_default()
    };
    let any = |items: &[Expr]| {
        items
            .iter()
            .map(|i| requirements(i, negated, groups, depth))
            .reduce(Pushdown::or)
            .unwrap_or_default()
    };
    match e {
        Expr::And(items) if !negated => all(items),
        Expr::And(items) => any(items),
        Expr::Or(items) if !negated => any(items),
        Expr::Or(items) => all(items),
        Expr::Not(inner) => requirements(inner, !negated, groups, depth),
        Expr::Bool { key, value } => {
            let v = *value != negated;
            let mut p = Pushdown::default();
            match key {
                BoolKey::Fault => p.has_fault = Some(v),
                BoolKey::Error => p.has_error = Some(v),
                BoolKey::Throttle => p.has_throttle = Some(v),
                BoolKey::Partial => p.is_partial = Some(v),
                BoolKey::Ok if v => {
                    p.has_fault = Some(false);
                    p.has_error = Some(false);
                    p.has_throttle = Some(false);
                }
                _ => {}
            }
            p
        }
        Expr::Number {
            key: key @ (NumberKey::ResponseTime | NumberKey::Duration),
            cmp: Some((op, n)),
        } if !negated => {
            let mut p = Pushdown::default();
            if let Some(r) = Range::from_cmp(*op, *n) {
                match key {
                    NumberKey::ResponseTime => p.response_time = r,
                    _ => p.duration = r,
                }
            }
            p
        }
        Expr::Annotation { key, .. } if !negated => Pushdown {
            annotation_keys: vec![vec![key.clone()]],
            ..Pushdown::default()
        },
        Expr::Service { node, .. } if !negated => {
            let mut p = Pushdown::default();
            if let Some(name) = &node.name {
                add_clause(&mut p.services, vec![name.clone()]);
            }
            p
        }
        Expr::Edge { source, target, .. } if !negated => {
            let mut p = Pushdown::default();
            for name in [&source.name, &target.name].into_iter().flatten() {
                add_clause(&mut p.services, vec![name.clone()]);
            }
            p
        }
        Expr::Group {
            by,
            negated: ne,
            value,
        } if depth < MAX_GROUP_DEPTH => {
            match groups.group(*by, value) {
                // An unknown group matches nothing, whichever the operator.
                None if !negated => Pushdown::nothing(),
                Some(GroupFilter::Expr(f)) => {
                    requirements(f.expr(), negated != *ne, groups, depth + 1)
                }
                _ => Pushdown::default(),
            }
        }
        _ => Pushdown::default(),
    }
}

/// The facts every trace matching `filter` has, with `group.*` references opaque.
pub fn pushdown(filter: &Filter) -> Pushdown {
    requirements(filter.expr(), false, &NoGroups, MAX_GROUP_DEPTH)
}

/// The facts every trace matching `filter` has, looking through `group.*` references
/// with `groups` (the same resolver the evaluation will use).
pub fn pushdown_with_groups(filter: &Filter, groups: &dyn GroupResolver) -> Pushdown {
    requirements(filter.expr(), false, groups, 0)
}
