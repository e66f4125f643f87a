"""Limits on what a client controls, over real sockets: open connections
(`--max-connections`, on the HTTP and the OTLP/gRPC listeners), stalled and idle connections (`--idle-timeout`), request-head
size, and filter expressions nested or long past their limits. Each refusal leaves the
server serving everyone else."""

from __future__ import annotations

import socket
import time

import pytest
from botocore.exceptions import ClientError

from xray_testlib import poll, window, xray_client

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: roentgen\r\n\r\n"


def connect(srv) -> socket.socket:
    return socket.create_connection(("127.0.0.1", srv.http_port), timeout=5)


def read_response(s: socket.socket) -> bytes:
    """One /healthz response (its body is `ok\\n`)."""
    data = b""
    while not data.endswith(b"ok\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def closed_within(s: socket.socket, seconds: float) -> float | None:
    """Seconds until the server closed `s`, or None if it did not within `seconds`."""
    start = time.monotonic()
    s.settimeout(seconds)
    try:
        while s.recv(4096):
            pass
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


@pytest.fixture
def limited(make_server):
    return make_server(extra_args=["--max-connections", "3", "--idle-timeout", "1s"])


def test_connections_past_the_limit_wait_for_a_free_slot(limited):
    held = [connect(limited) for _ in range(3)]
    for s in held:
        s.sendall(HEALTHZ)
        assert read_response(s).startswith(b"HTTP/1.1 200")
    waiting = connect(limited)  # the kernel accepts it into the backlog
    waiting.sendall(HEALTHZ)
    waiting.settimeout(0.5)
    with pytest.raises(socket.timeout):
        waiting.recv(1)
    held.pop().close()
    waiting.settimeout(5)
    assert read_response(waiting).startswith(b"HTTP/1.1 200")
    for s in held + [waiting]:
        s.close()


def test_idle_and_stalled_connections_are_closed(limited):
    idle = connect(limited)
    took = closed_within(idle, 5)
    assert took is not None and took < 4, took
    stalled = connect(limited)
    stalled.sendall(b"POST /TraceSummaries HTTP/1.1\r\nHost: roentgen\r\nContent-Le")
    took = closed_within(stalled, 5)
    assert took is not None and took < 4, took
    # Slots came back: three new connections are served at once.
    fresh = [connect(limited) for _ in range(3)]
    for s in fresh:
        s.sendall(HEALTHZ)
        assert read_response(s).startswith(b"HTTP/1.1 200")
        s.close()
    # Closed connections leave the gauge (the scrape's own connection counts).
    poll(lambda: limited.metric("roentgen_http_connections") <= 1, what="gauge back down")


def test_the_otlp_grpc_listener_holds_to_the_same_limits(limited):
    """The gRPC listener takes --max-connections and --idle-timeout as the HTTP one
    does: past the limit a client waits for a slot; idle connections are closed."""
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    empty_settings = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"

    def grpc_connect() -> socket.socket:
        s = socket.create_connection(("127.0.0.1", limited.otlp_grpc_port), timeout=5)
        s.sendall(preface + empty_settings)
        return s

    def answers(s: socket.socket, seconds: float) -> bool:
        """Whether the server sends its HTTP/2 SETTINGS within `seconds`."""
        s.settimeout(seconds)
        try:
            return len(s.recv(9)) > 0
        except socket.timeout:
            return False

    held = [grpc_connect() for _ in range(3)]
    for s in held:
        assert answers(s, 5)
    waiting = grpc_connect()
    assert not answers(waiting, 0.5), "a fourth connection was served past the limit"
    held.pop().close()
    assert answers(waiting, 5), "the waiting connection was not served once a slot freed"
    # Idle: nothing more is sent, so the server closes each within about a second.
    for s in held + [waiting]:
        took = closed_within(s, 5)
        assert took is not None and took < 4, took
        s.close()


def test_an_oversized_request_head_is_refused(server):
    s = connect(server)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: roentgen\r\nX-Big: " + b"a" * 600_000 + b"\r\n\r\n")
    s.settimeout(5)
    try:
        answer = s.recv(4096)
    except ConnectionResetError:
        answer = b""
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:100]
    s.close()
    ok = connect(server)
    ok.sendall(HEALTHZ)
    assert read_response(ok).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize(
    "expression, message",
    [
        ("(" * 100_000 + "ok" + ")" * 100_000, "nest"),
        ("!" * 100_000 + "ok", "nest"),
        ("ok AND " * 20_000 + "ok", ""),
    ],
)
def test_hostile_filter_expressions_get_an_error_not_a_crash(server, expression, message):
    xray = xray_client(server.http_url)
    try:
        xray.get_trace_summaries(**window(time.time()), FilterExpression=expression)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidRequestException"
        assert message in e.response["Error"]["Message"].lower()
    else:
        assert message == "", "a long flat expression may be accepted"
    assert server.healthz() == 200
