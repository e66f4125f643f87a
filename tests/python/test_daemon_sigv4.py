"""`roentgen daemon` signs what it sends with SigV4, from the standard credential chain,
and the signatures are checked here by botocore's own SigV4 implementation against a
loopback endpoint of this test's making (Roentgen's server does not verify signatures
yet: that is the auth work). Credentials come from the environment, and from a container
credentials endpoint followed by STS AssumeRole (`--role-arn`)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from conftest import _free_tcp_port, _free_udp_and_tcp_port
from xray_testlib import poll, segment_doc, udp_datagram, xray_client

BASE = ("AKIDBASEEXAMPLE", "base/secret/EXAMPLEKEY")
TEMP = ("ASIATEMPEXAMPLE", "temp/secret/EXAMPLEKEY", "temp-session-token")
ROLE = "arn:aws:iam::123456789012:role/xray-writer"
CONTAINER_TOKEN = "container-auth-token"


def signature_is_valid(method, url, headers, body, creds, region, service) -> tuple[bool, str]:
    """Recompute the request's signature with botocore over the headers it claims to
    have signed; True when it matches."""
    auth = headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False, f"no SigV4 authorization header: {auth!r}"
    parts = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 "):].split(","))
    signed = parts["SignedHeaders"].split(";")
    scope = parts["Credential"].split("/")
    if scope[0] != creds[0] or scope[2] != region or scope[3] != service:
        return False, f"wrong credential scope {parts['Credential']}"
    req = AWSRequest(
        method=method,
        url=url,
        data=body,
        headers={h: headers[h] for h in signed if h in headers},
    )
    req.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(Credentials(*creds), service, region)
    canonical = signer.canonical_request(req)
    expected = signer.signature(signer.string_to_sign(req, canonical), req)
    return expected == parts["Signature"], f"expected {expected}, got {parts['Signature']}"


class FakeAws(ThreadingHTTPServer):
    """X-Ray, STS and a container credentials endpoint on one loopback port."""

    daemon_threads = True

    def __init__(self, region: str):
        super().__init__(("127.0.0.1", _free_tcp_port()), Handler)
        self.region = region
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.documents = 0
        self.by_name: dict[str, int] = {}
        self.rules: list[dict] = []
        self.calls: list[tuple[str, bool, str]] = []  # (what, valid, detail)
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def record(self, what: str, valid: bool, detail: str) -> None:
        with self.lock:
            self.calls.append((what, valid, detail))


class Handler(BaseHTTPRequestHandler):
    server: FakeAws

    def log_message(self, *args):  # quiet
        pass

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _reply(self, status: int, body: bytes, ctype="application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        h = self._headers()
        if self.path == "/latest/api/token" and "x-aws-ec2-metadata-token-ttl-seconds" in h:
            self.server.record("imds-token", True, "")
            return self._reply(200, b"imds-token-value", "text/plain")
        self._reply(404, b"{}")

    def do_GET(self):
        h = self._headers()
        url = self.server.url + self.path
        if self.path.startswith("/latest/meta-data/"):
            ok = h.get("x-aws-ec2-metadata-token") == "imds-token-value"
            self.server.record(self.path, ok, "")
            if self.path == "/latest/meta-data/placement/region":
                return self._reply(200, self.server.region.encode(), "text/plain")
            if self.path == "/latest/meta-data/iam/security-credentials/":
                return self._reply(200, b"instance-role", "text/plain")
            if self.path == "/latest/meta-data/iam/security-credentials/instance-role":
                body = {
                    "Code": "Success", "AccessKeyId": TEMP[0], "SecretAccessKey": TEMP[1],
                    "Token": TEMP[2], "Expiration": "2999-01-01T00:00:00Z",
                }
                return self._reply(200, json.dumps(body).encode())
        if self.path == "/creds":
            ok = h.get("authorization") == CONTAINER_TOKEN
            self.server.record("container", ok, h.get("authorization", ""))
            body = {
                "AccessKeyId": BASE[0], "SecretAccessKey": BASE[1],
                "Token": None, "Expiration": "2999-01-01T00:00:00Z",
            }
            return self._reply(200 if ok else 403, json.dumps(body).encode())
        query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
        if query.get("Action") == ["AssumeRole"]:
            ok, detail = signature_is_valid("GET", url, h, b"", BASE, self.server.region, "sts")
            ok = ok and query.get("RoleArn") == [ROLE] and query.get("RoleSessionName") == ["xray-daemon"]
            self.server.record("sts", ok, detail)
            xml = (
                "<AssumeRoleResponse><AssumeRoleResult><Credentials>"
                f"<AccessKeyId>{TEMP[0]}</AccessKeyId><SecretAccessKey>{TEMP[1]}</SecretAccessKey>"
                f"<SessionToken>{TEMP[2]}</SessionToken><Expiration>2999-01-01T00:00:00Z</Expiration>"
                "</Credentials></AssumeRoleResult></AssumeRoleResponse>"
            )
            return self._reply(200 if ok else 403, xml.encode(), "text/xml")
        self._reply(404, b"{}")

    def do_POST(self):
        h = self._headers()
        body = self.rfile.read(int(h.get("content-length", "0")))
        url = self.server.url + self.path
        if self.path.startswith("http://"):
            # Sent to us as a forward proxy: the request line names the real target.
            url = self.path
            self.server.record("via-proxy", True, url)
            self.path = urllib.parse.urlparse(url).path
        creds = self.server.expect_creds
        ok, detail = signature_is_valid("POST", url, h, body, creds, self.server.region, "xray")
        if len(creds) == 3:
            ok = ok and h.get("x-amz-security-token") == creds[2]
        self.server.record(self.path, ok, detail)
        if not ok:
            return self._reply(403, json.dumps({"__type": "InvalidSignatureException", "message": detail}).encode())
        if self.path == "/TraceSegments":
            docs = json.loads(body)["TraceSegmentDocuments"]
            with self.server.lock:
                self.server.documents += len(docs)
                for d in docs:
                    name = json.loads(d).get("name")
                    self.server.by_name[name] = self.server.by_name.get(name, 0) + 1
            return self._reply(200, b'{"UnprocessedTraceSegments":[]}')
        if self.path == "/GetSamplingRules":
            return self._reply(200, json.dumps({"SamplingRuleRecords": self.server.rules}).encode())
        self._reply(200, b"{}")


def start_daemon(binary, tmp_path, endpoint: str | None, env: dict[str, str], extra: list[str]):
    port = _free_udp_and_tcp_port()
    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("AWS_")}
    clean.update(env)
    stderr = open(tmp_path / "daemon.log", "wb")
    target = ["-e", endpoint] if endpoint else []
    proc = subprocess.Popen(
        [str(binary), "daemon", "-b", f"127.0.0.1:{port}", "-t", f"127.0.0.1:{port}",
         "--telemetry-interval", "200ms"] + target + extra,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=clean,
        cwd=tmp_path,
    )
    time.sleep(0.3)
    return proc, ("127.0.0.1", port)


def send_segments(addr, n: int) -> None:
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(n):
        doc = segment_doc(name="signed-service")
        s.sendto(udp_datagram(doc), addr)
    s.close()


def finish(proc, tmp_path) -> str:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0
    return (tmp_path / "daemon.log").read_text()


def test_signs_with_environment_credentials(roentgen_bin, tmp_path):
    aws = FakeAws("eu-west-1")
    aws.expect_creds = BASE
    proc, addr = start_daemon(
        roentgen_bin, tmp_path, aws.url,
        {"AWS_ACCESS_KEY_ID": BASE[0], "AWS_SECRET_ACCESS_KEY": BASE[1]},
        ["-n", "eu-west-1"],
    )
    try:
        send_segments(addr, 120)
        poll(lambda: aws.documents == 120, what="120 signed segments accepted", timeout=20)
        # The TCP proxy signs what SDK pollers send unsigned.
        port = addr[1]
        proxied = xray_client(f"http://127.0.0.1:{port}")
        assert proxied.get_sampling_rules()["SamplingRuleRecords"] == []
    finally:
        log = finish(proc, tmp_path)
    assert "requests are signed with SigV4" in log and "environment" in log, log
    paths = {what for what, _, _ in aws.calls}
    assert {"/TraceSegments", "/GetSamplingRules", "/TelemetryRecords"} <= paths, aws.calls
    bad = [c for c in aws.calls if not c[1]]
    assert not bad, bad


def test_container_credentials_and_assume_role(roentgen_bin, tmp_path):
    aws = FakeAws("ap-southeast-2")
    aws.expect_creds = TEMP
    proc, addr = start_daemon(
        roentgen_bin, tmp_path, aws.url,
        {
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{aws.url}/creds",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": CONTAINER_TOKEN,
            "AWS_ENDPOINT_URL_STS": aws.url,
        },
        ["-n", "ap-southeast-2", "-r", ROLE],
    )
    try:
        send_segments(addr, 60)
        poll(lambda: aws.documents == 60, what="60 segments signed with the role's keys", timeout=20)
    finally:
        log = finish(proc, tmp_path)
    assert f"assuming {ROLE}" in log, log
    kinds = [what for what, _, _ in aws.calls]
    assert "container" in kinds and "sts" in kinds, aws.calls
    # Credentials are fetched once and cached, not per request.
    assert kinds.count("sts") == 1, aws.calls
    bad = [c for c in aws.calls if not c[1]]
    assert not bad, bad


def rule(name: str, priority: int, service: str, fixed_rate: float, reservoir: int) -> dict:
    return {
        "SamplingRule": {
            "RuleName": name, "RuleARN": f"arn:aws:xray:us-west-2:123456789012:sampling-rule/{name}",
            "ResourceARN": "*", "Priority": priority, "FixedRate": fixed_rate,
            "ReservoirSize": reservoir, "ServiceName": service, "ServiceType": "*",
            "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1, "Attributes": {},
        },
        "CreatedAt": 1700000000, "ModifiedAt": 1700000000,
    }


def test_sdk_centralized_sampling_through_the_proxy(roentgen_bin, tmp_path):
    """The real SDK's rule poller reaches the endpoint through the daemon's TCP proxy
    (signed by the daemon) and its decisions follow the rules it got."""
    from aws_xray_sdk.core import AWSXRayRecorder

    aws = FakeAws("us-west-2")
    aws.expect_creds = BASE
    aws.rules = [rule("quiet", 10, "quiet", 0.0, 0), rule("loud", 20, "loud", 1.0, 0)]
    proc, addr = start_daemon(
        roentgen_bin, tmp_path, aws.url,
        {"AWS_ACCESS_KEY_ID": BASE[0], "AWS_SECRET_ACCESS_KEY": BASE[1]},
        ["-n", "us-west-2"],
    )
    try:
        recorder = AWSXRayRecorder()
        recorder.configure(
            daemon_address=f"{addr[0]}:{addr[1]}", sampling=True,
            context_missing="LOG_ERROR", plugins=(),
        )
        # The first decision starts the pollers; the rule poller asks at once.
        recorder.begin_segment("warm-up")
        recorder.end_segment()
        poll(
            lambda: any(what == "/GetSamplingRules" for what, _, _ in aws.calls),
            what="the SDK's GetSamplingRules through the proxy", timeout=20,
        )
        poll(
            lambda: {r.name for r in recorder.sampler._cache.rules} >= {"quiet", "loud"},
            what="the SDK loading the rules", timeout=10,
        )
        for name in ["quiet"] * 20 + ["loud"] * 20:
            recorder.begin_segment(name)
            recorder.end_segment()
        poll(lambda: aws.by_name.get("loud") == 20, what="20 sampled 'loud' segments", timeout=20)
    finally:
        finish(proc, tmp_path)
    assert aws.by_name.get("quiet", 0) == 0, aws.by_name
    bad = [c for c in aws.calls if not c[1]]
    assert not bad, bad


def test_region_and_instance_role_from_ec2_metadata(roentgen_bin, tmp_path):
    """On EC2 without flags, like the official daemon: the region comes from instance
    metadata (IMDSv2), and so do the credentials of the instance role."""
    aws = FakeAws("eu-north-1")
    proc, addr = start_daemon(
        roentgen_bin, tmp_path, None,
        {"AWS_EC2_METADATA_SERVICE_ENDPOINT": aws.url, "HOME": str(tmp_path)},
        [],
    )
    try:
        send_segments(addr, 1)
        # The send itself cannot reach AWS from here; the credentials lookup must happen.
        poll(
            lambda: any(w.endswith("/instance-role") for w, _, _ in aws.calls),
            what="the instance role's credentials fetched", timeout=20,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log = (tmp_path / "daemon.log").read_text()
    assert "endpoint=https://xray.eu-north-1.amazonaws.com" in log, log
    assert "EC2 instance metadata" in log, log
    bad = [c for c in aws.calls if not c[1]]
    assert not bad, bad


def test_uploads_go_through_the_proxy_address(roentgen_bin, tmp_path):
    """`-p/--proxy-address`: uploads reach an endpoint only reachable through the proxy."""
    aws = FakeAws("eu-west-1")
    aws.expect_creds = BASE
    proc, addr = start_daemon(
        roentgen_bin, tmp_path, "http://xray.example.invalid:2772",
        {"AWS_ACCESS_KEY_ID": BASE[0], "AWS_SECRET_ACCESS_KEY": BASE[1]},
        ["-n", "eu-west-1", "-p", aws.url],
    )
    try:
        send_segments(addr, 30)
        poll(lambda: aws.documents == 30, what="30 segments through the proxy", timeout=20)
    finally:
        finish(proc, tmp_path)
    proxied = [detail for what, _, detail in aws.calls if what == "via-proxy"]
    assert proxied and all(u.startswith("http://xray.example.invalid:2772/") for u in proxied)
    bad = [c for c in aws.calls if not c[1]]
    assert not bad, bad
