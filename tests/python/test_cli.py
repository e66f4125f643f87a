"""The AWS CLI (v1, from the venv) reads what the X-Ray SDK sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xray_testlib import make_recorder, wait_for_summary


def find_aws() -> str | None:
    # Prefer the CLI installed next to this interpreter (scripts/test's .venv).
    beside = Path(sys.executable).parent / "aws"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("aws")


def run_aws(aws: str, args: list[str], tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "aws-config-none"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-credentials-none"),
            "AWS_PAGER": "",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    proc = subprocess.run(
        [aws, *args, "--output", "json"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"aws {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}"
    return json.loads(proc.stdout)


def test_aws_cli_reads_sdk_trace(server, xray, tmp_path):
    aws = find_aws()
    if aws is None:
        pytest.skip("the AWS CLI (`aws`) is not installed; scripts/test installs it into .venv")

    since = time.time() - 5
    rec = make_recorder("cli-web", server.udp_addr)
    seg = rec.begin_segment("cli-web")
    rec.put_annotation("via", "cli")
    sub = rec.begin_subsegment("lookup", "remote")
    sub.put_http_meta("status", 200)
    rec.end_subsegment()
    rec.end_segment()
    trace_id = seg.trace_id
    wait_for_summary(xray, since, trace_id)

    endpoint = ["--endpoint-url", server.http_url, "--region", "us-east-1"]
    out = run_aws(
        aws,
        [
            "xray", "get-trace-summaries", *endpoint,
            "--start-time", str(int(since - 60)),
            "--end-time", str(int(time.time() + 60)),
        ],
        tmp_path,
    )  # fmt: skip
    summaries = {s["Id"]: s for s in out["TraceSummaries"]}
    assert trace_id in summaries, out
    assert summaries[trace_id]["Annotations"]["via"][0]["AnnotationValue"] == {"StringValue": "cli"}

    out = run_aws(
        aws,
        [
            "xray", "get-trace-summaries", *endpoint,
            "--start-time", str(int(since - 60)),
            "--end-time", str(int(time.time() + 60)),
            "--filter-expression", 'service("cli-web")',
        ],
        tmp_path,
    )  # fmt: skip
    assert [s["Id"] for s in out["TraceSummaries"]] == [trace_id]

    out = run_aws(aws, ["xray", "batch-get-traces", *endpoint, "--trace-ids", trace_id], tmp_path)
    assert [t["Id"] for t in out["Traces"]] == [trace_id]
    docs = [json.loads(s["Document"]) for s in out["Traces"][0]["Segments"]]
    assert [(d["id"], d["name"]) for d in docs] == [(seg.id, "cli-web")]
    assert docs[0] == rec.emitter.documents()[0]


def test_roentgen_traces_and_trace(server, xray, roentgen_bin):
    """`roentgen traces --filter` lists the SDK's traces; `roentgen trace ID` draws one
    as a waterfall. Both only use the public API."""
    from test_sdk_roundtrip import emit_checkout_trace, emit_simple_trace

    t = emit_checkout_trace(server.udp_addr)
    plain = emit_simple_trace(server.udp_addr, "inventory", status=200)
    wait_for_summary(xray, t["t0"], t["trace_id"])
    wait_for_summary(xray, t["t0"], plain)

    def roentgen(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(roentgen_bin), *args, "--endpoint", server.http_url],
            capture_output=True, text=True, timeout=30,
        )

    listed = roentgen("traces", "--since", "10m", "--filter", 'service("payments") { fault }')
    assert listed.returncode == 0, listed.stderr
    assert t["trace_id"] in listed.stdout and plain not in listed.stdout, listed.stdout
    line = next(l for l in listed.stdout.splitlines() if t["trace_id"] in l)
    assert "fault" in line and "502" in line and "https://shop.example.com/checkout" in line, line

    everything = roentgen("traces", "--since", "10m")
    assert t["trace_id"] in everything.stdout and plain in everything.stdout

    bad = roentgen("traces", "--filter", "responsetime CONTAINS 3")
    assert bad.returncode != 0 and "InvalidRequestException" in bad.stderr, bad.stderr

    drawn = roentgen("trace", t["trace_id"])
    assert drawn.returncode == 0, drawn.stderr
    rows = drawn.stdout.splitlines()
    # Call order across services, nested by depth, with outcomes and bars.
    names = [r.split()[1] for r in rows[2:]]
    for a, b in [("web", "orders"), ("orders", "payments"), ("payments", "charge-card")]:
        assert names.index(a) < names.index(b), names
    payments = next(r for r in rows[2:] if r.split()[:2] == ["payments", "payments"])
    assert "fault 500" in payments and "█" in payments, payments

    missing = roentgen("trace", "1-00000000-000000000000000000000000")
    assert missing.returncode == 1 and "no trace" in missing.stderr


def test_roentgen_map(server, xray, roentgen_bin):
    """`roentgen map` prints each edge of the SDK's checkout with its counts."""
    from test_sdk_roundtrip import emit_checkout_trace

    t = emit_checkout_trace(server.udp_addr)
    wait_for_summary(xray, t["t0"], t["trace_id"])
    out = subprocess.run(
        [str(roentgen_bin), "map", "--since", "10m", "--endpoint", server.http_url],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    edges = {}
    for line in out.stdout.splitlines()[1:]:
        left, right = line.split("→")
        fields = right.split()
        edges[(left.strip(), fields[0])] = fields
    assert ("client", "web") in edges and ("orders", "payments") in edges, out.stdout
    assert edges[("orders", "DynamoDB")][-4:] == ["1", "100.0%", "0.0%", "80.0ms"], out.stdout
    assert edges[("web", "orders")][-4:] == ["1", "0.0%", "100.0%", "700.0ms"], out.stdout
    assert "7 services, 6 edges" in out.stderr
