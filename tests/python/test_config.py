"""Settings from the environment, listeners switched off, and the operational
endpoints (/healthz, /metrics)."""

from __future__ import annotations

import re
import socket
import urllib.request

from xray_testlib import (
    UdpSender,
    batch_get,
    dumps,
    make_recorder,
    poll,
    segment_doc,
    wait_for_segments,
    xray_client,
)


def test_settings_from_environment(make_server):
    srv = make_server(via_env=True)
    assert srv.command()[1:] == ["serve"], "settings must come only from ROENTGEN_* here"
    xray = xray_client(srv.http_url)
    rec = make_recorder("env-configured", srv.udp_addr)
    seg = rec.begin_segment("env-configured")
    rec.end_segment()
    wait_for_segments(xray, seg.trace_id, [seg.id])
    # ROENTGEN_DATA_DIR was honoured: the data went there.
    assert srv.data_dir.is_dir() and any(srv.data_dir.iterdir()), f"nothing in {srv.data_dir}"


def test_udp_and_tcp_off(make_server):
    srv = make_server(udp=False, tcp=False)
    # Nothing of the server's holds the daemon port, over UDP or TCP.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.bind(srv.udp_addr)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
        t.bind(srv.tcp_addr)
    # The HTTP API still works.
    xray = xray_client(srv.http_url)
    doc = segment_doc(name="http-only")
    assert xray.put_trace_segments(TraceSegmentDocuments=[dumps(doc)])["UnprocessedTraceSegments"] == []
    assert wait_for_segments(xray, doc["trace_id"], [doc["id"]]) == {doc["id"]: dumps(doc)}


def test_healthz_and_metrics(server, xray):
    with urllib.request.urlopen(server.http_url + "/healthz", timeout=5) as r:
        assert r.status == 200

    with UdpSender(server.udp_addr) as udp:
        good = segment_doc(name="metered")
        udp.send_doc(good)
        # Same trace, invalid id: must be dropped.
        udp.send_doc({**segment_doc(trace_id=good["trace_id"], name="metered"), "id": "not-an-id"})
    wait_for_segments(xray, good["trace_id"], [good["id"]])

    poll(
        lambda: server.metric("roentgen_ingest_rejected_segments_total") >= 1,
        "a rejected segment to be counted",
    )
    m = server.metrics()
    assert m.get("roentgen_ingest_received_segments_total", 0) >= 2, m
    assert m.get("roentgen_ingest_stored_segments_total", 0) >= 1, m
    labelled = [k for k in m if k.startswith("roentgen_ingest_rejected_segments_total{")]
    assert labelled and all('reason="' in k for k in labelled), labelled

    with urllib.request.urlopen(server.http_url + "/metrics", timeout=5) as r:
        assert r.status == 200
        ctype = r.headers.get("Content-Type", "")
        assert ctype.startswith(("text/plain", "application/openmetrics-text")), ctype
        text = r.read().decode()
    for name in ("received", "stored", "rejected"):
        # Prometheus text says `# TYPE x_total counter`; OpenMetrics drops the _total.
        assert re.search(rf"^# TYPE roentgen_ingest_{name}_segments(_total)? counter$", text, re.M), text

    # The rejected document was not stored.
    traces, _ = batch_get(xray, [good["trace_id"]])
    assert [s["Id"] for s in traces[good["trace_id"]]] == [good["id"]]


def test_tcp_addr_serves_the_api(server):
    """--tcp-addr is where SDKs expect the daemon's HTTP proxy; it serves the same
    X-Ray API as --http-addr."""
    via_tcp = xray_client(f"http://{server.tcp_addr[0]}:{server.tcp_addr[1]}")
    via_http = xray_client(server.http_url)
    doc = segment_doc(name="via-tcp")
    assert via_tcp.put_trace_segments(TraceSegmentDocuments=[dumps(doc)])["UnprocessedTraceSegments"] == []
    assert wait_for_segments(via_http, doc["trace_id"], [doc["id"]]) == {doc["id"]: dumps(doc)}
    assert wait_for_segments(via_tcp, doc["trace_id"], [doc["id"]]) == {doc["id"]: dumps(doc)}
