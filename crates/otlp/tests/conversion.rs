//! The conversion table of docs/otlp.md, one test per semantic convention: OTLP spans
//! in, the X-Ray documents that come out (read back as JSON).
#![allow(missing_docs)]

use roentgen_otlp::proto::common::v1::{AnyValue, ArrayValue, KeyValue, any_value::Value as Av};
use roentgen_otlp::proto::resource::v1::Resource;
use roentgen_otlp::proto::trace::v1::span::{Event, SpanKind};
use roentgen_otlp::proto::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, status::StatusCode,
};
use roentgen_otlp::{Batch, ExportTraceServiceRequest, convert};
use serde_json::{Value, json};

const NOW: u64 = 1_780_000_000;

fn kv(key: &str, v: Av) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..Default::default()
    }
}
fn s(key: &str, v: &str) -> KeyValue {
    kv(key, Av::StringValue(v.into()))
}
fn i(key: &str, v: i64) -> KeyValue {
    kv(key, Av::IntValue(v))
}

fn trace(t: u64) -> Vec<u8> {
    let mut b = (t as u32).to_be_bytes().to_vec();
    b.extend_from_slice(&[0xab; 12]);
    b
}

fn span(id: u64, parent: Option<u64>, kind: SpanKind, name: &str, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: trace(NOW),
        span_id: id.to_be_bytes().to_vec(),
        parent_span_id: parent.map(|p| p.to_be_bytes().to_vec()).unwrap_or_default(),
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: (NOW - 10) * 1_000_000_000,
        end_time_unix_nano: (NOW - 10) * 1_000_000_000 + 250_000_000,
        attributes: attrs,
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn svc() -> Vec<KeyValue> {
    vec![
        s("service.name", "checkout"),
        s("telemetry.sdk.language", "python"),
    ]
}

fn docs(b: &Batch) -> Vec<Value> {
    b.documents
        .iter()
        .map(|d| serde_json::from_str(d.document.raw()).expect("json"))
        .collect()
}

/// The only document of a one-span conversion.
fn one(resource: Vec<KeyValue>, sp: Span) -> Value {
    let b = convert(&request(resource, vec![sp]), NOW);
    assert!(b.rejected.is_empty(), "{:?}", b.rejected);
    let mut d = docs(&b);
    assert_eq!(d.len(), 1, "{d:?}");
    d.remove(0)
}

#[test]
fn http_server_span_new_conventions() {
    let d = one(
        svc(),
        span(
            1,
            Some(0x99),
            SpanKind::Server,
            "GET /cart",
            vec![
                s("http.request.method", "GET"),
                s("url.scheme", "https"),
                s("server.address", "shop.example.com"),
                s("url.path", "/cart"),
                s("url.query", "x=1"),
                i("http.response.status_code", 200),
                s("user_agent.original", "curl/8"),
                s("client.address", "203.0.113.7"),
                s("enduser.id", "alice"),
            ],
        ),
    );
    assert_eq!(d["name"], "checkout");
    assert_eq!(d["id"], "0000000000000001");
    assert_eq!(d["parent_id"], "0000000000000099");
    assert_eq!(
        d["trace_id"],
        format!("1-{NOW:08x}-abababababababababababab")
    );
    assert!(d.get("type").is_none() && d.get("namespace").is_none());
    assert_eq!(
        d["http"],
        json!({"request": {"method": "GET", "url": "https://shop.example.com/cart?x=1",
            "user_agent": "curl/8", "client_ip": "203.0.113.7"},
            "response": {"status": 200}})
    );
    assert_eq!(d["user"], "alice");
    assert_eq!(
        (d["start_time"].as_f64(), d["end_time"].as_f64()),
        (Some((NOW - 10) as f64), Some((NOW - 10) as f64 + 0.25))
    );
    // Resource attributes go to the segment's metadata.
    assert_eq!(
        d["metadata"]["default"]["otel.resource.service.name"],
        "checkout"
    );
    assert!(d.get("error").is_none() && d.get("fault").is_none());
}

#[test]
fn http_server_span_old_conventions() {
    let d = one(
        svc(),
        span(
            1,
            None,
            SpanKind::Server,
            "GET",
            vec![
                s("http.method", "POST"),
                s("http.scheme", "http"),
                s("http.host", "api.internal:8080"),
                s("http.target", "/orders"),
                i("http.status_code", 201),
                s("http.user_agent", "py"),
                s("http.client_ip", "10.0.0.1"),
            ],
        ),
    );
    assert_eq!(
        d["http"]["request"],
        json!({"method": "POST", "url": "http://api.internal:8080/orders", "user_agent": "py",
            "client_ip": "10.0.0.1", "x_forwarded_for": true})
    );
    assert_eq!(d["http"]["response"]["status"], 201);
}

#[test]
fn http_client_span_is_a_remote_subsegment() {
    let d = one(
        svc(),
        span(
            2,
            Some(0x77),
            SpanKind::Client,
            "GET",
            vec![
                s("http.request.method", "GET"),
                s("url.full", "http://coupons.internal/v1/codes"),
                s("server.address", "coupons.internal"),
                i("http.response.status_code", 404),
            ],
        ),
    );
    assert_eq!(d["type"], "subsegment");
    assert_eq!(d["parent_id"], "0000000000000077");
    assert_eq!(d["namespace"], "remote");
    assert_eq!(d["name"], "coupons.internal");
    assert_eq!(
        d["http"]["request"]["url"],
        "http://coupons.internal/v1/codes"
    );
    assert_eq!((d["error"].clone(), d.get("fault")), (json!(true), None));
    // A subsegment carries no resource metadata.
    assert!(d.get("metadata").is_none(), "{d}");
}

#[test]
fn peer_service_names_the_subsegment() {
    let d = one(
        svc(),
        span(
            2,
            Some(1),
            SpanKind::Client,
            "call",
            vec![
                s("peer.service", "payments"),
                s("server.address", "10.1.2.3"),
            ],
        ),
    );
    assert_eq!(d["name"], "payments");
}

#[test]
fn errors_faults_and_throttles_from_status_and_http() {
    type Flags = (bool, bool, bool);
    let cases: Vec<(Option<i64>, i32, Flags)> = vec![
        // (http status, span status, (error, throttle, fault))
        (Some(200), StatusCode::Unset as i32, (false, false, false)),
        (Some(404), StatusCode::Unset as i32, (true, false, false)),
        (Some(429), StatusCode::Error as i32, (true, true, false)),
        (Some(503), StatusCode::Unset as i32, (false, false, true)),
        (None, StatusCode::Error as i32, (false, false, true)),
        (None, StatusCode::Ok as i32, (false, false, false)),
        (Some(302), StatusCode::Error as i32, (false, false, true)),
    ];
    for (http, status, want) in cases {
        let mut attrs = vec![];
        if let Some(h) = http {
            attrs.push(i("http.response.status_code", h));
        }
        let mut sp = span(1, None, SpanKind::Server, "x", attrs);
        sp.status = Some(Status {
            code: status,
            message: String::new(),
        });
        let d = one(svc(), sp);
        let flag = |k: &str| d.get(k) == Some(&json!(true));
        assert_eq!(
            (flag("error"), flag("throttle"), flag("fault")),
            want,
            "{http:?} {status}"
        );
    }
}

#[test]
fn exception_events_become_the_cause() {
    let mut sp = span(1, None, SpanKind::Server, "x", vec![]);
    sp.status = Some(Status {
        code: StatusCode::Error as i32,
        message: "boom".into(),
    });
    sp.events = vec![Event {
        name: "exception".into(),
        attributes: vec![
            s("exception.type", "ValueError"),
            s("exception.message", "bad template"),
            s(
                "exception.stacktrace",
                "Traceback (most recent call last):\n  File \"/app/web.py\", line 10, in handle\n    render()\n  File \"/app/tpl.py\", line 3, in render\n    raise ValueError('bad template')\nValueError: bad template\n",
            ),
        ],
        ..Default::default()
    }];
    let d = one(svc(), sp);
    assert_eq!(d["fault"], true);
    let ex = &d["cause"]["exceptions"][0];
    assert_eq!(ex["type"], "ValueError");
    assert_eq!(ex["message"], "bad template");
    assert_eq!(ex["remote"], false);
    assert_eq!(ex["id"].as_str().map(str::len), Some(16));
    // Innermost frame first.
    assert_eq!(
        ex["stack"],
        json!([{"path": "/app/tpl.py", "line": 3, "label": "render"},
               {"path": "/app/web.py", "line": 10, "label": "handle"}])
    );
    // Without exception events, an error status with a message is the cause.
    let mut sp = span(1, None, SpanKind::Server, "x", vec![]);
    sp.status = Some(Status {
        code: StatusCode::Error as i32,
        message: "timeout".into(),
    });
    let d = one(svc(), sp);
    assert_eq!(d["cause"]["exceptions"][0]["message"], "timeout");
}

#[test]
fn aws_sdk_call_is_an_aws_subsegment() {
    let d = one(
        svc(),
        span(
            3,
            Some(1),
            SpanKind::Client,
            "DynamoDB.PutItem",
            vec![
                s("rpc.system", "aws-api"),
                s("rpc.service", "DynamoDB"),
                s("rpc.method", "PutItem"),
                s("aws.region", "eu-west-1"),
                s("aws.request_id", "R123"),
                kv(
                    "aws.dynamodb.table_names",
                    Av::ArrayValue(ArrayValue {
                        values: vec![AnyValue {
                            value: Some(Av::StringValue("orders".into())),
                        }],
                    }),
                ),
                i("http.response.status_code", 429),
            ],
        ),
    );
    assert_eq!(d["namespace"], "aws");
    assert_eq!(d["name"], "DynamoDB");
    assert_eq!(
        d["aws"],
        json!({"operation": "PutItem", "region": "eu-west-1", "request_id": "R123", "table_name": "orders"})
    );
    assert_eq!(
        (d["error"].clone(), d["throttle"].clone()),
        (json!(true), json!(true))
    );
    // aws.remote.service wins and loses the AWS:: prefix.
    let d = one(
        svc(),
        span(
            3,
            Some(1),
            SpanKind::Client,
            "S3.GetObject",
            vec![
                s("rpc.system", "aws-api"),
                s("aws.remote.service", "AWS::S3"),
            ],
        ),
    );
    assert_eq!(d["name"], "S3");
}

#[test]
fn sql_database_call() {
    let d = one(
        svc(),
        span(
            4,
            Some(1),
            SpanKind::Client,
            "SELECT",
            vec![
                s("db.system", "postgresql"),
                s("db.name", "payments"),
                s("db.statement", "SELECT balance FROM accounts WHERE id = $1"),
                s("db.user", "app"),
                s("server.address", "db.internal"),
                i("server.port", 5432),
            ],
        ),
    );
    assert_eq!(d["name"], "payments@db.internal");
    assert_eq!(d["namespace"], "remote");
    assert_eq!(
        d["sql"],
        json!({"database_type": "postgresql", "url": "db.internal:5432/payments",
            "sanitized_query": "SELECT balance FROM accounts WHERE id = $1", "user": "app"})
    );
    // A non-SQL database gets no sql object.
    let d = one(
        svc(),
        span(
            4,
            Some(1),
            SpanKind::Client,
            "GET",
            vec![s("db.system", "redis"), s("server.address", "cache")],
        ),
    );
    assert!(d.get("sql").is_none());
    assert_eq!(d["name"], "cache");
}

#[test]
fn messaging_producer_and_consumer() {
    let d = one(
        svc(),
        span(
            5,
            Some(1),
            SpanKind::Producer,
            "orders send",
            vec![
                s("messaging.system", "aws_sqs"),
                s("messaging.destination.name", "orders"),
                s(
                    "messaging.url",
                    "https://sqs.eu-west-1.amazonaws.com/1/orders",
                ),
            ],
        ),
    );
    assert_eq!(
        (d["type"].clone(), d["namespace"].clone(), d["name"].clone()),
        (json!("subsegment"), json!("aws"), json!("SQS"))
    );
    assert_eq!(
        d["aws"]["queue_url"],
        "https://sqs.eu-west-1.amazonaws.com/1/orders"
    );
    let d = one(
        svc(),
        span(
            6,
            Some(5),
            SpanKind::Consumer,
            "orders process",
            vec![
                s("messaging.system", "kafka"),
                s("messaging.destination.name", "orders"),
            ],
        ),
    );
    // Consumers are segments of the consuming service, under the producer.
    assert!(d.get("type").is_none());
    assert_eq!(
        (d["name"].clone(), d["parent_id"].clone()),
        (json!("checkout"), json!("0000000000000005"))
    );
}

/// Values X-Ray would refuse in a typed field never cost the document (and the spans
/// embedded in it): an HTTP status past 65535 or a negative length stays in the
/// metadata, and resource fields the segment holds as strings are written as text.
#[test]
fn odd_values_keep_the_document() {
    let res = vec![
        s("service.name", "api"),
        s("cloud.platform", "aws_ec2"),
        i("host.id", 4711),
        i("cloud.account.id", 123_456_789_012),
    ];
    let server = span(
        1,
        None,
        SpanKind::Server,
        "GET /",
        vec![
            s("http.request.method", "GET"),
            i("http.response.status_code", 70_000),
            i("http.response.body.size", -5),
        ],
    );
    let child = span(2, Some(1), SpanKind::Internal, "work", vec![]);
    let b = convert(&request(res, vec![server, child]), NOW);
    assert!(b.rejected.is_empty(), "{:?}", b.rejected);
    let d = docs(&b);
    assert_eq!(d.len(), 1, "{d:?}");
    let d = &d[0];
    assert_eq!(d["subsegments"].as_array().map(Vec::len), Some(1));
    assert_eq!(d["http"], json!({"request": {"method": "GET"}}));
    assert_eq!(d["fault"], json!(null), "an impossible status is no fault");
    let meta = &d["metadata"]["default"];
    assert_eq!(meta["http.response.status_code"], 70_000);
    assert_eq!(meta["http.response.body.size"], -5);
    assert_eq!(d["aws"]["ec2"]["instance_id"], "4711");
    assert_eq!(d["aws"]["account_id"], "123456789012");
}

#[test]
fn resource_attributes_give_origin_service_and_aws() {
    let res = vec![
        s("service.name", "api"),
        s("service.version", "1.4.2"),
        s("cloud.provider", "aws"),
        s("cloud.platform", "aws_ec2"),
        s("host.id", "i-0abc"),
        s("cloud.availability_zone", "eu-west-1a"),
        s("cloud.account.id", "123456789012"),
        s("telemetry.sdk.name", "opentelemetry"),
        s("telemetry.sdk.language", "python"),
        s("telemetry.sdk.version", "1.45.2"),
    ];
    let d = one(res.clone(), span(1, None, SpanKind::Server, "x", vec![]));
    assert_eq!(d["origin"], "AWS::EC2::Instance");
    assert_eq!(d["service"], json!({"version": "1.4.2"}));
    assert_eq!(
        d["aws"]["ec2"],
        json!({"instance_id": "i-0abc", "availability_zone": "eu-west-1a"})
    );
    assert_eq!(d["aws"]["account_id"], "123456789012");
    assert_eq!(d["aws"]["xray"]["sdk"], "opentelemetry for python");
    let ecs = vec![
        s("service.name", "api"),
        s("cloud.platform", "aws_ecs"),
        s("aws.ecs.launchtype", "fargate"),
        s("container.id", "c1"),
    ];
    let d = one(ecs, span(1, None, SpanKind::Server, "x", vec![]));
    assert_eq!(d["origin"], "AWS::ECS::Fargate");
    assert_eq!(d["aws"]["ecs"]["container_id"], "c1");
    let eks = vec![
        s("service.name", "api"),
        s("cloud.platform", "aws_eks"),
        s("k8s.pod.name", "p"),
        s("k8s.cluster.name", "c"),
    ];
    let d = one(eks, span(1, None, SpanKind::Server, "x", vec![]));
    assert_eq!(
        (d["origin"].clone(), d["aws"]["eks"].clone()),
        (
            json!("AWS::EKS::Container"),
            json!({"pod": "p", "cluster_name": "c"})
        )
    );
    // Another cloud: no origin.
    let gcp = vec![
        s("service.name", "api"),
        s("cloud.provider", "gcp"),
        s("cloud.platform", "aws_ec2"),
    ];
    assert!(
        one(gcp, span(1, None, SpanKind::Server, "x", vec![]))
            .get("origin")
            .is_none()
    );
}

#[test]
fn chosen_attributes_become_annotations_the_rest_metadata() {
    let d = one(
        svc(),
        span(
            1,
            None,
            SpanKind::Server,
            "x",
            vec![
                kv(
                    "aws.xray.annotations",
                    Av::ArrayValue(ArrayValue {
                        values: ["customer.tier", "cart-items", "express", "nested"]
                            .iter()
                            .map(|k| AnyValue {
                                value: Some(Av::StringValue((*k).into())),
                            })
                            .collect(),
                    }),
                ),
                s("customer.tier", "gold"),
                i("cart-items", 3),
                kv("express", Av::BoolValue(true)),
                kv("nested", Av::ArrayValue(ArrayValue::default())),
                s("other", "x"),
                s("aws.xray.metadata.shop", "{\"total\": 42.5}"),
            ],
        ),
    );
    // Keys sanitized to letters, digits and underscores.
    assert_eq!(
        d["annotations"],
        json!({"customer_tier": "gold", "cart_items": 3, "express": true})
    );
    assert_eq!(d["metadata"]["default"]["other"], "x");
    // A value that cannot be an annotation stays metadata.
    assert_eq!(d["metadata"]["default"]["nested"], json!([]));
    assert_eq!(d["metadata"]["shop"], json!({"total": 42.5}));
}

#[test]
fn children_are_embedded_in_their_parents_document() {
    let spans = vec![
        span(1, Some(0x50), SpanKind::Server, "GET /", vec![]),
        span(2, Some(1), SpanKind::Internal, "render", vec![]),
        span(3, Some(2), SpanKind::Internal, "template", vec![]),
        span(
            4,
            Some(1),
            SpanKind::Client,
            "GET",
            vec![s("peer.service", "orders")],
        ),
        // Parent not in this request: an independent subsegment.
        span(5, Some(0x60), SpanKind::Internal, "late", vec![]),
        // A server span under a local client span stays a segment of its own.
        span(6, Some(4), SpanKind::Server, "orders", vec![]),
    ];
    let b = convert(&request(svc(), spans), NOW);
    assert!(b.rejected.is_empty(), "{:?}", b.rejected);
    assert_eq!((b.spans, b.converted_spans()), (6, 6));
    let d = docs(&b);
    assert_eq!(d.len(), 3, "{d:?}");
    let root = d
        .iter()
        .find(|x| x["id"] == "0000000000000001")
        .expect("root");
    let subs = root["subsegments"].as_array().expect("embedded");
    assert_eq!(subs.len(), 2);
    assert_eq!(subs[0]["name"], "render");
    assert!(subs[0].get("namespace").is_none());
    assert_eq!(subs[0]["subsegments"][0]["name"], "template");
    assert_eq!(
        (subs[1]["name"].clone(), subs[1]["namespace"].clone()),
        (json!("orders"), json!("remote"))
    );
    // Embedded subsegments carry no trace_id, parent_id or type.
    assert!(subs[0].get("trace_id").is_none() && subs[0].get("type").is_none());
    let late = d
        .iter()
        .find(|x| x["id"] == "0000000000000005")
        .expect("late");
    assert_eq!(
        (late["type"].clone(), late["parent_id"].clone()),
        (json!("subsegment"), json!("0000000000000060"))
    );
    let orders = d
        .iter()
        .find(|x| x["id"] == "0000000000000006")
        .expect("segment");
    assert_eq!(orders["parent_id"], "0000000000000004");
    // The typed views hold no spare room (they wait for the indexer in memory).
    for doc in &b.documents {
        for seg in doc.document.segment().walk() {
            let subs = &seg.subsegments;
            assert_eq!(subs.capacity(), subs.len(), "{:?}", seg.name);
        }
    }
}

#[test]
fn too_many_annotations_split_the_document() {
    let annotated = |id: u64| {
        let keys: Vec<String> = (0..30).map(|k| format!("k{k}")).collect();
        let mut attrs: Vec<KeyValue> = keys.iter().map(|k| i(k, 1)).collect();
        attrs.push(kv(
            "aws.xray.annotations",
            Av::ArrayValue(ArrayValue {
                values: keys
                    .iter()
                    .map(|k| AnyValue {
                        value: Some(Av::StringValue(k.clone())),
                    })
                    .collect(),
            }),
        ));
        span(id, Some(1), SpanKind::Internal, "work", attrs)
    };
    let spans = vec![
        span(1, None, SpanKind::Server, "x", vec![]),
        annotated(2),
        annotated(3),
    ];
    let b = convert(&request(svc(), spans), NOW);
    assert!(b.rejected.is_empty(), "{:?}", b.rejected);
    // 30 + 30 > 50: the second child goes on its own.
    assert_eq!(b.documents.len(), 2);
    assert_eq!(b.converted_spans(), 3);
}

#[test]
fn root_client_span_becomes_segment_with_dependency() {
    let d = one(
        svc(),
        span(
            7,
            None,
            SpanKind::Client,
            "GET",
            vec![
                s("peer.service", "inventory"),
                i("http.response.status_code", 500),
            ],
        ),
    );
    assert_eq!(d["name"], "checkout");
    assert_ne!(d["id"], "0000000000000007");
    assert_eq!(d["fault"], true);
    let call = &d["subsegments"][0];
    assert_eq!(
        (
            call["id"].clone(),
            call["name"].clone(),
            call["namespace"].clone()
        ),
        (
            json!("0000000000000007"),
            json!("inventory"),
            json!("remote")
        )
    );
}

#[test]
fn w3c_trace_ids_keep_the_original_in_metadata() {
    let mut sp = span(1, None, SpanKind::Server, "x", vec![]);
    sp.trace_id = hex_bytes("4bf92f3577b34da6a3ce929d0e0e4736");
    let b = convert(&request(svc(), vec![sp]), NOW);
    assert_eq!(b.w3c_ids, 1);
    let d = &docs(&b)[0];
    let start = NOW - 10;
    let bucket = start - start % roentgen_otlp::ids::W3C_BUCKET_SECONDS;
    assert_eq!(
        d["trace_id"],
        format!("1-{bucket:08x}-77b34da6a3ce929d0e0e4736")
    );
    assert_eq!(
        d["metadata"]["default"]["otel.trace_id"],
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

fn hex_bytes(h: &str) -> Vec<u8> {
    (0..h.len())
        .step_by(2)
        .map(|k| u8::from_str_radix(&h[k..k + 2], 16).expect("hex"))
        .collect()
}

#[test]
fn unconvertible_spans_are_rejected_with_a_reason_and_the_rest_land() {
    let mut bad_trace = span(1, None, SpanKind::Server, "x", vec![]);
    bad_trace.trace_id = vec![0; 16];
    let mut bad_span = span(2, None, SpanKind::Server, "x", vec![]);
    bad_span.span_id = vec![1, 2, 3];
    let mut backwards = span(3, None, SpanKind::Server, "x", vec![]);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1_000_000_000;
    let good = span(4, None, SpanKind::Server, "x", vec![]);
    let b = convert(
        &request(svc(), vec![bad_trace, bad_span, backwards, good]),
        NOW,
    );
    assert_eq!(b.documents.len(), 1);
    let mut reasons: Vec<&str> = b.rejected.iter().map(|r| r.reason).collect();
    reasons.sort();
    assert_eq!(reasons, ["InvalidSpanId", "InvalidTime", "InvalidTraceId"]);
    assert_eq!(b.rejected_spans(), 3);
    let msg = b.error_message();
    assert!(msg.contains("InvalidTime") && msg.contains("end"), "{msg}");
    let resp = roentgen_otlp::http::response(&b);
    assert_eq!(resp.partial_success.map(|p| p.rejected_spans), Some(3));
}

#[test]
fn segment_names_are_sanitized() {
    let d = one(
        vec![s("service.name", "shop (eu)!")],
        span(1, None, SpanKind::Server, "x", vec![]),
    );
    assert_eq!(d["name"], "shop eu");
    let d = one(
        vec![s("service.name", "???")],
        span(1, None, SpanKind::Server, "x", vec![]),
    );
    assert_eq!(d["name"], "span");
}

#[test]
fn otlp_json_decodes() {
    let body = format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"web"}}}}]}},
        "scopeSpans":[{{"spans":[{{"traceId":"{NOW:08x}abababababababababababab","spanId":"00000000000000aa",
        "name":"GET /","kind":2,"startTimeUnixNano":"{s}","endTimeUnixNano":"{e}",
        "attributes":[{{"key":"http.response.status_code","value":{{"intValue":"503"}}}}]}}]}}]}}]}}"#,
        s = (NOW - 5) * 1_000_000_000,
        e = (NOW - 4) * 1_000_000_000
    );
    let (format, req) =
        roentgen_otlp::http::read_request(Some("application/json"), None, Some(body.as_bytes()))
            .expect("valid OTLP JSON");
    assert_eq!(format, roentgen_otlp::http::Format::Json);
    let b = convert(&req, NOW);
    let d = &docs(&b)[0];
    assert_eq!(
        (
            d["name"].clone(),
            d["fault"].clone(),
            d["http"]["response"]["status"].clone()
        ),
        (json!("web"), json!(true), json!(503))
    );
}

mod hostile {
    use proptest::prelude::*;

    use super::*;

    fn arb_span() -> impl Strategy<Value = Span> {
        (
            prop::collection::vec(any::<u8>(), 0..18),
            0u64..6,
            prop::option::of(0u64..6),
            0i32..8,
            "\\PC{0,12}",
            any::<u64>(),
            any::<u64>(),
            prop::collection::vec(("[a-z.]{1,12}", "\\PC{0,8}", any::<i64>()), 0..6),
        )
            .prop_map(|(trace, id, parent, kind, name, start, end, attrs)| {
                let mut attributes: Vec<KeyValue> = Vec::new();
                for (k, v, n) in attrs {
                    attributes.push(s(&k, &v));
                    attributes.push(i(&format!("{k}.n"), n));
                }
                Span {
                    trace_id: if trace.len() == 17 {
                        super::trace(NOW)
                    } else {
                        trace
                    },
                    span_id: (id + 1).to_be_bytes().to_vec(),
                    parent_span_id: parent
                        .map(|p| (p + 1).to_be_bytes().to_vec())
                        .unwrap_or_default(),
                    name,
                    kind,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    attributes,
                    ..Default::default()
                }
            })
    }

    /// Attribute keys the conversion reads, so generated spans reach every typed field.
    const SEMANTIC_KEYS: &[&str] = &[
        "http.request.method",
        "http.method",
        "user_agent.original",
        "http.client_ip",
        "client.address",
        "http.response.status_code",
        "http.status_code",
        "http.response.body.size",
        "url.full",
        "url.scheme",
        "server.address",
        "server.port",
        "http.target",
        "url.path",
        "url.query",
        "net.peer.name",
        "rpc.system",
        "rpc.method",
        "rpc.service",
        "aws.service",
        "aws.region",
        "aws.request_id",
        "aws.queue_url",
        "aws.table_name",
        "aws.account_id",
        "db.system",
        "db.connection_string",
        "db.name",
        "db.statement",
        "db.user",
        "messaging.system",
        "messaging.url",
        "aws.local.service",
        "aws.remote.service",
        "peer.service",
        "enduser.id",
        "custom.key",
    ];

    fn arb_value() -> impl Strategy<Value = Av> {
        prop_oneof![
            prop::sample::select(
                &["GET", "aws-api", "mysql", "aws_sqs", "https", "", "x\"\\\n"][..]
            )
            .prop_map(|v| Av::StringValue(v.to_string())),
            prop::sample::select(&[0i64, 200, 429, 503, 65_536, -1, i64::MAX][..])
                .prop_map(Av::IntValue),
            prop::sample::select(&[1.5f64, 404.0, f64::NAN, 1e300][..]).prop_map(Av::DoubleValue),
            any::<bool>().prop_map(Av::BoolValue),
        ]
    }

    fn arb_semantic_span() -> impl Strategy<Value = Span> {
        (
            0u64..4,
            prop::option::of(0u64..4),
            0i32..6,
            prop::collection::vec((prop::sample::select(SEMANTIC_KEYS), arb_value()), 0..10),
            prop::option::of(0i32..3),
        )
            .prop_map(|(id, parent, kind, attrs, status)| Span {
                trace_id: super::trace(NOW),
                span_id: (id + 1).to_be_bytes().to_vec(),
                parent_span_id: parent
                    .map(|p| (p + 1).to_be_bytes().to_vec())
                    .unwrap_or_default(),
                name: "op".into(),
                kind,
                start_time_unix_nano: (NOW - 10) * 1_000_000_000 + 123_456_789,
                end_time_unix_nano: (NOW - 9) * 1_000_000_000 + 987_654_321,
                attributes: attrs.into_iter().map(|(k, v)| kv(k, v)).collect(),
                status: status.map(|code| Status {
                    code,
                    message: "boom".into(),
                }),
                ..Default::default()
            })
    }

    proptest! {
        /// Spans with the attributes the conversion reads, of every value type: each
        /// document is what its text reads as (its typed view was built beside the text).
        #[test]
        fn typed_view_matches_the_text(
            spans in prop::collection::vec(arb_semantic_span(), 1..8),
            resource in prop::collection::vec((prop::sample::select(&["cloud.platform", "cloud.account.id", "host.id", "service.version", "telemetry.sdk.name"][..]), arb_value()), 0..4),
        ) {
            let mut res = svc();
            res.extend(resource.into_iter().map(|(k, v)| kv(k, v)));
            let n = spans.len();
            let b = convert(&request(res, spans), NOW);
            prop_assert_eq!(b.converted_spans() + b.rejected_spans(), n);
            for d in &b.documents {
                let parsed = roentgen_model::Document::parse(d.document.raw());
                prop_assert_eq!(parsed.as_ref(), Ok(&d.document));
            }
        }

        /// Any spans (bad ids, parent cycles, odd times and names): no panic, every
        /// span is accounted for, every document is valid and is what its text reads as.
        #[test]
        fn conversion_accounts_for_every_span(spans in prop::collection::vec(arb_span(), 0..12)) {
            let n = spans.len();
            let b = convert(&request(svc(), spans), NOW);
            prop_assert_eq!(b.spans, n);
            prop_assert_eq!(b.converted_spans() + b.rejected_spans(), n);
            // Each document is what its text parses to: the typed view built beside
            // the text reads exactly as the text does.
            for d in &b.documents {
                let parsed = roentgen_model::Document::parse(d.document.raw());
                prop_assert_eq!(parsed.as_ref(), Ok(&d.document));
            }
        }

        /// Arbitrary bytes as protobuf or JSON: an error or a request, never a panic.
        #[test]
        fn decoding_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            for format in [roentgen_otlp::http::Format::Protobuf, roentgen_otlp::http::Format::Json] {
                if let Ok(req) = roentgen_otlp::http::decode(format, &bytes) {
                    let _ = convert(&req, NOW);
                }
            }
        }
    }
}
