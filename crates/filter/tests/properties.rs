//! Property tests: printing then parsing gives the same tree, the parser never panics
//! on any text (arbitrary strings and soups of the language's own tokens, the stable
//! stand-in for a `cargo fuzz` target), the evaluator never panics, and the pushdown
//! is conservative (a matching trace is always admitted).

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use roentgen_filter::ast::{
    BoolKey, CmpOp, EntityPattern, ExceptionPattern, Expr, GroupBy, NodeId, NumberKey,
    RootCauseKind, RootCauseLevel, RootCausePattern, ServicePattern, StringKey, Value,
};
use roentgen_filter::{Filter, Groups, Needs, NoGroups, pushdown, pushdown_with_groups};
use roentgen_model::TraceId;
use roentgen_model::trace::{
    AnnotationEntry, CallStatus, EdgeSummary, HttpSummary, NodeSummary, RootCause, RootCauseEntity,
    RootCauseException, RootCauseService, ServiceKey, StoredAnnotation, TraceSummary, UserEntry,
};

const NAMES: &[&str] = &["web", "orders", "payments", "DynamoDB", "bank.example.com"];
const KINDS: &[&str] = &[
    "AWS::EC2::Instance",
    "AWS::ECS::Container",
    "AWS::DynamoDB",
    "remote",
];
const KEYS: &[&str] = &["vip", "age", "order_id", "tenant"];
const WORDS: &[&str] = &[
    "alice",
    "bob",
    "GET",
    "POST",
    "https://shop.example.com/a",
    "acme",
    "",
];

#[derive(Clone, Copy, Debug)]
enum Scope {
    Trace,
    Service,
    Edge,
    RootCause(RootCauseKind, RootCauseLevel),
}

fn bool_keys(scope: Scope) -> Vec<BoolKey> {
    use BoolKey::*;
    match scope {
        Scope::Trace => vec![Ok, Error, Fault, Throttle, Partial, Inferred],
        Scope::Service => vec![Ok, Error, Fault, Throttle, Partial, Inferred, Root],
        Scope::Edge => vec![Ok, Error, Fault, Throttle, Partial],
        Scope::RootCause(_, RootCauseLevel::Service) => vec![Inferred, First, Last],
        Scope::RootCause(_, RootCauseLevel::Entity) => vec![Remote, First, Last],
        Scope::RootCause(_, RootCauseLevel::Exception) => vec![First, Last],
    }
}

fn number_keys(scope: Scope) -> Vec<NumberKey> {
    use NumberKey::*;
    match scope {
        Scope::Trace => vec![ResponseTime, Duration, HttpStatus],
        Scope::Service | Scope::Edge => vec![ResponseTime, HttpStatus],
        Scope::RootCause(RootCauseKind::ResponseTime, RootCauseLevel::Entity) => {
            vec![Index, Coverage]
        }
        Scope::RootCause(..) => vec![Index],
    }
}

fn string_keys(scope: Scope) -> Vec<StringKey> {
    use StringKey::*;
    let http = vec![HttpUrl, HttpMethod, HttpUserAgent, HttpClientIp];
    match scope {
        Scope::Trace => [http, vec![User, AvailabilityZone, InstanceId, ResourceArn]].concat(),
        Scope::Service => [http, vec![Name, Type]].concat(),
        Scope::Edge => http,
        Scope::RootCause(_, RootCauseLevel::Service) => vec![Name, Type],
        Scope::RootCause(_, RootCauseLevel::Entity) => vec![Name],
        Scope::RootCause(_, RootCauseLevel::Exception) => vec![Name, Message],
    }
}

fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => proptest::sample::select(WORDS).prop_map(String::from),
        3 => proptest::sample::select(NAMES).prop_map(String::from),
        2 => "(?s).{0,8}",
    ]
    .boxed()
}

fn number() -> BoxedStrategy<f64> {
    prop_oneof![
        3 => (-2i32..10).prop_map(f64::from),
        2 => proptest::sample::select(vec![0.5, 1.25, 6.5, 0.05, 200.0, 404.0, 429.0, 500.0]),
        1 => proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL,
    ]
    .boxed()
}

fn number_op() -> impl Strategy<Value = CmpOp> {
    proptest::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
    ])
}

fn string_op() -> impl Strategy<Value = CmpOp> {
    proptest::sample::select(vec![
        CmpOp::Eq,
        CmpOp::Ne,
        CmpOp::Contains,
        CmpOp::BeginsWith,
        CmpOp::EndsWith,
    ])
}

fn node_id(allow_any: bool) -> BoxedStrategy<NodeId> {
    let name = proptest::option::of(prop_oneof![
        4 => proptest::sample::select(NAMES).prop_map(String::from),
        1 => text(),
    ]);
    let kind = proptest::option::of(proptest::sample::select(KINDS).prop_map(String::from));
    (name, kind)
        .prop_map(|(name, kind)| NodeId { name, kind })
        .prop_filter("edge nodes are named", move |n| allow_any || !n.is_any())
        .boxed()
}

fn annotation() -> BoxedStrategy<Expr> {
    let key = prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(String::from),
        1 => "[A-Za-z0-9_]{1,12}",
    ];
    let cmp = prop_oneof![
        1 => Just(None),
        1 => (string_op(), text()).prop_map(|(op, s)| Some((op, Value::String(s)))),
        1 => (number_op(), number()).prop_map(|(op, n)| Some((op, Value::Number(n)))),
        1 => (proptest::sample::select(vec![CmpOp::Eq, CmpOp::Ne]), any::<bool>())
            .prop_map(|(op, b)| Some((op, Value::Bool(b)))),
    ];
    (key, cmp)
        .prop_map(|(key, cmp)| Expr::Annotation { key, cmp })
        .boxed()
}

fn patterns() -> BoxedStrategy<Vec<RootCausePattern>> {
    let exception = (proptest::option::of(text()), proptest::option::of(text()))
        .prop_map(|(name, message)| ExceptionPattern { name, message });
    let entity = (
        proptest::option::of(text()),
        proptest::option::of(proptest::collection::vec(exception, 0..2)),
        proptest::option::of(any::<bool>()),
        proptest::option::of(0.0f64..1.0),
    )
        .prop_map(|(name, exceptions, remote, coverage)| EntityPattern {
            name,
            exceptions,
            remote,
            coverage,
        });
    let service = (
        proptest::option::of(proptest::sample::select(NAMES).prop_map(String::from)),
        proptest::option::of(proptest::sample::select(KINDS).prop_map(String::from)),
        proptest::option::of(any::<bool>()),
        proptest::option::of(proptest::collection::vec(entity, 0..3)),
    )
        .prop_map(|(name, kind, inferred, entity_path)| ServicePattern {
            name,
            names: None,
            kind,
            account_id: None,
            inferred,
            entity_path,
        });
    let cause = (
        proptest::option::of(proptest::collection::vec(service, 0..3)),
        proptest::option::of(any::<bool>()),
    )
        .prop_map(|(services, client_impacting)| RootCausePattern {
            services,
            client_impacting,
        });
    proptest::collection::vec(cause, 0..3).boxed()
}

/// Clauses valid in `scope` (complex ones only at the top level).
fn leaf(scope: Scope) -> BoxedStrategy<Expr> {
    let b = (proptest::sample::select(bool_keys(scope)), any::<bool>())
        .prop_map(|(key, value)| Expr::Bool { key, value });
    let n = (
        proptest::sample::select(number_keys(scope)),
        proptest::option::of((number_op(), number())),
    )
        .prop_map(|(key, cmp)| Expr::Number { key, cmp });
    let s = (
        proptest::sample::select(string_keys(scope)),
        proptest::option::of((string_op(), text())),
    )
        .prop_map(|(key, cmp)| Expr::Text { key, cmp });
    match scope {
        Scope::Trace => {
            let service = (node_id(true), proptest::option::of(expr(Scope::Service))).prop_map(
                |(node, f)| Expr::Service {
                    node,
                    filter: f.map(Box::new),
                },
            );
            let edge = (
                node_id(false),
                node_id(false),
                proptest::option::of(expr(Scope::Edge)),
            )
                .prop_map(|(source, target, f)| Expr::Edge {
                    source,
                    target,
                    filter: f.map(Box::new),
                });
            let group = (
                proptest::sample::select(vec![GroupBy::Name, GroupBy::Arn]),
                any::<bool>(),
                prop_oneof![Just("slow".to_string()), Just("loop".to_string()), text()],
            )
                .prop_map(|(by, negated, value)| Expr::Group { by, negated, value });
            let rc = proptest::sample::select(vec![
                (RootCauseKind::Fault, RootCauseLevel::Service),
                (RootCauseKind::Fault, RootCauseLevel::Entity),
                (RootCauseKind::Fault, RootCauseLevel::Exception),
                (RootCauseKind::Error, RootCauseLevel::Service),
                (RootCauseKind::Error, RootCauseLevel::Exception),
                (RootCauseKind::ResponseTime, RootCauseLevel::Service),
                (RootCauseKind::ResponseTime, RootCauseLevel::Entity),
            ])
            .prop_flat_map(|(kind, level)| {
                proptest::option::of(expr(Scope::RootCause(kind, level))).prop_map(move |f| {
                    Expr::RootCause {
                        kind,
                        level,
                        filter: f.map(Box::new),
                    }
                })
            });
            let json = (any::<bool>(), patterns())
                .prop_map(|(negated, causes)| Expr::RootCauseJson { negated, causes });
            prop_oneof![
                3 => b, 3 => n, 3 => s, 3 => annotation(), 2 => service, 2 => edge,
                1 => group, 2 => rc, 1 => json,
            ]
            .boxed()
        }
        _ => prop_oneof![b, n, s].boxed(),
    }
}

fn expr(scope: Scope) -> BoxedStrategy<Expr> {
    let depth = if matches!(scope, Scope::Trace) { 4 } else { 2 };
    leaf(scope)
        .prop_recursive(depth, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
        .boxed()
}

fn key(name: &str, kind: Option<&str>) -> ServiceKey {
    ServiceKey::new(name, kind.map(String::from), None)
}

fn http() -> impl Strategy<Value = HttpSummary> {
    (
        proptest::option::of(proptest::sample::select(WORDS).prop_map(String::from)),
        proptest::option::of(proptest::sample::select(vec![200u16, 404, 429, 500])),
        proptest::option::of(proptest::sample::select(vec!["GET", "POST"]).prop_map(String::from)),
    )
        .prop_map(|(url, status, method)| HttpSummary {
            url,
            status,
            method,
            user_agent: None,
            client_ip: None,
        })
}

fn call() -> impl Strategy<Value = CallStatus> {
    (
        any::<(bool, bool, bool, bool)>(),
        proptest::option::of(proptest::sample::select(vec![0.05, 0.5, 1.0, 6.5])),
        proptest::option::of(http()),
    )
        .prop_map(
            |((error, throttle, fault, in_progress), response_time, http)| CallStatus {
                error,
                throttle,
                fault,
                in_progress,
                response_time,
                http,
            },
        )
}

fn root_cause() -> impl Strategy<Value = RootCause> {
    let exception = (
        proptest::option::of(proptest::sample::select(WORDS).prop_map(String::from)),
        proptest::option::of(proptest::sample::select(WORDS).prop_map(String::from)),
    )
        .prop_map(|(name, message)| RootCauseException { name, message });
    let entity = (
        proptest::sample::select(NAMES),
        proptest::collection::vec(exception, 0..2),
        any::<bool>(),
        proptest::option::of(proptest::sample::select(vec![0.2, 0.75, 1.0])),
    )
        .prop_map(|(name, exceptions, remote, coverage)| RootCauseEntity {
            name: name.to_string(),
            exceptions,
            remote,
            coverage,
        });
    let service = (
        proptest::sample::select(NAMES),
        proptest::option::of(proptest::sample::select(KINDS)),
        any::<bool>(),
        proptest::collection::vec(entity, 0..3),
    )
        .prop_map(|(name, kind, inferred, entity_path)| RootCauseService {
            key: key(name, kind),
            inferred,
            entity_path,
        });
    (proptest::collection::vec(service, 1..4), any::<bool>()).prop_map(
        |(services, client_impacting)| RootCause {
            services,
            client_impacting,
        },
    )
}

/// Summaries shaped as derivation shapes them: `services` lists exactly the nodes,
/// and edges connect listed nodes.
fn summary() -> impl Strategy<Value = TraceSummary> {
    let nodes = proptest::collection::btree_map(
        (0..NAMES.len(), proptest::option::of(0..KINDS.len())),
        (
            any::<(bool, bool)>(),
            proptest::collection::vec(call(), 1..3),
        ),
        0..4,
    );
    let annotations = proptest::collection::btree_map(
        proptest::sample::select(KEYS).prop_map(String::from),
        proptest::collection::vec(
            prop_oneof![
                proptest::sample::select(WORDS)
                    .prop_map(|s| StoredAnnotation::String(s.to_string())),
                number().prop_map(StoredAnnotation::Number),
                any::<bool>().prop_map(StoredAnnotation::Bool),
            ],
            1..3,
        ),
        0..3,
    );
    let times = proptest::option::of(proptest::sample::select(vec![
        0.05, 0.5, 1.0, 1.25, 2.0, 6.5,
    ]));
    (
        nodes,
        annotations,
        (times.clone(), times),
        any::<(bool, bool, bool, bool)>(),
        proptest::option::of(http()),
        proptest::sample::subsequence(vec!["alice", "bob", "carol"], 0..3),
        proptest::collection::vec(
            (
                0usize..8,
                0usize..8,
                proptest::collection::vec(call(), 1..3),
            ),
            0..4,
        ),
        (
            proptest::collection::vec(root_cause(), 0..2),
            proptest::collection::vec(root_cause(), 0..2),
            proptest::collection::vec(root_cause(), 0..2),
        ),
    )
        .prop_map(
            |(nodes, annotations, (response_time, duration), flags, http, users, edges, rcs)| {
                let nodes: Vec<NodeSummary> = nodes
                    .into_iter()
                    .map(|((n, k), ((root, inferred), segments))| NodeSummary {
                        key: key(NAMES[n], k.map(|k| KINDS[k])),
                        root,
                        inferred,
                        segments,
                    })
                    .collect();
                let services: Vec<ServiceKey> = nodes.iter().map(|n| n.key.clone()).collect();
                let edges = if services.is_empty() {
                    Vec::new()
                } else {
                    edges
                        .into_iter()
                        .map(|(a, b, calls)| EdgeSummary {
                            source: services[a % services.len()].clone(),
                            target: services[b % services.len()].clone(),
                            calls,
                        })
                        .collect()
                };
                let annotations: BTreeMap<String, Vec<AnnotationEntry>> = annotations
                    .into_iter()
                    .map(|(k, values)| {
                        let entries = values
                            .into_iter()
                            .map(|value| AnnotationEntry {
                                value,
                                services: Vec::new(),
                            })
                            .collect();
                        (k, entries)
                    })
                    .collect();
                let (fault, error, throttle, partial) = flags;
                TraceSummary {
                    trace_id: "1-5759e988-bd862e3fe1be46a994272793"
                        .parse::<TraceId>()
                        .expect("valid id"),
                    start_time: 1.0,
                    end_time: duration.map(|d| 1.0 + d),
                    duration,
                    response_time,
                    has_fault: fault,
                    has_error: error,
                    has_throttle: throttle,
                    is_partial: partial,
                    http,
                    annotations,
                    users: users
                        .into_iter()
                        .map(|u| UserEntry {
                            user: u.to_string(),
                            services: Vec::new(),
                        })
                        .collect(),
                    entry_point: services.first().cloned(),
                    services,
                    instance_ids: Vec::new(),
                    availability_zones: Vec::new(),
                    resource_arns: Vec::new(),
                    document_count: 1,
                    nodes,
                    edges,
                    fault_root_causes: rcs.0,
                    error_root_causes: rcs.1,
                    response_time_root_causes: rcs.2,
                }
            },
        )
}

fn groups() -> Groups {
    let mut g = Groups::new();
    let parse = |s: &str| Filter::parse(s).expect("valid");
    g.insert(
        "slow",
        "arn:slow",
        Some(parse(r#"responsetime > 1 AND service("web")"#)),
    );
    g.insert(
        "loop",
        "arn:loop",
        Some(parse(r#"fault OR group.name = "loop""#)),
    );
    g
}

/// Text made of the language's own tokens, so the parser's deeper paths are reached.
fn token_soup() -> impl Strategy<Value = String> {
    let tokens = vec![
        "ok",
        "fault",
        "error",
        "!",
        "NOT",
        "AND",
        "OR",
        "and",
        "(",
        ")",
        "{",
        "}",
        ",",
        ":",
        "=",
        "!=",
        "<",
        ">=",
        "CONTAINS",
        "service",
        "edge",
        "id",
        "name",
        "type",
        "\"web\"",
        "\"a\\\"b\"",
        "5",
        "-1.5e3",
        "responsetime",
        "http.url",
        "annotation.k",
        "annotation.",
        "group.name",
        "rootcause.fault.service",
        "rootcause.responsetime.entity",
        "coverage",
        "json",
        "#[",
        "#[{\"Services\":[]}]",
        "]",
        "true",
        "false",
        "user",
        "root",
        "\"",
        "\\u",
        "é",
        "1e999",
        "&&",
    ];
    (
        proptest::collection::vec(proptest::sample::select(tokens), 0..30),
        any::<bool>(),
    )
        .prop_map(|(t, spaced)| t.join(if spaced { " " } else { "" }))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn print_then_parse_gives_the_same_tree(e in expr(Scope::Trace)) {
        let filter = Filter::from(e);
        let text = filter.to_string();
        let back = Filter::parse(&text);
        prop_assert!(back.is_ok(), "{text}: {:?}", back.err().map(|e| e.to_string()));
        prop_assert_eq!(back.ok(), Some(filter), "{}", text);
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in "(?s).{0,200}") {
        if let Ok(f) = Filter::parse(&s) {
            // Whatever parses prints to text that parses to the same tree.
            prop_assert_eq!(Filter::parse(&f.to_string()).ok(), Some(f));
        }
    }

    #[test]
    fn parser_never_panics_on_token_soup(s in token_soup()) {
        if let Ok(f) = Filter::parse(&s) {
            prop_assert_eq!(Filter::parse(&f.to_string()).ok(), Some(f));
        } else if let Err(e) = Filter::parse(&s) {
            prop_assert!(e.span.start <= e.span.end && e.span.end <= s.len());
            let _ = format!("{e:#}");
        }
    }

    #[test]
    fn evaluator_never_panics(e in expr(Scope::Trace), s in summary()) {
        let filter = Filter::from(e);
        let _ = filter.matches(&s, &NoGroups);
        let _ = filter.matches(&s, &groups());
        for fixture in common::summaries().iter().take(3) {
            let _ = filter.matches(fixture, &groups());
        }
    }

    #[test]
    fn pushdown_is_conservative(e in expr(Scope::Trace), s in summary()) {
        let filter = Filter::from(e);
        let g = groups();
        if filter.matches(&s, &g) {
            prop_assert!(pushdown_with_groups(&filter, &g).admits(&s), "{} {:?}", filter, pushdown_with_groups(&filter, &g));
        }
        if filter.matches(&s, &NoGroups) {
            prop_assert!(pushdown(&filter).admits(&s), "{} {:?}", filter, pushdown(&filter));
        }
    }
}

/// `s` with every part outside `needs` emptied, as a store that decodes only those
/// parts hands it to the evaluator.
/// Evaluation never reads the services of annotation entries and users, nor the entry
/// point: a scan leaves them out whatever the parts.
fn keep_only(s: &TraceSummary, needs: Needs) -> TraceSummary {
    let mut r = s.clone();
    r.entry_point = None;
    for entries in r.annotations.values_mut() {
        for e in entries {
            e.services.clear();
        }
    }
    for u in &mut r.users {
        u.services.clear();
    }
    let drop = |part: Needs| !needs.contains(part);
    if drop(Needs::HTTP) {
        r.http = None;
    }
    if drop(Needs::ANNOTATIONS) {
        r.annotations.clear();
    }
    if drop(Needs::USERS) {
        r.users.clear();
    }
    if drop(Needs::SERVICES) {
        r.services.clear();
    }
    if drop(Needs::RESOURCES) {
        r.instance_ids.clear();
        r.availability_zones.clear();
        r.resource_arns.clear();
    }
    if drop(Needs::NODES) {
        r.nodes.clear();
    }
    if drop(Needs::EDGES) {
        r.edges.clear();
    }
    if drop(Needs::ROOT_CAUSES) {
        r.fault_root_causes.clear();
        r.error_root_causes.clear();
        r.response_time_root_causes.clear();
    }
    r
}

fn needs_holds(filter: &Filter, s: &TraceSummary) -> Result<(), TestCaseError> {
    let needs = filter.needs();
    let mut reduced = keep_only(s, needs);
    if let Some(keys) = filter.annotation_keys() {
        reduced
            .annotations
            .retain(|k, _| keys.contains(&k.as_str()));
    }
    for g in [&groups() as &dyn roentgen_filter::GroupResolver, &NoGroups] {
        prop_assert_eq!(
            filter.matches(s, g),
            filter.matches(&reduced, g),
            "{} reads outside {:?}",
            filter,
            needs
        );
    }
    prop_assert_eq!(
        pushdown(filter).admits(s),
        pushdown(filter).admits(&reduced),
        "pushdown of {} reads outside {:?}",
        filter,
        needs
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn needs_names_every_part_evaluation_reads(e in expr(Scope::Trace), s in summary()) {
        needs_holds(&Filter::from(e), &s)?;
    }
}

#[test]
fn needs_names_every_part_evaluation_reads_over_the_fixtures() {
    use proptest::test_runner::{Config, TestRunner};
    let summaries = common::summaries();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    runner
        .run(&expr(Scope::Trace), |e| {
            let filter = Filter::from(e);
            for s in &summaries {
                needs_holds(&filter, s)?;
            }
            Ok(())
        })
        .expect("needs covers what evaluation reads");
}

#[test]
fn pushdown_is_conservative_over_the_fixtures() {
    // Every tree from a fixed-seed run over the real derived summaries.
    use proptest::test_runner::{Config, TestRunner};
    let summaries = common::summaries();
    let g = groups();
    let mut runner = TestRunner::new(Config {
        cases: 2000,
        ..Config::default()
    });
    runner
        .run(&expr(Scope::Trace), |e| {
            let filter = Filter::from(e);
            let push = pushdown_with_groups(&filter, &g);
            for s in &summaries {
                if filter.matches(s, &g) {
                    prop_assert!(push.admits(s), "{} {:?}", filter, push);
                }
            }
            Ok(())
        })
        .expect("conservative");
}
