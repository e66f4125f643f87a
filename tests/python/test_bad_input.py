"""Junk in, nothing stored, nothing broken: UDP datagrams, PutTraceSegments documents,
and malformed HTTP requests."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from xray_testlib import (
    UDP_HEADER,
    all_summaries,
    UdpSender,
    assert_aws_error,
    batch_get,
    dumps,
    http_call,
    new_id,
    new_trace_id,
    poll,
    post_large,
    segment_doc,
    trace_documents,
    udp_datagram,
    wait_for_segments,
    window,
)

REJECTED = "roentgen_ingest_rejected_segments_total"
STORED = "roentgen_ingest_stored_segments_total"

# What a request the API cannot accept may be answered with (AWS rest-json).
BAD_REQUEST_TYPES = {"InvalidRequestException", "SerializationException"}


def invalid_documents() -> list[tuple[str, str | None, dict]]:
    """(label, trace id to check is absent or None, document) for documents that parse
    as JSON objects but break X-Ray's segment rules."""
    now = time.time() - 1
    cases: list[tuple[str, str | None, dict]] = []

    def add(label: str, doc: dict, check: bool = True) -> None:
        cases.append((label, doc.get("trace_id") if check else None, doc))

    add("bad trace_id", {**segment_doc(start=now), "trace_id": "1-xyz-notatraceid"}, check=False)
    add("trace_id wrong version", {**segment_doc(start=now), "trace_id": "2-" + new_trace_id()[2:]}, check=False)
    d = segment_doc(start=now)
    del d["id"]
    add("missing id", d)
    d = segment_doc(start=now)
    del d["name"]
    add("missing name", d)
    d = segment_doc(start=now)
    del d["start_time"]
    add("missing start_time", d)
    d = segment_doc(start=now)
    del d["end_time"]
    add("no end_time and not in_progress", d)
    add("end before start", segment_doc(start=now, end=now - 10))
    add("id too short", segment_doc(start=now, id="12345"))
    add("id 17 hex digits", segment_doc(start=now, id="0123456789abcdef0"))
    add("id not hex", segment_doc(start=now, id="0123456789abcdeg"))
    add("parent_id not hex", segment_doc(start=now, parent_id="nothexnothexnoth"))
    add(
        "nested subsegment id not hex",
        segment_doc(
            start=now,
            subsegments=[{"id": "zzzzzzzzzzzzzzzz", "name": "x", "start_time": now, "end_time": now + 0.1}],
        ),
    )
    add(
        "subsegment without parent_id",
        {"type": "subsegment", "trace_id": new_trace_id(), "id": new_id(), "name": "x", "start_time": now, "end_time": now + 1},
    )
    add("name not a string", segment_doc(start=now, name=12))
    add("start_time not a number", segment_doc(start=now, start_time="yesterday"))
    return cases


def test_udp_junk_is_dropped_and_counted(server, xray):
    since = time.time() - 5
    before = server.metrics()
    rejected_before = before.get(REJECTED, 0.0)
    stored_before = before.get(STORED, 0.0)

    valid: list[dict] = []
    never_stored: list[str] = []  # trace ids that must not appear

    def good() -> bytes:
        d = segment_doc(name="udp-good")
        valid.append(d)
        return udp_datagram(d)

    def junk_with(doc_transform) -> bytes:
        d = segment_doc(name="udp-junk")
        never_stored.append(d["trace_id"])
        return doc_transform(d)

    datagrams: list[bytes] = [
        good(),
        b"",
        b"\n",
        b"   ",
        good(),
        # header without the newline, glued to a valid document
        junk_with(lambda d: UDP_HEADER.rstrip(b"\n") + dumps(d).encode()),
        # no header at all, just the document
        junk_with(lambda d: dumps(d).encode()),
        # unknown protocol version
        junk_with(lambda d: b'{"format":"json","version":2}\n' + dumps(d).encode()),
        # header that is not JSON
        junk_with(lambda d: b"hello\n" + dumps(d).encode()),
        UDP_HEADER + b"not json",
        UDP_HEADER + b"[1, 2, 3]",
        UDP_HEADER + b'"a string"',
        UDP_HEADER,
        # truncated document
        junk_with(lambda d: udp_datagram(d)[:-7]),
        good(),
        UDP_HEADER + b"\xff\xfe\x00garbage",
    ]
    invalid = invalid_documents()
    for i, (_, tid, doc) in enumerate(invalid):
        datagrams.append(udp_datagram(doc))
        if tid:
            never_stored.append(tid)
        if i % 4 == 0:
            datagrams.append(good())
    datagrams.append(good())  # the sentinel: sent last

    with UdpSender(server.udp_addr) as udp:
        for payload in datagrams:
            udp.send(payload)

    # Every valid datagram lands...
    for d in valid:
        wait_for_segments(xray, d["trace_id"], [d["id"]])
    # ...and the invalid documents (a well-formed header and JSON object body) were
    # each counted as rejected.
    poll(
        lambda: server.metric(REJECTED) - rejected_before >= len(invalid),
        f"{REJECTED} to grow by {len(invalid)}",
    )
    poll(
        lambda: server.metric(STORED) - stored_before >= len(valid),
        f"{STORED} to grow by {len(valid)}",
    )
    stored_delta = server.metric(STORED) - stored_before
    assert stored_delta == len(valid), f"{STORED} grew by {stored_delta}, sent {len(valid)} valid"

    traces, _ = batch_get(xray, never_stored)
    stored = {tid: segs for tid, segs in traces.items() if segs}
    assert not stored, f"invalid datagrams were stored: {json.dumps(stored)[:2000]}"

    # Summaries hold the valid traces and nothing else.
    # Summaries are derived shortly after the documents land (as in X-Ray): poll.
    want = {d["trace_id"] for d in valid}
    summaries = poll(
        lambda: (lambda got: got if {s["Id"] for s in got} == want else None)(
            all_summaries(xray, since)[0]
        ),
        f"summaries of exactly the {len(want)} valid traces",
    )
    assert all(s.get("Revision", 0) >= 1 for s in summaries)

    assert server.healthz() == 200


def test_udp_oversized_datagram(server, xray):
    doc = segment_doc(name="big", metadata={"default": {"blob": "x" * 70_000}})
    payload = udp_datagram(doc)
    assert len(payload) > 70_000
    with UdpSender(server.udp_addr) as udp:
        try:
            udp.send(payload)
        except OSError as e:
            pytest.skip(f"the OS will not send a {len(payload)}-byte UDP datagram: {e}")
        sentinel = segment_doc(name="after-big")
        udp.send_doc(sentinel)
    wait_for_segments(xray, sentinel["trace_id"], [sentinel["id"]])
    assert trace_documents(xray, doc["trace_id"]) == []
    assert server.healthz() == 200


def test_put_trace_segments_mixed(server, xray):
    good = [segment_doc(name="api-good"), segment_doc(name="api-good2", user="bob")]
    invalid = invalid_documents()
    docs = [dumps(good[0])]
    bad_texts = ["not json", "[]", "{"]
    docs += bad_texts
    docs += [dumps(doc) for _, _, doc in invalid]
    docs.append(dumps(good[1]))

    resp = xray.put_trace_segments(TraceSegmentDocuments=docs)
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    unprocessed = resp.get("UnprocessedTraceSegments", [])
    assert len(unprocessed) == len(bad_texts) + len(invalid), json.dumps(unprocessed, indent=1)
    for entry in unprocessed:
        assert isinstance(entry.get("ErrorCode"), str) and entry["ErrorCode"], entry
        assert isinstance(entry.get("Message"), str) and entry["Message"], entry
    reported_ids = {e.get("Id") for e in unprocessed if e.get("Id")}
    good_ids = {g["id"] for g in good}
    assert not (reported_ids & good_ids), "a good document was reported unprocessed"
    # Every bad document whose id is a valid segment id is reported under that id.
    for label, _, doc in invalid:
        i = doc.get("id")
        if isinstance(i, str) and len(i) == 16 and all(c in "0123456789abcdef" for c in i):
            assert i in reported_ids, f"{label}: id {i} not among {reported_ids}"

    for g in good:
        got = wait_for_segments(xray, g["trace_id"], [g["id"]])
        assert got == {g["id"]: dumps(g)}
    for label, tid, _ in invalid:
        if tid:
            assert trace_documents(xray, tid) == [], f"{label} was stored"
    assert server.healthz() == 200


def test_put_trace_segments_all_bad_is_still_200(server, xray):
    resp = xray.put_trace_segments(TraceSegmentDocuments=["nope", "{}"])
    assert resp["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert len(resp["UnprocessedTraceSegments"]) == 2


# ----------------------------------------------------------------------- raw HTTP


def test_malformed_json_body(server):
    for body in ("{not json", "", "null", "[1,2]", '{"TraceSegmentDocuments": ["a"'):
        res = http_call(server.http_url, "POST", "/TraceSegments", body)
        assert_aws_error(res, {400}, BAD_REQUEST_TYPES)
    for path in ("/Traces", "/TraceSummaries"):
        res = http_call(server.http_url, "POST", path, "{oops")
        assert_aws_error(res, {400}, BAD_REQUEST_TYPES)
    assert server.healthz() == 200


def test_wrong_field_types(server):
    cases = [
        ("/TraceSegments", {"TraceSegmentDocuments": "notalist"}),
        ("/TraceSegments", {"TraceSegmentDocuments": [1, 2]}),
        ("/TraceSegments", {}),
        ("/Traces", {"TraceIds": "1-5759e988-bd862e3fe1be46a994272793"}),
        ("/Traces", {"TraceIds": [42]}),
        ("/Traces", {}),
        ("/TraceSummaries", {"StartTime": "yesterday", "EndTime": 1}),
        ("/TraceSummaries", {"EndTime": 1700000000}),
        ("/TraceSummaries", {"StartTime": 1700000000, "EndTime": 1700000060, "FilterExpression": 7}),
    ]
    for path, body in cases:
        res = http_call(server.http_url, "POST", path, json.dumps(body))
        assert_aws_error(res, {400}, BAD_REQUEST_TYPES)
    assert server.healthz() == 200


def test_body_over_10mb(server, xray):
    doc = dumps(segment_doc(name="huge"))
    body = json.dumps({"TraceSegmentDocuments": [doc] + ["x" * 1_000_000] * 11}).encode()
    assert len(body) > 10 * 1024 * 1024
    res = post_large(server.http_url, "/TraceSegments", body)
    assert res.status in (413, 400), res
    et = res.error_type()
    assert et, res
    assert server.healthz() == 200
    # Nothing from the refused request was stored.
    assert trace_documents(xray, json.loads(doc)["trace_id"]) == []


def test_unknown_route(server):
    for method, path in (("GET", "/nope"), ("POST", "/NoSuchOperation"), ("POST", "/")):
        res = http_call(server.http_url, method, path, "{}" if method == "POST" else None)
        assert_aws_error(res, {404}, {"UnknownOperationException"})


def test_invalid_filter_expression(server, xray):
    now = time.time()
    for expr in ('service("payments"', "!!!", 'service("a") AND AND', 'nosuchfunction("x")'):
        with pytest.raises(ClientError) as info:
            xray.get_trace_summaries(**window(now), FilterExpression=expr)
        err = info.value.response
        assert err["Error"]["Code"] == "InvalidRequestException", (expr, err)
        assert err["ResponseMetadata"]["HTTPStatusCode"] == 400, (expr, err)


def test_end_before_start(server, xray):
    w = window(time.time())
    with pytest.raises(ClientError) as info:
        xray.get_trace_summaries(StartTime=w["EndTime"], EndTime=w["StartTime"])
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_batch_get_traces_invalid_ids(server, xray):
    bad = [
        "not-a-trace-id",
        "1-zzzzzzzz-bd862e3fe1be46a994272793",
        "1-5759e988-bd862e3fe1be46a99427279",
        "1-5759e988-bd862e3fe1be46a994272793-extra",
    ]
    try:
        resp = xray.batch_get_traces(TraceIds=bad)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidRequestException", e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    else:
        assert resp.get("Traces", []) == []
        assert sorted(resp.get("UnprocessedTraceIds", [])) == sorted(bad)

    # A well-formed id that was never stored: no trace (and no error).
    unknown = new_trace_id()
    resp = xray.batch_get_traces(TraceIds=[unknown])
    assert [t for t in resp.get("Traces", []) if t.get("Segments")] == []
    assert server.healthz() == 200
