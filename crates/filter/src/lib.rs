//! The X-Ray filter expression language: lexer, parser with positioned errors, syntax
//! tree, canonical printer, evaluator over trace summaries, and the pushdown a store
//! narrows by before it evaluates.
//!
//! This crate owns the language and nothing else: it depends on `roentgen-model` (for
//! [`TraceSummary`]) and must not do I/O or know about storage. Stores call
//! [`Filter::parse`], [`pushdown()`] and [`Filter::matches`].
//!
//! ```
//! use roentgen_filter::{Filter, NoGroups};
//!
//! let f = Filter::parse(r#"service("api") { fault } AND responsetime > 2"#).unwrap();
//! assert_eq!(f.to_string(), r#"service("api") { fault } AND responsetime > 2"#);
//! let err = Filter::parse(r#"http.url CONTAINS 42"#).unwrap_err();
//! assert_eq!(err.to_string(), "expected a string after CONTAINS at column 19");
//! # let _ = NoGroups;
//! ```
//!
//! # The language
//!
//! As AWS documents it ("Using filter expressions" in the X-Ray developer guide):
//! boolean keywords `ok error fault throttle partial inferred first last remote root`,
//! number keywords `responsetime duration http.status index coverage`, string keywords
//! `http.url http.method http.useragent http.clientip user name type message
//! availabilityzone instance.id resource.arn`, `annotation.KEY`, `service(…)`,
//! `edge(…, …)` with names or `id(name: …, type: …)` and an optional `{ sub-filter }`,
//! `group.name`/`group.arn`, `rootcause.{fault,error}.{service,entity,exception}` and
//! `rootcause.responsetime.{service,entity}` with an optional `{ sub-filter }`,
//! `rootcause.json = #[…]` (also spelled `json`), the operators `= != < <= > >=
//! CONTAINS BEGINSWITH ENDSWITH`, `AND`, `OR`, `!`/`NOT` and parentheses. See
//! [`parser`] for the grammar and [`lexer`] for tokens.
//!
//! # Choices where AWS documents nothing
//!
//! - **Case.** Keywords and operator words are case-insensitive (`responseTime`,
//!   `contains`); annotation keys and all values are case-sensitive, and string
//!   comparisons are case-sensitive.
//! - **Operators.** `NOT` is a synonym of `!`. `&&`, `||` and `==` are not part of the
//!   language (AWS documents only `AND`, `OR`, `!`, `=`); they are rejected with an
//!   error naming the operator to use.
//! - **Precedence.** `!`/`NOT` negates the clause (keyword with its comparison) or the
//!   parenthesised group right after it; then `AND` (or clauses side by side, as in
//!   the documented `ok !partial duration <3`); then `OR`.
//! - **Strings** are double-quoted with JSON escapes (`\"`, `\\`, `\/`, `\b`, `\f`,
//!   `\n`, `\r`, `\t`, `\uXXXX`); any other escape is an error. A bare word is also
//!   accepted as the value of a string keyword (`name = traces`, written so in an AWS
//!   example); the printer always quotes.
//! - **Numbers** are decimal: optional `-`, digits, optional fraction, optional
//!   exponent (`1.5e3`); `.5`, `5.`, `+5`, `5s` and values beyond a double's range
//!   are errors.
//! - **Types are checked while parsing**: `responsetime CONTAINS "x"`, `ok > 3`,
//!   `user = 5`, or a keyword outside the scope it means something in (`root` outside
//!   `service() { }`, `coverage` outside `rootcause.responsetime.entity { }`,
//!   annotations or `service()` inside a sub-filter) are parse errors with a position.
//! - **Bare keywords**: a boolean keyword is true when its value is; a number or
//!   string keyword is true when the value is set (`http.url AND responsetime > 2`); a
//!   bare `annotation.KEY` is true when the key is set with a value other than `false`
//!   (AWS: a complex keyword "of boolean type evaluates to the boolean value").
//! - **Missing values**: a comparison with a value the trace does not have is false,
//!   `!=` included (`http.status != 200` does not match a trace without HTTP data);
//!   negate the comparison to include such traces: `!(http.status = 200)`.
//! - **Several values** (`user`, `availabilityzone`, `instance.id`, `resource.arn`,
//!   an annotation set to different values by different segments): the comparison is
//!   true when any value satisfies it, so `user != "alice"` means "some user other than
//!   alice"; `!(user = "alice")` means "alice is not a user".
//! - **Annotation types**: a comparison applies to values of the literal's type only:
//!   `annotation.age > 29` ignores a string `age`. `<`, `<=`, `>`, `>=` need a number,
//!   `CONTAINS`, `BEGINSWITH`, `ENDSWITH` a string; `=` and `!=` take any literal.
//! - **Trace-level flags** are the summary's: `fault`/`error` mean the entry service
//!   (its segment or one of its subsegments) faulted/had a client error (throttles
//!   count as errors), `throttle` any throttle in the trace, `ok` none of the three
//!   and the entry segment finished (a trace still waiting for its response is not
//!   `ok`, nor is a node segment or call in progress), `partial` an unfinished
//!   (sub)segment, `inferred` an inferred node in the graph.
//!   `responsetime` is the entry segment's, `duration` the whole trace's, `http.*` the
//!   entry segment's request and response.
//! - **`service(…) { f }`** is true when some segment of a matching node satisfies `f`
//!   (for an inferred node: some call to it). Inside, `ok error fault throttle partial
//!   responsetime http.*` read that segment (`error` includes throttles; the flags
//!   include those of the subsegments the segment owns, embedded or sent separately, as
//!   the trace-level flags do for the entry service), `name`/`type`
//!   the node, `root` whether the node is the entry point, `inferred` whether it is
//!   inferred. `service()` matches any node. Without a block, a node must exist.
//!   `id(type: …)` compares types exactly: the Lambda function node
//!   (`AWS::Lambda::Function`) is not the Lambda service node (`AWS::Lambda`), and a
//!   DynamoDB call with a table is an `AWS::DynamoDB::Table` node (the model's type).
//! - **`edge(a, b) { f }`** is true when some call from a node matching `a` to a node
//!   matching `b` satisfies `f` (read from the caller's subsegment: `ok error fault
//!   throttle partial responsetime http.*`). The client → entry-point edge is not an
//!   edge here.
//! - **Root causes** (see `roentgen_model`'s derivation): `rootcause.K.service { f }` is
//!   true when some service of some root cause of kind K satisfies `f`; `.entity` and
//!   `.exception` enumerate the entities (across the services) and the exceptions
//!   (across the entities) of each root cause. `index` is 0-based, `first` is index 0,
//!   `last` the last element of that root cause's list. Services offer `name type
//!   inferred`, entities `name remote` (and `coverage` for response time), exceptions
//!   `name message`. Without a block, some root cause of kind K must exist.
//! - **`rootcause.json = #[…]`** is evaluated, not refused: each object of the array
//!   (the API's root-cause shape, fields optional, unknown fields rejected) must match
//!   some fault, error or response-time root cause; a given list (`Services`,
//!   `EntityPath`, `Exceptions`) must match element by element with the same length;
//!   `Coverage` matches within 1e-6. `!=` negates.
//! - **Groups**: `group.name = "g"` evaluates the group's expression through a
//!   [`GroupResolver`]; a group without an expression matches every trace; an unknown
//!   group makes the clause false with `=` and with `!=`; references nested deeper than
//!   [`eval::MAX_GROUP_DEPTH`] (a cycle) are false.
//! - **Limits**: parentheses, negations and sub-filters nest at most
//!   [`parser::MAX_NESTING`] deep; any input, of any length, parses to a tree or an
//!   error and never panics.

pub mod ast;
pub mod error;
pub mod eval;
pub mod lexer;
pub mod needs;
pub mod parser;
pub mod pushdown;

use std::fmt;
use std::str::FromStr;

use roentgen_model::trace::TraceSummary;

pub use ast::Expr;
pub use error::{ParseError, ParseErrorKind, Span};
pub use eval::{GroupFilter, GroupResolver, Groups, NoGroups};
pub use needs::Needs;
pub use pushdown::{Bound, Pushdown, Range, pushdown, pushdown_with_groups};

/// A parsed, type-checked filter expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    /// Parses and type-checks `input`.
    pub fn parse(input: &str) -> Result<Self, ParseError> {
        parser::parse(input).map(|expr| Self { expr })
    }

    /// The syntax tree.
    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// The parts of a summary that [`Filter::matches`] may read (see [`Needs`]).
    pub fn needs(&self) -> Needs {
        needs::needs(&self.expr)
    }

    /// The annotation keys [`Filter::matches`] reads (an annotation under any other
    /// key cannot change its answer), or `None` when it may read any.
    pub fn annotation_keys(&self) -> Option<Vec<&str>> {
        let mut out = Vec::new();
        needs::annotation_keys(&self.expr, &mut out).then_some(out)
    }

    /// True when the trace summarised by `summary` matches. `groups` resolves
    /// `group.name`/`group.arn` references ([`NoGroups`] when there are none).
    pub fn matches(&self, summary: &TraceSummary, groups: &dyn GroupResolver) -> bool {
        eval::matches(&self.expr, summary, groups)
    }
}

impl From<Expr> for Filter {
    /// Wraps a tree built by hand. Printing it gives text that parses back to it when
    /// it obeys what the parser enforces (scopes, types, `And`/`Or` with two or more
    /// operands, finite numbers, valid annotation keys).
    fn from(expr: Expr) -> Self {
        Self { expr }
    }
}

impl FromStr for Filter {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Filter {
    /// The canonical text of the expression; it parses back to an equal [`Filter`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}
