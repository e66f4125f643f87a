"""Scale-out on ClickHouse: stateless `roentgen serve` nodes sharing the two-shard
cluster that scripts/test starts (Debian's clickhouse-server, two local instances).

- The Python X-Ray SDK sends through one node; boto3 reads through the other.
- A shard is stopped and started again while a client writes with PutTraceSegments:
  every segment the server acknowledged is readable afterwards.
- Retention drops whole day partitions on every shard.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import REPO_ROOT, clickhouse_store_url, unique_database
from xray_testlib import (
    batch_get,
    make_recorder,
    new_id,
    new_trace_id,
    poll,
    wait_for_segments,
    wait_for_summary,
    window,
    xray_client,
)

pytestmark = pytest.mark.skipif(
    not os.environ.get("ROENTGEN_TEST_CLICKHOUSE_2"),
    reason="needs the two ClickHouse shards scripts/test starts",
)


def ch_query(url: str, sql: str) -> str:
    req = urllib.request.Request(url + "/", data=sql.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def shard_urls() -> list[str]:
    return [os.environ["ROENTGEN_TEST_CLICKHOUSE"], os.environ["ROENTGEN_TEST_CLICKHOUSE_2"]]


def local_rows(db: str, table: str) -> list[int]:
    """Rows of a local (per-shard) table on each shard."""
    return [
        int(ch_query(u, f"SELECT count() FROM {db}.{table}_local FORMAT TabSeparated").strip())
        for u in shard_urls()
    ]


def cluster_script(*args: str) -> None:
    subprocess.run(
        [str(REPO_ROOT / "scripts" / "clickhouse-cluster"), *args],
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
    )


def test_two_nodes_share_the_cluster(make_server):
    db = unique_database("two_nodes")
    a = make_server(store=clickhouse_store_url(db, cluster=True, first=1))
    b = make_server(store=clickhouse_store_url(db, cluster=True, first=2))
    since = time.time()
    # 40 traces from the real SDK through node A: web calls api (a remote subsegment)
    # and api answers in its own segment.
    web = make_recorder("web", a.udp_addr)
    api = make_recorder("api", a.udp_addr)
    traces: dict[str, set[str]] = {}
    for i in range(40):
        seg = web.begin_segment("web")
        sub = web.begin_subsegment("api", namespace="remote")
        callee = api.begin_segment(
            "api", traceid=seg.trace_id, parent_id=sub.id, sampling=1
        )
        if i % 4 == 0:
            callee.add_fault_flag()
        callee.put_annotation("n", i)
        api.end_segment()
        web.end_subsegment()
        web.end_segment()
        traces[seg.trace_id] = {seg.id, callee.id}
    xb = xray_client(b.http_url)
    # Read through node B: every document, the summaries, the service graph.
    for tid, ids in traces.items():
        wait_for_segments(xb, tid, ids, timeout=20)
    some = next(iter(traces))
    s = wait_for_summary(xb, since, some)
    assert {x["Name"] for x in s["ServiceIds"]} >= {"web", "api"}

    def first_ten():
        got = []
        for page in xb.get_paginator("get_trace_summaries").paginate(
            **window(since), FilterExpression='service("api") AND annotation.n < 10'
        ):
            got.extend(page["TraceSummaries"])
        return got if len(got) == 10 else None

    got = poll(first_ten, "10 traces with n < 10 through node B", timeout=20)
    assert {g["Id"] for g in got} <= set(traces)

    def graph():
        services = xb.get_service_graph(**window(since))["Services"]
        by_name = {svc["Name"]: svc for svc in services}
        if "web" not in by_name or "api" not in by_name:
            return None
        edges = by_name["web"].get("Edges", [])
        return (by_name, edges) if edges and edges[0]["SummaryStatistics"]["TotalCount"] == 40 else None

    by_name, _ = poll(graph, "web -> api edge with 40 calls", timeout=20)
    assert by_name["api"]["SummaryStatistics"]["FaultStatistics"]["TotalCount"] == 10
    # The cluster spreads the traces over both shards, and node A reads what node B
    # would (the two nodes see one database).
    docs = local_rows(db, "docs")
    assert all(n > 0 for n in docs) and sum(docs) == 80, docs
    xa = xray_client(a.http_url)
    got_a, _ = batch_get(xa, list(traces))
    got_b, _ = batch_get(xb, list(traces))
    assert {t: sorted(d["Id"] for d in v) for t, v in got_a.items()} == {
        t: sorted(d["Id"] for d in v) for t, v in got_b.items()
    }


@pytest.mark.allow_server_errors(r"failed to write batch", r"failed to serve request", r"failed to derive")
def test_shard_restart_loses_nothing_acknowledged(make_server):
    db = unique_database("restart")
    a = make_server(store=clickhouse_store_url(db, cluster=True, first=1), udp=False)
    b = make_server(store=clickhouse_store_url(db, cluster=True, first=2), udp=False)
    xa = xray_client(a.http_url)
    acked: dict[str, str] = {}  # segment id -> trace id
    refused = [0]
    stop = threading.Event()
    calls: list[tuple[float, float]] = []  # (start, end) of every PutTraceSegments
    outage: list[float] = []  # when the shard stopped, when it was started again

    def writer():
        n = 0
        while not stop.is_set():
            batch = []
            for _ in range(20):
                now = time.time()
                tid, sid = new_trace_id(), new_id()
                batch.append(
                    (sid, tid, json.dumps({"name": "loader", "id": sid, "trace_id": tid,
                                           "start_time": now, "end_time": now + 0.01, "n": n}))
                )
                n += 1
            began = time.monotonic()
            try:
                resp = xa.put_trace_segments(TraceSegmentDocuments=[d for _, _, d in batch])
            except ClientError:
                refused[0] += 1  # throttled or failed: nothing acknowledged
                time.sleep(0.05)
                continue
            finally:
                calls.append((began, time.monotonic()))
            bad = {u["Id"] for u in resp.get("UnprocessedTraceSegments", [])}
            for sid, tid, _ in batch:
                if sid not in bad:
                    acked[sid] = tid

    threads = [threading.Thread(target=writer, daemon=True) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        poll(lambda: len(acked) >= 200, "200 acknowledged segments", timeout=30)
        cluster_dir = os.environ["ROENTGEN_TEST_CLICKHOUSE_DIR"]
        cluster_script("stop-one", cluster_dir, "2")
        outage.append(time.monotonic())
        before = len(acked)
        time.sleep(3)
        outage.append(time.monotonic())
        cluster_script("start-one", cluster_dir, "2")
        poll(lambda: len(acked) >= before + 400, "writes after the restart", timeout=60)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    # Requests sent while the shard was down either waited (the store retries, the
    # deriver retries and holds writes back) or were refused with ThrottledException;
    # none may be acknowledged and then lost.
    assert any(b < outage[1] and e > outage[0] for b, e in calls), "no write overlapped the outage"
    # Everything acknowledged is there, read through the other node.
    xb = xray_client(b.http_url)
    by_trace = {tid: sid for sid, tid in acked.items()}

    def all_there():
        got, _ = batch_get(xb, list(by_trace))
        missing = [t for t in by_trace if t not in got]
        return not missing or None

    poll(all_there, f"all {len(by_trace)} acknowledged traces", timeout=60)
    assert sum(local_rows(db, "docs")) >= len(acked)
    # The store's own counters on /metrics: what it inserted and derived, and the
    # outage as failed attempts on the stopped shard.
    m = a.metrics()
    assert m.get("roentgen_clickhouse_documents_inserted_total", 0) >= len(acked), m
    assert m.get("roentgen_clickhouse_write_batches_total", 0) > 0, m
    assert m.get("roentgen_clickhouse_traces_derived_total", 0) > 0, m
    assert m.get("roentgen_clickhouse_attempt_failures_total", 0) > 0, m
    assert "roentgen_clickhouse_statement_failures_total" in m, m


def test_retention_drops_old_partitions_on_every_shard(make_server):
    db = unique_database("retention")
    url = clickhouse_store_url(db, cluster=True)
    srv = make_server(store=url, udp=False)
    x = xray_client(srv.http_url)
    now = time.time()
    old_at = now - 3 * 86_400
    docs = {}
    for i in range(20):
        at = old_at if i % 2 == 0 else now
        tid, sid = new_trace_id(at), new_id()
        docs[tid] = (sid, at)
    resp = x.put_trace_segments(TraceSegmentDocuments=[
        json.dumps({"name": "svc", "id": sid, "trace_id": tid, "start_time": at,
                    "end_time": at + 0.5})
        for tid, (sid, at) in docs.items()
    ])
    assert resp["UnprocessedTraceSegments"] == []
    got, _ = batch_get(x, list(docs))
    assert len(got) == 20
    old_day = time.strftime("%Y%m%d", time.gmtime(old_at))
    parts = lambda u: ch_query(  # noqa: E731
        u,
        f"SELECT DISTINCT partition FROM system.parts WHERE database = '{db}' "
        f"AND table = 'docs_local' AND active FORMAT TabSeparated",
    ).split()
    assert any(old_day in parts(u) for u in shard_urls())
    srv.stop()
    # A retention of one day: the first retention pass at start drops the old day.
    srv.extra_args = ["--retention", "1d"]
    srv.start()

    def dropped():
        return all(old_day not in parts(u) for u in shard_urls()) or None

    poll(dropped, f"partition {old_day} dropped on both shards", timeout=20)
    got, _ = batch_get(x, list(docs))
    assert set(got) == {t for t, (_, at) in docs.items() if at == now}
