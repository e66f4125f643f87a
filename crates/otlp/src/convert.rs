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
//! * A span's document text is written member by member (`crate::json`), and the
//!   typed view the model reads is built beside it, so the text is not lexed again:
//!   [`Document::from_parts`] applies [`Document::parse`]'s checks, the validation that
//!   UDP and `PutTraceSegments` documents go through, to that view. Where a value does
//!   not fit the typed view (an HTTP status past 65535, a non-string resource field the
//!   model reads), the text is parsed instead, which names the field. Spans of a
//!   document that fails are rejected with its error code. Debug builds check every
//!   typed view against the parsed text.

use std::borrow::Cow;
use std::collections::HashMap;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Av;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use roentgen_model::document::{
    AnnotationValue, Aws, Cause, CauseDetails, Ec2, Ecs, Exception, Http, HttpRequest,
    HttpResponse, MAX_ANNOTATIONS_PER_DOCUMENT, MAX_DOCUMENT_BYTES, Segment, Service, Sql,
    StackFrame,
};
use roentgen_model::{CompactString, Document, TraceId};
use serde_json::Value;

use crate::attrs::{Attrs, annotation_key, get, get_str, is_annotation};
use crate::ids::{IdMapping, hex, to_xray};
use crate::json::{Members, Superseded, keep_last_of_each, push_string, push_value, value_size};

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
/// `metadata.default` key of the original trace id of a converted W3C id.
const OTEL_TRACE_ID: &str = "otel.trace_id";
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
    /// `aws` members of the service's segments: key and JSON text.
    aws: Vec<(&'static str, Cow<'static, str>)>,
    /// The typed view of `aws`.
    typed_aws: Aws,
    /// `otel.resource.*` metadata of the service's segments: key and JSON text.
    metadata: Vec<(String, String)>,
    language: String,
}

/// A `metadata.default` value: a span attribute, written when the document is, or JSON
/// text.
enum Meta<'a> {
    Attr(&'a Av),
    Json(Cow<'a, str>),
}

/// One span, converted to its own entity (without children).
struct Entity<'a> {
    /// Every member of the span's document but the ones the assembly writes (`type`,
    /// `parent_id`, `trace_id`, `metadata`, `subsegments`).
    members: Members,
    /// `metadata.default`, one entry per key.
    default_metadata: Vec<(Cow<'a, str>, Meta<'a>)>,
    /// The other metadata namespaces: name and object text, one entry per name.
    namespaces: Vec<(&'a str, String)>,
    /// What a segment made around the span copies from it.
    start: f64,
    end: f64,
    error: bool,
    fault: bool,
    throttle: bool,
    /// The typed view of `members`; `None` when the text must be parsed to judge it.
    typed: Option<Segment>,
    /// Estimated size of the entity's JSON text.
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
        let mut entities: Vec<Entity<'_>> = Vec::new();
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
    let put = |m: &mut Members, field: &str, key: &str| {
        if let Some(v) = get(attrs, key) {
            push_value(m.key(field), Some(v));
        }
    };
    let object = |m: Members| {
        let mut text = String::with_capacity(m.len() + 2);
        m.push_object_to(&mut text);
        Cow::Owned(text)
    };
    // The fields the model reads as strings are written as strings whatever the
    // attribute's type (a numeric `host.id` becomes "123"), so that no resource
    // attribute can make its service's documents invalid; the text is returned for the
    // typed view.
    let put_text = |m: &mut Members, field: &str, key: &str| -> Option<String> {
        let text = match get(attrs, key)? {
            Av::StringValue(s) => s.clone(),
            v => {
                let mut t = String::new();
                push_value(&mut t, Some(v));
                t
            }
        };
        m.string(field, &text);
        Some(text)
    };
    let mut aws = Vec::new();
    let mut typed_aws = Aws::default();
    match origin {
        Some("AWS::EC2::Instance") => {
            let mut ec2 = Members::default();
            let instance_id = put_text(&mut ec2, "instance_id", "host.id");
            let zone = put_text(&mut ec2, "availability_zone", "cloud.availability_zone");
            put(&mut ec2, "instance_size", "host.type");
            put(&mut ec2, "ami_id", "host.image.id");
            aws.push(("ec2", object(ec2)));
            typed_aws.ec2 = Some(Ec2 {
                instance_id: instance_id.map(CompactString::from),
                availability_zone: zone.map(CompactString::from),
            });
        }
        Some("AWS::ECS::Container" | "AWS::ECS::EC2" | "AWS::ECS::Fargate") => {
            let mut ecs = Members::default();
            let container = put_text(&mut ecs, "container", "container.name");
            put(&mut ecs, "container_id", "container.id");
            put(&mut ecs, "task_arn", "aws.ecs.task.arn");
            put(&mut ecs, "task_family", "aws.ecs.task.family");
            put(&mut ecs, "cluster_arn", "aws.ecs.cluster.arn");
            let container_arn = put_text(&mut ecs, "container_arn", "aws.ecs.container.arn");
            put(&mut ecs, "launch_type", "aws.ecs.launchtype");
            put(&mut ecs, "availability_zone", "cloud.availability_zone");
            aws.push(("ecs", object(ecs)));
            typed_aws.ecs = Some(Ecs {
                container,
                container_arn,
            });
        }
        Some("AWS::EKS::Container") => {
            let mut eks = Members::default();
            put(&mut eks, "pod", "k8s.pod.name");
            put(&mut eks, "cluster_name", "k8s.cluster.name");
            put(&mut eks, "container_id", "container.id");
            aws.push(("eks", object(eks)));
        }
        Some("AWS::ElasticBeanstalk::Environment") => {
            let mut eb = Members::default();
            put(&mut eb, "environment_name", "service.namespace");
            put(&mut eb, "deployment_id", "service.instance.id");
            put(&mut eb, "version_label", "service.version");
            aws.push(("elastic_beanstalk", object(eb)));
        }
        _ => {}
    }
    let mut account = Members::default();
    if let Some(id) = put_text(&mut account, "account_id", "cloud.account.id") {
        aws.push(("account_id", Cow::Owned(quoted(&id))));
        typed_aws.account_id = Some(id.into());
    }
    if let Some(sdk) = get_str(attrs, "telemetry.sdk.name") {
        let mut xray = Members::default();
        if language.is_empty() {
            xray.string("sdk", sdk);
        } else {
            xray.string("sdk", &format!("{sdk} for {language}"));
        }
        put(&mut xray, "sdk_version", "telemetry.sdk.version");
        if get(attrs, "telemetry.auto.version").is_some() {
            xray.bool("auto_instrumentation", true);
        }
        aws.push(("xray", object(xray)));
    }
    let version = get_str(attrs, "service.version")
        .or_else(|| get_str(attrs, "container.image.tag"))
        .map(str::to_string);
    let mut metadata = Vec::new();
    for kv in attrs {
        if let Some(v) = kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            let mut text = String::new();
            push_value(&mut text, Some(v));
            metadata.push((format!("otel.resource.{}", kv.key), text));
        }
    }
    keep_last_of_each(&mut metadata, |(k, _)| k.as_str());
    Resource {
        service: sanitize_segment_name(service),
        origin,
        version,
        aws,
        typed_aws,
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
    roentgen_model::SegmentId(id).to_string()
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

fn entity<'a>(
    span: &'a Span,
    res: &'a Resource,
    first_start: &HashMap<[u8; 16], u64>,
    now: u64,
) -> Result<Entity<'a>, Rejection> {
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

    // --- AWS SDK calls, RPC, databases, messaging: name and namespace.
    let aws_sdk = a.peek_str("rpc.system") == Some("aws-api") || a.peek("aws.service").is_some();
    // `aws` members: key and JSON text.
    let mut aws: Vec<(&'static str, Cow<'a, str>)> = Vec::new();
    // The typed view of the span's `aws` members.
    let mut typed_aws = Aws::default();
    let text = |s: &str| {
        let mut t = String::with_capacity(s.len() + 2);
        push_string(&mut t, s);
        Cow::Owned(t)
    };
    if aws_sdk {
        if let Some(op) = a.take_str(&["rpc.method", "aws.operation"]) {
            aws.push(("operation", text(op)));
            typed_aws.operation = Some(op.into());
        }
        if let Some(r) = a.take_str(&["aws.region", "cloud.region"]) {
            aws.push(("region", text(r)));
            typed_aws.region = Some(r.into());
        }
    }
    if let Some(r) = a.take_str(&["aws.request_id", "aws.requestId"]) {
        aws.push(("request_id", text(r)));
    }
    if let Some(q) = a.take_str(&["aws.queue_url", "aws.sqs.queue_url"]) {
        aws.push(("queue_url", text(q)));
        typed_aws.queue_url = Some(q.into());
    }
    if let Some(t) = a.take_str(&["aws.table_name"]) {
        aws.push(("table_name", text(t)));
        typed_aws.table_name = Some(t.into());
    } else if let Some(Av::ArrayValue(arr)) = a.peek("aws.dynamodb.table_names") {
        let names: Vec<&str> = arr
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(Av::StringValue(s)) => Some(s.as_str()),
                _ => None,
            })
            .collect();
        a.take("aws.dynamodb.table_names");
        if let [name] = names[..] {
            aws.push(("table_name", text(name)));
            typed_aws.table_name = Some(name.into());
        } else if !names.is_empty() {
            let mut list = String::from("[");
            for (i, n) in names.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                push_string(&mut list, n);
            }
            list.push(']');
            aws.push(("table_names", Cow::Owned(list)));
        }
    }
    if let Some(acct) = a.take_str(&["aws.account_id"]) {
        aws.push(("account_id", text(acct)));
        typed_aws.account_id = Some(acct.into());
    }

    let db_system = a
        .peek_str("db.system")
        .or_else(|| a.peek_str("db.system.name"));
    let mut sql = Members::default();
    let mut typed_sql = Sql::default();
    let mut db_host: Option<String> = None;
    if let Some(system) = db_system.filter(|s| SQL_SYSTEMS.contains(s)) {
        a.take_str(&["db.system", "db.system.name"]);
        sql.string("database_type", system);
        typed_sql.database_type = Some(system.into());
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
        sql.string("url", &url);
        typed_sql.url = Some(url);
        if let Some(q) = a.take_str(&["db.statement", "db.query.text"]) {
            sql.string("sanitized_query", q);
            typed_sql.sanitized_query = Some(q.into());
        }
        if let Some(u) = a.take_str(&["db.user"]) {
            sql.string("user", u);
            typed_sql.user = Some(u.into());
        }
        db_host = host;
    }

    // --- HTTP.
    let mut request = Members::default();
    let mut response = Members::default();
    let mut typed_request = HttpRequest::default();
    let mut typed_response = HttpResponse::default();

    if let Some(method) = a.take_str(&["http.request.method", "http.method"]) {
        request.string("method", method);
        typed_request.method = Some(method.into());
    }
    if let Some(ua) = a.take_str(&["user_agent.original", "http.user_agent"]) {
        request.string("user_agent", ua);
        typed_request.user_agent = Some(ua.into());
    }
    if let Some(ip) = a.take_str(&["http.client_ip"]) {
        request.string("client_ip", ip);
        request.bool("x_forwarded_for", true);
        typed_request.client_ip = Some(ip.into());
        typed_request.x_forwarded_for = Some(true);
    } else if !remote_call
        && let Some(ip) = a.take_str(&["client.address", "net.sock.peer.addr", "net.peer.ip"])
    {
        request.string("client_ip", ip);
        typed_request.client_ip = Some(ip.into());
    }
    // A status past 65535 or a negative length is no HTTP field (X-Ray would refuse
    // the document): such an attribute stays in the metadata.
    let status = a.take_int_in(
        &["http.response.status_code", "http.status_code"],
        0..=i64::from(u16::MAX),
    );
    if let Some(s) = status {
        response.i64("status", s);
        typed_response.status = u16::try_from(s).ok();
    }
    if let Some(len) = a.take_int_in(
        &["http.response.body.size", "http.response_content_length"],
        0..=i64::MAX,
    ) {
        response.i64("content_length", len);
        typed_response.content_length = u64::try_from(len).ok();
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
        request.string("url", u);
        typed_request.url = Some(u.clone());
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
        if let Some(q) = a.peek_str("messaging.url")
            && !aws.iter().any(|(k, _)| *k == "queue_url")
        {
            aws.push(("queue_url", text(q)));
            typed_aws.queue_url = Some(q.into());
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
    // The `exceptions` array's items, and their typed view.
    let mut exceptions = String::new();
    let mut typed_exceptions: Vec<Exception> = Vec::new();
    for (i, event) in span.events.iter().enumerate() {
        if event.name != "exception" {
            continue;
        }
        let mut ex = Members::default();
        let id = id_text(derived_id(span_id, i as u64 + 1));
        ex.string("id", &id);
        let kind = get_str(&event.attributes, "exception.type");
        if let Some(t) = kind {
            ex.string("type", t);
        }
        let message = get_str(&event.attributes, "exception.message");
        if let Some(msg) = message {
            ex.string("message", msg);
        }
        ex.bool("remote", remote_call);
        let frames = get_str(&event.attributes, "exception.stacktrace")
            .map(|st| stack_frames(st, &res.language))
            .unwrap_or_default();
        if !frames.is_empty() {
            push_stack(&mut ex, &frames);
        }
        if !exceptions.is_empty() {
            exceptions.push(',');
        }
        ex.push_object_to(&mut exceptions);
        typed_exceptions.push(Exception {
            id: Some(id),
            message: message.map(str::to_string),
            kind: kind.map(str::to_string),
            remote: Some(remote_call),
            stack: frames
                .iter()
                .map(|(path, line, label)| StackFrame {
                    path: Some((*path).to_string()),
                    line: Some(*line),
                    label: Some((*label).to_string()),
                })
                .collect(),
            ..Default::default()
        });
    }
    if exceptions.is_empty()
        && status_code == StatusCode::Error
        && let Some(msg) = span
            .status
            .as_ref()
            .map(|s| s.message.as_str())
            .filter(|m| !m.is_empty())
    {
        let mut ex = Members::default();
        let id = id_text(derived_id(span_id, 0x51));
        ex.string("id", &id);
        ex.string("message", msg);
        ex.push_object_to(&mut exceptions);
        typed_exceptions.push(Exception {
            id: Some(id),
            message: Some(msg.to_string()),
            ..Default::default()
        });
    }

    // --- Annotations and metadata.
    let user = a.take_str(&["enduser.id", "user.id"]);
    let mut indexed: Vec<&str> = Vec::new();
    if let Some(Av::ArrayValue(keys)) = a.take(ANNOTATIONS_ATTRIBUTE) {
        for k in &keys.values {
            if let Some(Av::StringValue(s)) = &k.value {
                indexed.push(s);
            }
        }
    }
    // Key and value, one entry per key (a later key replaces an earlier one).
    let mut annotations: Vec<(String, &Av)> = Vec::new();
    for key in &indexed {
        if annotations.len() >= MAX_ANNOTATIONS_PER_DOCUMENT {
            break;
        }
        if let Some(v) = a.peek(key).filter(|v| is_annotation(v)) {
            a.take(key);
            let k = annotation_key(key);
            if k.is_empty() {
                continue;
            }
            match annotations.iter_mut().find(|(have, _)| *have == k) {
                Some(entry) => entry.1 = v,
                None => annotations.push((k, v)),
            }
        }
    }
    let mut default_metadata: Vec<(Cow<'a, str>, Meta<'a>)> = Vec::new();
    let mut namespaces: Vec<(&'a str, String)> = Vec::new();
    let unused: Vec<(&'a str, &'a Av)> = a.unused().collect();
    for (key, v) in unused {
        if let Some(ns) = key.strip_prefix(METADATA_PREFIX)
            && let Av::StringValue(text) = v
            && let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(text)
        {
            if ns.eq_ignore_ascii_case(DEFAULT_NAMESPACE) {
                for (k, v) in obj {
                    default_metadata.push((Cow::Owned(k), Meta::Json(Cow::Owned(json_text(&v)))));
                }
            } else {
                namespaces.push((ns, json_text(&Value::Object(obj))));
            }
            continue;
        }
        default_metadata.push((Cow::Borrowed(key), Meta::Attr(v)));
    }
    if role == Role::Segment {
        for (k, v) in &res.metadata {
            default_metadata.push((Cow::Borrowed(k), Meta::Json(Cow::Borrowed(v))));
        }
    }
    if mapping == IdMapping::W3c && role == Role::Segment {
        default_metadata.push((
            Cow::Borrowed(OTEL_TRACE_ID),
            Meta::Json(Cow::Owned(quoted(&hex(&otel_trace)))),
        ));
    }
    keep_last_of_each(&mut default_metadata, |(k, _)| k.as_ref());
    keep_last_of_each(&mut namespaces, |(k, _)| k);

    // --- The members, written.
    let start = seconds(span.start_time_unix_nano);
    let end = seconds(span.end_time_unix_nano);
    let mut m =
        Members::with_capacity(256 + request.len() + response.len() + sql.len() + exceptions.len());
    let mut typed = Segment {
        id: Some(id_text(span_id).into()),
        name: Some(name.as_str().into()),
        start_time: Some(start),
        end_time: Some(end),
        error,
        throttle,
        fault,
        user: user.map(CompactString::from),
        ..Default::default()
    };
    m.string("id", &id_text(span_id));
    m.string("name", &name);
    m.f64("start_time", start);
    m.f64("end_time", end);
    if let Some(ns) = namespace
        && role != Role::Segment
    {
        m.string("namespace", ns);
        typed.namespace = Some(ns.into());
    }
    if error {
        m.bool("error", true);
    }
    if throttle {
        m.bool("throttle", true);
    }
    if fault {
        m.bool("fault", true);
    }
    if !exceptions.is_empty() {
        let cause = m.key("cause");
        cause.push_str("{\"exceptions\":[");
        cause.push_str(&exceptions);
        cause.push_str("]}");
        typed.cause = Some(Box::new(Cause::Details(CauseDetails {
            exceptions: typed_exceptions,
            ..Default::default()
        })));
    }
    if !request.is_empty() || !response.is_empty() {
        let mut http = Members::default();
        if !request.is_empty() {
            http.object("request", &request);
        }
        if !response.is_empty() {
            http.object("response", &response);
        }
        m.object("http", &http);
        typed.http = Some(Box::new(Http {
            request: (!request.is_empty()).then_some(typed_request),
            response: (!response.is_empty()).then_some(typed_response),
        }));
    }
    if !sql.is_empty() {
        m.object("sql", &sql);
        typed.sql = Some(Box::new(typed_sql));
    }
    if let Some(user) = user {
        m.string("user", user);
    }
    if role == Role::Segment {
        if let Some(o) = res.origin {
            m.string("origin", o);
            typed.origin = Some(o.into());
        }
        if !res.aws.is_empty() || !aws.is_empty() {
            // The span's members replace the resource's.
            let mut t = res.typed_aws.clone();
            let span = typed_aws;
            t.operation = span.operation.or(t.operation);
            t.region = span.region.or(t.region);
            t.table_name = span.table_name.or(t.table_name);
            t.queue_url = span.queue_url.or(t.queue_url);
            t.account_id = span.account_id.or(t.account_id);
            typed.aws = Some(Box::new(t));
        }
        let mut seg_aws: Vec<(&'static str, Cow<'a, str>)> = res
            .aws
            .iter()
            .map(|(k, v)| (*k, Cow::Borrowed(v.as_ref())))
            .collect();
        seg_aws.extend(aws);
        push_aws(&mut m, &seg_aws);
        if let Some(v) = &res.version {
            let service = m.key("service");
            service.push_str("{\"version\":");
            push_string(service, v);
            service.push('}');
            typed.service = Some(Box::new(Service {
                version: Some(v.clone()),
            }));
        }
    } else {
        if !aws.is_empty() {
            typed.aws = Some(Box::new(typed_aws));
        }
        push_aws(&mut m, &aws);
    }
    if !annotations.is_empty() {
        let mut an = Members::default();
        for (k, v) in &annotations {
            push_value(an.key(k), Some(v));
            let value = match v {
                Av::StringValue(s) => AnnotationValue::String(s.clone()),
                Av::BoolValue(b) => AnnotationValue::Bool(*b),
                Av::IntValue(n) => AnnotationValue::Number(*n as f64),
                Av::DoubleValue(d) => AnnotationValue::Number(*d),
                // `is_annotation` let no other kind in.
                _ => continue,
            };
            typed.annotations.insert(k.as_str().into(), value);
        }
        m.object("annotations", &an);
    }
    let metadata_size = default_metadata
        .iter()
        .map(|(k, v)| {
            k.len()
                + 4
                + match v {
                    Meta::Attr(v) => value_size(Some(v)),
                    Meta::Json(t) => t.len(),
                }
        })
        .chain(namespaces.iter().map(|(k, t)| k.len() + 4 + t.len()))
        .sum::<usize>();
    Ok(Entity {
        size: m.len() + metadata_size + 40,
        members: m,
        typed: Some(typed),
        default_metadata,
        namespaces,
        start,
        end,
        error,
        fault,
        throttle,
        annotations: annotations.len(),
        role,
        span_id,
        parent,
        otel_trace,
        trace,
        mapping,
    })
}

/// Writes `aws` with its members (a later key replaces an earlier one), unless empty.
fn push_aws(m: &mut Members, aws: &[(&'static str, Cow<'_, str>)]) {
    if aws.is_empty() {
        return;
    }
    let replaced = Superseded::of(aws, |(k, _)| k);
    let mut inner = Members::default();
    for (_, (k, v)) in aws.iter().enumerate().filter(|(i, _)| !replaced.is(*i)) {
        inner.raw(k, v);
    }
    m.object("aws", &inner);
}

/// The JSON text of a value (parsed from an attribute, so it can be written).
fn json_text(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// `s` as a JSON string.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_string(&mut out, s);
    out
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

/// The frames of an exception's stack trace (path, line, label), innermost first, for
/// the languages whose format the exporter reads (Python, Java, JavaScript); none for
/// the others.
fn stack_frames<'t>(trace: &'t str, language: &str) -> Vec<(&'t str, u64, &'t str)> {
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
                frames.push((path, line_no, label));
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
                frames.push((path, line_no, label));
            }
        }
        _ => {}
    }
    frames.truncate(100);
    frames
}

/// Writes the `stack` member of an exception.
fn push_stack(ex: &mut Members, frames: &[(&str, u64, &str)]) {
    let out = ex.key("stack");
    out.push('[');
    for (i, (path, line, label)) in frames.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut f = Members::default();
        f.string("path", path);
        f.u64("line", *line);
        f.string("label", label);
        f.push_object_to(out);
    }
    out.push(']');
}

/// A document's shape: an entity and the children embedded in it, decided before any
/// text is written.
struct Plan {
    idx: usize,
    embedded: Vec<Plan>,
    size: usize,
    annotations: usize,
    spans: usize,
}

/// What the top of a document is.
enum Top {
    /// A segment (`parent_id` when the span has a parent).
    Segment,
    /// An independent subsegment of `parent`.
    Subsegment { parent: Option<u64> },
}

struct Assembler<'a, 'b> {
    entities: Vec<Entity<'a>>,
    planned: Vec<bool>,
    children: Vec<Vec<usize>>,
    /// Children past the embedding depth, to send on their own: entity and parent.
    deferred: Vec<(usize, u64)>,
    resource: &'a Resource,
    batch: &'b mut Batch,
}

impl Assembler<'_, '_> {
    /// The shape of the document whose top is entity `idx`, with every child that fits
    /// embedded; children that do not fit are finished as documents of their own, and
    /// children past the embedding depth are deferred (so the recursion stays shallow
    /// however deep the spans nest). `None` when the entity is already placed.
    fn plan(&mut self, idx: usize, depth: usize) -> Option<Plan> {
        if self.planned[idx] {
            return None;
        }
        self.planned[idx] = true;
        let e = &self.entities[idx];
        let span_id = e.span_id;
        let mut plan = Plan {
            idx,
            embedded: Vec::new(),
            size: e.size,
            annotations: e.annotations,
            spans: 1,
        };
        for child in std::mem::take(&mut self.children[idx]) {
            if depth + 1 >= MAX_EMBED_DEPTH {
                self.deferred.push((child, span_id));
                continue;
            }
            let Some(c) = self.plan(child, depth + 1) else {
                continue;
            };
            if plan.size + c.size < EMBED_BUDGET
                && plan.annotations + c.annotations <= MAX_ANNOTATIONS_PER_DOCUMENT
            {
                plan.size += c.size + 1;
                plan.annotations += c.annotations;
                plan.spans += c.spans;
                plan.embedded.push(c);
            } else {
                self.finish(
                    &c,
                    Top::Subsegment {
                        parent: Some(span_id),
                    },
                );
            }
        }
        Some(plan)
    }

    /// Writes the entity of `plan` with its embedded children; `extra` members and an
    /// `otel.trace_id` metadata entry go on this level only.
    fn write(
        &self,
        out: &mut String,
        plan: &Plan,
        extra: Option<&Members>,
        otel_trace: Option<&str>,
    ) {
        let e = &self.entities[plan.idx];
        out.push('{');
        out.push_str(e.members.as_str());
        if let Some(x) = extra.filter(|x| !x.is_empty()) {
            out.push(',');
            out.push_str(x.as_str());
        }
        self.write_metadata(out, e, otel_trace);
        if !plan.embedded.is_empty() {
            out.push_str(",\"subsegments\":[");
            for (i, c) in plan.embedded.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                self.write(out, c, None, None);
            }
            out.push(']');
        }
        out.push('}');
    }

    /// Writes `,"metadata":{…}` unless there is none.
    fn write_metadata(&self, out: &mut String, e: &Entity<'_>, otel_trace: Option<&str>) {
        if e.default_metadata.is_empty() && e.namespaces.is_empty() && otel_trace.is_none() {
            return;
        }
        let mut metadata = Members::default();
        for (ns, text) in &e.namespaces {
            metadata.raw(ns, text);
        }
        if !e.default_metadata.is_empty() || otel_trace.is_some() {
            let mut default = Members::default();
            for (k, v) in &e.default_metadata {
                if otel_trace.is_some() && k == OTEL_TRACE_ID {
                    continue;
                }
                let out = default.key(k);
                match v {
                    Meta::Attr(v) => push_value(out, Some(v)),
                    Meta::Json(text) => out.push_str(text),
                }
            }
            if let Some(t) = otel_trace {
                default.string(OTEL_TRACE_ID, t);
            }
            metadata.object(DEFAULT_NAMESPACE, &default);
        }
        out.push_str(",\"metadata\":");
        metadata.push_object_to(out);
    }

    /// Writes and validates the document of `plan`.
    fn finish(&mut self, plan: &Plan, top: Top) {
        let e = &self.entities[plan.idx];
        let mut extra = Members::with_capacity(96);
        let mut otel_trace = None;
        let (kind, parent) = match top {
            Top::Segment => (None, e.parent),
            Top::Subsegment { parent } => {
                if e.mapping == IdMapping::W3c {
                    otel_trace = Some(hex(&e.otel_trace));
                }
                (Some("subsegment"), parent.or(e.parent))
            }
        };
        let parent = parent.map(id_text);
        let trace = e.trace.to_string();
        if let Some(k) = kind {
            extra.string("type", k);
        }
        if let Some(p) = &parent {
            extra.string("parent_id", p);
        }
        extra.string("trace_id", &trace);
        let mut text = String::with_capacity(plan.size + extra.len() + 64);
        self.write(&mut text, plan, Some(&extra), otel_trace.as_deref());
        let typed = self.typed(plan).map(|mut seg| {
            seg.kind = kind.map(CompactString::from);
            seg.parent_id = parent.map(CompactString::from);
            seg.trace_id = Some(trace.into());
            seg
        });
        self.validate(text, plan, typed);
    }

    /// The typed view of the document of `plan` (without the members `finish` adds), or
    /// `None` when a part of it must be parsed from the text to be judged.
    fn typed(&mut self, plan: &Plan) -> Option<Segment> {
        let mut seg = self.entities[plan.idx].typed.take();
        if let Some(s) = &mut seg {
            // Exactly: the parsed documents wait for the indexer within a budget.
            s.subsegments.reserve_exact(plan.embedded.len());
        }
        for c in &plan.embedded {
            match (&mut seg, self.typed(c)) {
                (Some(s), Some(child)) => s.subsegments.push(child),
                _ => seg = None,
            }
        }
        seg
    }

    /// Root client and producer spans: the service's segment, with the call as its
    /// subsegment.
    fn finish_with_service_segment(&mut self, plan: &Plan) {
        let e = &self.entities[plan.idx];
        let r = self.resource;
        let mut seg = Members::with_capacity(plan.size + 512);
        let id = id_text(derived_id(e.span_id, 0x5e6));
        let trace = e.trace.to_string();
        seg.string("id", &id);
        seg.string("name", &r.service);
        seg.f64("start_time", e.start);
        seg.f64("end_time", e.end);
        if e.error {
            seg.bool("error", true);
        }
        if e.throttle {
            seg.bool("throttle", true);
        }
        if e.fault {
            seg.bool("fault", true);
        }
        if let Some(o) = r.origin {
            seg.string("origin", o);
        }
        push_aws(&mut seg, &r.aws);
        if let Some(v) = &r.version {
            let service = seg.key("service");
            service.push_str("{\"version\":");
            push_string(service, v);
            service.push('}');
        }
        let mut default = Members::default();
        for (k, v) in &r.metadata {
            if e.mapping == IdMapping::W3c && k == OTEL_TRACE_ID {
                continue;
            }
            default.raw(k, v);
        }
        if e.mapping == IdMapping::W3c {
            default.string(OTEL_TRACE_ID, &hex(&e.otel_trace));
        }
        if !default.is_empty() {
            let mut metadata = Members::default();
            metadata.object(DEFAULT_NAMESPACE, &default);
            seg.object("metadata", &metadata);
        }
        seg.string("trace_id", &trace);
        let subsegments = seg.key("subsegments");
        subsegments.push('[');
        self.write(subsegments, plan, None, None);
        subsegments.push(']');
        let mut text = String::with_capacity(seg.len() + 2);
        seg.push_object_to(&mut text);

        let aws = (!r.aws.is_empty()).then(|| Box::new(r.typed_aws.clone()));
        let wrapper = Segment {
            id: Some(id.into()),
            name: Some(r.service.as_str().into()),
            trace_id: Some(trace.into()),
            start_time: Some(e.start),
            end_time: Some(e.end),
            error: e.error,
            throttle: e.throttle,
            fault: e.fault,
            origin: r.origin.map(CompactString::from),
            service: r.version.as_ref().map(|v| {
                Box::new(Service {
                    version: Some(v.clone()),
                })
            }),
            ..Default::default()
        };
        let typed = self.typed(plan).map(|call| Segment {
            aws,
            subsegments: vec![call],
            ..wrapper
        });
        self.validate(text, plan, typed);
    }

    /// Checks the document as `Document::parse` does: from its typed view when there is
    /// one (which reads exactly as the text does), else by parsing the text.
    fn validate(&mut self, text: String, plan: &Plan, typed: Option<Segment>) {
        let checked = match typed {
            Some(segment) => {
                debug_assert_eq!(
                    roentgen_model::document::parse_segment(&text).ok().as_ref(),
                    Some(&segment),
                    "the typed view must be what the text reads as: {text}"
                );
                Document::from_parts(text, segment)
            }
            None => Document::parse(text),
        };
        let e = &self.entities[plan.idx];
        match checked {
            Ok(document) => self.batch.documents.push(Converted {
                document,
                spans: plan.spans,
                span_id: id_text(e.span_id),
            }),
            Err(err) => self.batch.rejected.push(Rejection {
                trace_id: hex(&e.otel_trace),
                span_id: id_text(e.span_id),
                spans: plan.spans,
                reason: err.error_code(),
                message: format!("{}: {err}", id_text(e.span_id)),
            }),
        }
    }

    /// A document whose top is entity `idx`, then the children it deferred.
    fn emit(&mut self, idx: usize) {
        if let Some(plan) = self.plan(idx, 1) {
            match self.entities[idx].role {
                Role::Segment => self.finish(&plan, Top::Segment),
                Role::Subsegment => self.finish(&plan, Top::Subsegment { parent: None }),
                Role::SegmentWithDependency => self.finish_with_service_segment(&plan),
            }
        }
        while let Some((child, parent)) = self.deferred.pop() {
            if let Some(plan) = self.plan(child, 1) {
                self.finish(
                    &plan,
                    Top::Subsegment {
                        parent: Some(parent),
                    },
                );
            }
        }
    }
}

fn assemble<'a>(entities: Vec<Entity<'a>>, resource: &'a Resource, batch: &mut Batch) {
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
        entities,
        planned: vec![false; n],
        children,
        deferred: Vec::new(),
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
        if !asm.planned[i] {
            asm.emit(i);
        }
    }
}
