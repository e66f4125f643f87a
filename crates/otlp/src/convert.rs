//! OTLP spans to X-Ray segment documents, by the rules of AWS's X-Ray exporter for the
//! OpenTelemetry Collector (`awsxrayexporter`); `docs/otlp.md` has the table.
//!
//! * Server and consumer spans, and spans without a parent, become **segments** named
//!   after the service (`aws.local.service`, else the resource's `service.name`).
//! * Client, producer and internal spans with a parent become **subsegments**: client
//!   and producer ones with `namespace` `aws` (AWS SDK calls: `rpc.system = aws-api`) or
//!   `remote`, internal ones without a namespace. A root client or producer span (a
//!   script calling out) becomes a segment for its service holding the call as a
//!   subsegment, as the exporter's "local root dependency" rule does.
//! * A subsegment whose parent span is in the same request (same resource) is
//!   **embedded** in its parent's document, as X-Ray SDKs send them; otherwise (or when
//!   the document would pass 64 kB, 50 annotations or the nesting limit) it is sent as
//!   an independent subsegment (`type: subsegment`, `parent_id`).
//! * Every document goes through [`Document::from_value`] ([`Document::parse`]'s checks
//!   on the value the text was written from), the validation that UDP and
//!   `PutTraceSegments` documents go through; spans of a document that fails it are
//!   rejected with its error code.

use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use roentgen_model::document::{MAX_ANNOTATIONS_PER_DOCUMENT, MAX_DOCUMENT_BYTES};
use roentgen_model::{Document, TraceId};
use serde_json::{Map, Value, json};

use crate::attrs::{Attrs, annotation, annotation_key, approx_size, get, get_str, to_json};
use crate::ids::{IdMapping, hex, to_xray};

/// Spans refused for a reason of their own, before any document is made.
pub const SPAN_REASONS: &[&str] = &["InvalidTraceId", "InvalidSpanId", "InvalidParentId"];
/// Reasons a converted document fails validation (the model's error codes).
pub const DOCUMENT_REASONS: &[&str] = roentgen_model::DocumentError::ALL_CODES;

/// Largest document we assemble by embedding (the limit is [`MAX_DOCUMENT_BYTES`]; the
/// size is estimated, so leave room).
const EMBED_BUDGET: usize = MAX_DOCUMENT_BYTES * 3 / 4;
/// Deepest embedding (the model allows 32).
const MAX_EMBED_DEPTH: usize = 24;
/// Metadata namespace of attributes that are neither typed fields nor annotations.
const DEFAULT_NAMESPACE: &str = "default";
/// Span attribute listing the attribute keys to index as annotations.
pub const ANNOTATIONS_ATTRIBUTE: &str = "aws.xray.annotations";
/// Prefix of span attributes holding JSON metadata for a namespace.
pub const METADATA_PREFIX: &str = "aws.xray.metadata.";

/// Spans that did not become stored documents, for the partial-success answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    /// The trace: the OTel id in hex for spans refused during conversion, the X-Ray id
    /// for documents refused after it (policy).
    pub trace_id: String,
    /// Hex OTel span id.
    pub span_id: String,
    /// How many spans this covers (a document holds its embedded spans too).
    pub spans: usize,
    /// A stable code: one of [`SPAN_REASONS`] or a `DocumentError` code.
    pub reason: &'static str,
    /// What was wrong.
    pub message: String,
}

/// A converted document and how many spans it holds.
#[derive(Debug, Clone)]
pub struct Converted {
    /// The validated document.
    pub document: Document,
    /// Spans in it (its own and the embedded ones).
    pub spans: usize,
    /// Hex id of its first span, for messages.
    pub span_id: String,
}

/// What one request became.
#[derive(Debug, Default)]
pub struct Batch {
    /// Spans in the request.
    pub spans: usize,
    /// Valid documents.
    pub documents: Vec<Converted>,
    /// Spans that could not be converted.
    pub rejected: Vec<Rejection>,
    /// Spans whose trace id was not X-Ray style (the time part was replaced).
    pub w3c_ids: usize,
}

impl Batch {
    /// Spans rejected in total.
    pub fn rejected_spans(&self) -> usize {
        self.rejected.iter().map(|r| r.spans).sum()
    }

    /// Spans in valid documents.
    pub fn converted_spans(&self) -> usize {
        self.documents.iter().map(|d| d.spans).sum()
    }

    /// Rejects a converted document after the fact (e.g. the server's retention
    /// policy), keeping the counts right.
    pub fn reject_document(&mut self, index: usize, reason: &'static str, message: String) {
        let d = self.documents.remove(index);
        self.rejected.push(Rejection {
            trace_id: d.document.trace_id().to_string(),
            span_id: d.span_id,
            spans: d.spans,
            reason,
            message,
        });
    }

    /// The `error_message` of a partial-success answer: the count per reason and the
    /// first message of each, or empty when nothing was rejected.
    pub fn error_message(&self) -> String {
        let mut reasons: Vec<(&'static str, usize, &str)> = Vec::new();
        for r in &self.rejected {
            match reasons
                .iter_mut()
                .find(|(reason, _, _)| *reason == r.reason)
            {
                Some(entry) => entry.1 += r.spans,
                None => reasons.push((r.reason, r.spans, &r.message)),
            }
        }
        reasons
            .iter()
            .map(|(reason, n, message)| {
                format!("{n} span(s) rejected with {reason} (first: span {message})")
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// What a span becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Its own segment document.
    Segment,
    /// A segment for the service holding the span as its first subsegment (root
    /// client/producer spans).
    SegmentWithDependency,
    /// A subsegment, embedded or independent.
    Subsegment,
}

/// The resource of a group of spans, converted once.
struct Resource {
    service: String,
    origin: Option<&'static str>,
    version: Option<String>,
    aws: Map<String, Value>,
    metadata: Map<String, Value>,
    language: String,
}

/// One span, converted to its own entity (without children).
struct Entity {
    value: Map<String, Value>,
    size: usize,
    annotations: usize,
    role: Role,
    span_id: u64,
    parent: Option<u64>,
    otel_trace: [u8; 16],
    trace: TraceId,
    mapping: IdMapping,
}

/// Converts every span of `req`; `now` is the current epoch second (it decides which
/// trace ids are X-Ray style).
pub fn convert(req: &ExportTraceServiceRequest, now: u64) -> Batch {
    let mut batch = Batch::default();
    // The earliest start of each trace in this request: W3C ids get one bucket per
    // request even when their spans straddle a bucket boundary.
    let mut first_start: HashMap<[u8; 16], u64> = HashMap::new();
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                if let Ok(t) = <[u8; 16]>::try_from(span.trace_id.as_slice())
                    && span.start_time_unix_nano > 0
                {
                    let s = span.start_time_unix_nano / 1_000_000_000;
                    first_start
                        .entry(t)
                        .and_modify(|v| *v = (*v).min(s))
                        .or_insert(s);
                }
            }
        }
    }
    for rs in &req.resource_spans {
        let resource_attrs: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| &r.attributes);
        let resource = resource(resource_attrs);
        let mut entities: Vec<Entity> = Vec::new();
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                batch.spans += 1;
                match entity(span, &resource, &first_start, now) {
                    Ok(e) => {
                        if e.mapping == IdMapping::W3c {
                            batch.w3c_ids += 1;
                        }
                        entities.push(e);
                    }
                    Err(r) => batch.rejected.push(r),
                }
            }
        }
        assemble(entities, &resource, &mut batch);
    }
    batch
}

fn sanitize_segment_name(name: &str) -> String {
    const SYMBOLS: &str = "_.:/%&#=+\\-@";
    let mut out: String = name
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || SYMBOLS.contains(*c))
        .take(roentgen_model::document::MAX_SEGMENT_NAME_CHARS)
        .collect();
    if out.trim().is_empty() {
        out = "span".into();
    }
    out
}

fn resource(attrs: &[KeyValue]) -> Resource {
    let service = get_str(attrs, "service.name").unwrap_or("unknown_service");
    let language = get_str(attrs, "telemetry.sdk.language")
        .unwrap_or("")
        .to_string();
    let cloud_ok = get_str(attrs, "cloud.provider").is_none_or(|p| p == "aws");
    let origin = match (cloud_ok, get_str(attrs, "cloud.platform")) {
        (true, Some("aws_ec2")) => Some("AWS::EC2::Instance"),
        (true, Some("aws_ecs")) => Some(match get_str(attrs, "aws.ecs.launchtype") {
            Some("ec2") => "AWS::ECS::EC2",
            Some("fargate") => "AWS::ECS::Fargate",
            _ => "AWS::ECS::Container",
        }),
        (true, Some("aws_eks")) => Some("AWS::EKS::Container"),
        (true, Some("aws_elastic_beanstalk")) => Some("AWS::ElasticBeanstalk::Environment"),
        (true, Some("aws_app_runner")) => Some("AWS::AppRunner::Service"),
        (true, Some("aws_lambda")) => Some("AWS::Lambda::Function"),
        _ => None,
    };
    let mut aws = Map::new();
    let put = |m: &mut Map<String, Value>, field: &str, key: &str| {
        if let Some(v) = get(attrs, key) {
            m.insert(field.into(), to_json(v));
        }
    };
    match origin {
        Some("AWS::EC2::Instance") => {
            let mut ec2 = Map::new();
            put(&mut ec2, "instance_id", "host.id");
            put(&mut ec2, "availability_zone", "cloud.availability_zone");
            put(&mut ec2, "instance_size", "host.type");
            put(&mut ec2, "ami_id", "host.image.id");
            aws.insert("ec2".into(), Value::Object(ec2));
        }
        Some("AWS::ECS::Container" | "AWS::ECS::EC2" | "AWS::ECS::Fargate") => {
            let mut ecs = Map::new();
            put(&mut ecs, "container", "container.name");
            put(&mut ecs, "container_id", "container.id");
            put(&mut ecs, "task_arn", "aws.ecs.task.arn");
            put(&mut ecs, "task_family", "aws.ecs.task.family");
            put(&mut ecs, "cluster_arn", "aws.ecs.cluster.arn");
            put(&mut ecs, "container_arn", "aws.ecs.container.arn");
            put(&mut ecs, "launch_type", "aws.ecs.launchtype");
            put(&mut ecs, "availability_zone", "cloud.availability_zone");
            aws.insert("ecs".into(), Value::Object(ecs));
        }
        Some("AWS::EKS::Container") => {
            let mut eks = Map::new();
            put(&mut eks, "pod", "k8s.pod.name");
            put(&mut eks, "cluster_name", "k8s.cluster.name");
            put(&mut eks, "container_id", "container.id");
            aws.insert("eks".into(), Value::Object(eks));
        }
        Some("AWS::ElasticBeanstalk::Environment") => {
            let mut eb = Map::new();
            put(&mut eb, "environment_name", "service.namespace");
            put(&mut eb, "deployment_id", "service.instance.id");
            put(&mut eb, "version_label", "service.version");
            aws.insert("elastic_beanstalk".into(), Value::Object(eb));
        }
        _ => {}
    }
    put(&mut aws, "account_id", "cloud.account.id");
    if let Some(sdk) = get_str(attrs, "telemetry.sdk.name") {
        let mut xray = Map::new();
        let name = if language.is_empty() {
            sdk.to_string()
        } else {
            format!("{sdk} for {language}")
        };
        xray.insert("sdk".into(), Value::String(name));
        put(&mut xray, "sdk_version", "telemetry.sdk.version");
        if get(attrs, "telemetry.auto.version").is_some() {
            xray.insert("auto_instrumentation".into(), Value::Bool(true));
        }
        aws.insert("xray".into(), Value::Object(xray));
    }
    let version = get_str(attrs, "service.version")
        .or_else(|| get_str(attrs, "container.image.tag"))
        .map(str::to_string);
    let mut metadata = Map::new();
    for kv in attrs {
        if let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            metadata.insert(format!("otel.resource.{}", kv.key), to_json(v));
        }
    }
    Resource {
        service: sanitize_segment_name(service),
        origin,
        version,
        aws,
        metadata,
        language,
    }
}

fn span_id_of(bytes: &[u8]) -> Option<u64> {
    let a: [u8; 8] = bytes.try_into().ok()?;
    let v = u64::from_be_bytes(a);
    (v != 0).then_some(v)
}

fn seconds(nanos: u64) -> f64 {
    (nanos / 1_000_000_000) as f64 + (nanos % 1_000_000_000) as f64 / 1e9
}

fn id_text(id: u64) -> String {
    crate::ids::segment_id_text(id)
}

/// An id derived from a span id, for entities the span makes besides itself.
fn derived_id(span_id: u64, salt: u64) -> u64 {
    let v = span_id ^ 0x9e37_79b9_7f4a_7c15u64.wrapping_mul(salt);
    if v == 0 { salt } else { v }
}

const SQL_SYSTEMS: &[&str] = &[
    "db2",
    "derby",
    "h2",
    "hsqldb",
    "ingres",
    "informix",
    "mariadb",
    "mssql",
    "microsoft.sql_server",
    "mysql",
    "oracle",
    "oracle.db",
    "other_sql",
    "postgresql",
    "sqlite",
    "sybase",
    "cockroachdb",
    "edb",
    "firebird",
    "hanadb",
    "interbase",
    "pointbase",
    "cache",
    "clickhouse",
    "trino",
    "redshift",
    "spanner",
];

fn entity(
    span: &Span,
    res: &Resource,
    first_start: &HashMap<[u8; 16], u64>,
    now: u64,
) -> Result<Entity, Rejection> {
    // Ids from the wire may be any length: messages quote at most 16 bytes.
    let short = |b: &[u8]| hex(&b[..b.len().min(16)]);
    let reject = |reason: &'static str, message: String| Rejection {
        trace_id: short(&span.trace_id),
        span_id: short(&span.span_id),
        spans: 1,
        reason,
        message,
    };
    let otel_trace: [u8; 16] = match <[u8; 16]>::try_from(span.trace_id.as_slice()) {
        Ok(t) if t != [0; 16] => t,
        _ => {
            return Err(reject(
                "InvalidTraceId",
                format!(
                    "{}: trace id must be 16 bytes, not all zero",
                    short(&span.span_id)
                ),
            ));
        }
    };
    let Some(span_id) = span_id_of(&span.span_id) else {
        return Err(reject(
            "InvalidSpanId",
            format!(
                "{:?}: span id must be 8 bytes, not all zero",
                short(&span.span_id)
            ),
        ));
    };
    let parent = if span.parent_span_id.is_empty() {
        None
    } else {
        match span_id_of(&span.parent_span_id) {
            Some(p) => Some(p),
            None if span.parent_span_id == [0; 8] => None,
            None => {
                return Err(reject(
                    "InvalidParentId",
                    format!(
                        "{}: parent span id {:?} is not 8 bytes",
                        id_text(span_id),
                        short(&span.parent_span_id)
                    ),
                ));
            }
        }
    };
    let start = first_start
        .get(&otel_trace)
        .copied()
        .unwrap_or(span.start_time_unix_nano / 1_000_000_000);
    let (trace, mapping) = to_xray(&otel_trace, start, now);

    let kind = SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified);
    let role = match (kind, parent) {
        (SpanKind::Server | SpanKind::Consumer, _) => Role::Segment,
        (SpanKind::Client | SpanKind::Producer, None) => Role::SegmentWithDependency,
        (_, None) => Role::Segment,
        (_, Some(_)) => Role::Subsegment,
    };
    let remote_call = matches!(kind, SpanKind::Client | SpanKind::Producer);
    let mut a = Attrs::new(&span.attributes);
    let mut m = Map::new();
    m.insert("id".into(), Value::String(id_text(span_id)));

    // --- AWS SDK calls, RPC, databases, messaging: name and namespace.
    let aws_sdk = a.peek_str("rpc.system") == Some("aws-api") || a.peek("aws.service").is_some();
    let mut aws = Map::new();
    if aws_sdk {
        if let Some(op) = a.take_str(&["rpc.method", "aws.operation"]) {
            aws.insert("operation".into(), json!(op));
        }
        if let Some(r) = a.take_str(&["aws.region", "cloud.region"]) {
            aws.insert("region".into(), json!(r));
        }
    }
    if let Some(r) = a.take_str(&["aws.request_id", "aws.requestId"]) {
        aws.insert("request_id".into(), json!(r));
    }
    if let Some(q) = a.take_str(&["aws.queue_url", "aws.sqs.queue_url"]) {
        aws.insert("queue_url".into(), json!(q));
    }
    if let Some(t) = a.take_str(&["aws.table_name"]) {
        aws.insert("table_name".into(), json!(t));
    } else if let Some(Av::ArrayValue(arr)) = a.peek("aws.dynamodb.table_names") {
        let names: Vec<Value> = arr
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(Av::StringValue(s)) => Some(json!(s)),
                _ => None,
            })
            .collect();
        a.take("aws.dynamodb.table_names");
        if names.len() == 1 {
            aws.insert("table_name".into(), names[0].clone());
        } else if !names.is_empty() {
            aws.insert("table_names".into(), Value::Array(names));
        }
    }
    if let Some(acct) = a.take_str(&["aws.account_id"]) {
        aws.insert("account_id".into(), json!(acct));
    }

    let db_system = a
        .peek_str("db.system")
        .or_else(|| a.peek_str("db.system.name"));
    let mut sql = Map::new();
    let mut db_host: Option<String> = None;
    if let Some(system) = db_system.filter(|s| SQL_SYSTEMS.contains(s)) {
        a.take_str(&["db.system", "db.system.name"]);
        sql.insert("database_type".into(), json!(system));
        let conn = a.take_str(&["db.connection_string"]);
        let host = a
            .peek_str("server.address")
            .or_else(|| a.peek_str("net.peer.name"))
            .map(str::to_string)
            .or_else(|| conn.and_then(host_of));
        let port = a
            .peek("server.port")
            .or_else(|| a.peek("net.peer.port"))
            .and_then(|v| match v {
                Av::IntValue(n) => Some(n.to_string()),
                Av::StringValue(s) => Some(s.clone()),
                _ => None,
            });
        let db_name = a.peek_str("db.name").or_else(|| a.peek_str("db.namespace"));
        let url = match (conn, &host) {
            (Some(c), _) => c.to_string(),
            (None, Some(h)) => {
                let mut u = h.clone();
                if let Some(p) = &port {
                    u.push(':');
                    u.push_str(p);
                }
                if let Some(d) = db_name {
                    u.push('/');
                    u.push_str(d);
                }
                u
            }
            (None, None) => "localhost".into(),
        };
        sql.insert("url".into(), json!(url));
        if let Some(q) = a.take_str(&["db.statement", "db.query.text"]) {
            sql.insert("sanitized_query".into(), json!(q));
        }
        if let Some(u) = a.take_str(&["db.user"]) {
            sql.insert("user".into(), json!(u));
        }
        db_host = host;
    }

    // --- HTTP.
    let mut request = Map::new();
    let mut response = Map::new();
    if let Some(method) = a.take_str(&["http.request.method", "http.method"]) {
        request.insert("method".into(), json!(method));
    }
    if let Some(ua) = a.take_str(&["user_agent.original", "http.user_agent"]) {
        request.insert("user_agent".into(), json!(ua));
    }
    if let Some(ip) = a.take_str(&["http.client_ip"]) {
        request.insert("client_ip".into(), json!(ip));
        request.insert("x_forwarded_for".into(), json!(true));
    } else if !remote_call
        && let Some(ip) = a.take_str(&["client.address", "net.sock.peer.addr", "net.peer.ip"])
    {
        request.insert("client_ip".into(), json!(ip));
    }
    let status = a.take_int(&["http.response.status_code", "http.status_code"]);
    if let Some(s) = status {
        response.insert("status".into(), json!(s));
    }
    if let Some(len) = a.take_int(&["http.response.body.size", "http.response_content_length"]) {
        response.insert("content_length".into(), json!(len));
    }
    let is_http = !request.is_empty() || !response.is_empty() || a.peek("url.full").is_some();
    let url = if let Some(full) = a.take_str(&["url.full", "http.url"]) {
        // The parts of the URL are in it.
        for part in [
            "url.scheme",
            "http.scheme",
            "server.address",
            "server.port",
            "http.host",
            "http.target",
            "url.path",
            "url.query",
            "net.peer.name",
            "net.peer.port",
            "net.host.name",
            "net.host.port",
        ] {
            a.take(part);
        }
        Some(full.to_string())
    } else if is_http {
        let scheme = a.take_str(&["url.scheme", "http.scheme"]).unwrap_or("http");
        let host = if remote_call {
            a.take_str(&[
                "http.host",
                "server.address",
                "net.peer.name",
                "net.peer.ip",
            ])
        } else {
            a.take_str(&[
                "http.host",
                "server.address",
                "http.server_name",
                "net.host.name",
            ])
        };
        let port = if remote_call {
            a.take_int(&["server.port", "net.peer.port"])
        } else {
            a.take_int(&["server.port", "net.host.port"])
        };
        let target = match a.take_str(&["http.target"]) {
            Some(t) => t.to_string(),
            None => match (a.take_str(&["url.path"]), a.take_str(&["url.query"])) {
                (Some(p), Some(q)) => format!("{p}?{q}"),
                (Some(p), None) => p.to_string(),
                (None, _) => "/".to_string(),
            },
        };
        host.map(|h| {
            let default_port = matches!((scheme, port), ("http", Some(80)) | ("https", Some(443)));
            match port {
                Some(p) if !default_port && !h.contains(':') => {
                    format!("{scheme}://{h}:{p}{target}")
                }
                _ => format!("{scheme}://{h}{target}"),
            }
        })
    } else {
        None
    };
    if let Some(u) = &url {
        request.insert("url".into(), json!(u));
    }

    // --- Name and namespace.
    let mut namespace: Option<&'static str> = None;
    if aws_sdk && remote_call {
        namespace = Some("aws");
    }
    let messaging = a.peek_str("messaging.system");
    if matches!(messaging, Some("aws_sqs" | "aws.sqs")) {
        if remote_call {
            namespace = Some("aws");
        }
        if let Some(q) = a.peek_str("messaging.url") {
            aws.entry("queue_url").or_insert_with(|| json!(q));
        }
    }
    let name: String = match role {
        Role::Segment => a
            .peek_str("aws.local.service")
            .map(sanitize_segment_name)
            .unwrap_or_else(|| res.service.clone()),
        Role::SegmentWithDependency | Role::Subsegment => {
            let trim = |s: &str| -> String {
                if aws_sdk {
                    s.trim_start_matches("AWS.SDK.")
                        .trim_start_matches("AWS::")
                        .to_string()
                } else {
                    s.to_string()
                }
            };
            let remote = if remote_call {
                a.peek_str("aws.remote.service")
                    .map(trim)
                    .or_else(|| a.peek_str("peer.service").map(str::to_string))
                    .or_else(|| {
                        if aws_sdk {
                            a.peek_str("rpc.service")
                                .or_else(|| a.peek_str("aws.service"))
                                .map(trim)
                        } else {
                            None
                        }
                    })
                    .or_else(|| {
                        if messaging == Some("aws_sqs") || messaging == Some("aws.sqs") {
                            Some("SQS".to_string())
                        } else {
                            None
                        }
                    })
                    .or_else(|| {
                        let db = a
                            .peek_str("db.name")
                            .or_else(|| a.peek_str("db.namespace"))?;
                        Some(match &db_host {
                            Some(h) => format!("{db}@{h}"),
                            None => db.to_string(),
                        })
                    })
                    .or_else(|| a.peek_str("messaging.destination.name").map(str::to_string))
                    .or_else(|| a.peek_str("rpc.service").map(str::to_string))
                    .or_else(|| {
                        a.peek_str("server.address")
                            .or_else(|| a.peek_str("http.host"))
                            .or_else(|| a.peek_str("net.peer.name"))
                            .map(str::to_string)
                    })
                    .or_else(|| url.as_deref().and_then(host_of))
            } else {
                None
            };
            remote.unwrap_or_else(|| span.name.clone())
        }
    };
    if namespace.is_none() && remote_call {
        namespace = Some("remote");
    }
    let name = if name.is_empty() {
        "span".to_string()
    } else {
        name
    };
    let name = if role == Role::Segment {
        name
    } else {
        name.chars()
            .take(roentgen_model::document::MAX_SUBSEGMENT_NAME_CHARS)
            .collect()
    };
    m.insert("name".into(), Value::String(name));
    m.insert(
        "start_time".into(),
        json!(seconds(span.start_time_unix_nano)),
    );
    m.insert("end_time".into(), json!(seconds(span.end_time_unix_nano)));
    if let Some(ns) = namespace
        && role != Role::Segment
    {
        m.insert("namespace".into(), json!(ns));
    }

    // --- Errors, faults, throttles and exceptions.
    let status_code = span.status.as_ref().map_or(StatusCode::Unset, |s| {
        StatusCode::try_from(s.code).unwrap_or(StatusCode::Unset)
    });
    let (mut error, mut fault, mut throttle) = (false, false, false);
    match status {
        Some(code @ 400..=499) => {
            error = true;
            throttle = code == 429;
        }
        Some(500..=599) => fault = true,
        _ => fault = status_code == StatusCode::Error,
    }
    let mut exceptions = Vec::new();
    for (i, event) in span.events.iter().enumerate() {
        if event.name != "exception" {
            continue;
        }
        let mut ex = Map::new();
        ex.insert(
            "id".into(),
            json!(id_text(derived_id(span_id, i as u64 + 1))),
        );
        if let Some(t) = get_str(&event.attributes, "exception.type") {
            ex.insert("type".into(), json!(t));
        }
        if let Some(msg) = get_str(&event.attributes, "exception.message") {
            ex.insert("message".into(), json!(msg));
        }
        ex.insert("remote".into(), json!(remote_call));
        if let Some(st) = get_str(&event.attributes, "exception.stacktrace") {
            let frames = stack(st, &res.language);
            if !frames.is_empty() {
                ex.insert("stack".into(), Value::Array(frames));
            }
        }
        exceptions.push(Value::Object(ex));
    }
    if exceptions.is_empty()
        && status_code == StatusCode::Error
        && let Some(msg) = span
            .status
            .as_ref()
            .map(|s| s.message.as_str())
            .filter(|m| !m.is_empty())
    {
        exceptions.push(json!({"id": id_text(derived_id(span_id, 0x51)), "message": msg}));
    }
    if error {
        m.insert("error".into(), json!(true));
    }
    if throttle {
        m.insert("throttle".into(), json!(true));
    }
    if fault {
        m.insert("fault".into(), json!(true));
    }
    if !exceptions.is_empty() {
        m.insert("cause".into(), json!({ "exceptions": exceptions }));
    }

    if !request.is_empty() || !response.is_empty() {
        let mut http = Map::new();
        if !request.is_empty() {
            http.insert("request".into(), Value::Object(request));
        }
        if !response.is_empty() {
            http.insert("response".into(), Value::Object(response));
        }
        m.insert("http".into(), Value::Object(http));
    }
    if !sql.is_empty() {
        m.insert("sql".into(), Value::Object(sql));
    }

    // --- User, annotations, metadata.
    if let Some(user) = a.take_str(&["enduser.id", "user.id"]) {
        m.insert("user".into(), json!(user));
    }
    let mut indexed: Vec<&str> = Vec::new();
    if let Some(Av::ArrayValue(keys)) = a.take(ANNOTATIONS_ATTRIBUTE) {
        for k in &keys.values {
            if let Some(Av::StringValue(s)) = &k.value {
                indexed.push(s);
            }
        }
    }
    let mut annotations = Map::new();
    for key in &indexed {
        if annotations.len() >= MAX_ANNOTATIONS_PER_DOCUMENT {
            break;
        }
        if let Some(v) = a.peek(key).and_then(annotation) {
            a.take(key);
            let k = annotation_key(key);
            if !k.is_empty() {
                annotations.insert(k, v);
            }
        }
    }
    let mut metadata: Map<String, Value> = Map::new();
    let mut default = Map::new();
    let unused: Vec<(&str, &Av)> = a.unused().collect();
    for (key, v) in unused {
        if let Some(ns) = key.strip_prefix(METADATA_PREFIX)
            && let Av::StringValue(text) = v
            && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text)
        {
            if ns.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
                default.extend(obj);
            } else {
                metadata.insert(ns.to_string(), Value::Object(obj));
            }
            continue;
        }
        default.insert(key.to_string(), to_json(v));
    }
    if role == Role::Segment {
        for (k, v) in &res.metadata {
            default.insert(k.clone(), v.clone());
        }
    }
    if mapping == IdMapping::W3c && role == Role::Segment {
        default.insert("otel.trace_id".into(), json!(hex(&otel_trace)));
    }
    if !default.is_empty() {
        metadata.insert(DEFAULT_NAMESPACE.into(), Value::Object(default));
    }

    if role == Role::Segment {
        if let Some(o) = res.origin {
            m.insert("origin".into(), json!(o));
        }
        let mut seg_aws = res.aws.clone();
        for (k, v) in aws {
            seg_aws.insert(k, v);
        }
        if !seg_aws.is_empty() {
            m.insert("aws".into(), Value::Object(seg_aws));
        }
        if let Some(v) = &res.version {
            m.insert("service".into(), json!({ "version": v }));
        }
    } else if !aws.is_empty() {
        m.insert("aws".into(), Value::Object(aws));
    }
    let annotation_count = annotations.len();
    if !annotations.is_empty() {
        m.insert("annotations".into(), Value::Object(annotations));
    }
    if !metadata.is_empty() {
        m.insert("metadata".into(), Value::Object(metadata));
    }
    let size = m
        .iter()
        .map(|(k, v)| k.len() + 4 + approx_size(v))
        .sum::<usize>()
        + 2;
    Ok(Entity {
        value: m,
        size,
        annotations: annotation_count,
        role,
        span_id,
        parent,
        otel_trace,
        trace,
        mapping,
    })
}

/// The host of a URL or connection string (`jdbc:` prefixes allowed).
fn host_of(url: &str) -> Option<String> {
    let rest = url.strip_prefix("jdbc:").unwrap_or(url);
    let after = rest.split_once("://").map_or(rest, |(_, r)| r);
    let authority = after.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_string())
}

/// Stack frames of an exception's stack trace, innermost first, for the languages whose
/// format the exporter reads (Python, Java, JavaScript); none for the others.
fn stack(trace: &str, language: &str) -> Vec<Value> {
    let mut frames = Vec::new();
    match language {
        "python" => {
            // `  File "path", line N, in label` lines, outermost first.
            for line in trace.lines() {
                let Some(rest) = line.trim_start().strip_prefix("File \"") else {
                    continue;
                };
                let Some((path, rest)) = rest.split_once('"') else {
                    continue;
                };
                let mut line_no = 0u64;
                let mut label = "";
                for part in rest.split(", ") {
                    if let Some(n) = part.trim().strip_prefix("line ") {
                        line_no = n.trim().parse().unwrap_or(0);
                    } else if let Some(l) = part.trim().strip_prefix("in ") {
                        label = l.trim();
                    }
                }
                frames.push(json!({"path": path, "line": line_no, "label": label}));
            }
            frames.reverse();
        }
        "java" | "php" | "javascript" | "nodejs" | "webjs" => {
            for line in trace.lines() {
                let l = line.trim_start();
                let Some(rest) = l.strip_prefix("at ") else {
                    continue;
                };
                let (label, loc) = match rest.rsplit_once('(') {
                    Some((label, loc)) => (label.trim(), loc.trim_end_matches(')')),
                    None => ("", rest),
                };
                let mut parts = loc.splitn(3, ':');
                let path = parts.next().unwrap_or("");
                let line_no: u64 = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                frames.push(json!({"path": path, "line": line_no, "label": label}));
            }
        }
        _ => {}
    }
    frames.truncate(100);
    frames
}

/// One document being assembled, and the spans it holds.
struct Built {
    value: Map<String, Value>,
    size: usize,
    annotations: usize,
    spans: usize,
}

struct Assembler<'a> {
    entities: Vec<Option<Entity>>,
    children: Vec<Vec<usize>>,
    resource: &'a Resource,
    batch: &'a mut Batch,
}

impl Assembler<'_> {
    /// The entity `idx` with every child that fits embedded; children that do not fit
    /// are finished as documents of their own.
    fn build(&mut self, idx: usize, depth: usize) -> Option<(Built, Entity)> {
        let mut e = self.entities[idx].take()?;
        let mut value = std::mem::take(&mut e.value);
        let mut built = Built {
            value: Map::new(),
            size: e.size,
            annotations: e.annotations,
            spans: 1,
        };
        let mut subs = Vec::new();
        for child in std::mem::take(&mut self.children[idx]) {
            let Some((c, ce)) = self.build(child, depth + 1) else {
                continue;
            };
            if depth + 1 < MAX_EMBED_DEPTH
                && built.size + c.size < EMBED_BUDGET
                && built.annotations + c.annotations <= MAX_ANNOTATIONS_PER_DOCUMENT
            {
                built.size += c.size + 1;
                built.annotations += c.annotations;
                built.spans += c.spans;
                subs.push(Value::Object(c.value));
            } else {
                self.finish_subsegment(c, &ce, Some(e.span_id));
            }
        }
        if !subs.is_empty() {
            value.insert("subsegments".into(), Value::Array(subs));
        }
        built.value = value;
        Some((built, e))
    }

    /// An independent subsegment document.
    fn finish_subsegment(&mut self, mut b: Built, e: &Entity, parent: Option<u64>) {
        b.value.insert("type".into(), json!("subsegment"));
        if let Some(p) = parent.or(e.parent) {
            b.value.insert("parent_id".into(), json!(id_text(p)));
        }
        if e.mapping == IdMapping::W3c {
            let meta = b
                .value
                .entry("metadata")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|m| m.entry(DEFAULT_NAMESPACE).or_insert_with(|| json!({})));
            if let Some(Value::Object(d)) = meta {
                d.insert("otel.trace_id".into(), json!(hex(&e.otel_trace)));
            }
        }
        self.finish(b, e);
    }

    fn finish(&mut self, mut b: Built, e: &Entity) {
        b.value.insert(
            "trace_id".into(),
            Value::String(crate::ids::trace_id_text(&e.trace)),
        );
        let mut out = Vec::with_capacity(b.size + b.size / 4 + 256);
        let value = Value::Object(b.value);
        // Writing a `Value` into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &value);
        let text = String::from_utf8(out).unwrap_or_default();
        match Document::from_value(text, &value) {
            Ok(document) => self.batch.documents.push(Converted {
                document,
                spans: b.spans,
                span_id: id_text(e.span_id),
            }),
            Err(err) => self.batch.rejected.push(Rejection {
                trace_id: hex(&e.otel_trace),
                span_id: id_text(e.span_id),
                spans: b.spans,
                reason: err.error_code(),
                message: format!("{}: {err}", id_text(e.span_id)),
            }),
        }
    }

    /// A document whose top is entity `idx`.
    fn emit(&mut self, idx: usize) {
        let Some((b, e)) = self.build(idx, 1) else {
            return;
        };
        match e.role {
            Role::Segment => {
                let mut b = b;
                if let Some(p) = e.parent {
                    b.value.insert("parent_id".into(), json!(id_text(p)));
                }
                self.finish(b, &e);
            }
            Role::Subsegment => self.finish_subsegment(b, &e, None),
            Role::SegmentWithDependency => {
                // The service's segment, with the call as its subsegment.
                let r = self.resource;
                let mut seg = Map::new();
                seg.insert("id".into(), json!(id_text(derived_id(e.span_id, 0x5e6))));
                seg.insert("name".into(), json!(r.service));
                for k in ["start_time", "end_time", "error", "fault", "throttle"] {
                    if let Some(v) = b.value.get(k) {
                        seg.insert(k.into(), v.clone());
                    }
                }
                if let Some(o) = r.origin {
                    seg.insert("origin".into(), json!(o));
                }
                if !r.aws.is_empty() {
                    seg.insert("aws".into(), Value::Object(r.aws.clone()));
                }
                if let Some(v) = &r.version {
                    seg.insert("service".into(), json!({ "version": v }));
                }
                let mut default = r.metadata.clone();
                if e.mapping == IdMapping::W3c {
                    default.insert("otel.trace_id".into(), json!(hex(&e.otel_trace)));
                }
                if !default.is_empty() {
                    seg.insert("metadata".into(), json!({ DEFAULT_NAMESPACE: default }));
                }
                let size = b.size + approx_size(&Value::Object(r.aws.clone())) + 200;
                seg.insert(
                    "subsegments".into(),
                    Value::Array(vec![Value::Object(b.value)]),
                );
                let built = Built {
                    value: seg,
                    size,
                    annotations: b.annotations,
                    spans: b.spans,
                };
                self.finish(built, &e);
            }
        }
    }
}

fn assemble(entities: Vec<Entity>, resource: &Resource, batch: &mut Batch) {
    let n = entities.len();
    let mut by_id: HashMap<([u8; 16], u64), usize> = HashMap::with_capacity(n);
    for (i, e) in entities.iter().enumerate() {
        by_id.entry((e.otel_trace, e.span_id)).or_insert(i);
    }
    let mut children = vec![Vec::new(); n];
    let mut is_child = vec![false; n];
    for (i, e) in entities.iter().enumerate() {
        if e.role != Role::Subsegment {
            continue;
        }
        if let Some(p) = e.parent
            && let Some(&pi) = by_id.get(&(e.otel_trace, p))
            && pi != i
        {
            children[pi].push(i);
            is_child[i] = true;
        }
    }
    let mut asm = Assembler {
        entities: entities.into_iter().map(Some).collect(),
        children,
        resource,
        batch,
    };
    for (i, child) in is_child.iter().enumerate() {
        if !child {
            asm.emit(i);
        }
    }
    // Whatever is left sits on a parent cycle: each becomes its own document.
    for i in 0..n {
        if asm.entities[i].is_some() {
            asm.emit(i);
        }
    }
}
