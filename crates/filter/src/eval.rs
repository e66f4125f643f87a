//! Evaluation of a parsed expression over a trace summary.
//!
//! Evaluation walks the tree with borrowed views of the summary and never allocates.
//! Its recursion depth is that of the tree (bounded by the parser's nesting limit)
//! plus, for `group.*` references, at most [`MAX_GROUP_DEPTH`] nested groups.

use roentgen_model::trace::{
    CallStatus, HttpSummary, NodeSummary, RootCause, RootCauseEntity, RootCauseException,
    RootCauseService, ServiceKey, StoredAnnotation, TraceSummary,
};

use crate::Filter;
use crate::ast::{
    BoolKey, CmpOp, EntityPattern, Expr, GroupBy, NodeId, NumberKey, RootCauseKind, RootCauseLevel,
    RootCausePattern, ServicePattern, StringKey, Value,
};

/// Deepest chain of `group.*` references followed (a group whose expression refers to
/// itself, directly or not, stops there and does not match).
pub const MAX_GROUP_DEPTH: usize = 8;

/// What a `group.name` / `group.arn` reference resolves to.
#[derive(Debug, Clone, Copy)]
pub enum GroupFilter<'a> {
    /// The group has no filter expression: every trace belongs to it.
    All,
    /// The group's parsed filter expression.
    Expr(&'a Filter),
}

/// Looks groups up for `group.name = "…"` and `group.arn = "…"`. The store keeps the
/// groups' expressions parsed, so evaluation does not parse per trace.
pub trait GroupResolver {
    /// The group named `key` (by name or by ARN), or `None` when there is no such
    /// group.
    fn group(&self, by: GroupBy, key: &str) -> Option<GroupFilter<'_>>;
}

/// A resolver that knows no group: every `group.*` reference is false.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoGroups;

impl GroupResolver for NoGroups {
    fn group(&self, _: GroupBy, _: &str) -> Option<GroupFilter<'_>> {
        None
    }
}

/// A simple in-memory [`GroupResolver`].
#[derive(Debug, Clone, Default)]
pub struct Groups {
    groups: Vec<(String, String, Option<Filter>)>,
}

impl Groups {
    /// No groups.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) a group with its name, ARN and parsed expression (`None`:
    /// every trace belongs to it).
    pub fn insert(
        &mut self,
        name: impl Into<String>,
        arn: impl Into<String>,
        filter: Option<Filter>,
    ) {
        let name = name.into();
        self.groups.retain(|(n, _, _)| *n != name);
        self.groups.push((name, arn.into(), filter));
    }
}

impl GroupResolver for Groups {
    fn group(&self, by: GroupBy, key: &str) -> Option<GroupFilter<'_>> {
        let (_, _, f) = self.groups.iter().find(|(name, arn, _)| match by {
            GroupBy::Name => name == key,
            GroupBy::Arn => arn == key,
        })?;
        Some(match f {
            Some(f) => GroupFilter::Expr(f),
            None => GroupFilter::All,
        })
    }
}

/// What the clause under evaluation reads.
#[derive(Clone, Copy)]
enum Ctx<'a> {
    Trace,
    Node(&'a NodeSummary, &'a CallStatus),
    Edge(&'a CallStatus),
    Service(&'a RootCauseService, Position),
    Entity(&'a RootCauseEntity, Position),
    Exception(&'a RootCauseException, Position),
}

/// Position of an element in an enumerated root-cause list.
#[derive(Clone, Copy)]
struct Position {
    index: usize,
    count: usize,
}

struct Eval<'a> {
    summary: &'a TraceSummary,
    groups: &'a dyn GroupResolver,
}

fn compare_number(actual: f64, op: CmpOp, wanted: f64) -> bool {
    match op {
        CmpOp::Eq => actual == wanted,
        CmpOp::Ne => actual != wanted,
        CmpOp::Lt => actual < wanted,
        CmpOp::Le => actual <= wanted,
        CmpOp::Gt => actual > wanted,
        CmpOp::Ge => actual >= wanted,
        CmpOp::Contains | CmpOp::BeginsWith | CmpOp::EndsWith => false,
    }
}

fn compare_text(actual: &str, op: CmpOp, wanted: &str) -> bool {
    match op {
        CmpOp::Eq => actual == wanted,
        CmpOp::Ne => actual != wanted,
        CmpOp::Contains => actual.contains(wanted),
        CmpOp::BeginsWith => actual.starts_with(wanted),
        CmpOp::EndsWith => actual.ends_with(wanted),
        CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => false,
    }
}

fn http_text(http: Option<&HttpSummary>, key: StringKey) -> Option<&str> {
    let h = http?;
    match key {
        StringKey::HttpUrl => h.url.as_deref(),
        StringKey::HttpMethod => h.method.as_deref(),
        StringKey::HttpUserAgent => h.user_agent.as_deref(),
        StringKey::HttpClientIp => h.client_ip.as_deref(),
        _ => None,
    }
}

fn node_matches(id: &NodeId, key: &ServiceKey) -> bool {
    id.name.as_deref().is_none_or(|n| n == key.name)
        && id
            .kind
            .as_deref()
            .is_none_or(|k| key.kind.as_deref() == Some(k))
}

fn causes(summary: &TraceSummary, kind: RootCauseKind) -> &[RootCause] {
    match kind {
        RootCauseKind::Fault => &summary.fault_root_causes,
        RootCauseKind::Error => &summary.error_root_causes,
        RootCauseKind::ResponseTime => &summary.response_time_root_causes,
    }
}

impl<'a> Eval<'a> {
    fn eval(&self, e: &Expr, ctx: Ctx<'a>, depth: usize) -> bool {
        match e {
            Expr::And(items) => items.iter().all(|i| self.eval(i, ctx, depth)),
            Expr::Or(items) => items.iter().any(|i| self.eval(i, ctx, depth)),
            Expr::Not(inner) => !self.eval(inner, ctx, depth),
            Expr::Bool { key, value } => self.bool_of(*key, ctx) == Some(*value),
            Expr::Number { key, cmp } => match (self.number_of(*key, ctx), cmp) {
                (Some(_), None) => true,
                (Some(v), Some((op, n))) => compare_number(v, *op, *n),
                (None, _) => false,
            },
            Expr::Text { key, cmp } => self.any_text(*key, ctx, |s| match cmp {
                None => true,
                Some((op, wanted)) => compare_text(s, *op, wanted),
            }),
            Expr::Annotation { key, cmp } => self.annotation(key, cmp.as_ref()),
            Expr::Service { node, filter } => self.service(node, filter.as_deref(), depth),
            Expr::Edge {
                source,
                target,
                filter,
            } => self.summary.edges.iter().any(|edge| {
                node_matches(source, &edge.source)
                    && node_matches(target, &edge.target)
                    && match filter {
                        None => true,
                        Some(f) => edge.calls.iter().any(|c| self.eval(f, Ctx::Edge(c), depth)),
                    }
            }),
            Expr::Group { by, negated, value } => {
                if depth >= MAX_GROUP_DEPTH {
                    return false;
                }
                match self.groups.group(*by, value) {
                    None => false,
                    Some(GroupFilter::All) => !*negated,
                    Some(GroupFilter::Expr(f)) => {
                        self.eval(f.expr(), Ctx::Trace, depth + 1) != *negated
                    }
                }
            }
            Expr::RootCause {
                kind,
                level,
                filter,
            } => self.root_cause(*kind, *level, filter.as_deref(), depth),
            Expr::RootCauseJson { negated, causes } => {
                let all = causes.iter().all(|p| {
                    [
                        &self.summary.fault_root_causes,
                        &self.summary.error_root_causes,
                        &self.summary.response_time_root_causes,
                    ]
                    .iter()
                    .any(|list| list.iter().any(|rc| root_cause_matches(p, rc)))
                });
                all != *negated
            }
        }
    }

    fn bool_of(&self, key: BoolKey, ctx: Ctx<'a>) -> Option<bool> {
        let s = self.summary;
        Some(match (ctx, key) {
            (Ctx::Trace, BoolKey::Ok) => {
                s.response_time.is_some() && !s.has_fault && !s.has_error && !s.has_throttle
            }
            (Ctx::Trace, BoolKey::Error) => s.has_error,
            (Ctx::Trace, BoolKey::Fault) => s.has_fault,
            (Ctx::Trace, BoolKey::Throttle) => s.has_throttle,
            (Ctx::Trace, BoolKey::Partial) => s.is_partial,
            (Ctx::Trace, BoolKey::Inferred) => s.has_inferred(),
            (Ctx::Node(_, c) | Ctx::Edge(c), BoolKey::Ok) => c.is_ok() && !c.in_progress,
            (Ctx::Node(_, c) | Ctx::Edge(c), BoolKey::Error) => c.error || c.throttle,
            (Ctx::Node(_, c) | Ctx::Edge(c), BoolKey::Fault) => c.fault,
            (Ctx::Node(_, c) | Ctx::Edge(c), BoolKey::Throttle) => c.throttle,
            (Ctx::Node(_, c) | Ctx::Edge(c), BoolKey::Partial) => c.in_progress,
            (Ctx::Node(n, _), BoolKey::Inferred) => n.inferred,
            (Ctx::Node(n, _), BoolKey::Root) => n.root,
            (Ctx::Service(svc, _), BoolKey::Inferred) => svc.inferred,
            (Ctx::Entity(ent, _), BoolKey::Remote) => ent.remote,
            (Ctx::Service(_, p) | Ctx::Entity(_, p) | Ctx::Exception(_, p), BoolKey::First) => {
                p.index == 0
            }
            (Ctx::Service(_, p) | Ctx::Entity(_, p) | Ctx::Exception(_, p), BoolKey::Last) => {
                p.index + 1 == p.count
            }
            // The parser rejects keywords outside their scope.
            _ => return None,
        })
    }

    fn number_of(&self, key: NumberKey, ctx: Ctx<'a>) -> Option<f64> {
        let s = self.summary;
        match (ctx, key) {
            (Ctx::Trace, NumberKey::ResponseTime) => s.response_time,
            (Ctx::Trace, NumberKey::Duration) => s.duration,
            (Ctx::Trace, NumberKey::HttpStatus) => s.http.as_ref()?.status.map(f64::from),
            (Ctx::Node(_, c) | Ctx::Edge(c), NumberKey::ResponseTime) => c.response_time,
            (Ctx::Node(_, c) | Ctx::Edge(c), NumberKey::HttpStatus) => {
                c.http.as_ref()?.status.map(f64::from)
            }
            (Ctx::Service(_, p) | Ctx::Entity(_, p) | Ctx::Exception(_, p), NumberKey::Index) => {
                Some(p.index as f64)
            }
            (Ctx::Entity(ent, _), NumberKey::Coverage) => ent.coverage,
            _ => None,
        }
    }

    /// True when some value of the string keyword satisfies `pred`.
    fn any_text(&self, key: StringKey, ctx: Ctx<'a>, pred: impl Fn(&str) -> bool) -> bool {
        let s = self.summary;
        let one = |v: Option<&str>| v.is_some_and(&pred);
        match (ctx, key) {
            (Ctx::Trace, StringKey::User) => s.users.iter().any(|u| pred(&u.user)),
            (Ctx::Trace, StringKey::AvailabilityZone) => {
                s.availability_zones.iter().any(|z| pred(z))
            }
            (Ctx::Trace, StringKey::InstanceId) => s.instance_ids.iter().any(|i| pred(i)),
            (Ctx::Trace, StringKey::ResourceArn) => s.resource_arns.iter().any(|a| pred(a)),
            (Ctx::Trace, k) => one(http_text(s.http.as_ref(), k)),
            (Ctx::Node(n, _), StringKey::Name) => pred(&n.key.name),
            (Ctx::Node(n, _), StringKey::Type) => one(n.key.kind.as_deref()),
            (Ctx::Node(_, c) | Ctx::Edge(c), k) => one(http_text(c.http.as_ref(), k)),
            (Ctx::Service(svc, _), StringKey::Name) => pred(&svc.key.name),
            (Ctx::Service(svc, _), StringKey::Type) => one(svc.key.kind.as_deref()),
            (Ctx::Entity(ent, _), StringKey::Name) => pred(&ent.name),
            (Ctx::Exception(x, _), StringKey::Name) => one(x.name.as_deref()),
            (Ctx::Exception(x, _), StringKey::Message) => one(x.message.as_deref()),
            _ => false,
        }
    }

    fn annotation(&self, key: &str, cmp: Option<&(CmpOp, Value)>) -> bool {
        let Some(entries) = self.summary.annotations.get(key) else {
            return false;
        };
        entries.iter().any(|entry| match (cmp, &entry.value) {
            // Bare: set, and a boolean annotation counts with its value.
            (None, StoredAnnotation::Bool(b)) => *b,
            (None, _) => true,
            (Some((op, Value::String(w))), StoredAnnotation::String(a)) => compare_text(a, *op, w),
            (Some((op, Value::Number(w))), StoredAnnotation::Number(a)) => {
                compare_number(*a, *op, *w)
            }
            (Some((CmpOp::Eq, Value::Bool(w))), StoredAnnotation::Bool(a)) => a == w,
            (Some((CmpOp::Ne, Value::Bool(w))), StoredAnnotation::Bool(a)) => a != w,
            _ => false,
        })
    }

    fn service(&self, node: &NodeId, filter: Option<&Expr>, depth: usize) -> bool {
        match filter {
            // Bare: read the service list, which summaries always had.
            None => self.summary.services.iter().any(|k| node_matches(node, k)),
            Some(f) => self.summary.nodes.iter().any(|n| {
                node_matches(node, &n.key)
                    && n.segments
                        .iter()
                        .any(|c| self.eval(f, Ctx::Node(n, c), depth))
            }),
        }
    }

    fn root_cause(
        &self,
        kind: RootCauseKind,
        level: RootCauseLevel,
        filter: Option<&Expr>,
        depth: usize,
    ) -> bool {
        let test = |ctx: Ctx<'a>| filter.is_none_or(|f| self.eval(f, ctx, depth));
        causes(self.summary, kind).iter().any(|rc| match level {
            RootCauseLevel::Service => {
                let count = rc.services.len();
                rc.services
                    .iter()
                    .enumerate()
                    .any(|(index, s)| test(Ctx::Service(s, Position { index, count })))
            }
            RootCauseLevel::Entity => {
                let count = rc.services.iter().map(|s| s.entity_path.len()).sum();
                rc.services
                    .iter()
                    .flat_map(|s| s.entity_path.iter())
                    .enumerate()
                    .any(|(index, e)| test(Ctx::Entity(e, Position { index, count })))
            }
            RootCauseLevel::Exception => {
                let all = || {
                    rc.services
                        .iter()
                        .flat_map(|s| s.entity_path.iter())
                        .flat_map(|e| e.exceptions.iter())
                };
                let count = all().count();
                all()
                    .enumerate()
                    .any(|(index, x)| test(Ctx::Exception(x, Position { index, count })))
            }
        })
    }
}

fn list_matches<P, T>(
    pattern: &Option<Vec<P>>,
    actual: &[T],
    one: impl Fn(&P, &T) -> bool,
) -> bool {
    match pattern {
        None => true,
        Some(ps) => ps.len() == actual.len() && ps.iter().zip(actual).all(|(p, a)| one(p, a)),
    }
}

fn opt_eq<T: PartialEq + ?Sized>(pattern: Option<&T>, actual: Option<&T>) -> bool {
    pattern.is_none_or(|p| actual == Some(p))
}

fn root_cause_matches(p: &RootCausePattern, rc: &RootCause) -> bool {
    opt_eq(p.client_impacting.as_ref(), Some(&rc.client_impacting))
        && list_matches(&p.services, &rc.services, service_matches)
}

fn service_matches(p: &ServicePattern, s: &RootCauseService) -> bool {
    opt_eq(p.name.as_deref(), Some(s.key.name.as_str()))
        && p.names
            .as_ref()
            .is_none_or(|names| names.iter().all(|n| *n == s.key.name))
        && opt_eq(p.kind.as_deref(), s.key.kind.as_deref())
        && opt_eq(p.account_id.as_deref(), s.key.account_id.as_deref())
        && opt_eq(p.inferred.as_ref(), Some(&s.inferred))
        && list_matches(&p.entity_path, &s.entity_path, entity_matches)
}

fn entity_matches(p: &EntityPattern, e: &RootCauseEntity) -> bool {
    opt_eq(p.name.as_deref(), Some(e.name.as_str()))
        && opt_eq(p.remote.as_ref(), Some(&e.remote))
        && p.coverage
            .is_none_or(|c| e.coverage.is_some_and(|a| (a - c).abs() < 1e-6))
        && list_matches(&p.exceptions, &e.exceptions, |px, x| {
            opt_eq(px.name.as_deref(), x.name.as_deref())
                && opt_eq(px.message.as_deref(), x.message.as_deref())
        })
}

/// Evaluates `expr` over `summary` at the top level.
pub(crate) fn matches(expr: &Expr, summary: &TraceSummary, groups: &dyn GroupResolver) -> bool {
    Eval { summary, groups }.eval(expr, Ctx::Trace, 0)
}
