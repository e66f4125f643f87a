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
