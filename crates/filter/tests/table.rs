//! Table test: each expression with the exact set of fixture traces it matches (see
//! `common/mod.rs` for the traces, numbered 1 to 11). Every expression is also printed
//! and parsed back, and the pushdown must admit every trace it matches.

mod common;

use roentgen_filter::{Filter, Groups, pushdown_with_groups};

const ALL: &[usize] = &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

const CASES: &[(&str, &[usize])] = &[
    // Reference vectors (xray-protocol.md 8.3), over every fixture.
    (r#"annotation.gameid = "817DL6VO""#, &[1]),
    ("annotation.age > 29", &[1]),
    ("annotation.vip = true", &[1, 7]),
    ("annotation.age", &[1]),
    ("!annotation.missing", ALL),
    (r#"user = "alice""#, &[1, 4]),
    (r#"user CONTAINS """#, &[1, 3, 4, 5, 8, 10]),
    ("http.status = 200", &[1, 4, 7, 9, 10]),
    (r#"http.url CONTAINS "/api/game/""#, &[1]),
    (
        r#"http.method = "GET" AND responsetime < 2"#,
        &[1, 4, 5, 6, 9],
    ),
    ("duration >= 1 AND duration <= 2", &[1, 3, 8, 9]),
    (r#"service("api.backend.example.com")"#, &[1]),
    (r#"service("api.backend.example.com") { fault }"#, &[]),
    (r#"edge("web", "DynamoDB") { throttle }"#, &[1]),
    // The model types a DynamoDB call with a table as AWS::DynamoDB::Table (vector 8.3
    // expects AWS::DynamoDB to match T1; types compare exactly here).
    (
        r#"service(id(name: "DynamoDB", type: "AWS::DynamoDB")) { error }"#,
        &[],
    ),
    (
        r#"service(id(name: "DynamoDB", type: "AWS::DynamoDB::Table")) { error }"#,
        &[1],
    ),
    ("partial", &[2, 9]),
    (r#"!service("web")"#, &[2, 8, 10, 11]),
    ("service() { fault }", &[1, 3, 10]),
    ("ok", &[4, 7, 8, 9, 11]),
    (
        r#"rootcause.fault.exception { message = "bad template" }"#,
        &[1],
    ),
    ("responsetime > 5 OR annotation.vip", &[1, 7]),
    (
        r#"(user = "bob" OR user = "alice") AND !partial"#,
        &[1, 3, 4],
    ),
    // Boolean keywords.
    ("fault", &[1, 3, 10]),
    ("!fault", &[2, 4, 5, 6, 7, 8, 9, 11]),
    ("fault = false", &[2, 4, 5, 6, 7, 8, 9, 11]),
    ("fault != true", &[2, 4, 5, 6, 7, 8, 9, 11]),
    ("error", &[1, 5, 6]),
    ("throttle", &[1, 5]),
    ("!ok", &[1, 2, 3, 5, 6, 10]),
    ("ok = false", &[1, 2, 3, 5, 6, 10]),
    ("inferred", &[1, 4, 7, 10]),
    ("!inferred", &[2, 3, 5, 6, 8, 9, 11]),
    ("partial = false", &[1, 3, 4, 5, 6, 7, 8, 10, 11]),
    ("OK", &[4, 7, 8, 9, 11]),
    ("Fault = TRUE", &[1, 3, 10]),
    ("error AND !throttle", &[6]),
    ("ok !partial duration <3", &[4, 8, 11]),
    // Number keywords.
    ("responsetime > 5", &[7]),
    ("responsetime >= 1", &[1, 3, 7, 8, 9]),
    ("responsetime < 0.1", &[5, 11]),
    ("responsetime <= 0.5", &[5, 6, 10, 11]),
    ("responsetime = 6.5", &[7]),
    ("responsetime != 6.5", &[1, 3, 4, 5, 6, 8, 9, 10, 11]),
    ("duration > 6", &[7]),
    ("duration < 1", &[4, 5, 6, 10, 11]),
    ("responseTime > 2", &[7]),
    ("responsetime >= 2", &[3, 7]),
    ("http.status = 404", &[6]),
    ("http.status >= 400", &[3, 5, 6]),
    ("http.status >= 500", &[3]),
    ("http.status != 200", &[3, 5, 6]),
    ("http.status", &[1, 3, 4, 5, 6, 7, 9, 10]),
    ("!http.status", &[2, 8, 11]),
    ("responsetime", &[1, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    ("!duration", &[2]),
    ("duration >= 1e0 AND duration <= 15E-1", &[1, 8, 9]),
    ("responsetime > -1", &[1, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    (
        "http.status < 300 AND http.status >= 200",
        &[1, 4, 7, 9, 10],
    ),
    // String keywords.
    (r#"http.url CONTAINS "/orders/""#, &[4, 6]),
    (
        r#"http.url BEGINSWITH "https://shop.example.com/""#,
        &[3, 4, 5, 6, 7, 9],
    ),
    (r#"http.url ENDSWITH "/cart""#, &[9]),
    (r#"http.url = "https://shop.example.com/report""#, &[7]),
    (
        r#"http.url != "https://shop.example.com/report""#,
        &[1, 3, 4, 5, 6, 9, 10],
    ),
    ("http.url", &[1, 3, 4, 5, 6, 7, 9, 10]),
    ("!http.url", &[2, 8, 11]),
    (r#"http.method = "POST""#, &[3]),
    (r#"http.method = "PUT""#, &[10]),
    (r#"http.method != "GET""#, &[3, 10]),
    (r#"http.useragent CONTAINS "curl""#, &[1, 7]),
    (r#"http.useragent BEGINSWITH "Mozilla""#, &[4]),
    (r#"http.clientip = "10.0.0.1""#, &[1]),
    (r#"http.clientip BEGINSWITH "192.168.""#, &[10]),
    ("http.clientip", &[1, 4, 5, 10]),
    (r#"user = "erin""#, &[8]),
    (r#"user != "alice""#, &[3, 5, 8, 10]),
    (r#"!(user = "alice")"#, &[2, 3, 5, 6, 7, 8, 9, 10, 11]),
    ("!user", &[2, 6, 7, 9, 11]),
    (r#"user BEGINSWITH "c""#, &[5]),
    (r#"user ENDSWITH "e""#, &[1, 4, 10]),
    (r#"availabilityzone = "us-east-1a""#, &[3]),
    (r#"availabilityzone BEGINSWITH "us-east-1""#, &[3, 4]),
    (r#"availabilityzone CONTAINS """#, &[3, 4, 10]),
    (r#"instance.id = "i-0def""#, &[4]),
    ("instance.id", &[3, 4, 10]),
    (r#"resource.arn CONTAINS ":container/orders-1""#, &[3]),
    ("resource.arn", &[3]),
    (r#"http.url contains "/report""#, &[7]),
    (r#"HTTP.URL EndsWith "42""#, &[1]),
    (r#"http.url CONTAINS "REPORT""#, &[]),
    (r#"user = "Alice""#, &[]),
    (r#"http.url CONTAINS "\/api\/game""#, &[1]),
    (r#"user = "\u0061lice""#, &[1, 4]),
    // Annotations.
    (r#"annotation.order_id = "o-1001""#, &[3]),
    (r#"annotation.order_id BEGINSWITH "o-""#, &[3, 4]),
    ("annotation.order_id", &[3, 4]),
    ("annotation.amount >= 12", &[3, 4]),
    ("annotation.amount < 50", &[4]),
    ("annotation.amount = 99.5", &[3]),
    ("annotation.express = false", &[3]),
    ("annotation.express", &[4]),
    ("!annotation.express", &[1, 2, 3, 5, 6, 7, 8, 9, 10, 11]),
    ("annotation.express != true", &[3]),
    ("annotation.hit", &[]),
    ("annotation.hit = false", &[10]),
    (r#"annotation.region_code = "eu""#, &[10]),
    ("annotation.retry > 2", &[7]),
    ("annotation.retry >= 2", &[3, 7]),
    ("annotation.retry", &[3, 7]),
    (
        r#"annotation.tenant = "acme" OR annotation.tenant = "globex""#,
        &[5, 6],
    ),
    (r#"annotation.tenant != "acme""#, &[6]),
    ("annotation.cart_size = 3", &[9]),
    ("annotation.gameid > 5", &[]),
    (r#"annotation.age = "31""#, &[]),
    (r#"Annotation.gameid CONTAINS "DL6""#, &[1]),
    ("annotation.GAMEID", &[]),
    // service() and edge().
    (r#"service("orders")"#, &[3, 4, 6, 7, 9]),
    (r#"service("orders") { fault }"#, &[3]),
    (r#"service("orders") { error }"#, &[6]),
    (r#"service("orders") { partial }"#, &[9]),
    (r#"service("orders") { ok }"#, &[4, 7]),
    (r#"service("payments") { responsetime > 5 }"#, &[7]),
    (r#"service("orders") { http.status = 404 }"#, &[6]),
    (r#"service("web") { root }"#, &[1, 3, 4, 5, 6, 7, 9]),
    (r#"service("orders") { root }"#, &[]),
    ("service() { root AND fault }", &[1, 3, 10]),
    ("service() { inferred }", &[1, 4, 7, 10]),
    (
        r#"service() { type = "AWS::ECS::Container" AND error }"#,
        &[6],
    ),
    (r#"service() { name = "payments" AND fault }"#, &[3]),
    (
        r#"service(id(type: "AWS::Lambda::Function")) { error }"#,
        &[8],
    ),
    (r#"service(id(type: "AWS::Lambda")) { error }"#, &[]),
    (r#"service("random-name") { error }"#, &[8]),
    (
        r#"service(id(name: "bank.example.com", type: "remote"))"#,
        &[7],
    ),
    (r#"service(id(type: "remote")) { fault }"#, &[10]),
    (r#"service("web") { http.method = "POST" }"#, &[3]),
    (r#"service("web") { error }"#, &[1, 5, 6]),
    ("service() { error } AND !error", &[8]),
    (r#"edge("web", "orders")"#, &[3, 4, 6, 7, 9]),
    (r#"edge("web", "orders") { fault }"#, &[3]),
    (r#"edge("web", "orders") { error }"#, &[6]),
    (r#"edge("orders", "payments") { responsetime > 5 }"#, &[7]),
    (r#"edge("payments", id(type: "AWS::DynamoDB"))"#, &[4]),
    (
        r#"edge(id(name: "random-name", type: "AWS::Lambda"), id(type: "AWS::Lambda::Function")) { error }"#,
        &[],
    ),
    (
        r#"edge(id(name: "random-name", type: "AWS::Lambda"), id(type: "AWS::Lambda::Function"))"#,
        &[8],
    ),
    (r#"edge("web", "DynamoDB") { http.status = 429 }"#, &[1]),
    (r#"!edge("web", "orders")"#, &[1, 2, 5, 8, 10, 11]),
    (
        r#"edge("inventory", "postgres@db.internal") { fault }"#,
        &[10],
    ),
    (r#"edge("web", "orders") { partial }"#, &[]),
    (
        r#"http.url BEGINSWITH "https://shop.example.com/" AND !service("payments")"#,
        &[5, 6, 9],
    ),
    // Root causes.
    (r#"rootcause.fault.service { name = "payments" }"#, &[3]),
    (
        r#"rootcause.fault.service { last AND name = "payments" }"#,
        &[3],
    ),
    (
        r#"rootcause.fault.service { first AND name = "web" }"#,
        &[1, 3],
    ),
    ("rootcause.fault.service { index > 1 }", &[3]),
    (
        r#"rootcause.fault.service { inferred AND type = "remote" }"#,
        &[10],
    ),
    (
        r#"rootcause.fault.entity { last AND name = "render" }"#,
        &[1],
    ),
    ("rootcause.fault.entity { remote }", &[3, 10]),
    (
        r#"rootcause.fault.exception { name = "DatabaseError" }"#,
        &[3],
    ),
    (
        r#"rootcause.fault.exception { message CONTAINS "reset" }"#,
        &[10],
    ),
    ("rootcause.fault.exception { first AND last }", &[1, 3, 10]),
    ("rootcause.error.service { inferred }", &[1]),
    (
        r#"rootcause.error.service { type = "AWS::Lambda::Function" }"#,
        &[8],
    ),
    (r#"rootcause.error.exception { name = "KeyError" }"#, &[8]),
    (
        r#"rootcause.error.entity { name = "orders" AND last }"#,
        &[6],
    ),
    ("rootcause.error.service", &[1, 5, 6, 8]),
    ("rootcause.fault.service", &[1, 3, 10]),
    (
        "!rootcause.fault.service AND !rootcause.error.service",
        &[2, 4, 7, 9, 11],
    ),
    (
        "rootcause.responsetime.service { last AND inferred }",
        &[4, 7],
    ),
    (
        r#"rootcause.responsetime.service { last and type = "AWS::DynamoDB" }"#,
        &[4],
    ),
    (
        "rootcause.responsetime.entity { remote AND coverage > 0.7 }",
        &[3, 4, 7, 9],
    ),
    (
        "rootcause.responsetime.entity { last AND coverage > 0.85 }",
        &[1, 5, 8, 10, 11],
    ),
    (
        r#"rootcause.responsetime.service { name = "payments" }"#,
        &[3, 4, 7],
    ),
    (
        "rootcause.responsetime.entity { index = 0 AND coverage = 1 }",
        &[1, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    ),
    (
        r#"rootcause.json = #[{"Services": [{"Name": "web", "EntityPath": [{"Name": "web"}, {"Name": "render"}]}]}]"#,
        &[1],
    ),
    (
        r#"rootcause.json = #[{"Services": [{"Name": "web"}]}]"#,
        &[1, 5, 9],
    ),
    (
        r#"json = #[{"ClientImpacting": true, "Services": [{"Name": "web"}, {"Name": "orders"}]}]"#,
        &[6],
    ),
    (
        r#"rootcause.json != #[{"Services": [{"Name": "web"}]}]"#,
        &[2, 3, 4, 6, 7, 8, 10, 11],
    ),
    (r#"rootcause.fault.service { name = payments }"#, &[3]),
    // Groups (see `groups()`).
    (r#"group.name = "slow""#, &[7]),
    (r#"group.name = "web_errors" AND user = "carol""#, &[5]),
    (
        r#"group.arn = "arn:aws:xray:us-east-1:123456789012:group/slow/ABC""#,
        &[7],
    ),
    (r#"group.name != "slow""#, &[1, 2, 3, 4, 5, 6, 8, 9, 10, 11]),
    (r#"group.name = "unknown""#, &[]),
    (r#"group.name != "unknown""#, &[]),
    (r#"group.name = "everything""#, ALL),
    (r#"group.name = "loop""#, &[]),
    // Logic and precedence.
    ("fault OR error AND throttle", &[1, 3, 5, 10]),
    ("(fault OR error) AND throttle", &[1, 5]),
    ("NOT fault AND NOT error", &[2, 4, 7, 8, 9, 11]),
    ("not (fault or error)", &[2, 4, 7, 8, 9, 11]),
    ("!!fault", &[1, 3, 10]),
    ("fault and error or partial", &[1, 2, 9]),
    (r#"user = "alice" service("payments")"#, &[4]),
    ("((((ok))))", &[4, 7, 8, 9, 11]),
    (r#"service("web") {root = true and fault = true}"#, &[1, 3]),
    (
        r#"service("orders") { fault = true OR responsetime > 5 } AND annotation.retry = 3"#,
        &[7],
    ),
    (
        r#"edge("web", "orders") { fault = true } OR edge("web", "orders") { error = true }"#,
        &[3, 6],
    ),
];

fn groups() -> Groups {
    let parse = |s: &str| Filter::parse(s).expect("group expression parses");
    let mut g = Groups::new();
    g.insert(
        "slow",
        "arn:aws:xray:us-east-1:123456789012:group/slow/ABC",
        Some(parse("responsetime > 5")),
    );
    g.insert(
        "web_errors",
        "arn:aws:xray:us-east-1:123456789012:group/web_errors/DEF",
        Some(parse(r#"service("web") { error }"#)),
    );
    g.insert(
        "everything",
        "arn:aws:xray:us-east-1:123456789012:group/everything/GHI",
        None,
    );
    g.insert(
        "loop",
        "arn:aws:xray:us-east-1:123456789012:group/loop/JKL",
        Some(parse(r#"group.name = "loop""#)),
    );
    g
}

#[test]
fn at_least_150_expressions() {
    assert!(CASES.len() >= 150, "{} cases", CASES.len());
}

#[test]
fn each_expression_matches_exactly_its_traces() {
    let summaries = common::summaries();
    let groups = groups();
    let mut failures = Vec::new();
    for (expr, expected) in CASES {
        let filter = match Filter::parse(expr) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{expr}: does not parse: {e:#}"));
                continue;
            }
        };
        let got: Vec<usize> = summaries
            .iter()
            .enumerate()
            .filter(|(_, s)| filter.matches(s, &groups))
            .map(|(i, _)| i + 1)
            .collect();
        if got != *expected {
            failures.push(format!("{expr}: expected {expected:?}, got {got:?}"));
        }
        let printed = filter.to_string();
        match Filter::parse(&printed) {
            Ok(back) if back == filter => {}
            Ok(_) => failures.push(format!(
                "{expr}: printed as {printed} which parses differently"
            )),
            Err(e) => failures.push(format!("{expr}: printed as {printed} which fails: {e}")),
        }
        let push = pushdown_with_groups(&filter, &groups);
        for i in &got {
            if !push.admits(&summaries[i - 1]) {
                failures.push(format!(
                    "{expr}: pushdown {push:?} rejects matching trace {i}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
