//! Recursive-descent parser with positioned, typed errors and a nesting limit.
//!
//! ```text
//! filter   := or EOF
//! or       := and ( OR and )*
//! and      := unary ( [AND] unary )*          adjacent clauses are ANDed
//! unary    := ( "!" | NOT ) unary | "(" or ")" | clause
//! clause   := boolkw [ ("=" | "!=") (true | false) ]
//!           | numkw [ numop number ]
//!           | strkw [ strop (string | word) ]
//!           | annotation.KEY [ op value ]
//!           | service "(" [ node ] ")" [ block ]
//!           | edge "(" node "," node ")" [ block ]
//!           | (group.name | group.arn) ("=" | "!=") string
//!           | rootcause.KIND.LEVEL [ block ]
//!           | (rootcause.json | json) ("=" | "!=") "#[" json "]"
//! node     := string | id "(" idarg ( "," idarg )* ")"      idarg := (name | type) ":" string
//! block    := "{" or "}"
//! ```
//!
//! Keywords and operator words are case-insensitive. Every keyword is checked against
//! the scope it appears in (top level, `service() { }`, `edge() { }`, a root-cause
//! block) and every operator and value against the keyword's type, so type errors are
//! parse errors with a position.

use crate::ast::{
    BoolKey, CmpOp, Expr, GroupBy, NodeId, NumberKey, RootCauseKind, RootCauseLevel, StringKey,
    Value, root_cause_keyword,
};
use crate::error::{ParseError, ParseErrorKind, Span};
use crate::lexer::{Tok, Token, tokenize};

/// Deepest nesting of parentheses, negations and sub-filter blocks.
pub const MAX_NESTING: usize = 64;

/// Where a clause appears: decides which keywords it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Trace,
    Service,
    Edge,
    RootCause(RootCauseKind, RootCauseLevel),
}

impl Scope {
    fn describe(self) -> String {
        match self {
            Scope::Trace => "at the top level".to_string(),
            Scope::Service => "inside service() { }".to_string(),
            Scope::Edge => "inside edge() { }".to_string(),
            Scope::RootCause(k, l) => format!("inside {} {{ }}", root_cause_keyword(k, l)),
        }
    }

    fn allows_bool(self, key: BoolKey) -> bool {
        use BoolKey::*;
        match self {
            Scope::Trace => matches!(key, Ok | Error | Fault | Throttle | Partial | Inferred),
            Scope::Service => matches!(
                key,
                Ok | Error | Fault | Throttle | Partial | Inferred | Root
            ),
            Scope::Edge => matches!(key, Ok | Error | Fault | Throttle | Partial),
            Scope::RootCause(_, RootCauseLevel::Service) => {
                matches!(key, Inferred | First | Last)
            }
            Scope::RootCause(_, RootCauseLevel::Entity) => matches!(key, Remote | First | Last),
            Scope::RootCause(_, RootCauseLevel::Exception) => matches!(key, First | Last),
        }
    }

    fn allows_number(self, key: NumberKey) -> bool {
        use NumberKey::*;
        match self {
            Scope::Trace => matches!(key, ResponseTime | Duration | HttpStatus),
            Scope::Service | Scope::Edge => matches!(key, ResponseTime | HttpStatus),
            Scope::RootCause(RootCauseKind::ResponseTime, RootCauseLevel::Entity) => {
                matches!(key, Index | Coverage)
            }
            Scope::RootCause(..) => key == Index,
        }
    }

    fn allows_string(self, key: StringKey) -> bool {
        use StringKey::*;
        let http = matches!(key, HttpUrl | HttpMethod | HttpUserAgent | HttpClientIp);
        match self {
            Scope::Trace => {
                http || matches!(key, User | AvailabilityZone | InstanceId | ResourceArn)
            }
            Scope::Service => http || matches!(key, Name | Type),
            Scope::Edge => http,
            Scope::RootCause(_, RootCauseLevel::Service) => matches!(key, Name | Type),
            Scope::RootCause(_, RootCauseLevel::Entity) => key == Name,
            Scope::RootCause(_, RootCauseLevel::Exception) => matches!(key, Name | Message),
        }
    }
}

struct Parser<'a> {
    input: &'a str,
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// Parses a whole expression.
pub(crate) fn parse(input: &str) -> Result<Expr, ParseError> {
    let toks = tokenize(input)?;
    let mut p = Parser {
        input,
        toks,
        pos: 0,
        depth: 0,
    };
    let expr = p.parse_or(Scope::Trace, None)?;
    let t = p.peek();
    if t.tok != Tok::Eof {
        let found = p.describe(p.pos);
        let kind = match t.tok {
            Tok::RParen => ParseErrorKind::Expected {
                expected: "the end of the expression",
                found: "`)` without a matching `(`".to_string(),
            },
            _ => ParseErrorKind::Expected {
                expected: "AND, OR or the end of the expression",
                found,
            },
        };
        return Err(p.error(kind, t.span));
    }
    Ok(expr)
}

fn word_is(text: &str, w: &str) -> bool {
    text.eq_ignore_ascii_case(w)
}

fn is_annotation_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof and `pos` never passes it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn text(&self, span: Span) -> &'a str {
        self.input.get(span.start..span.end).unwrap_or("")
    }

    /// The word at the cursor, if the cursor is on a word.
    fn peek_word(&self) -> Option<&'a str> {
        let t = self.peek();
        (t.tok == Tok::Word).then(|| self.text(t.span))
    }

    fn error(&self, kind: ParseErrorKind, span: Span) -> ParseError {
        ParseError::new(kind, span, self.input)
    }

    /// Describes token `i` for "found …" messages.
    fn describe(&self, i: usize) -> String {
        let t = &self.toks[i.min(self.toks.len() - 1)];
        match &t.tok {
            Tok::Eof => "the end of the expression".to_string(),
            Tok::Str(_) => "a string".to_string(),
            Tok::Num(_) => "a number".to_string(),
            Tok::Json(_) => "a JSON literal".to_string(),
            Tok::Word => {
                let w = self.text(t.span);
                if ["and", "or", "not"].iter().any(|k| word_is(w, k)) {
                    w.to_ascii_uppercase()
                } else {
                    format!("`{w}`")
                }
            }
            _ => format!("`{}`", self.text(t.span)),
        }
    }

    fn expected(&self, expected: &'static str) -> ParseError {
        self.error(
            ParseErrorKind::Expected {
                expected,
                found: self.describe(self.pos),
            },
            self.peek().span,
        )
    }

    fn expected_after(&self, expected: &'static str, after: impl Into<String>) -> ParseError {
        self.error(
            ParseErrorKind::ExpectedAfter {
                expected,
                after: after.into(),
            },
            self.peek().span,
        )
    }

    fn expect(&mut self, tok: Tok, expected: &'static str) -> Result<Token, ParseError> {
        if self.peek().tok == tok {
            Ok(self.bump())
        } else {
            Err(self.expected(expected))
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(ParseErrorKind::TooDeep(MAX_NESTING), self.peek().span));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// True when the cursor starts a clause (so adjacent clauses AND together).
    fn starts_clause(&self) -> bool {
        match self.peek().tok {
            Tok::Bang | Tok::LParen => true,
            Tok::Word => {
                let w = self.text(self.peek().span);
                !word_is(w, "and") && !word_is(w, "or")
            }
            _ => false,
        }
    }

    fn parse_or(&mut self, scope: Scope, after: Option<&str>) -> Result<Expr, ParseError> {
        let mut items = vec![self.parse_and(scope, after)?];
        while self.peek_word().is_some_and(|w| word_is(w, "or")) {
            self.bump();
            items.push(self.parse_and(scope, Some("OR"))?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn parse_and(&mut self, scope: Scope, after: Option<&str>) -> Result<Expr, ParseError> {
        let mut items = vec![self.parse_unary(scope, after)?];
        loop {
            if self.peek_word().is_some_and(|w| word_is(w, "and")) {
                self.bump();
                items.push(self.parse_unary(scope, Some("AND"))?);
            } else if self.starts_clause() {
                items.push(self.parse_unary(scope, None)?);
            } else {
                break;
            }
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn parse_unary(&mut self, scope: Scope, after: Option<&str>) -> Result<Expr, ParseError> {
        self.enter()?;
        let result = self.parse_unary_inner(scope, after);
        self.leave();
        result
    }

    fn parse_unary_inner(&mut self, scope: Scope, after: Option<&str>) -> Result<Expr, ParseError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::Bang => {
                self.bump();
                Ok(Expr::Not(Box::new(self.parse_unary(scope, Some("`!`"))?)))
            }
            Tok::Word if word_is(self.text(t.span), "not") => {
                self.bump();
                Ok(Expr::Not(Box::new(self.parse_unary(scope, Some("NOT"))?)))
            }
            Tok::LParen => {
                self.bump();
                let e = self.parse_or(scope, Some("`(`"))?;
                self.expect(Tok::RParen, "`)`")?;
                Ok(e)
            }
            Tok::Word => self.parse_clause(scope),
            _ => Err(match after {
                Some(after) => self.expected_after("a filter clause", after),
                None => self.expected("a filter clause"),
            }),
        }
    }

    fn not_in_scope(&self, keyword: &str, scope: Scope, span: Span) -> ParseError {
        self.error(
            ParseErrorKind::NotInScope {
                keyword: keyword.to_ascii_lowercase(),
                scope: scope.describe(),
            },
            span,
        )
    }

    fn parse_clause(&mut self, scope: Scope) -> Result<Expr, ParseError> {
        let t = self.bump();
        let word = self.text(t.span);
        let lower = word.to_ascii_lowercase();
        let complex_only_at_top = |p: &Self| {
            if scope == Scope::Trace {
                Ok(())
            } else {
                Err(p.not_in_scope(word, scope, t.span))
            }
        };
        if let Some(key) = BoolKey::from_word(word) {
            if !scope.allows_bool(key) {
                return Err(self.not_in_scope(word, scope, t.span));
            }
            return self.parse_bool(key);
        }
        if let Some(key) = NumberKey::from_word(word) {
            if !scope.allows_number(key) {
                return Err(self.not_in_scope(word, scope, t.span));
            }
            return self.parse_number(key);
        }
        if let Some(key) = StringKey::from_word(word) {
            if !scope.allows_string(key) {
                return Err(self.not_in_scope(word, scope, t.span));
            }
            return self.parse_text(key);
        }
        if lower.starts_with("annotation.") || lower == "annotation" {
            complex_only_at_top(self)?;
            let key = word.get("annotation".len()..).unwrap_or("");
            let key = key.strip_prefix('.').unwrap_or(key);
            if key.is_empty() {
                return Err(self.error(
                    ParseErrorKind::ExpectedAfter {
                        expected: "an annotation key",
                        after: "`annotation.`".to_string(),
                    },
                    Span::new(t.span.end, t.span.end),
                ));
            }
            if !is_annotation_key(key) {
                return Err(self.error(
                    ParseErrorKind::InvalidAnnotationKey(key.to_string()),
                    Span::new(t.span.start + "annotation.".len(), t.span.end),
                ));
            }
            return self.parse_annotation(key.to_string());
        }
        match lower.as_str() {
            "service" => {
                complex_only_at_top(self)?;
                self.expect(Tok::LParen, "`(` after service")?;
                let node = if self.peek().tok == Tok::RParen {
                    NodeId::default()
                } else {
                    self.parse_node("`service(`")?
                };
                self.expect(Tok::RParen, "`)`")?;
                let filter = self.parse_block(Scope::Service)?;
                Ok(Expr::Service { node, filter })
            }
            "edge" => {
                complex_only_at_top(self)?;
                self.expect(Tok::LParen, "`(` after edge")?;
                let source = self.parse_node("`edge(`")?;
                self.expect(Tok::Comma, "`,` between the two nodes of edge()")?;
                let target = self.parse_node("`,`")?;
                self.expect(Tok::RParen, "`)`")?;
                let filter = self.parse_block(Scope::Edge)?;
                Ok(Expr::Edge {
                    source,
                    target,
                    filter,
                })
            }
            "id" => Err(self.error(
                ParseErrorKind::NotInScope {
                    keyword: "id()".to_string(),
                    scope: "outside service() or edge()".to_string(),
                },
                t.span,
            )),
            "group.name" | "group.arn" => {
                complex_only_at_top(self)?;
                let by = if lower == "group.name" {
                    GroupBy::Name
                } else {
                    GroupBy::Arn
                };
                let negated = self.parse_eq_ne(&lower)?;
                let op = if negated { "`!=`" } else { "`=`" };
                match self.peek().tok.clone() {
                    Tok::Str(value) => {
                        self.bump();
                        Ok(Expr::Group { by, negated, value })
                    }
                    _ => Err(self.expected_after("a string", op)),
                }
            }
            "json" | "rootcause.json" => {
                complex_only_at_top(self)?;
                let negated = self.parse_eq_ne(&lower)?;
                let op = if negated { "`!=`" } else { "`=`" };
                match self.peek().tok.clone() {
                    Tok::Json(causes) => {
                        self.bump();
                        Ok(Expr::RootCauseJson { negated, causes })
                    }
                    _ => Err(self.expected_after("a root cause JSON array `#[…]`", op)),
                }
            }
            _ => {
                if let Some((kind, level)) = root_cause_from_word(&lower) {
                    complex_only_at_top(self)?;
                    let filter = self.parse_block(Scope::RootCause(kind, level))?;
                    return Ok(Expr::RootCause {
                        kind,
                        level,
                        filter,
                    });
                }
                let kind = match lower.as_str() {
                    "and" | "or" => ParseErrorKind::Expected {
                        expected: "a filter clause",
                        found: lower.to_ascii_uppercase(),
                    },
                    "true" | "false" => ParseErrorKind::Expected {
                        expected: "a filter clause",
                        found: format!("`{word}`"),
                    },
                    _ => ParseErrorKind::UnknownKeyword(word.to_string()),
                };
                Err(self.error(kind, t.span))
            }
        }
    }

    /// `=` or `!=` after `keyword`; returns true for `!=`.
    fn parse_eq_ne(&mut self, keyword: &str) -> Result<bool, ParseError> {
        match self.peek().tok {
            Tok::Eq => {
                self.bump();
                Ok(false)
            }
            Tok::Ne => {
                self.bump();
                Ok(true)
            }
            _ => Err(self.expected_after("`=` or `!=`", keyword.to_string())),
        }
    }

    /// The comparison operator at the cursor, if any (not consumed).
    fn peek_op(&self) -> Option<CmpOp> {
        let t = self.peek();
        Some(match t.tok {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Word => {
                let w = self.text(t.span);
                if word_is(w, "contains") {
                    CmpOp::Contains
                } else if word_is(w, "beginswith") {
                    CmpOp::BeginsWith
                } else if word_is(w, "endswith") {
                    CmpOp::EndsWith
                } else {
                    return None;
                }
            }
            _ => return None,
        })
    }

    fn bad_operator(&self, op: CmpOp, kind: &'static str, keyword: &str) -> ParseError {
        self.error(
            ParseErrorKind::OperatorNotAllowed {
                op: op.describe(),
                kind,
                keyword: keyword.to_string(),
            },
            self.peek().span,
        )
    }

    fn peek_bool_literal(&self) -> Option<bool> {
        let w = self.peek_word()?;
        if word_is(w, "true") {
            Some(true)
        } else if word_is(w, "false") {
            Some(false)
        } else {
            None
        }
    }

    fn parse_bool(&mut self, key: BoolKey) -> Result<Expr, ParseError> {
        let Some(op) = self.peek_op() else {
            return Ok(Expr::Bool { key, value: true });
        };
        if op != CmpOp::Eq && op != CmpOp::Ne {
            return Err(self.bad_operator(op, "boolean", key.as_str()));
        }
        self.bump();
        match self.peek_bool_literal() {
            Some(b) => {
                self.bump();
                Ok(Expr::Bool {
                    key,
                    value: b == (op == CmpOp::Eq),
                })
            }
            None => Err(self.expected_after("`true` or `false`", op.describe())),
        }
    }

    fn parse_number(&mut self, key: NumberKey) -> Result<Expr, ParseError> {
        let Some(op) = self.peek_op() else {
            return Ok(Expr::Number { key, cmp: None });
        };
        if op.is_string_only() {
            return Err(self.bad_operator(op, "number", key.as_str()));
        }
        self.bump();
        match self.peek().tok {
            Tok::Num(n) => {
                self.bump();
                Ok(Expr::Number {
                    key,
                    cmp: Some((op, n)),
                })
            }
            _ => Err(self.expected_after("a number", op.describe())),
        }
    }

    /// A string value: a quoted string, or a bare word other than the reserved ones
    /// (AWS's documentation writes `name = traces`).
    fn take_string_value(&mut self) -> Option<String> {
        match self.peek().tok.clone() {
            Tok::Str(s) => {
                self.bump();
                Some(s)
            }
            Tok::Word => {
                let w = self.text(self.peek().span);
                let reserved = ["and", "or", "not", "true", "false"]
                    .iter()
                    .any(|r| word_is(w, r));
                if reserved {
                    return None;
                }
                self.bump();
                Some(w.to_string())
            }
            _ => None,
        }
    }

    fn parse_text(&mut self, key: StringKey) -> Result<Expr, ParseError> {
        let Some(op) = self.peek_op() else {
            return Ok(Expr::Text { key, cmp: None });
        };
        if op.is_ordering() {
            return Err(self.bad_operator(op, "string", key.as_str()));
        }
        self.bump();
        match self.take_string_value() {
            Some(s) => Ok(Expr::Text {
                key,
                cmp: Some((op, s)),
            }),
            None => Err(self.expected_after("a string", op.describe())),
        }
    }

    fn parse_annotation(&mut self, key: String) -> Result<Expr, ParseError> {
        let Some(op) = self.peek_op() else {
            return Ok(Expr::Annotation { key, cmp: None });
        };
        self.bump();
        let value = if op.is_string_only() {
            self.take_string_value()
                .map(Value::String)
                .ok_or_else(|| self.expected_after("a string", op.describe()))?
        } else if op.is_ordering() {
            match self.peek().tok {
                Tok::Num(n) => {
                    self.bump();
                    Value::Number(n)
                }
                _ => return Err(self.expected_after("a number", op.describe())),
            }
        } else if let Tok::Num(n) = self.peek().tok {
            self.bump();
            Value::Number(n)
        } else if let Some(b) = self.peek_bool_literal() {
            self.bump();
            Value::Bool(b)
        } else {
            self.take_string_value().map(Value::String).ok_or_else(|| {
                self.expected_after("a string, a number, `true` or `false`", op.describe())
            })?
        };
        Ok(Expr::Annotation {
            key,
            cmp: Some((op, value)),
        })
    }

    /// A node argument: `"name"` or `id(name: "…", type: "…")`.
    fn parse_node(&mut self, after: &str) -> Result<NodeId, ParseError> {
        match self.peek().tok.clone() {
            Tok::Str(name) => {
                self.bump();
                Ok(NodeId {
                    name: Some(name),
                    kind: None,
                })
            }
            Tok::Word if word_is(self.text(self.peek().span), "id") => {
                let id_span = self.bump().span;
                self.expect(Tok::LParen, "`(` after id")?;
                let mut node = NodeId::default();
                if self.peek().tok == Tok::RParen {
                    return Err(self.error(
                        ParseErrorKind::EmptyId,
                        Span::new(id_span.start, self.peek().span.end),
                    ));
                }
                loop {
                    let arg = self.peek().clone();
                    let slot = match arg.tok {
                        Tok::Word => {
                            let w = self.text(arg.span);
                            if word_is(w, "name") {
                                ("name", &mut node.name)
                            } else if word_is(w, "type") {
                                ("type", &mut node.kind)
                            } else {
                                return Err(self.error(
                                    ParseErrorKind::UnknownIdArgument(w.to_string()),
                                    arg.span,
                                ));
                            }
                        }
                        _ => return Err(self.expected("`name:` or `type:`")),
                    };
                    let (label, slot) = slot;
                    if slot.is_some() {
                        return Err(
                            self.error(ParseErrorKind::DuplicateIdArgument(label), arg.span)
                        );
                    }
                    self.bump();
                    if self.peek().tok != Tok::Colon {
                        return Err(self.expected_after("`:`", format!("`{label}`")));
                    }
                    self.bump();
                    match self.peek().tok.clone() {
                        Tok::Str(s) => {
                            self.bump();
                            match label {
                                "name" => node.name = Some(s),
                                _ => node.kind = Some(s),
                            }
                        }
                        _ => return Err(self.expected_after("a string", format!("`{label}:`"))),
                    }
                    match self.peek().tok {
                        Tok::Comma => {
                            self.bump();
                        }
                        Tok::RParen => {
                            self.bump();
                            break;
                        }
                        _ => return Err(self.expected("`,` or `)`")),
                    }
                }
                Ok(node)
            }
            _ => Err(self.expected_after("a service name or id(…)", after.to_string())),
        }
    }

    /// An optional `{ sub-filter }`.
    fn parse_block(&mut self, scope: Scope) -> Result<Option<Box<Expr>>, ParseError> {
        if self.peek().tok != Tok::LBrace {
            return Ok(None);
        }
        self.bump();
        self.enter()?;
        let inner = self.parse_or(scope, Some("`{`"));
        self.leave();
        let inner = inner?;
        self.expect(Tok::RBrace, "`}`")?;
        Ok(Some(Box::new(inner)))
    }
}

fn root_cause_from_word(lower: &str) -> Option<(RootCauseKind, RootCauseLevel)> {
    let rest = lower.strip_prefix("rootcause.")?;
    let (kind, level) = rest.split_once('.')?;
    let kind = match kind {
        "fault" => RootCauseKind::Fault,
        "error" => RootCauseKind::Error,
        "responsetime" => RootCauseKind::ResponseTime,
        _ => return None,
    };
    let level = match level {
        "service" => RootCauseLevel::Service,
        "entity" => RootCauseLevel::Entity,
        "exception" if kind != RootCauseKind::ResponseTime => RootCauseLevel::Exception,
        _ => return None,
    };
    Some((kind, level))
}
