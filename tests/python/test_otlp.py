"""Issue 9: the real OpenTelemetry Python SDK with its OTLP exporters (HTTP and gRPC)
sends to `roentgen serve`; boto3 reads X-Ray segments back. One trace crosses an OTel
service, an X-Ray SDK service and another OTel service over real HTTP hops, linked by
the X-Amzn-Trace-Id header."""

from __future__ import annotations

import gzip
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.propagators.aws import AwsXRayPropagator
from opentelemetry.sdk.extension.aws.trace import AwsXRayIdGenerator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from xray_testlib import (
    batch_get,
    http_call,
    make_recorder,
    poll,
    post_large,
    wait_for_summary,
    walk_entities,
)


def provider(service: str, exporter, xray_ids: bool = True) -> TracerProvider:
    """An independent OTel SDK pipeline for one service (nothing global)."""
    kwargs = {"id_generator": AwsXRayIdGenerator()} if xray_ids else {}
    p = TracerProvider(
        resource=Resource.create({"service.name": service, "service.version": "2.0.0"}),
        **kwargs,
    )
    p.add_span_processor(SimpleSpanProcessor(exporter))
    return p


def http_exporter(server) -> HttpExporter:
    return HttpExporter(endpoint=server.http_url + "/v1/traces", timeout=10)


def grpc_exporter(server) -> GrpcExporter:
    return GrpcExporter(endpoint=server.otlp_grpc_addr, insecure=True, timeout=10)


def otel_xray_id(span) -> str:
    h = format(span.get_span_context().trace_id, "032x")
    return f"1-{h[:8]}-{h[8:]}"


def span_hex(span) -> str:
    return format(span.get_span_context().span_id, "016x")


class Service:
    """A tiny HTTP service in a thread; `handle(headers) -> (status, body)`."""

    def __init__(self, handle):
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, body = outer.handle(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.handle = handle
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def get(url: str, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_one_trace_across_otel_xray_sdk_and_otel(server, xray):
    """storefront (OTel, OTLP/HTTP) -> inventory (X-Ray SDK, UDP) -> pricing (OTel,
    OTLP/gRPC), real HTTP between them, X-Amzn-Trace-Id carrying the trace. All three
    land in one trace: BatchGetTraces, GetTraceSummaries and GetServiceGraph agree."""
    t0 = time.time()
    propagator = AwsXRayPropagator()
    storefront = provider("storefront", http_exporter(server))
    pricing = provider("pricing", grpc_exporter(server))
    inventory = make_recorder("inventory", server.udp_addr)
    seen: dict[str, str] = {}

    def pricing_handle(headers):
        ctx = propagator.extract(headers)
        tracer = pricing.get_tracer("pricing")
        with tracer.start_as_current_span("GET /price", context=ctx, kind=SpanKind.SERVER) as s:
            s.set_attribute("http.request.method", "GET")
            s.set_attribute("http.response.status_code", 200)
            seen["pricing"] = span_hex(s)
        return 200, b"9.99"

    def inventory_handle(headers):
        from aws_xray_sdk.core.models.trace_header import TraceHeader

        th = TraceHeader.from_header_str(headers["X-Amzn-Trace-Id"])
        seg = inventory.begin_segment("inventory", traceid=th.root, parent_id=th.parent, sampling=1)
        seg.put_http_meta("method", "GET")
        seg.put_http_meta("url", "http://inventory.internal/stock")
        sub = inventory.begin_subsegment("pricing", "remote")
        sub.put_http_meta("method", "GET")
        sub.put_http_meta("url", pricing_svc.url + "/price")
        header = f"Root={th.root};Parent={sub.id};Sampled=1"
        status = get(pricing_svc.url + "/price", {"X-Amzn-Trace-Id": header})
        sub.put_http_meta("status", status)
        inventory.end_subsegment()
        seg.put_http_meta("status", 200)
        inventory.end_segment()
        seen["inventory"] = seg.id
        seen["inventory_call"] = sub.id
        return 200, b"in stock"

    pricing_svc = Service(pricing_handle)
    inventory_svc = Service(inventory_handle)
    try:
        tracer = storefront.get_tracer("storefront")
        with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
            root.set_attribute("http.request.method", "GET")
            root.set_attribute("url.full", "http://shop.example.com/checkout")
            trace_id = otel_xray_id(root)
            with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as call:
                call.set_attribute("peer.service", "inventory")
                call.set_attribute("http.request.method", "GET")
                call.set_attribute("url.full", inventory_svc.url + "/stock")
                carrier: dict[str, str] = {}
                propagator.inject(carrier, context=set_span_in_context(call))
                status = get(inventory_svc.url + "/stock", carrier)
                call.set_attribute("http.response.status_code", status)
                seen["storefront_call"] = span_hex(call)
            root.set_attribute("http.response.status_code", 200)
            seen["storefront"] = span_hex(root)
        storefront.force_flush()
        pricing.force_flush()
    finally:
        inventory_svc.close()
        pricing_svc.close()
        storefront.shutdown()
        pricing.shutdown()

    # BatchGetTraces: one trace with the three services' segments, linked by ids.
    def segments():
        traces, _ = batch_get(xray, [trace_id])
        docs = [json.loads(s["Document"]) for s in traces.get(trace_id, [])]
        names = {d["name"] for d in docs if d.get("type") != "subsegment"}
        return docs if {"storefront", "inventory", "pricing"} <= names else None

    docs = poll(segments, f"three services in trace {trace_id}", timeout=15)
    by_name = {d["name"]: d for d in docs if d.get("type") != "subsegment"}
    assert by_name["storefront"]["id"] == seen["storefront"]
    assert by_name["storefront"]["trace_id"] == trace_id
    # The client span ended (and was exported) first: an independent subsegment of
    # the storefront segment.
    entities = {e["id"]: e for d in docs for e in walk_entities(d)}
    call = entities[seen["storefront_call"]]
    assert call["namespace"] == "remote" and call["name"] == "inventory"
    assert call.get("parent_id") == seen["storefront"]
    assert by_name["inventory"]["parent_id"] == seen["storefront_call"]
    assert by_name["pricing"]["parent_id"] == seen["inventory_call"]
    assert by_name["pricing"]["http"]["response"]["status"] == 200
    assert by_name["pricing"]["service"] == {"version": "2.0.0"}

    # GetTraceSummaries: one summary naming all three services.
    summary = wait_for_summary(
        xray,
        t0,
        trace_id,
        predicate=lambda s: {"storefront", "inventory", "pricing"}
        <= {n for svc in s.get("ServiceIds", []) for n in svc.get("Names", [])},
        timeout=15,
    )
    assert summary["EntryPoint"]["Name"] == "storefront"

    # GetServiceGraph: client -> storefront -> inventory -> pricing.
    def edges():
        services = xray.get_service_graph(StartTime=t0 - 120, EndTime=time.time() + 60)["Services"]
        names = {s["ReferenceId"]: s["Name"] for s in services}
        found = {(s["Name"], names[e["ReferenceId"]]) for s in services for e in s.get("Edges", [])}
        want = {("client", "storefront"), ("storefront", "inventory"), ("inventory", "pricing")}
        return found if want <= found else None

    poll(edges, "service graph edges client -> storefront -> inventory -> pricing", timeout=15)
    m = server.metrics()
    assert m['roentgen_otlp_converted_spans_total{transport="http"}'] == 2
    assert m['roentgen_otlp_converted_spans_total{transport="grpc"}'] == 1


# One row per semantic convention: span kind, attributes, what to do on the span, and
# the fields the stored document must have (dotted paths; `None` = absent).
CONVENTIONS = [
    pytest.param(
        SpanKind.SERVER,
        {"http.request.method": "POST", "url.scheme": "https", "server.address": "api.example.com",
         "url.path": "/orders", "http.response.status_code": 201, "user_agent.original": "otel-test",
         "client.address": "198.51.100.4", "enduser.id": "bob"},
        None,
        {"name": "conv", "http.request.method": "POST", "http.request.url": "https://api.example.com/orders",
         "http.request.user_agent": "otel-test", "http.request.client_ip": "198.51.100.4",
         "http.response.status": 201, "user": "bob", "type": None, "fault": None},
        id="http-server",
    ),
    pytest.param(
        SpanKind.CLIENT,
        {"http.request.method": "GET", "url.full": "http://coupons.internal/v1", "server.address": "coupons.internal",
         "http.response.status_code": 404},
        None,
        {"name": "coupons.internal", "namespace": "remote", "error": True, "http.response.status": 404},
        id="http-client-4xx",
    ),
    pytest.param(
        SpanKind.CLIENT,
        {"http.request.method": "GET", "url.full": "http://rate.internal/", "http.response.status_code": 429},
        None,
        {"error": True, "throttle": True, "fault": None},
        id="http-client-429",
    ),
    pytest.param(
        SpanKind.SERVER,
        {"http.request.method": "GET", "http.response.status_code": 503},
        None,
        {"fault": True, "error": None},
        id="http-server-5xx",
    ),
    pytest.param(
        SpanKind.CLIENT,
        {"rpc.system": "aws-api", "rpc.service": "DynamoDB", "rpc.method": "GetItem",
         "aws.region": "us-east-1", "aws.dynamodb.table_names": ["games"]},
        None,
        {"name": "DynamoDB", "namespace": "aws", "aws.operation": "GetItem", "aws.region": "us-east-1",
         "aws.table_name": "games"},
        id="aws-sdk",
    ),
    pytest.param(
        SpanKind.CLIENT,
        {"db.system": "mysql", "db.name": "shop", "db.statement": "SELECT * FROM carts WHERE id = ?",
         "db.user": "app", "server.address": "db.internal"},
        None,
        {"name": "shop@db.internal", "namespace": "remote", "sql.database_type": "mysql",
         "sql.sanitized_query": "SELECT * FROM carts WHERE id = ?", "sql.user": "app"},
        id="sql",
    ),
    pytest.param(
        SpanKind.PRODUCER,
        {"messaging.system": "aws_sqs", "messaging.destination.name": "orders",
         "messaging.url": "https://sqs.us-east-1.amazonaws.com/123456789012/orders"},
        None,
        {"name": "SQS", "namespace": "aws",
         "aws.queue_url": "https://sqs.us-east-1.amazonaws.com/123456789012/orders"},
        id="messaging-producer",
    ),
    pytest.param(
        SpanKind.CONSUMER,
        {"messaging.system": "kafka", "messaging.destination.name": "orders"},
        None,
        {"name": "conv", "type": None, "namespace": None},
        id="messaging-consumer",
    ),
    pytest.param(
        SpanKind.SERVER,
        {},
        "exception",
        {"fault": True, "cause.exceptions.0.type": "ValueError", "cause.exceptions.0.message": "bad cart"},
        id="exception-event",
    ),
    pytest.param(
        SpanKind.SERVER,
        {"aws.xray.annotations": ["cart.size", "tier"], "cart.size": 3, "tier": "gold", "note": "kept"},
        None,
        {"annotations.cart_size": 3, "annotations.tier": "gold", "metadata.default.note": "kept"},
        id="annotations-and-metadata",
    ),
]


def field(doc: dict, path: str):
    cur = doc
    for part in path.split("."):
        if isinstance(cur, list):
            cur = cur[int(part)] if int(part) < len(cur) else None
        elif isinstance(cur, dict):
            cur = cur.get(part)
        else:
            return None
        if cur is None:
            return None
    return cur


def field_dotted(doc: dict, path: str):
    """Like `field`, but the last key may itself hold dots (attribute names)."""
    head, _, rest = path.partition(".")
    if head in ("annotations",):
        return (doc.get("annotations") or {}).get(rest)
    if path.startswith("metadata.default."):
        return ((doc.get("metadata") or {}).get("default") or {}).get(path[len("metadata.default."):])
    return field(doc, path)


@pytest.mark.parametrize("kind, attributes, action, want", CONVENTIONS)
def test_conversion_table(server, xray, kind, attributes, action, want):
    """Each semantic convention through the real SDK and OTLP/HTTP exporter, read back
    with BatchGetTraces (the table in docs/otlp.md)."""
    p = provider("conv", http_exporter(server))
    tracer = p.get_tracer("conv")
    with tracer.start_as_current_span("root", kind=SpanKind.SERVER) as root:
        trace_id = otel_xray_id(root)
        with tracer.start_as_current_span("op", kind=kind) as s:
            for k, v in attributes.items():
                s.set_attribute(k, v)
            if action == "exception":
                try:
                    raise ValueError("bad cart")
                except ValueError as e:
                    s.record_exception(e)
                    s.set_status(Status(StatusCode.ERROR, "bad cart"))
            sid = span_hex(s)
    p.force_flush()
    p.shutdown()

    def find():
        traces, _ = batch_get(xray, [trace_id])
        for seg in traces.get(trace_id, []):
            doc = json.loads(seg["Document"])
            stack = [doc]
            while stack:
                d = stack.pop()
                if d.get("id") == sid:
                    return d
                stack.extend(d.get("subsegments", []) or [])
        return None

    doc = poll(find, f"span {sid} in trace {trace_id}", timeout=10)
    for path, value in want.items():
        assert field_dotted(doc, path) == value, f"{path}: {json.dumps(doc)}"


def test_random_w3c_ids_are_found_by_the_converted_id(server, xray):
    """Default OTel ids (random, not X-Ray style) map as docs/otlp.md says, and
    BatchGetTraces finds the trace with the converted id."""
    p = provider("w3c-svc", grpc_exporter(server), xray_ids=False)
    tracer = p.get_tracer("w3c")
    start = time.time()
    with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as s:
        h = format(s.get_span_context().trace_id, "032x")
        sid = span_hex(s)
    p.force_flush()
    p.shutdown()
    bucket = int(start) - int(start) % 4096
    converted = f"1-{bucket:08x}-{h[8:]}"
    if h[:8] == f"{bucket:08x}":  # pragma: no cover - 1 in 4 billion
        pytest.skip("the random id happens to be X-Ray style")

    def found():
        traces, _ = batch_get(xray, [converted])
        return traces.get(converted)

    segs = poll(found, f"trace {converted}", timeout=10)
    doc = json.loads(segs[0]["Document"])
    assert doc["id"] == sid
    assert doc["metadata"]["default"]["otel.trace_id"] == h


def test_otlp_http_errors(server):
    url = server.http_url
    # Wrong content type: 415, a google.rpc.Status body.
    r = http_call(url, "POST", "/v1/traces", body=b"x", headers={"Content-Type": "text/plain"})
    assert r.status == 415, r
    assert r.json()["code"] == 3
    # Malformed protobuf: 400 with a protobuf Status (code 3 = INVALID_ARGUMENT).
    r = http_call(url, "POST", "/v1/traces", body=b"\x0a\xff\xff\x01",
                  headers={"Content-Type": "application/x-protobuf"})
    assert r.status == 400, r
    from google.rpc import status_pb2  # shipped with the gRPC exporter's dependencies

    st = status_pb2.Status.FromString(r.body)
    assert st.code == 3 and "protobuf" in st.message
    # Malformed JSON: 400 with a JSON Status.
    r = http_call(url, "POST", "/v1/traces", body=b"{\"resourceSpans\": 1}",
                  headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["code"] == 3, r
    # Oversize: 413 (8 MiB limit), plain or as a gzip bomb.
    r = post_large(url, "/v1/traces", b" " * (9 * 1024 * 1024))
    assert r.status == 413, r
    bomb = gzip.compress(b"\0" * (9 * 1024 * 1024))
    r = http_call(url, "POST", "/v1/traces", body=bomb,
                  headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"})
    assert r.status == 413, r
    m = server.metrics()
    assert m['roentgen_otlp_rejected_requests_total{transport="http",reason="too_large"}'] == 2


def test_otlp_grpc_malformed_is_invalid_argument(server):
    channel = grpc.insecure_channel(server.otlp_grpc_addr)
    export = channel.unary_unary(
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        request_serializer=lambda b: b,
        response_deserializer=lambda b: b,
    )
    with pytest.raises(grpc.RpcError) as e:
        export(b"\x0a\xff\xff\x01", timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT, e.value
    # An empty request is valid and answers an empty response.
    assert export(b"", timeout=10) == b""
    channel.close()


def test_w3c_traceparent_links_otel_services(server, xray):
    """Two OTel services with the SDK's default random ids, linked by the W3C
    `traceparent` header over real HTTP, one exporting over HTTP and one over gRPC:
    both land in the one converted trace, the callee under the caller's client span."""
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    w3c = TraceContextTextMapPropagator()
    caller = provider("frontend", http_exporter(server), xray_ids=False)
    callee = provider("backend", grpc_exporter(server), xray_ids=False)
    seen: dict[str, str] = {}

    def backend_handle(headers):
        ctx = w3c.extract({k.lower(): v for k, v in headers.items()})
        with callee.get_tracer("b").start_as_current_span("GET /data", context=ctx, kind=SpanKind.SERVER) as s:
            seen["backend"] = span_hex(s)
            seen["backend_trace"] = format(s.get_span_context().trace_id, "032x")
        return 200, b"ok"

    backend = Service(backend_handle)
    try:
        tracer = caller.get_tracer("f")
        start = time.time()
        with tracer.start_as_current_span("GET /", kind=SpanKind.SERVER) as root:
            h = format(root.get_span_context().trace_id, "032x")
            with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as call:
                call.set_attribute("peer.service", "backend")
                carrier: dict[str, str] = {}
                w3c.inject(carrier, context=set_span_in_context(call))
                assert get(backend.url + "/data", carrier) == 200
                seen["call"] = span_hex(call)
        caller.force_flush()
        callee.force_flush()
    finally:
        backend.close()
        caller.shutdown()
        callee.shutdown()
    assert seen["backend_trace"] == h, "the W3C header carried the trace id"
    bucket = int(start) - int(start) % 4096
    converted = f"1-{bucket:08x}-{h[8:]}"

    def both():
        traces, _ = batch_get(xray, [converted])
        docs = [json.loads(s["Document"]) for s in traces.get(converted, [])]
        segs = {d["name"]: d for d in docs if d.get("type") != "subsegment"}
        return segs if {"frontend", "backend"} <= set(segs) else None

    segs = poll(both, f"frontend and backend in {converted}", timeout=15)
    assert segs["backend"]["id"] == seen["backend"]
    assert segs["backend"]["parent_id"] == seen["call"]
