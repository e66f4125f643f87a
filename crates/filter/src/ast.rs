//! The syntax tree of a filter expression and its canonical printer.
//!
//! `And` and `Or` are n-ary, so a long chain of clauses is a wide node rather than a
//! deep one: the depth of a tree is bounded by the parser's nesting limit, and every
//! recursive walk over it (evaluation, printing, dropping) is bounded with it.
//!
//! `Display` prints canonical text: keywords in lower case, operator words in upper
//! case, strings double-quoted with JSON escapes, numbers in Rust's shortest
//! round-trip form, parentheses only where precedence needs them. Parsing the printed
//! text gives back an equal tree.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A parsed expression node.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every operand holds (`AND`, or clauses side by side). At least two operands.
    And(Vec<Expr>),
    /// Some operand holds (`OR`). At least two operands.
    Or(Vec<Expr>),
    /// The operand does not hold (`!` or `NOT`).
    Not(Box<Expr>),
    /// A boolean keyword: `ok`, `fault = false`, … (`!=` is folded into the value).
    Bool {
        /// The keyword.
        key: BoolKey,
        /// The value it must have.
        value: bool,
    },
    /// A number keyword, bare (the value is known) or compared.
    Number {
        /// The keyword.
        key: NumberKey,
        /// `None` for the bare keyword; else the comparison.
        cmp: Option<(CmpOp, f64)>,
    },
    /// A string keyword, bare (the value is set) or compared.
    Text {
        /// The keyword.
        key: StringKey,
        /// `None` for the bare keyword; else the comparison.
        cmp: Option<(CmpOp, String)>,
    },
    /// `annotation.KEY`, bare (set, and not `false`) or compared.
    Annotation {
        /// The annotation key, case preserved.
        key: String,
        /// `None` for the bare keyword; else the comparison.
        cmp: Option<(CmpOp, Value)>,
    },
    /// `service(…) { … }`.
    Service {
        /// Which nodes; both parts `None` for `service()` (any node).
        node: NodeId,
        /// The sub-filter, evaluated per segment of the node.
        filter: Option<Box<Expr>>,
    },
    /// `edge(…, …) { … }`.
    Edge {
        /// The caller.
        source: NodeId,
        /// The callee.
        target: NodeId,
        /// The sub-filter, evaluated per call on the edge.
        filter: Option<Box<Expr>>,
    },
    /// `group.name = "…"` or `group.arn = "…"`.
    Group {
        /// How the group is named.
        by: GroupBy,
        /// `=` or `!=`.
        negated: bool,
        /// The group's name or ARN.
        value: String,
    },
    /// `rootcause.{fault,error,responsetime}.{service,entity,exception} { … }`.
    RootCause {
        /// Which root causes.
        kind: RootCauseKind,
        /// Which elements of them the sub-filter enumerates.
        level: RootCauseLevel,
        /// The sub-filter; `None` when the keyword stands alone (any element).
        filter: Option<Box<Expr>>,
    },
    /// `rootcause.json = #[…]` (or `json = #[…]`).
    RootCauseJson {
        /// `!=` instead of `=`.
        negated: bool,
        /// The root-cause objects that must all be present.
        causes: Vec<RootCausePattern>,
    },
}

/// A literal compared with an annotation.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A quoted string.
    String(String),
    /// A number.
    Number(f64),
    /// `true` or `false`.
    Bool(bool),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `CONTAINS`
    Contains,
    /// `BEGINSWITH`
    BeginsWith,
    /// `ENDSWITH`
    EndsWith,
}

impl CmpOp {
    /// The operator as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Contains => "CONTAINS",
            Self::BeginsWith => "BEGINSWITH",
            Self::EndsWith => "ENDSWITH",
        }
    }

    /// True for `CONTAINS`, `BEGINSWITH` and `ENDSWITH`.
    pub fn is_string_only(self) -> bool {
        matches!(self, Self::Contains | Self::BeginsWith | Self::EndsWith)
    }

    /// True for `<`, `<=`, `>` and `>=`.
    pub fn is_ordering(self) -> bool {
        matches!(self, Self::Lt | Self::Le | Self::Gt | Self::Ge)
    }

    /// The operator as error messages name it: words bare, symbols in backticks.
    pub(crate) fn describe(self) -> String {
        if self.is_string_only() {
            self.as_str().to_string()
        } else {
            format!("`{}`", self.as_str())
        }
    }
}

macro_rules! keywords {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
        }

        impl $name {
            /// Every keyword of this type.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The keyword as written (lower case).
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The keyword spelled `word`, compared case-insensitively.
            pub fn from_word(word: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.as_str().eq_ignore_ascii_case(word))
            }
        }
    };
}

keywords! {
    /// Boolean keywords.
    BoolKey {
        /// No error, throttle or fault.
        Ok => "ok",
        /// Client error (4xx, including throttles).
        Error => "error",
        /// Server error (5xx).
        Fault => "fault",
        /// Throttled (429).
        Throttle => "throttle",
        /// Unfinished segments.
        Partial => "partial",
        /// Inferred nodes (trace), or an inferred node / root-cause service.
        Inferred => "inferred",
        /// First element of an enumerated root-cause list.
        First => "first",
        /// Last element of an enumerated root-cause list.
        Last => "last",
        /// Root-cause entity is a remote call.
        Remote => "remote",
        /// The node is the trace's entry point.
        Root => "root",
    }
}

keywords! {
    /// Number keywords.
    NumberKey {
        /// Response time, seconds.
        ResponseTime => "responsetime",
        /// Trace duration, seconds.
        Duration => "duration",
        /// HTTP response status.
        HttpStatus => "http.status",
        /// Position in an enumerated root-cause list (0-based).
        Index => "index",
        /// Root-cause entity's share of the response time.
        Coverage => "coverage",
    }
}

keywords! {
    /// String keywords.
    StringKey {
        /// Request URL.
        HttpUrl => "http.url",
        /// Request method.
        HttpMethod => "http.method",
        /// Request user agent.
        HttpUserAgent => "http.useragent",
        /// Caller's IP.
        HttpClientIp => "http.clientip",
        /// A user of the trace.
        User => "user",
        /// Node, root-cause service, entity or exception name.
        Name => "name",
        /// Node or root-cause service type.
        Type => "type",
        /// Root-cause exception message.
        Message => "message",
        /// An availability zone of the trace.
        AvailabilityZone => "availabilityzone",
        /// An EC2 instance id of the trace.
        InstanceId => "instance.id",
        /// A resource ARN of the trace.
        ResourceArn => "resource.arn",
    }
}

/// The node argument of `service()` and `edge()`: a name, or `id(name: …, type: …)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct NodeId {
    /// Node name; `None` matches any name.
    pub name: Option<String>,
    /// Node type (`AWS::EC2::Instance`, …); `None` matches any type.
    pub kind: Option<String>,
}

impl NodeId {
    /// True for `service()`: any node.
    pub fn is_any(&self) -> bool {
        self.name.is_none() && self.kind.is_none()
    }
}

/// How `group.*` names the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupBy {
    /// `group.name`
    Name,
    /// `group.arn`
    Arn,
}

/// Which root causes a `rootcause.*` keyword reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootCauseKind {
    /// `rootcause.fault.*`
    Fault,
    /// `rootcause.error.*`
    Error,
    /// `rootcause.responsetime.*`
    ResponseTime,
}

impl RootCauseKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Fault => "fault",
            Self::Error => "error",
            Self::ResponseTime => "responsetime",
        }
    }
}

/// Which elements of root causes a `rootcause.*` sub-filter enumerates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RootCauseLevel {
    /// The services of each root cause.
    Service,
    /// The entities of each root cause, across its services.
    Entity,
    /// The exceptions of each root cause, across its entities (fault and error only).
    Exception,
}

impl RootCauseLevel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Entity => "entity",
            Self::Exception => "exception",
        }
    }
}

/// The keyword text of a root-cause keyword, `rootcause.fault.service`.
pub(crate) fn root_cause_keyword(kind: RootCauseKind, level: RootCauseLevel) -> String {
    format!("rootcause.{}.{}", kind.as_str(), level.as_str())
}

/// One root-cause object of a `rootcause.json = #[…]` literal: the API's
/// `FaultRootCause`/`ErrorRootCause`/`ResponseTimeRootCause` shape, every field
/// optional. Unknown fields are rejected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct RootCausePattern {
    /// The services, in order; when given, the root cause has exactly these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<ServicePattern>>,
    /// `ClientImpacting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_impacting: Option<bool>,
}

/// A service of a [`RootCausePattern`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ServicePattern {
    /// `Name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Names`: each must be a name of the service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// `Type`.
    #[serde(default, rename = "Type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `AccountId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    /// `Inferred`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inferred: Option<bool>,
    /// `EntityPath`, in order; when given, the service has exactly these entities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_path: Option<Vec<EntityPattern>>,
}

/// An entity of a [`ServicePattern`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct EntityPattern {
    /// `Name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Exceptions`, in order; when given, the entity has exactly these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exceptions: Option<Vec<ExceptionPattern>>,
    /// `Remote`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<bool>,
    /// `Coverage` (compared within 1e-6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<f64>,
}

/// An exception of an [`EntityPattern`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ExceptionPattern {
    /// `Name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `Message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Writes `s` as a double-quoted string with JSON escapes.
pub(crate) fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c if (c as u32) < 0x20 || c == '\u{7f}' => write!(f, "\\u{:04x}", c as u32)?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

fn write_node(f: &mut fmt::Formatter<'_>, node: &NodeId) -> fmt::Result {
    match (&node.name, &node.kind) {
        (None, None) => Ok(()),
        (Some(name), None) => write_quoted(f, name),
        (name, kind) => {
            f.write_str("id(")?;
            if let Some(name) = name {
                f.write_str("name: ")?;
                write_quoted(f, name)?;
                if kind.is_some() {
                    f.write_str(", ")?;
                }
            }
            if let Some(kind) = kind {
                f.write_str("type: ")?;
                write_quoted(f, kind)?;
            }
            f.write_str(")")
        }
    }
}

fn write_block(f: &mut fmt::Formatter<'_>, filter: &Option<Box<Expr>>) -> fmt::Result {
    match filter {
        Some(e) => write!(f, " {{ {e} }}"),
        None => Ok(()),
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::String(s) => write_quoted(f, s),
            Value::Number(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

impl Expr {
    fn write_operand(&self, f: &mut fmt::Formatter<'_>, parent_is_and: bool) -> fmt::Result {
        let paren = match self {
            Expr::And(_) => parent_is_and,
            Expr::Or(_) => true,
            _ => false,
        };
        if paren {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(items) | Expr::Or(items) => {
                let is_and = matches!(self, Expr::And(_));
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(if is_and { " AND " } else { " OR " })?;
                    }
                    if is_and {
                        item.write_operand(f, true)?;
                    } else {
                        // AND binds tighter than OR: only a nested OR needs parentheses.
                        match item {
                            Expr::Or(_) => write!(f, "({item})")?,
                            _ => write!(f, "{item}")?,
                        }
                    }
                }
                Ok(())
            }
            Expr::Not(inner) => match inner.as_ref() {
                Expr::And(_) | Expr::Or(_) => write!(f, "!({inner})"),
                _ => write!(f, "!{inner}"),
            },
            Expr::Bool { key, value } => {
                if *value {
                    f.write_str(key.as_str())
                } else {
                    write!(f, "{} = false", key.as_str())
                }
            }
            Expr::Number { key, cmp } => {
                f.write_str(key.as_str())?;
                if let Some((op, n)) = cmp {
                    write!(f, " {} {n}", op.as_str())?;
                }
                Ok(())
            }
            Expr::Text { key, cmp } => {
                f.write_str(key.as_str())?;
                if let Some((op, s)) = cmp {
                    write!(f, " {} ", op.as_str())?;
                    write_quoted(f, s)?;
                }
                Ok(())
            }
            Expr::Annotation { key, cmp } => {
                write!(f, "annotation.{key}")?;
                if let Some((op, v)) = cmp {
                    write!(f, " {} {v}", op.as_str())?;
                }
                Ok(())
            }
            Expr::Service { node, filter } => {
                f.write_str("service(")?;
                write_node(f, node)?;
                f.write_str(")")?;
                write_block(f, filter)
            }
            Expr::Edge {
                source,
                target,
                filter,
            } => {
                f.write_str("edge(")?;
                write_node(f, source)?;
                f.write_str(", ")?;
                write_node(f, target)?;
                f.write_str(")")?;
                write_block(f, filter)
            }
            Expr::Group { by, negated, value } => {
                let by = match by {
                    GroupBy::Name => "group.name",
                    GroupBy::Arn => "group.arn",
                };
                write!(f, "{by} {} ", if *negated { "!=" } else { "=" })?;
                write_quoted(f, value)
            }
            Expr::RootCause {
                kind,
                level,
                filter,
            } => {
                f.write_str(&root_cause_keyword(*kind, *level))?;
                write_block(f, filter)
            }
            Expr::RootCauseJson { negated, causes } => {
                let json = serde_json::to_string(causes).map_err(|_| fmt::Error)?;
                write!(
                    f,
                    "rootcause.json {} #{json}",
                    if *negated { "!=" } else { "=" }
                )
            }
        }
    }
}
