"""The real AWS X-Ray SDK for Python -> `roentgen daemon` -> `roentgen serve`, read back
with boto3, both directly and through the daemon's TCP proxy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request

import pytest

from conftest import _free_tcp_port, _free_udp_and_tcp_port, parse_prometheus
from test_sdk_roundtrip import emit_checkout_trace
from xray_testlib import batch_get, find_summary, poll, wait_for_segments, xray_client


class Daemon:
    """One `roentgen daemon` on fresh loopback ports, sending to `endpoint`."""

    def __init__(self, binary, workdir, endpoint: str, extra: list[str] | None = None):
        port = _free_udp_and_tcp_port()
        self.udp_addr = ("127.0.0.1", port)
        self.tcp_url = f"http://127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{_free_tcp_port()}/metrics"
        self.stderr = workdir / "daemon.stderr.log"
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(binary), "daemon",
            "-b", f"127.0.0.1:{port}", "-t", f"127.0.0.1:{port}",
            "-e", endpoint,
            "--metrics-addr", self.metrics_url.removeprefix("http://").removesuffix("/metrics"),
        ] + (extra or [])
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                cwd=workdir,
            )
        poll(lambda: self.metrics() is not None, timeout=30, what="daemon metrics")

    def metrics(self) -> dict[str, float] | None:
        try:
            with urllib.request.urlopen(self.metrics_url, timeout=2) as r:
                return parse_prometheus(r.read().decode())
        except OSError:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited: {self.stderr.read_text()}") from None
            return None

    def metric(self, name: str) -> float:
        return (self.metrics() or {}).get(name, 0.0)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20)


@pytest.fixture
def daemon(make_server, roentgen_bin, tmp_path):
    backend = make_server(udp=False, tcp=False)
    d = Daemon(roentgen_bin, tmp_path / "daemon", backend.http_url)
    d.backend = backend
    yield d
    if d.proc.poll() is None:
        assert d.stop() == 0, d.stderr.read_text()
    log = d.stderr.read_text()
    assert " ERROR " not in log and "panicked" not in log, log


def test_sdk_through_daemon_to_serve(daemon):
    t = emit_checkout_trace(daemon.udp_addr)
    xray = xray_client(daemon.backend.http_url)
    want = [t["ids"]["web"], t["ids"]["orders"], t["ids"]["payments"]]
    wait_for_segments(xray, t["trace_id"], want)
    traces, unprocessed = batch_get(xray, [t["trace_id"]])
    assert not unprocessed
    stored = {json.loads(s["Document"])["name"]: json.loads(s["Document"])
              for s in traces[t["trace_id"]]}
    # The daemon forwards the documents untouched.
    for name in ("web", "orders", "payments"):
        assert stored[name] == t["docs"][name]
    summary = poll(
        lambda: find_summary(xray, t["t0"] - 60, t["trace_id"]),
        timeout=20,
        what="the trace's summary",
    )
    assert summary["HasFault"] is True
    assert {s["Name"] for s in summary["ServiceIds"]} >= {"web", "orders", "payments"}
    assert daemon.metric("roentgen_daemon_sent_segments_total") == 3
    assert daemon.metric("roentgen_daemon_received_segments_total") == 3


def test_boto3_through_the_tcp_proxy(daemon):
    t = emit_checkout_trace(daemon.udp_addr)
    # boto3 aimed at the daemon's TCP port, as the SDKs' sampling pollers are.
    proxied = xray_client(daemon.tcp_url)
    want = [t["ids"]["web"], t["ids"]["orders"], t["ids"]["payments"]]
    wait_for_segments(proxied, t["trace_id"], want)
    summary = poll(
        lambda: find_summary(proxied, t["t0"] - 60, t["trace_id"]),
        timeout=20,
        what="the trace's summary through the proxy",
    )
    assert summary["Id"] == t["trace_id"]
    # An error of the endpoint reaches the client in its AWS shape.
    with pytest.raises(proxied.exceptions.InvalidRequestException):
        proxied.batch_get_traces(TraceIds=["not-a-trace-id" * 5])
    assert daemon.metric("roentgen_daemon_proxied_requests_total") >= 3


def test_sigterm_flushes_what_is_buffered(make_server, roentgen_bin, tmp_path):
    backend = make_server(udp=False, tcp=False)
    d = Daemon(roentgen_bin, tmp_path / "daemon", backend.http_url)
    t = emit_checkout_trace(d.udp_addr)
    # Stop at once: the daemon must still deliver what it received.
    assert d.stop() == 0, d.stderr.read_text()
    xray = xray_client(backend.http_url)
    wait_for_segments(xray, t["trace_id"], [t["ids"]["web"], t["ids"]["orders"], t["ids"]["payments"]])
