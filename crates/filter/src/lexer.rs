//! Turns the expression text into tokens with byte spans.
//!
//! - Words: an ASCII letter or `_`, then ASCII letters, digits, `_` and `.`
//!   (`http.status`, `annotation.game_id`, `rootcause.fault.service`).
//! - Strings: double-quoted, with JSON escapes (`\"` `\\` `\/` `\b` `\f` `\n` `\r`
//!   `\t` `\uXXXX`, surrogate pairs combined); any other character stands for itself.
//! - Numbers: an optional `-`, digits, an optional fraction (`.` and digits) and an
//!   optional exponent (`e`/`E`, optional sign, digits); `5s`, `1.`, `.5` and `1e`
//!   are invalid numbers, and so is a value outside the range of a double.
//! - Punctuation: `( ) { } , : ! = != < <= > >=`; `#[…]` is a root-cause JSON array.
//! - `&&`, `||` and `==` get an error naming the operator to use instead.

use crate::ast::RootCausePattern;
use crate::error::{ParseError, ParseErrorKind, Span};

/// A token.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Word,
    Str(String),
    Num(f64),
    Json(Vec<RootCausePattern>),
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Bang,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

/// A token and where it is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) span: Span,
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'.'
}

pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = input.as_bytes();
    let err = |kind, start, end| ParseError::new(kind, Span::new(start, end), input);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = |tok| Token {
            tok,
            span: Span::new(start, start + 1),
        };
        let double = |tok| Token {
            tok,
            span: Span::new(start, start + 2),
        };
        let next = bytes.get(i + 1).copied();
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => out.push(single(Tok::LParen)),
            b')' => out.push(single(Tok::RParen)),
            b'{' => out.push(single(Tok::LBrace)),
            b'}' => out.push(single(Tok::RBrace)),
            b',' => out.push(single(Tok::Comma)),
            b':' => out.push(single(Tok::Colon)),
            b'!' if next == Some(b'=') => {
                out.push(double(Tok::Ne));
                i += 2;
                continue;
            }
            b'!' => out.push(single(Tok::Bang)),
            b'=' if next == Some(b'=') => {
                return Err(err(
                    ParseErrorKind::ForeignOperator {
                        found: "==",
                        instead: "`=`",
                    },
                    start,
                    start + 2,
                ));
            }
            b'=' => out.push(single(Tok::Eq)),
            b'<' if next == Some(b'=') => {
                out.push(double(Tok::Le));
                i += 2;
                continue;
            }
            b'<' => out.push(single(Tok::Lt)),
            b'>' if next == Some(b'=') => {
                out.push(double(Tok::Ge));
                i += 2;
                continue;
            }
            b'>' => out.push(single(Tok::Gt)),
            b'&' if next == Some(b'&') => {
                return Err(err(
                    ParseErrorKind::ForeignOperator {
                        found: "&&",
                        instead: "AND",
                    },
                    start,
                    start + 2,
                ));
            }
            b'|' if next == Some(b'|') => {
                return Err(err(
                    ParseErrorKind::ForeignOperator {
                        found: "||",
                        instead: "OR",
                    },
                    start,
                    start + 2,
                ));
            }
            b'\'' => return Err(err(ParseErrorKind::SingleQuote, start, start + 1)),
            b'"' => {
                let (s, end) = lex_string(input, start)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    span: Span::new(start, end),
                });
                i = end;
                continue;
            }
            b'#' => {
                let (causes, end) = lex_json(input, start)?;
                out.push(Token {
                    tok: Tok::Json(causes),
                    span: Span::new(start, end),
                });
                i = end;
                continue;
            }
            b'0'..=b'9' | b'-' if c != b'-' || next.is_some_and(|n| n.is_ascii_digit()) => {
                let (n, end) = lex_number(input, start)?;
                out.push(Token {
                    tok: Tok::Num(n),
                    span: Span::new(start, end),
                });
                i = end;
                continue;
            }
            b'.' if next.is_some_and(|n| n.is_ascii_digit()) => {
                let mut end = i + 1;
                while end < bytes.len() && is_word_char(bytes[end]) {
                    end += 1;
                }
                return Err(err(
                    ParseErrorKind::InvalidNumber(input[start..end].to_string()),
                    start,
                    end,
                ));
            }
            c if is_word_start(c) => {
                let mut end = i + 1;
                while end < bytes.len() && is_word_char(bytes[end]) {
                    end += 1;
                }
                out.push(Token {
                    tok: Tok::Word,
                    span: Span::new(start, end),
                });
                i = end;
                continue;
            }
            _ => {
                let ch = input[start..].chars().next().unwrap_or('\u{fffd}');
                return Err(err(
                    ParseErrorKind::UnexpectedChar(ch),
                    start,
                    start + ch.len_utf8(),
                ));
            }
        }
        i += 1;
    }
    out.push(Token {
        tok: Tok::Eof,
        span: Span::new(input.len(), input.len()),
    });
    Ok(out)
}

/// Lexes the string starting with the quote at `start`; returns it and the end.
fn lex_string(input: &str, start: usize) -> Result<(String, usize), ParseError> {
    let mut out = String::new();
    let mut chars = input[start + 1..].char_indices().peekable();
    let at = |off: usize| start + 1 + off;
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, at(off) + 1)),
            '\\' => {
                let Some((eoff, e)) = chars.next() else {
                    break;
                };
                match e {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => match unicode_escape(&input[at(eoff) + 1..]) {
                        Some((ch, consumed)) => {
                            out.push(ch);
                            // Skip the hex digits (and the second escape of a pair).
                            let skip_to = at(eoff) + 1 + consumed;
                            while chars.peek().is_some_and(|(o, _)| at(*o) < skip_to) {
                                chars.next();
                            }
                        }
                        None => {
                            let from = at(off);
                            let hex = input[at(eoff) + 1..]
                                .bytes()
                                .take(4)
                                .take_while(u8::is_ascii_hexdigit)
                                .count();
                            let end = at(eoff) + 1 + hex;
                            return Err(ParseError::new(
                                ParseErrorKind::InvalidEscape(input[from..end].to_string()),
                                Span::new(from, end),
                                input,
                            ));
                        }
                    },
                    other => {
                        let end = at(eoff) + other.len_utf8();
                        return Err(ParseError::new(
                            ParseErrorKind::InvalidEscape(input[at(off)..end].to_string()),
                            Span::new(at(off), end),
                            input,
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(ParseError::new(
        ParseErrorKind::UnterminatedString,
        Span::new(start, input.len()),
        input,
    ))
}

fn hex4(s: &str) -> Option<u32> {
    let digits = s.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// Decodes the `XXXX` after `\u` (and a following `\uXXXX` low surrogate); returns the
/// character and the bytes consumed after the `u`.
fn unicode_escape(rest: &str) -> Option<(char, usize)> {
    let hi = hex4(rest)?;
    if (0xD800..0xDC00).contains(&hi) {
        let tail = rest.get(4..)?;
        let lo = hex4(tail.strip_prefix("\\u")?)?;
        if !(0xDC00..0xE000).contains(&lo) {
            return None;
        }
        let c = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
        return Some((char::from_u32(c)?, 10));
    }
    Some((char::from_u32(hi)?, 4))
}

/// Lexes the number at `start`; returns it and the end.
fn lex_number(input: &str, start: usize) -> Result<(f64, usize), ParseError> {
    let b = input.as_bytes();
    let mut i = start;
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(|c| c.is_ascii_digit()) {
            i += 1;
        }
        i
    };
    let int_end = digits(i);
    let mut ok = int_end > i;
    i = int_end;
    if ok && b.get(i) == Some(&b'.') {
        let frac_end = digits(i + 1);
        ok = frac_end > i + 1;
        i = frac_end;
    }
    if ok && matches!(b.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp_end = digits(j);
        ok = exp_end > j;
        i = exp_end;
    }
    // A number must not run into a word: `5s`, `1.2.3`.
    if !ok || b.get(i).is_some_and(|c| is_word_char(*c)) {
        let mut end = i.max(start + 1);
        while b
            .get(end)
            .is_some_and(|c| is_word_char(*c) || *c == b'-' || *c == b'+')
        {
            end += 1;
        }
        return Err(ParseError::new(
            ParseErrorKind::InvalidNumber(input[start..end].to_string()),
            Span::new(start, end),
            input,
        ));
    }
    let text = &input[start..i];
    match text.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok((n, i)),
        _ => Err(ParseError::new(
            ParseErrorKind::NumberOutOfRange(text.to_string()),
            Span::new(start, i),
            input,
        )),
    }
}

/// Lexes `#[…]` at `start`: a JSON array of root-cause objects.
fn lex_json(input: &str, start: usize) -> Result<(Vec<RootCausePattern>, usize), ParseError> {
    let body = start + 1;
    if input.as_bytes().get(body) != Some(&b'[') {
        return Err(ParseError::new(
            ParseErrorKind::Expected {
                expected: "`[` after `#`",
                found: describe_at(input, body),
            },
            Span::new(body.min(input.len()), (body + 1).min(input.len())),
            input,
        ));
    }
    let mut stream =
        serde_json::Deserializer::from_str(&input[body..]).into_iter::<serde_json::Value>();
    let value = match stream.next() {
        Some(Ok(v)) => v,
        Some(Err(e)) => {
            return Err(ParseError::new(
                ParseErrorKind::InvalidJson(strip_position(&e.to_string())),
                Span::new(start, input.len()),
                input,
            ));
        }
        None => {
            return Err(ParseError::new(
                ParseErrorKind::InvalidJson("empty".to_string()),
                Span::new(start, input.len()),
                input,
            ));
        }
    };
    let end = body + stream.byte_offset();
    let causes = serde_json::from_value::<Vec<RootCausePattern>>(value).map_err(|e| {
        ParseError::new(
            ParseErrorKind::InvalidJson(strip_position(&e.to_string())),
            Span::new(start, end),
            input,
        )
    })?;
    Ok((causes, end))
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

/// Describes what is at byte `at` of `input`, for "found …" messages.
fn describe_at(input: &str, at: usize) -> String {
    match input.get(at..).and_then(|s| s.chars().next()) {
        Some(c) => format!("`{c}`"),
        None => "the end of the expression".to_string(),
    }
}
