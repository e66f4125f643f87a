"""The real AWS X-Ray SDK for Python emits traces over the daemon UDP protocol; boto3
reads them back through BatchGetTraces and GetTraceSummaries."""

from __future__ import annotations

import json
import time

import pytest
from aws_xray_sdk.core.utils import stacktrace
from botocore.exceptions import ClientError

from xray_testlib import (
    PollTimeout,
    all_summaries,
    batch_get,
    dumps,
    find_summary,
    make_recorder,
    new_id,
    new_trace_id,
    poll,
    segment_doc,
    wait_for_segments,
    wait_for_summary,
    walk_entities,
)


class PaymentDeclined(Exception):
    pass


def emit_checkout_trace(udp_addr) -> dict:
    """One trace through three services, web -> orders -> payments, each with its own
    SDK recorder, on a fixed timeline starting at t0:

      web       [t0      , t0+0.80]  502, user alice, annotations, metadata
        render (local) > template (local)
        coupons (remote, 404 -> error)
        orders (remote, 500 -> fault)
          orders    [t0+0.10, t0+0.70]  500
            DynamoDB (aws, 429 -> throttle + error)
            payments (remote, 500 -> fault)
              payments  [t0+0.30, t0+0.60]  500, exception -> fault
                payments-db (remote, SQL)
                charge-card (local, exception)

    Returns what each recorder sent, and the ids needed to check it."""
    web = make_recorder("web", udp_addr)
    orders = make_recorder("orders", udp_addr)
    payments = make_recorder("payments", udp_addr)
    t0 = time.time() - 5.0

    # --- web receives the request
    web_seg = web.begin_segment("web")
    web_seg.start_time = t0
    trace_id = web_seg.trace_id
    web_seg.put_http_meta("method", "POST")
    web_seg.put_http_meta("url", "https://shop.example.com/checkout")
    web_seg.put_http_meta("user_agent", "roentgen-e2e/1.0")
    web_seg.put_http_meta("client_ip", "203.0.113.7")
    web.put_annotation("customer_tier", "gold")
    web.put_annotation("cart_items", 3)
    web.put_annotation("express", True)
    web_seg.set_user("alice")
    web.put_metadata("cart", {"items": ["book", "pen"], "coupon": None, "total": 42.5}, "shop")

    render = web.begin_subsegment("render")
    render.start_time = t0 + 0.01
    template = web.begin_subsegment("template")
    template.start_time = t0 + 0.02
    web.end_subsegment(t0 + 0.03)
    web.end_subsegment(t0 + 0.04)

    coupons = web.begin_subsegment("coupons", "remote")
    coupons.start_time = t0 + 0.04
    coupons.put_http_meta("method", "GET")
    coupons.put_http_meta("url", "http://coupons.internal/v1/codes/SPRING")
    coupons.put_http_meta("status", 404)
    web.end_subsegment(t0 + 0.05)

    call_orders = web.begin_subsegment("orders", "remote")
    call_orders.start_time = t0 + 0.05
    call_orders.put_http_meta("method", "POST")
    call_orders.put_http_meta("url", "http://orders.internal/orders")

    # --- orders, continuing the trace under web's remote subsegment
    orders_seg = orders.begin_segment(
        name="orders", traceid=trace_id, parent_id=call_orders.id, sampling=1
    )
    orders_seg.start_time = t0 + 0.10
    orders_seg.put_http_meta("method", "POST")
    orders_seg.put_http_meta("url", "http://orders.internal/orders")
    orders.put_annotation("order_total", 42.5)
    orders.put_metadata("order", {"id": "o-1001", "lines": 2})

    ddb = orders.begin_subsegment("DynamoDB", "aws")
    ddb.start_time = t0 + 0.12
    ddb.set_aws({"operation": "PutItem", "region": "us-east-1", "table_name": "orders", "retries": 2})
    ddb.put_http_meta("status", 429)
    ddb.add_throttle_flag()
    orders.end_subsegment(t0 + 0.20)

    call_payments = orders.begin_subsegment("payments", "remote")
    call_payments.start_time = t0 + 0.25
    call_payments.put_http_meta("method", "POST")
    call_payments.put_http_meta("url", "http://payments.internal/charge")

    # --- payments, continuing under orders' remote subsegment; it fails
    pay_seg = payments.begin_segment(
        name="payments", traceid=trace_id, parent_id=call_payments.id, sampling=1
    )
    pay_seg.start_time = t0 + 0.30
    pay_seg.put_http_meta("method", "POST")
    pay_seg.put_http_meta("url", "http://payments.internal/charge")

    db = payments.begin_subsegment("payments-db@db.internal", "remote")
    db.start_time = t0 + 0.31
    db.set_sql(
        {
            "url": "postgresql://db.internal:5432/payments",
            "database_type": "PostgreSQL",
            "database_version": "16.2",
            "driver_version": "psycopg2 2.9",
            "user": "payments",
            "sanitized_query": "SELECT balance FROM accounts WHERE id = $1",
        }
    )
    payments.end_subsegment(t0 + 0.35)

    charge = payments.begin_subsegment("charge-card")
    charge.start_time = t0 + 0.36
    try:
        raise PaymentDeclined("card declined: insufficient funds")
    except PaymentDeclined as e:
        stack = stacktrace.get_stacktrace(limit=10)
        charge.add_exception(e, stack)
        pay_seg.add_exception(e, stack)  # recorded once: the segment's cause refers to it
    payments.end_subsegment(t0 + 0.50)
    pay_seg.put_http_meta("status", 500)
    payments.end_segment(t0 + 0.60)

    # --- back in orders
    call_payments.put_http_meta("status", 500)
    orders.end_subsegment(t0 + 0.62)
    orders_seg.put_http_meta("status", 500)
    orders.end_segment(t0 + 0.70)

    # --- back in web
    call_orders.put_http_meta("status", 500)
    web.end_subsegment(t0 + 0.75)
    web_seg.put_http_meta("status", 502)
    web.end_segment(t0 + 0.80)

    sent = {
        "web": web.emitter.documents(),
        "orders": orders.emitter.documents(),
        "payments": payments.emitter.documents(),
    }
    for name, docs in sent.items():
        assert len(docs) == 1, f"the SDK sent {len(docs)} documents for {name}"
    return {
        "trace_id": trace_id,
        "t0": t0,
        "docs": {name: docs[0] for name, docs in sent.items()},
        "ids": {
            "web": web_seg.id,
            "orders": orders_seg.id,
            "payments": pay_seg.id,
            "call_orders": call_orders.id,
            "call_payments": call_payments.id,
            "coupons": coupons.id,
            "ddb": ddb.id,
            "charge": charge.id,
            "db": db.id,
        },
    }


def emit_simple_trace(udp_addr, service: str, status: int | None = None, **annotations) -> str:
    rec = make_recorder(service, udp_addr)
    seg = rec.begin_segment(service)
    seg.start_time = time.time() - 1.0
    for k, v in annotations.items():
        rec.put_annotation(k, v)
    if status is not None:
        seg.put_http_meta("method", "GET")
        seg.put_http_meta("url", f"http://{service}.internal/")
        seg.put_http_meta("status", status)
    rec.end_segment(seg.start_time + 0.2)
    assert len(rec.emitter.sent) == 1
    return seg.trace_id


@pytest.fixture
def checkout(server, xray):
    """The checkout trace, sent and fully arrived."""
    t = emit_checkout_trace(server.udp_addr)
    want = [t["ids"]["web"], t["ids"]["orders"], t["ids"]["payments"]]
    try:
        t["stored"] = wait_for_segments(xray, t["trace_id"], want)
    except PollTimeout as e:
        rejected = {
            k: v
            for k, v in server.metrics().items()
            if k.startswith("roentgen_ingest_rejected_segments_total{") and v
        }
        raise PollTimeout(
            f"{e}\nThe SDK's documents (web {t['ids']['web']}, orders {t['ids']['orders']}, "
            f"payments {t['ids']['payments']}) did not all arrive; rejections counted: "
            f"{rejected}"
        ) from None
    return t


def test_sdk_documents_stored_verbatim(checkout, xray):
    trace_id = checkout["trace_id"]
    traces, unprocessed = batch_get(xray, [trace_id])
    assert trace_id not in unprocessed
    assert list(traces) == [trace_id]
    segments = traces[trace_id]
    # Three segment documents, no more (nothing was streamed separately).
    assert sorted(s["Id"] for s in segments) == sorted(
        [checkout["ids"]["web"], checkout["ids"]["orders"], checkout["ids"]["payments"]]
    )
    by_name = {}
    for s in segments:
        doc = json.loads(s["Document"])
        assert doc["trace_id"] == trace_id
        assert doc["id"] == s["Id"]
        by_name[doc["name"]] = doc
    assert set(by_name) == {"web", "orders", "payments"}
    for name in ("web", "orders", "payments"):
        # The stored document is exactly what the SDK sent (as JSON).
        assert by_name[name] == checkout["docs"][name], f"{name} document changed"

    web, orders, payments = by_name["web"], by_name["orders"], by_name["payments"]
    ids = checkout["ids"]
    # Parentage across services.
    assert "parent_id" not in web
    assert orders["parent_id"] == ids["call_orders"]
    assert payments["parent_id"] == ids["call_payments"]
    # Annotations of each type, user, metadata.
    assert web["annotations"] == {"customer_tier": "gold", "cart_items": 3, "express": True}
    assert orders["annotations"] == {"order_total": 42.5}
    assert web["user"] == "alice"
    assert web["metadata"] == {
        "shop": {"cart": {"items": ["book", "pen"], "coupon": None, "total": 42.5}}
    }
    # Flags.
    assert web.get("fault") is True and web["http"]["response"]["status"] == 502
    assert payments.get("fault") is True and payments["http"]["response"]["status"] == 500
    assert payments["cause"] == checkout["docs"]["payments"]["cause"]
    web_subs = {s["name"]: s for s in web["subsegments"]}
    assert web_subs["coupons"]["error"] is True and web_subs["coupons"]["namespace"] == "remote"
    assert web_subs["orders"]["fault"] is True
    assert web_subs["render"]["subsegments"][0]["name"] == "template"
    orders_subs = {s["name"]: s for s in orders["subsegments"]}
    ddb = orders_subs["DynamoDB"]
    assert ddb["namespace"] == "aws"
    assert ddb["throttle"] is True and ddb["error"] is True
    assert ddb["http"]["response"]["status"] == 429
    pay_subs = {s["name"]: s for s in payments["subsegments"]}
    assert pay_subs["payments-db@db.internal"]["sql"]["database_type"] == "PostgreSQL"
    charge = pay_subs["charge-card"]
    assert charge["fault"] is True
    assert charge["cause"]["exceptions"][0]["type"] == "PaymentDeclined"
    assert charge["cause"]["exceptions"][0]["message"] == "card declined: insufficient funds"
    # The segment's cause is a reference to the exception recorded on its subsegment.
    assert payments["cause"] == charge["cause"]["exceptions"][0]["id"]


def test_sdk_trace_summary(checkout, server, xray):
    trace_id, t0 = checkout["trace_id"], checkout["t0"]
    s = wait_for_summary(xray, t0, trace_id)

    assert s["Duration"] == pytest.approx(0.80, abs=0.01)
    assert s["ResponseTime"] == pytest.approx(0.80, abs=0.01)
    assert s["HasFault"] is True
    assert s.get("IsPartial") is False
    assert isinstance(s.get("Revision"), int)

    names = set()
    for sid in s.get("ServiceIds", []):
        if sid.get("Name"):
            names.add(sid["Name"])
        names.update(sid.get("Names", []) or [])
    assert {"web", "orders", "payments"} <= names, s.get("ServiceIds")

    ann = s.get("Annotations", {})
    assert [v["AnnotationValue"] for v in ann["customer_tier"]] == [{"StringValue": "gold"}]
    assert [v["AnnotationValue"] for v in ann["cart_items"]] == [{"NumberValue": 3.0}]
    assert [v["AnnotationValue"] for v in ann["express"]] == [{"BooleanValue": True}]
    assert [v["AnnotationValue"] for v in ann["order_total"]] == [{"NumberValue": 42.5}]

    users = [u.get("UserName") for u in s.get("Users", [])]
    assert users == ["alice"], s.get("Users")

    # The root segment's HTTP facts, where the summary carries them.
    if "Http" in s:
        assert s["Http"].get("HttpStatus") == 502
        assert s["Http"].get("HttpMethod") == "POST"
        assert s["Http"].get("HttpURL") == "https://shop.example.com/checkout"


def test_summary_flags_from_root_status(server, xray):
    since = time.time() - 5
    throttled = emit_simple_trace(server.udp_addr, "edge", status=429)
    clean = emit_simple_trace(server.udp_addr, "edge", status=200)
    s429 = wait_for_summary(xray, since, throttled)
    s200 = wait_for_summary(xray, since, clean)
    # 429: the SDK sets throttle + error on the root segment.
    assert (s429["HasFault"], s429["HasError"], s429["HasThrottle"]) == (False, True, True)
    assert (s200["HasFault"], s200["HasError"], s200["HasThrottle"]) == (False, False, False)


def test_service_filter(checkout, server, xray):
    trace_id, t0 = checkout["trace_id"], checkout["t0"]
    other = emit_simple_trace(server.udp_addr, "inventory")
    wait_for_summary(xray, t0, other)

    for svc in ("payments", "web", "orders"):
        found, _ = all_summaries(xray, t0, FilterExpression=f'service("{svc}")')
        ids = [x["Id"] for x in found]
        assert ids.count(trace_id) == 1, f'service("{svc}") -> {ids}'
        assert other not in ids, f'service("{svc}") matched the inventory trace'

    found, _ = all_summaries(xray, t0, FilterExpression='service("inventory")')
    assert [x["Id"] for x in found] == [other]

    found, _ = all_summaries(xray, t0, FilterExpression='service("nope")')
    assert found == []

    everything, _ = all_summaries(xray, t0)
    assert {trace_id, other} <= {x["Id"] for x in everything}


# Assumed: GetTraceSummaries pages hold at most 100 summaries, so this many traces
# need at least two pages.
PAGING_TRACES = 130


def test_summaries_paging(server, xray):
    since = time.time() - 5
    rec = make_recorder("pager", server.udp_addr)
    trace_ids = []
    batch = []
    for i in range(PAGING_TRACES):
        seg = rec.begin_segment("pager")
        rec.put_annotation("n", i)
        rec.end_segment()
        trace_ids.append(seg.trace_id)
        batch.append(seg.trace_id)
        # Pace the UDP burst: let each batch land before sending more.
        if len(batch) == 25 or i == PAGING_TRACES - 1:
            for tid in batch:
                poll(lambda tid=tid: batch_get(xray, [tid])[0].get(tid), f"trace {tid}")
            batch = []
    assert len(set(trace_ids)) == PAGING_TRACES

    def complete(**kw):
        found, pages = all_summaries(xray, since, **kw)
        return (found, pages) if {x["Id"] for x in found} >= set(trace_ids) else None

    for kw in ({}, {"FilterExpression": 'service("pager")'}):
        found, pages = poll(lambda: complete(**kw), f"all {PAGING_TRACES} summaries {kw}")
        ids = [x["Id"] for x in found]
        dupes = {i for i in ids if ids.count(i) > 1}
        assert not dupes, f"{len(dupes)} traces seen more than once across pages {kw}"
        assert set(ids) == set(trace_ids), f"unexpected traces in {kw}: {set(ids) - set(trace_ids)}"
        assert pages >= 2, f"{PAGING_TRACES} summaries came in {pages} page(s); paging untested"


def test_in_progress_then_completed(server, xray):
    trace_id = new_trace_id()
    seg_id = new_id()
    start = time.time() - 2
    partial = {
        "trace_id": trace_id,
        "id": seg_id,
        "name": "checkout",
        "start_time": start,
        "in_progress": True,
    }
    resp = xray.put_trace_segments(TraceSegmentDocuments=[dumps(partial)])
    assert resp.get("UnprocessedTraceSegments", []) == []

    s1 = wait_for_summary(xray, start, trace_id)
    assert s1["IsPartial"] is True
    rev1 = s1["Revision"]
    assert isinstance(rev1, int)

    done_text = dumps({**{k: v for k, v in partial.items() if k != "in_progress"}, "end_time": start + 1.5})
    resp = xray.put_trace_segments(TraceSegmentDocuments=[done_text])
    assert resp.get("UnprocessedTraceSegments", []) == []

    s2 = wait_for_summary(xray, start, trace_id, lambda s: s.get("IsPartial") is False)
    assert isinstance(s2["Revision"], int) and s2["Revision"] > rev1
    assert s2["ResponseTime"] == pytest.approx(1.5, abs=0.01)
    assert s2["Duration"] == pytest.approx(1.5, abs=0.01)
    # The completed document replaces the in-progress one.
    traces, _ = batch_get(xray, [trace_id])
    assert [(x["Id"], x["Document"]) for x in traces[trace_id]] == [(seg_id, done_text)]


def test_independent_subsegment(server, xray):
    start = time.time() - 3
    parent = segment_doc(name="api", start=start, end=start + 1.0)
    sub = {
        "type": "subsegment",
        "trace_id": parent["trace_id"],
        "parent_id": parent["id"],
        "id": new_id(),
        "name": "cache",
        "namespace": "remote",
        "start_time": start + 0.2,
        "end_time": start + 0.4,
        "http": {"request": {"method": "GET", "url": "http://cache.internal/k"}, "response": {"status": 200}},
    }
    docs = [dumps(parent), dumps(sub)]
    resp = xray.put_trace_segments(TraceSegmentDocuments=docs)
    assert resp.get("UnprocessedTraceSegments", []) == []

    def find_sub():
        for text in (s["Document"] for s in batch_get(xray, [parent["trace_id"]])[0].get(parent["trace_id"], [])):
            for entity in walk_entities(json.loads(text)):
                if entity.get("id") == sub["id"]:
                    return entity
        return None

    found = poll(find_sub, f"subsegment {sub['id']}")
    assert found["name"] == "cache"
    assert found["start_time"] == sub["start_time"] and found["end_time"] == sub["end_time"]
    traces, _ = batch_get(xray, [parent["trace_id"]])
    texts = [s["Document"] for s in traces[parent["trace_id"]]]
    # The parent segment is there verbatim (possibly with the subsegment merged in).
    parent_docs = [json.loads(t) for t in texts if json.loads(t).get("id") == parent["id"]]
    assert len(parent_docs) == 1
    merged = {k: v for k, v in parent_docs[0].items() if k != "subsegments"}
    assert merged == parent
    summary = wait_for_summary(xray, start, parent["trace_id"])
    assert summary["ResponseTime"] == pytest.approx(1.0, abs=0.01)


def test_filter_expressions(checkout, server, xray):
    """The X-Ray filter language over the SDK's checkout trace and a plain one, through
    boto3's GetTraceSummaries."""
    trace_id, t0 = checkout["trace_id"], checkout["t0"]
    other = emit_simple_trace(server.udp_addr, "inventory", status=200, shelf="b12")
    wait_for_summary(xray, t0, other)
    cases = {
        "fault": {trace_id},
        "!fault": {other},
        "ok": {other},
        'annotation.customer_tier = "gold"': {trace_id},
        "annotation.cart_items >= 3 AND annotation.express = true": {trace_id},
        'annotation.shelf BEGINSWITH "b"': {other},
        'user = "alice"': {trace_id},
        "http.status = 502": {trace_id},
        'http.url CONTAINS "/checkout" AND http.method = "POST"': {trace_id},
        'service("payments") { fault }': {trace_id},
        'service("inventory") { fault }': set(),
        'edge("orders", "payments")': {trace_id},
        '!service("payments")': {other},
        "duration > 0.7 AND duration < 0.9": {trace_id},
        'service("web") OR service("inventory")': {trace_id, other},
        '(user = "bob" OR user = "alice") AND !partial': {trace_id},
    }
    for expr, want in cases.items():
        found, _ = all_summaries(xray, t0, FilterExpression=expr)
        got = {x["Id"] for x in found} & {trace_id, other}
        assert got == want, f"{expr!r}: {got} != {want}"

    # Errors name the position and what was expected, as InvalidRequestException.
    with pytest.raises(ClientError) as info:
        xray.get_trace_summaries(
            StartTime=t0 - 60, EndTime=time.time() + 60,
            FilterExpression='responsetime CONTAINS "x"',
        )
    err = info.value.response["Error"]
    assert err["Code"] == "InvalidRequestException"
    assert "column" in err["Message"], err


def test_root_causes_in_summaries(checkout, server, xray):
    """The checkout's fault starts in payments' charge-card (PaymentDeclined): the
    summary's FaultRootCauses name that service, entity and exception; the throttled
    DynamoDB call is an error root cause."""
    s = wait_for_summary(xray, checkout["t0"], checkout["trace_id"])
    faults = s["FaultRootCauses"]
    assert faults, s
    chains = [[svc["Name"] for svc in cause["Services"]] for cause in faults]
    assert any(chain[-1] == "payments" for chain in chains), chains
    exceptions = [
        exc
        for cause in faults
        for svc in cause["Services"]
        for entity in svc["EntityPath"]
        for exc in entity.get("Exceptions", [])
    ]
    assert any(
        e.get("Name") == "PaymentDeclined" and "insufficient funds" in e.get("Message", "")
        for e in exceptions
    ), exceptions
    errors = s["ErrorRootCauses"]
    assert any(
        svc["Name"] == "DynamoDB" for cause in errors for svc in cause["Services"]
    ), errors


def test_service_graph(checkout, server, xray):
    """GetServiceGraph through boto3: the checkout's nodes and edges with exact counts
    from the per-minute rollups."""
    # Rollups are written with the summary, by the indexer.
    wait_for_summary(xray, checkout["t0"], checkout["trace_id"])
    graph = xray.get_service_graph(StartTime=checkout["t0"] - 120, EndTime=time.time() + 60)
    services = graph["Services"]
    by_id = {s["ReferenceId"]: s for s in services}
    nodes = {(s["Name"], s.get("Type")) for s in services}
    assert nodes == {
        ("client", "client"), ("web", None), ("orders", None), ("payments", None),
        ("DynamoDB", "AWS::DynamoDB::Table"), ("coupons", "remote"),
        ("payments-db@db.internal", "remote"),
    }, nodes
    assert [s["Name"] for s in services if s.get("Root")] == ["web"]

    def counts(stats):
        return (
            stats["TotalCount"], stats["OkCount"], stats["ErrorStatistics"]["OtherCount"],
            stats["ErrorStatistics"]["ThrottleCount"], stats["FaultStatistics"]["TotalCount"],
        )

    edges = {}
    for s in services:
        for e in s["Edges"]:
            edges[(s["Name"], by_id[e["ReferenceId"]]["Name"])] = e
            st = e["SummaryStatistics"]
            assert st["TotalCount"] == (
                st["OkCount"] + st["ErrorStatistics"]["TotalCount"] + st["FaultStatistics"]["TotalCount"]
            )
    #                        total ok error throttle fault
    want = {
        ("client", "web"): (1, 0, 0, 0, 1),
        ("web", "coupons"): (1, 0, 1, 0, 0),
        ("web", "orders"): (1, 0, 0, 0, 1),
        ("orders", "DynamoDB"): (1, 0, 0, 1, 0),
        ("orders", "payments"): (1, 0, 0, 0, 1),
        ("payments", "payments-db@db.internal"): (1, 1, 0, 0, 0),
    }
    assert {k: counts(e["SummaryStatistics"]) for k, e in edges.items()} == want
    assert abs(edges[("web", "orders")]["SummaryStatistics"]["TotalResponseTime"] - 0.7) < 1e-6
    assert edges[("client", "web")]["ResponseTimeHistogram"] == [{"Value": 0.8, "Count": 1}]
    web = next(s for s in services if s["Name"] == "web")
    assert counts(web["SummaryStatistics"]) == (1, 0, 0, 0, 1)


def test_trace_graph(checkout, server, xray):
    """GetTraceGraph of the checkout trace has the same nodes and edge counts as the
    service graph of a window holding only it."""
    wait_for_summary(xray, checkout["t0"], checkout["trace_id"])
    services = xray.get_trace_graph(TraceIds=[checkout["trace_id"]])["Services"]
    by_id = {s["ReferenceId"]: s["Name"] for s in services}
    edges = {
        (s["Name"], by_id[e["ReferenceId"]]): e["SummaryStatistics"]["TotalCount"]
        for s in services for e in s["Edges"]
    }
    assert edges == {
        ("client", "web"): 1, ("web", "coupons"): 1, ("web", "orders"): 1,
        ("orders", "DynamoDB"): 1, ("orders", "payments"): 1,
        ("payments", "payments-db@db.internal"): 1,
    }
    assert xray.get_trace_graph(TraceIds=["1-00000000-000000000000000000000000"])["Services"] == []


def test_time_series_service_statistics(checkout, server, xray):
    """GetTimeSeriesServiceStatistics per entity selector, from the rollups."""
    wait_for_summary(xray, checkout["t0"], checkout["trace_id"])
    window = {"StartTime": checkout["t0"] - 300, "EndTime": time.time() + 60, "Period": 300}

    def series(selector=None):
        kw = dict(window)
        if selector:
            kw["EntitySelectorExpression"] = selector
        return xray.get_time_series_service_statistics(**kw)["TimeSeriesServiceStatistics"]

    # No selector: the requests entering the system (client edges).
    points = series()
    assert sum(p["EdgeSummaryStatistics"]["TotalCount"] for p in points) == 1
    assert all(p["Timestamp"].timestamp() % 300 == 0 for p in points)
    # A node: the orders service's own segment, a fault.
    points = series('service("orders")')
    stats = [p["ServiceSummaryStatistics"] for p in points]
    assert sum(s["TotalCount"] for s in stats) == 1
    assert sum(s["FaultStatistics"]["TotalCount"] for s in stats) == 1
    # An edge: orders' throttled DynamoDB call.
    points = series('edge("orders", id(name: "DynamoDB", type: "AWS::DynamoDB::Table"))')
    stats = [p["EdgeSummaryStatistics"] for p in points]
    assert sum(s["ErrorStatistics"]["ThrottleCount"] for s in stats) == 1
    assert series('service("nobody")') == []
    with pytest.raises(ClientError) as info:
        series("responsetime > 1")
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    with pytest.raises(ClientError):
        xray.get_time_series_service_statistics(**{**window, "Period": 90})


def test_sampled_summaries(server, xray):
    """`Sampling: true` returns a deterministic share of the traces, the same every call."""
    from xray_testlib import segment_doc

    since = time.time() - 5
    docs = [json.dumps(segment_doc(name="sampled")) for _ in range(400)]
    for i in range(0, len(docs), 50):
        assert not xray.put_trace_segments(TraceSegmentDocuments=docs[i:i + 50])[
            "UnprocessedTraceSegments"
        ]
    everything = set()
    for _ in range(100):
        everything = {s["Id"] for s in all_summaries(xray, since)[0]}
        if len(everything) == 400:
            break
        time.sleep(0.1)
    assert len(everything) == 400
    strategy = {"Sampling": True, "SamplingStrategy": {"Name": "FixedRate", "Value": 0.25}}
    first = {s["Id"] for s in all_summaries(xray, since, **strategy)[0]}
    second = {s["Id"] for s in all_summaries(xray, since, **strategy)[0]}
    assert first == second and first <= everything
    assert 50 <= len(first) <= 150, len(first)
    half = {s["Id"] for s in all_summaries(
        xray, since, Sampling=True, SamplingStrategy={"Name": "PartialScan", "Value": 0.5})[0]}
    assert first <= half <= everything
    with pytest.raises(ClientError) as info:
        xray.get_trace_summaries(
            StartTime=since, EndTime=time.time() + 60, Sampling=True,
            SamplingStrategy={"Name": "FixedRate", "Value": 0},
        )
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
