//! Parse errors: what went wrong, where, and the input it went wrong in.

use std::fmt;

/// A byte range of the input, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte (equal to `start` for an empty span, such as the end
    /// of the input).
    pub end: usize,
}

impl Span {
    /// The span `start..end`.
    pub fn new(start: usize, end: usize) -> Self {
        Self { start, end }
    }
}

/// What is wrong with a filter expression. The [`fmt::Display`] text is the message
/// without the position; [`ParseError`] adds it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// A character that starts no token.
    #[error("unexpected character `{0}`")]
    UnexpectedChar(char),
    /// A single-quoted string.
    #[error("strings must be in double quotes")]
    SingleQuote,
    /// A string without its closing quote.
    #[error("unterminated string")]
    UnterminatedString,
    /// A backslash escape the language does not know.
    #[error("invalid escape `{0}` in a string")]
    InvalidEscape(String),
    /// Text that starts like a number but is not one.
    #[error("invalid number `{0}`")]
    InvalidNumber(String),
    /// A number too large for a double.
    #[error("number `{0}` is out of range")]
    NumberOutOfRange(String),
    /// An operator from another language (`&&`, `||`, `==`).
    #[error("`{found}` is not an operator here; use {instead}")]
    ForeignOperator {
        /// What was written.
        found: &'static str,
        /// What the language spells it.
        instead: &'static str,
    },
    /// A `#[…]` root-cause literal that is not valid JSON of the root-cause shape.
    #[error("invalid root cause JSON: {0}")]
    InvalidJson(String),
    /// Something else was expected here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What the parser wanted.
        expected: &'static str,
        /// What it found.
        found: String,
    },
    /// A value or clause is missing after an operator or keyword.
    #[error("expected {expected} after {after}")]
    ExpectedAfter {
        /// What the parser wanted.
        expected: &'static str,
        /// The operator or keyword it follows.
        after: String,
    },
    /// A word that is no keyword of the language.
    #[error("unknown keyword `{0}`")]
    UnknownKeyword(String),
    /// A keyword used where it means nothing (`root` outside `service() { }`).
    #[error("`{keyword}` can't be used {scope}")]
    NotInScope {
        /// The keyword.
        keyword: String,
        /// Where it was used, e.g. `at the top level`, `inside edge() { }`.
        scope: String,
    },
    /// An operator that does not apply to the keyword's type.
    #[error("{op} can't be used with the {kind} keyword `{keyword}`")]
    OperatorNotAllowed {
        /// The operator.
        op: String,
        /// `boolean`, `number` or `string`.
        kind: &'static str,
        /// The keyword.
        keyword: String,
    },
    /// An annotation key outside the X-Ray charset (ASCII letters, digits, `_`).
    #[error("invalid annotation key `{0}`: use ASCII letters, digits and underscores")]
    InvalidAnnotationKey(String),
    /// An `id()` argument given twice.
    #[error("`{0}:` is given twice in id()")]
    DuplicateIdArgument(&'static str),
    /// An `id()` argument other than `name:` or `type:`.
    #[error("unknown id() argument `{0}`; use name: or type:")]
    UnknownIdArgument(String),
    /// `id()` with no argument.
    #[error("id() needs name: or type:")]
    EmptyId,
    /// Parentheses, negations and sub-filters nested deeper than the limit.
    #[error("expression nested deeper than {0} levels")]
    TooDeep(usize),
}

/// A filter expression that does not parse or does not type-check, with the input
/// and the span of the offending text.
///
/// `Display` reads `expected a string after CONTAINS at column 23` (columns count
/// characters from 1; a line number is added for multi-line input); the alternate
/// form `{:#}` adds the input line and a caret underline of the span.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    /// What is wrong.
    pub kind: ParseErrorKind,
    /// Where, in bytes of `input`.
    pub span: Span,
    /// The whole expression.
    pub input: String,
}

impl ParseError {
    /// A new error.
    pub fn new(kind: ParseErrorKind, span: Span, input: &str) -> Self {
        Self {
            kind,
            span,
            input: input.to_string(),
        }
    }

    /// 1-based line and character column of the span's start.
    pub fn line_column(&self) -> (usize, usize) {
        let start = clamp_boundary(&self.input, self.span.start);
        let before = &self.input[..start];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.input[line_start..start].chars().count() + 1;
        (line, column)
    }

    /// The input line holding the span and, under it, carets marking the span
    /// (at least one caret, also for an empty span at the end of the input).
    pub fn underline(&self) -> String {
        let start = clamp_boundary(&self.input, self.span.start);
        let end = clamp_boundary(&self.input, self.span.end.max(start));
        let line_start = self.input[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.input[start..]
            .find('\n')
            .map_or(self.input.len(), |i| start + i);
        let line = &self.input[line_start..line_end];
        let pad = self.input[line_start..start].chars().count();
        let width = self.input[start..end.min(line_end)].chars().count().max(1);
        format!("{line}\n{}{}", " ".repeat(pad), "^".repeat(width))
    }
}

fn clamp_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, column) = self.line_column();
        if self.input.contains('\n') {
            write!(f, "{} at line {line}, column {column}", self.kind)?;
        } else {
            write!(f, "{} at column {column}", self.kind)?;
        }
        if f.alternate() {
            write!(f, "\n{}", self.underline())?;
        }
        Ok(())
    }
}
