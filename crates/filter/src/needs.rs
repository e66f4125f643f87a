//! Which parts of a trace summary an expression reads.
//!
//! A store that keeps a summary's parts separately (so a scan can decode only some of
//! them) asks [`Filter::needs`](crate::Filter::needs) which parts evaluation may touch
//! and decodes those. The answer over-approximates: a part it leaves out is never
//! read by [`Filter::matches`](crate::Filter::matches) nor by the expression's
//! [`Pushdown`](crate::Pushdown). The scalar fields (times, durations, the four
//! status flags, ids, counts) are always available and not listed.

use crate::ast::{BoolKey, Expr, NumberKey, StringKey};

/// A set of summary parts (a bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Needs(u16);

impl Needs {
    /// Nothing beyond the scalars.
    pub const NONE: Needs = Needs(0);
    /// The root request (`http`).
    pub const HTTP: Needs = Needs(1);
    /// `annotations`.
    pub const ANNOTATIONS: Needs = Needs(1 << 1);
    /// `users`.
    pub const USERS: Needs = Needs(1 << 2);
    /// `services` (the evaluator never reads `entry_point`).
    pub const SERVICES: Needs = Needs(1 << 3);
    /// `instance_ids`, `availability_zones`, `resource_arns`.
    pub const RESOURCES: Needs = Needs(1 << 4);
    /// `nodes` with their calls.
    pub const NODES: Needs = Needs(1 << 5);
    /// `edges` with their calls.
    pub const EDGES: Needs = Needs(1 << 6);
    /// The three root-cause lists.
    pub const ROOT_CAUSES: Needs = Needs(1 << 7);
    /// Every part.
    pub const ALL: Needs = Needs((1 << 8) - 1);

    /// Both sets.
    pub const fn union(self, other: Needs) -> Needs {
        Needs(self.0 | other.0)
    }

    /// True when every part of `other` is in `self`.
    pub const fn contains(self, other: Needs) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Needs {
    type Output = Needs;

    fn bitor(self, rhs: Needs) -> Needs {
        self.union(rhs)
    }
}

impl std::ops::BitOrAssign for Needs {
    fn bitor_assign(&mut self, rhs: Needs) {
        *self = self.union(rhs);
    }
}

/// The parts `expr` reads. Recursion follows the tree, whose depth the parser bounds.
pub(crate) fn needs(expr: &Expr) -> Needs {
    let sub = |f: &Option<Box<Expr>>| f.as_deref().map_or(Needs::NONE, needs);
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            items.iter().fold(Needs::NONE, |acc, e| acc | needs(e))
        }
        Expr::Not(inner) => needs(inner),
        // At trace level `inferred` asks the nodes; in a node, edge or root-cause
        // scope the keys read the record the enclosing clause already needs.
        Expr::Bool { key, .. } => match key {
            BoolKey::Inferred => Needs::NODES,
            _ => Needs::NONE,
        },
        Expr::Number { key, .. } => match key {
            NumberKey::HttpStatus => Needs::HTTP,
            _ => Needs::NONE,
        },
        Expr::Text { key, .. } => match key {
            StringKey::User => Needs::USERS,
            StringKey::AvailabilityZone | StringKey::InstanceId | StringKey::ResourceArn => {
                Needs::RESOURCES
            }
            StringKey::HttpUrl
            | StringKey::HttpMethod
            | StringKey::HttpUserAgent
            | StringKey::HttpClientIp => Needs::HTTP,
            _ => Needs::NONE,
        },
        Expr::Annotation { .. } => Needs::ANNOTATIONS,
        Expr::Service { filter: None, .. } => Needs::SERVICES,
        Expr::Service { filter, .. } => Needs::SERVICES | Needs::NODES | sub(filter),
        // The pushdown reads the services an edge names.
        Expr::Edge { filter, .. } => Needs::SERVICES | Needs::EDGES | sub(filter),
        // A group's expression is not known here: assume it reads anything.
        Expr::Group { .. } => Needs::ALL,
        Expr::RootCause { filter, .. } => Needs::ROOT_CAUSES | sub(filter),
        Expr::RootCauseJson { .. } => Needs::ROOT_CAUSES,
    }
}

/// The annotation keys `expr` reads, or `None` when it may read any (a group
/// reference). Appends to `out`.
pub(crate) fn annotation_keys<'a>(expr: &'a Expr, out: &mut Vec<&'a str>) -> bool {
    let sub = |f: &'a Option<Box<Expr>>, out: &mut Vec<&'a str>| {
        f.as_deref().is_none_or(|e| annotation_keys(e, out))
    };
    match expr {
        Expr::And(items) | Expr::Or(items) => items.iter().all(|e| annotation_keys(e, out)),
        Expr::Not(inner) => annotation_keys(inner, out),
        Expr::Annotation { key, .. } => {
            if !out.contains(&key.as_str()) {
                out.push(key);
            }
            true
        }
        Expr::Service { filter, .. }
        | Expr::Edge { filter, .. }
        | Expr::RootCause { filter, .. } => sub(filter, out),
        Expr::Group { .. } => false,
        Expr::Bool { .. }
        | Expr::Number { .. }
        | Expr::Text { .. }
        | Expr::RootCauseJson { .. } => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Filter;

    fn of(text: &str) -> Needs {
        Filter::parse(text).expect("parses").needs()
    }

    #[test]
    fn parts_follow_the_keywords() {
        assert_eq!(of("responsetime > 1 AND fault"), Needs::NONE);
        assert_eq!(of("http.status = 500"), Needs::HTTP);
        assert_eq!(of(r#"http.url CONTAINS "x""#), Needs::HTTP);
        assert_eq!(of("annotation.n < 0"), Needs::ANNOTATIONS);
        assert_eq!(of(r#"user = "u""#), Needs::USERS);
        assert_eq!(of(r#"service("a")"#), Needs::SERVICES);
        assert_eq!(of("inferred"), Needs::NODES);
        assert_eq!(
            of(r#"service("a") { fault } OR annotation.k"#),
            Needs::SERVICES | Needs::NODES | Needs::ANNOTATIONS
        );
        assert_eq!(of(r#"edge("a", "b")"#), Needs::SERVICES | Needs::EDGES);
        assert_eq!(of(r#"group.name = "g""#), Needs::ALL);
        assert_eq!(
            of(r#"!(rootcause.fault.service { name = "x" })"#),
            Needs::ROOT_CAUSES
        );
        assert!(Needs::ALL.contains(Needs::EDGES | Needs::HTTP));
        let f = Filter::parse(r#"annotation.a = 1 OR !(annotation.b AND annotation.a > 2)"#)
            .expect("parses");
        assert_eq!(f.annotation_keys(), Some(vec!["a", "b"]));
        let f = Filter::parse(r#"annotation.a OR group.name = "g""#).expect("parses");
        assert_eq!(f.annotation_keys(), None);
        assert!(!Needs::HTTP.contains(Needs::USERS));
    }
}
