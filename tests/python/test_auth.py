"""`roentgen serve --auth FILE`: every API request must carry an AWS SigV4 signature
made with one of the file's keys, checked here with the real clients that sign: boto3
(header form), botocore's query-string signer, the AWS CLI, and `roentgen daemon`
forwarding the real X-Ray SDK's segments. Keys carry a tenant and a role."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

from test_daemon_sigv4 import start_daemon, finish
from xray_testlib import new_trace_id, poll, segment_doc, udp_datagram, window

KEYS = {
    "admin": ("AKIDADMIN", "admin/secret/EXAMPLE"),
    "writer": ("AKIDWRITER", "writer/secret/EXAMPLE"),
    "reader": ("AKIDREADER", "reader/secret/EXAMPLE"),
    "b_writer": ("AKIDBWRITER", "b-writer/secret/EXAMPLE"),
    "b_reader": ("AKIDBREADER", "b-reader/secret/EXAMPLE"),
}
KEY_FILE = """
[[keys]]
id = "AKIDADMIN"
secret = "admin/secret/EXAMPLE"
role = "admin"

[[keys]]
id = "AKIDWRITER"
secret = "writer/secret/EXAMPLE"
role = "write"

[[keys]]
id = "AKIDREADER"
secret = "reader/secret/EXAMPLE"
role = "read"

[[keys]]
id = "AKIDBWRITER"
secret = "b-writer/secret/EXAMPLE"
tenant = "team-b"
role = "write"

[[keys]]
id = "AKIDBREADER"
secret = "b-reader/secret/EXAMPLE"
tenant = "team-b"
role = "read"
"""


def client(url: str, key: tuple[str, str], region: str = "eu-central-1"):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "xray",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=key[0],
        aws_secret_access_key=key[1],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def code_of(call) -> str:
    with pytest.raises(ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


@pytest.fixture
def secured(make_server, tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text(KEY_FILE)
    return make_server(extra_args=["--auth", str(path)])


def put(url: str, key, doc: dict) -> dict:
    return client(url, key).put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])


def ids(url: str, key, since: float) -> set[str]:
    out = client(url, key).get_trace_summaries(**window(since))["TraceSummaries"]
    return {s["Id"] for s in out}


def test_signed_requests_pass_and_everything_else_gets_the_aws_error(secured):
    url = secured.http_url
    t0 = time.time()
    doc = segment_doc(name="signed")
    assert put(url, KEYS["admin"], doc)["UnprocessedTraceSegments"] == []
    poll(lambda: doc["trace_id"] in ids(url, KEYS["admin"], t0), what="signed write read back")

    wrong = (KEYS["admin"][0], "not-the-secret")
    assert code_of(lambda: client(url, wrong).get_trace_summaries(**window(t0))) == (
        "InvalidSignatureException"
    )
    nobody = ("AKIDNOBODY", "whatever")
    assert code_of(lambda: client(url, nobody).get_trace_summaries(**window(t0))) == (
        "UnrecognizedClientException"
    )
    # No signature at all, as a plain HTTP client sends it.
    req = urllib.request.Request(
        f"{url}/TraceSummaries",
        data=json.dumps({"StartTime": t0 - 60, "EndTime": t0 + 60}).encode(),
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 403
    assert e.value.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    # The answer is the same whether or not the trace exists.
    for trace in [doc["trace_id"], new_trace_id()]:
        assert code_of(lambda t=trace: client(url, wrong).batch_get_traces(TraceIds=[t])) == (
            "InvalidSignatureException"
        )
    # Health, metrics (and the console's files) need no signature.
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as r:
        assert r.status == 200
    m = secured.metrics()
    assert m['roentgen_auth_failures_total{code="InvalidSignatureException"}'] >= 3
    assert m['roentgen_auth_failures_total{code="UnrecognizedClientException"}'] >= 1
    assert m['roentgen_auth_failures_total{code="MissingAuthenticationTokenException"}'] >= 1


def test_roles_limit_what_a_key_may_call(secured):
    url = secured.http_url
    t0 = time.time()
    doc = segment_doc(name="by-writer")
    assert put(url, KEYS["writer"], doc)["UnprocessedTraceSegments"] == []
    # A write key (what a daemon holds) may not read traces...
    assert code_of(lambda: client(url, KEYS["writer"]).get_trace_summaries(**window(t0))) == (
        "AccessDeniedException"
    )
    # ...but may fetch sampling rules, as the daemon's pollers do.
    client(url, KEYS["writer"]).get_sampling_rules()
    poll(lambda: doc["trace_id"] in ids(url, KEYS["reader"], t0), what="reader sees it")
    # A read key may not write, nor change groups.
    assert code_of(lambda: put(url, KEYS["reader"], segment_doc())) == "AccessDeniedException"
    assert code_of(
        lambda: client(url, KEYS["reader"]).create_group(GroupName="g", FilterExpression="fault")
    ) == "AccessDeniedException"
    client(url, KEYS["admin"]).create_group(GroupName="g", FilterExpression="fault")
    assert secured.metric('roentgen_auth_failures_total{code="AccessDeniedException"}') >= 3


def test_tenants_see_only_their_own(secured):
    url = secured.http_url
    t0 = time.time()
    a, b = segment_doc(name="tenant-a"), segment_doc(name="tenant-b")
    put(url, KEYS["writer"], a)
    put(url, KEYS["b_writer"], b)
    poll(lambda: a["trace_id"] in ids(url, KEYS["reader"], t0), what="a visible to default")
    poll(lambda: b["trace_id"] in ids(url, KEYS["b_reader"], t0), what="b visible to team-b")
    assert b["trace_id"] not in ids(url, KEYS["reader"], t0)
    assert a["trace_id"] not in ids(url, KEYS["b_reader"], t0)
    got = client(url, KEYS["b_reader"]).batch_get_traces(TraceIds=[a["trace_id"]])
    assert got["Traces"] == [] and got["UnprocessedTraceIds"] == [a["trace_id"]]
    names = {
        n["Name"]
        for n in client(url, KEYS["b_reader"]).get_service_graph(**window(t0))["Services"]
    }
    assert "tenant-a" not in names
    # Groups are per tenant too.
    client(url, KEYS["admin"]).create_group(GroupName="only-default", FilterExpression="fault")
    groups = client(url, KEYS["b_reader"]).get_groups()["Groups"]
    assert "only-default" not in {g["GroupName"] for g in groups}
    # And sampling rules.
    client(url, KEYS["admin"]).create_sampling_rule(SamplingRule={
        "RuleName": "only-default-rule", "ResourceARN": "*", "Priority": 10,
        "FixedRate": 0.5, "ReservoirSize": 1, "ServiceName": "*", "ServiceType": "*",
        "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1})

    def rule_names(key):
        records = client(url, key).get_sampling_rules()["SamplingRuleRecords"]
        return {r["SamplingRule"]["RuleName"] for r in records}
    assert "only-default-rule" in rule_names(KEYS["writer"])
    assert "only-default-rule" not in rule_names(KEYS["b_writer"])


def test_query_string_signatures(secured):
    """botocore's own query-string (presigned) signer, sent by a plain HTTP client.
    (botocore's query signer moves a body's fields into the query string, so the call
    is one that needs no body: GetGroups.)"""
    url = secured.http_url
    client(url, KEYS["admin"]).create_group(GroupName="presigned", FilterExpression="fault")

    def presigned(secret: str) -> urllib.request.Request:
        req = AWSRequest(method="POST", url=f"{url}/Groups")
        SigV4QueryAuth(Credentials(KEYS["reader"][0], secret), "xray", "ap-south-1", 300).add_auth(req)
        prepared = req.prepare()
        return urllib.request.Request(
            prepared.url, data=b"", method="POST", headers=dict(prepared.headers)
        )

    assert "X-Amz-Signature=" in presigned(KEYS["reader"][1]).full_url
    with urllib.request.urlopen(presigned(KEYS["reader"][1]), timeout=5) as r:
        names = {g["GroupName"] for g in json.loads(r.read())["Groups"]}
    assert "presigned" in names
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(presigned("wrong"), timeout=5)
    assert e.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"


def test_the_aws_cli_signs_like_against_aws(secured, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(HOME=str(tmp_path), AWS_DEFAULT_REGION="us-west-2")

    def aws(key, *args) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["aws", "xray", *args, "--endpoint-url", secured.http_url, "--output", "json"],
            env=env | {"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]},
            capture_output=True, text=True, timeout=60,
        )

    now = int(time.time())
    ok = aws(KEYS["reader"], "get-trace-summaries", "--start-time", str(now - 60),
             "--end-time", str(now))
    assert ok.returncode == 0, ok.stderr
    assert "TraceSummaries" in json.loads(ok.stdout)
    bad = aws((KEYS["reader"][0], "wrong"), "get-trace-summaries", "--start-time",
              str(now - 60), "--end-time", str(now))
    assert bad.returncode != 0 and "InvalidSignatureException" in bad.stderr, bad.stderr


def test_daemon_signs_sdk_segments_for_serve(secured, roentgen_bin, tmp_path):
    """`roentgen daemon` with the writer key in its environment forwards what the SDKs
    send; `serve --auth` accepts it for the key's tenant."""
    t0 = time.time()
    proc, addr = start_daemon(
        roentgen_bin, tmp_path, secured.http_url,
        {"AWS_ACCESS_KEY_ID": KEYS["b_writer"][0],
         "AWS_SECRET_ACCESS_KEY": KEYS["b_writer"][1]},
        ["-n", "us-east-2"],
    )
    docs = [segment_doc(name="via-daemon") for _ in range(5)]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for d in docs:
                s.sendto(udp_datagram(d), addr)
        want = {d["trace_id"] for d in docs}
        poll(lambda: want <= ids(secured.http_url, KEYS["b_reader"], t0),
             what="daemon-signed segments stored for team-b", timeout=20)
    finally:
        log = finish(proc, tmp_path)
    assert not want & ids(secured.http_url, KEYS["reader"], t0)
    assert "ERROR" not in log, log


def test_daemon_port_acts_as_a_write_caller_of_the_server_tenant(secured):
    """SDK pollers call the daemon-protocol TCP port unsigned, as they call the X-Ray
    daemon's proxy: sampling works there, reading traces does not."""
    from xray_testlib import xray_client

    tcp = xray_client(f"http://{secured.tcp_addr[0]}:{secured.tcp_addr[1]}")
    assert [r["SamplingRule"]["RuleName"] for r in tcp.get_sampling_rules()["SamplingRuleRecords"]] == ["Default"]
    assert code_of(lambda: tcp.get_trace_summaries(**window(time.time()))) == (
        "AccessDeniedException"
    )


def test_a_bad_key_file_stops_start_up(make_server, tmp_path):
    path = tmp_path / "keys.toml"
    path.write_text('[[keys]]\nid = "A"\nsecret = ""\nrole = "read"\n')
    srv = make_server(start=False, extra_args=["--auth", str(path)])
    out = subprocess.run(srv.command(), capture_output=True, text=True, timeout=30)
    assert out.returncode == 64, out.stderr
    assert "empty secret" in out.stderr
