//! Invalid expressions, each with the exact error it must give (message and column).

use roentgen_filter::{Filter, ParseErrorKind, Span};

const INVALID: &[(&str, &str)] = &[
    (
        "",
        "expected a filter clause, found the end of the expression at column 1",
    ),
    (
        "   ",
        "expected a filter clause, found the end of the expression at column 4",
    ),
    (
        "http.url CONTAINS 42",
        "expected a string after CONTAINS at column 19",
    ),
    (
        "responsetime CONTAINS \"x\"",
        "CONTAINS can't be used with the number keyword `responsetime` at column 14",
    ),
    (
        "ok > 3",
        "`>` can't be used with the boolean keyword `ok` at column 4",
    ),
    ("user = 5", "expected a string after `=` at column 8"),
    ("ok = 1", "expected `true` or `false` after `=` at column 6"),
    (
        "ok = maybe",
        "expected `true` or `false` after `=` at column 6",
    ),
    ("responsetime >", "expected a number after `>` at column 15"),
    (
        "responsetime > \"5\"",
        "expected a number after `>` at column 16",
    ),
    ("duration >= 5s", "invalid number `5s` at column 13"),
    ("duration > 1.", "invalid number `1.` at column 12"),
    ("duration > .5", "invalid number `.5` at column 12"),
    ("duration > 1e", "invalid number `1e` at column 12"),
    (
        "duration > 1e999",
        "number `1e999` is out of range at column 12",
    ),
    (
        "fault && error",
        "`&&` is not an operator here; use AND at column 7",
    ),
    (
        "fault || error",
        "`||` is not an operator here; use OR at column 7",
    ),
    (
        "user == \"a\"",
        "`==` is not an operator here; use `=` at column 6",
    ),
    (
        "user = 'alice'",
        "strings must be in double quotes at column 8",
    ),
    ("user = \"alice", "unterminated string at column 8"),
    (
        "user = \"a\\qb\"",
        "invalid escape `\\q` in a string at column 10",
    ),
    (
        "user = \"\\u12\"",
        "invalid escape `\\u12` in a string at column 9",
    ),
    (
        "(fault",
        "expected `)`, found the end of the expression at column 7",
    ),
    (
        "fault)",
        "expected the end of the expression, found `)` without a matching `(` at column 6",
    ),
    ("fault OR", "expected a filter clause after OR at column 9"),
    (
        "AND fault",
        "expected a filter clause, found AND at column 1",
    ),
    (
        "fault AND AND error",
        "expected a filter clause, found AND at column 11",
    ),
    ("foo", "unknown keyword `foo` at column 1"),
    (
        "annotation.",
        "expected an annotation key after `annotation.` at column 12",
    ),
    (
        "annotation.a-b = 1",
        "unexpected character `-` at column 13",
    ),
    (
        "annotation.a.b",
        "invalid annotation key `a.b`: use ASCII letters, digits and underscores at column 12",
    ),
    (
        "annotation.x CONTAINS 5",
        "expected a string after CONTAINS at column 23",
    ),
    (
        "annotation.x > \"a\"",
        "expected a number after `>` at column 16",
    ),
    (
        "annotation.x > true",
        "expected a number after `>` at column 16",
    ),
    (
        "annotation.x = ",
        "expected a string, a number, `true` or `false` after `=` at column 16",
    ),
    (
        "service",
        "expected `(` after service, found the end of the expression at column 8",
    ),
    (
        "service(\"a\"",
        "expected `)`, found the end of the expression at column 12",
    ),
    (
        "service(a)",
        "expected a service name or id(…) after `service(` at column 9",
    ),
    (
        "service(\"a\") { }",
        "expected a filter clause after `{` at column 16",
    ),
    (
        "service(\"a\") { fault",
        "expected `}`, found the end of the expression at column 21",
    ),
    (
        "service(\"a\") { annotation.x }",
        "`annotation.x` can't be used inside service() { } at column 16",
    ),
    (
        "service(\"a\") { user = \"x\" }",
        "`user` can't be used inside service() { } at column 16",
    ),
    (
        "service(\"a\") { service(\"b\") }",
        "`service` can't be used inside service() { } at column 16",
    ),
    (
        "edge(\"a\")",
        "expected `,` between the two nodes of edge(), found `)` at column 9",
    ),
    (
        "edge()",
        "expected a service name or id(…) after `edge(` at column 6",
    ),
    (
        "edge(\"a\", )",
        "expected a service name or id(…) after `,` at column 11",
    ),
    ("service(id())", "id() needs name: or type: at column 9"),
    (
        "service(id(name: \"a\", name: \"b\"))",
        "`name:` is given twice in id() at column 23",
    ),
    (
        "service(id(kind: \"a\"))",
        "unknown id() argument `kind`; use name: or type: at column 12",
    ),
    (
        "service(id(name \"a\"))",
        "expected `:` after `name` at column 17",
    ),
    (
        "service(id(name: a))",
        "expected a string after `name:` at column 18",
    ),
    (
        "id(name: \"a\")",
        "`id()` can't be used outside service() or edge() at column 1",
    ),
    ("root", "`root` can't be used at the top level at column 1"),
    (
        "coverage > 0.5",
        "`coverage` can't be used at the top level at column 1",
    ),
    (
        "rootcause.fault.entity { coverage > 0.5 }",
        "`coverage` can't be used inside rootcause.fault.entity { } at column 26",
    ),
    (
        "rootcause.responsetime.exception { name = \"x\" }",
        "unknown keyword `rootcause.responsetime.exception` at column 1",
    ),
    (
        "rootcause.fault.service { message = \"x\" }",
        "`message` can't be used inside rootcause.fault.service { } at column 27",
    ),
    (
        "rootcause.fault.exception { remote }",
        "`remote` can't be used inside rootcause.fault.exception { } at column 29",
    ),
    (
        "group.name",
        "expected `=` or `!=` after group.name at column 11",
    ),
    ("group.name = 5", "expected a string after `=` at column 14"),
    (
        "group.name > \"a\"",
        "expected `=` or `!=` after group.name at column 12",
    ),
    (
        "rootcause.json = 5",
        "expected a root cause JSON array `#[…]` after `=` at column 18",
    ),
    (
        "json = #{}",
        "expected `[` after `#`, found `{` at column 9",
    ),
    (
        "json = #[1]",
        "invalid root cause JSON: invalid type: integer `1`, expected struct RootCausePattern at column 8",
    ),
    (
        "json = #[{\"Foo\": 1}]",
        "invalid root cause JSON: unknown field `Foo`, expected `Services` or `ClientImpacting` at column 8",
    ),
    (
        "json = #[{\"Services\": ",
        "invalid root cause JSON: EOF while parsing a value at column 8",
    ),
    ("fault $", "unexpected character `$` at column 7"),
    ("user = \"é\" §", "unexpected character `§` at column 12"),
    (
        "http.status = 200 200",
        "expected AND, OR or the end of the expression, found a number at column 19",
    ),
    ("true", "expected a filter clause, found `true` at column 1"),
    ("NOT", "expected a filter clause after NOT at column 4"),
    ("!", "expected a filter clause after `!` at column 2"),
    (
        "name = \"x\"",
        "`name` can't be used at the top level at column 1",
    ),
    (
        "first",
        "`first` can't be used at the top level at column 1",
    ),
    (
        "edge(\"a\", \"b\") { root }",
        "`root` can't be used inside edge() { } at column 18",
    ),
    (
        "user CONTAINS\n  42",
        "expected a string after CONTAINS at line 2, column 3",
    ),
];

#[test]
fn at_least_40_invalid_expressions() {
    assert!(INVALID.len() >= 40, "{}", INVALID.len());
}

#[test]
fn each_invalid_expression_gives_its_error() {
    let mut failures = Vec::new();
    for (input, expected) in INVALID {
        match Filter::parse(input) {
            Ok(f) => failures.push(format!("{input:?} parsed as {f}")),
            Err(e) if e.to_string() == *expected => {}
            Err(e) => failures.push(format!(
                "{input:?}: expected {expected:?}, got {:?}",
                e.to_string()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn nesting_is_limited_not_overflowed() {
    for input in [
        "(".repeat(100_000) + "ok" + &")".repeat(100_000),
        "!".repeat(100_000) + "ok",
        "NOT ".repeat(100_000) + "ok",
        r#"service("a") { "#.to_string() + &"(".repeat(70) + "ok",
    ] {
        let err = Filter::parse(&input).expect_err("too deep");
        assert_eq!(err.kind, ParseErrorKind::TooDeep(64), "{err}");
    }
    let ok = "(".repeat(63) + "ok" + &")".repeat(63);
    assert!(Filter::parse(&ok).is_ok());
}

#[test]
fn long_flat_expressions_parse() {
    let input = vec!["fault"; 50_000].join(" OR ");
    let f = Filter::parse(&input).expect("flat chains are not deep");
    assert_eq!(f.to_string(), input);
}

#[test]
fn error_carries_input_and_span_and_underlines_it() {
    let err = Filter::parse(r#"http.method = "GET" AND user CONTAINS 42"#).expect_err("type error");
    assert_eq!(err.span, Span::new(38, 40));
    assert_eq!(err.input, r#"http.method = "GET" AND user CONTAINS 42"#);
    assert_eq!(err.line_column(), (1, 39));
    assert_eq!(
        format!("{err:#}"),
        "expected a string after CONTAINS at column 39\n\
         http.method = \"GET\" AND user CONTAINS 42\n\
         \x20                                     ^^"
    );
    // Columns count characters, not bytes.
    let err = Filter::parse("user = \"é\" §").expect_err("bad char");
    assert_eq!(err.to_string(), "unexpected character `§` at column 12");
    assert_eq!(err.underline(), "user = \"é\" §\n           ^");
    // An error at the end of the input underlines one column past it.
    let err = Filter::parse("fault OR").expect_err("dangling OR");
    assert_eq!(err.underline(), "fault OR\n        ^");
}
