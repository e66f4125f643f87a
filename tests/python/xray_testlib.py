"""Helpers shared by the end-to-end tests: ids, segment documents, the X-Ray daemon UDP
protocol, bounded polling, X-Ray API reads through boto3, raw HTTP, and an X-Ray SDK
recorder whose emitter remembers exactly what it sent.

Nothing here knows how Roentgen works inside; it speaks only the public protocols.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import json
import os
import socket
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit

# The X-Ray daemon UDP protocol: a JSON header line, then the segment document.
UDP_HEADER = b'{"format":"json","version":1}\n'

# BatchGetTraces takes at most this many trace ids per call in AWS.
BATCH_GET_TRACES_MAX_IDS = 5


# ------------------------------------------------------------------------------- ids


def new_trace_id(epoch: float | None = None) -> str:
    """A fresh X-Ray trace id, `1-{8 hex epoch seconds}-{24 hex random}`."""
    t = int(time.time() if epoch is None else epoch)
    return f"1-{t:08x}-{os.urandom(12).hex()}"


def new_id() -> str:
    """A fresh 16-hex-digit segment id."""
    return os.urandom(8).hex()


# -------------------------------------------------------------------------- documents


def segment_doc(
    trace_id: str | None = None,
    name: str = "svc",
    start: float | None = None,
    end: float | None = None,
    **fields: Any,
) -> dict:
    """A minimal valid, completed segment document (fields override/extend it)."""
    start = time.time() if start is None else start
    doc: dict = {
        "trace_id": trace_id or new_trace_id(start),
        "id": new_id(),
        "name": name,
        "start_time": start,
        "end_time": start + 0.25 if end is None else end,
    }
    doc.update(fields)
    return doc


def dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"))


def udp_datagram(doc: Any) -> bytes:
    """Header line + document, as the X-Ray SDKs send it."""
    body = doc if isinstance(doc, (bytes, str)) else dumps(doc)
    if isinstance(body, str):
        body = body.encode("utf-8")
    return UDP_HEADER + body


class UdpSender:
    """A plain UDP socket aimed at the server's daemon address."""

    def __init__(self, addr: tuple[str, int]):
        self.addr = addr
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def send(self, payload: bytes) -> None:
        self.sock.sendto(payload, self.addr)

    def send_doc(self, doc: Any) -> None:
        self.send(udp_datagram(doc))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "UdpSender":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ---------------------------------------------------------------------------- polling


class PollTimeout(AssertionError):
    pass


def poll(
    fn: Callable[[], Any],
    what: str,
    timeout: float = 10.0,
    interval: float = 0.05,
    describe: Callable[[], str] | None = None,
) -> Any:
    """Call `fn` until it returns something truthy and return that; fail after `timeout`
    seconds, quoting the last value or exception (and `describe()`, if given).
    Exceptions from `fn` are retried (the data may simply not be there yet) but
    reported if time runs out."""
    deadline = time.monotonic() + timeout
    last: Any = None
    last_exc: BaseException | None = None
    delay = interval
    while True:
        try:
            last = fn()
            last_exc = None
            if last:
                return last
        except AssertionError:
            raise
        except Exception as e:  # noqa: BLE001 - retried, then reported
            last_exc = e
        if time.monotonic() >= deadline:
            detail = f"last exception: {last_exc!r}" if last_exc else f"last value: {last!r}"
            if describe is not None:
                try:
                    detail += f"; {describe()}"
                except Exception as e:  # noqa: BLE001
                    detail += f"; (describe failed: {e!r})"
            raise PollTimeout(f"timed out after {timeout}s waiting for {what}; {detail}")
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


# -------------------------------------------------------------------------- X-Ray API


def xray_client(url: str):
    """boto3's X-Ray client for `url`: dummy credentials, us-east-1, and no retries, so
    that a 5xx surfaces instead of being retried away."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "xray",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=5,
            read_timeout=30,
        ),
    )


def utc(epoch: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(epoch, tz=_dt.timezone.utc)


def window(since_epoch: float, slack: float = 120.0) -> dict:
    """StartTime/EndTime kwargs covering everything from `since_epoch - slack` to now +
    slack (computed at call time, so pollers can reuse it)."""
    return {
        "StartTime": utc(since_epoch - slack),
        "EndTime": utc(time.time() + slack),
    }


def batch_get(xray, trace_ids: Iterable[str]) -> tuple[dict[str, list[dict]], list[str]]:
    """BatchGetTraces over any number of ids (chunks of 5, following NextToken).
    Returns ({trace id: [segment {Id, Document}, ...]}, unprocessed trace ids)."""
    ids = list(trace_ids)
    traces: dict[str, list[dict]] = {}
    unprocessed: list[str] = []
    for i in range(0, len(ids), BATCH_GET_TRACES_MAX_IDS):
        chunk = ids[i : i + BATCH_GET_TRACES_MAX_IDS]
        token = None
        for _ in range(1000):
            kwargs: dict = {"TraceIds": chunk}
            if token:
                kwargs["NextToken"] = token
            resp = xray.batch_get_traces(**kwargs)
            for t in resp.get("Traces", []):
                traces.setdefault(t["Id"], []).extend(t.get("Segments", []))
            unprocessed.extend(resp.get("UnprocessedTraceIds", []) or [])
            token = resp.get("NextToken")
            if not token:
                break
        else:
            raise AssertionError("BatchGetTraces NextToken never ran out")
    return traces, unprocessed


def trace_documents(xray, trace_id: str) -> list[str]:
    """The raw documents of one trace (empty if unknown)."""
    traces, _ = batch_get(xray, [trace_id])
    return [s["Document"] for s in traces.get(trace_id, [])]


def docs_by_id(xray, trace_id: str) -> dict[str, str]:
    """{segment id: raw document} of one trace."""
    traces, _ = batch_get(xray, [trace_id])
    return {s["Id"]: s["Document"] for s in traces.get(trace_id, [])}


def wait_for_segments(
    xray, trace_id: str, segment_ids: Iterable[str], timeout: float = 10.0
) -> dict[str, str]:
    """Poll BatchGetTraces until every one of `segment_ids` is in the trace; returns
    {segment id: raw document} of the whole trace."""
    want = set(segment_ids)
    seen: dict[str, str] = {}

    def check():
        got = docs_by_id(xray, trace_id)
        seen.clear()
        seen.update(got)
        return got if want <= set(got) else None

    return poll(
        check,
        f"segments {sorted(want)} of trace {trace_id}",
        timeout=timeout,
        describe=lambda: f"BatchGetTraces had segments {sorted(seen)}",
    )


def all_summaries(xray, since_epoch: float, **kwargs: Any) -> tuple[list[dict], int]:
    """Every GetTraceSummaries result for the window, through the boto3 paginator.
    Returns (summaries, number of pages)."""
    paginator = xray.get_paginator("get_trace_summaries")
    out: list[dict] = []
    pages = 0
    for page in paginator.paginate(**window(since_epoch), **kwargs):
        pages += 1
        out.extend(page.get("TraceSummaries", []))
        if pages > 10_000:
            raise AssertionError("GetTraceSummaries NextToken never ran out")
    return out, pages


def find_summary(xray, since_epoch: float, trace_id: str, **kwargs: Any) -> dict | None:
    summaries, _ = all_summaries(xray, since_epoch, **kwargs)
    found = [s for s in summaries if s.get("Id") == trace_id]
    assert len(found) <= 1, f"trace {trace_id} summarised {len(found)} times: {found}"
    return found[0] if found else None


def wait_for_summary(
    xray,
    since_epoch: float,
    trace_id: str,
    predicate: Callable[[dict], bool] = lambda s: True,
    timeout: float = 10.0,
    **kwargs: Any,
) -> dict:
    def check():
        s = find_summary(xray, since_epoch, trace_id, **kwargs)
        return s if s is not None and predicate(s) else None

    return poll(check, f"summary of trace {trace_id} {kwargs or ''}", timeout=timeout)


def walk_entities(doc: dict) -> Iterable[dict]:
    """The document and all its nested subsegments."""
    yield doc
    for sub in doc.get("subsegments", []) or []:
        yield from walk_entities(sub)


# --------------------------------------------------------------------------- raw HTTP


class HttpResult:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    def error_type(self) -> str:
        """The AWS error type from the JSON body's `__type`, normalised like botocore:
        `ns#Name` and `Name:uri` both give `Name`."""
        t = self.json().get("__type")
        assert isinstance(t, str) and t, f"no __type in error body {self.body[:500]!r}"
        return _norm_error_type(t)

    def __repr__(self) -> str:
        return f"HttpResult({self.status}, {self.headers}, {self.body[:300]!r})"


def _norm_error_type(t: str) -> str:
    return t.split("#")[-1].split(":")[0]


def assert_aws_error(res: HttpResult, statuses: Iterable[int], types: Iterable[str]) -> str:
    """The response is an AWS rest-json error: one of `statuses`, a JSON body whose
    `__type` is one of `types`, with a `message` string, and an `x-amzn-ErrorType`
    header naming the same type. Returns the type."""
    statuses, types = set(statuses), set(types)
    assert res.status in statuses, f"status {res.status} not in {statuses}: {res!r}"
    ctype = res.headers.get("content-type", "")
    assert "json" in ctype, f"error content-type is {ctype!r}: {res!r}"
    body = res.json()
    et = res.error_type()
    assert et in types, f"__type {et!r} not in {types}: {res!r}"
    msg = body.get("message", body.get("Message"))
    assert isinstance(msg, str) and msg, f"no message in error body: {res!r}"
    hdr = res.headers.get("x-amzn-errortype")
    assert hdr is not None, f"no x-amzn-ErrorType header: {res!r}"
    assert _norm_error_type(hdr) == et, f"x-amzn-ErrorType {hdr!r} != __type {et!r}"
    return et


def http_call(
    base_url: str,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> HttpResult:
    u = urlsplit(base_url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = {"Content-Type": "application/json"} if body is not None else {}
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResult(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def post_large(base_url: str, path: str, body: bytes, timeout: float = 60.0) -> HttpResult:
    """POST a large body the way a careful client does: announce it with
    `Expect: 100-continue`, send it only if the server asks (or stays silent for 2 s),
    and read the answer concurrently with sending, so that a server which answers 413
    before reading the whole body is heard rather than seen as a reset."""
    u = urlsplit(base_url)
    sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
    try:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Expect: 100-continue\r\nConnection: close\r\n\r\n"
        ).encode()
        sock.sendall(head)
        buf = b""
        sock.settimeout(2.0)
        try:
            buf = sock.recv(65536)
        except socket.timeout:
            buf = b""
        sock.settimeout(timeout)
        send_body = False
        if not buf:
            send_body = True  # server ignores Expect; just send
        elif buf.startswith(b"HTTP/1.1 100") or buf.startswith(b"HTTP/1.0 100"):
            while b"\r\n\r\n" not in buf:
                more = sock.recv(65536)
                if not more:
                    break
                buf += more
            buf = buf.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in buf else b""
            send_body = True

        sender = None
        if send_body:

            def send() -> None:
                try:
                    sock.sendall(body)
                except OSError:
                    pass  # the server stopped reading; its answer is what counts

            sender = threading.Thread(target=send, daemon=True)
            sender.start()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _complete_response(buf):
                break
            try:
                more = sock.recv(65536)
            except ConnectionResetError:
                break
            except socket.timeout:
                break
            if not more:
                break
            buf += more
        if sender is not None:
            sender.join(timeout=5)
        if not buf:
            raise AssertionError(
                f"server closed the connection without any HTTP response to a "
                f"{len(body)}-byte body"
            )
        return _parse_response(buf)
    finally:
        sock.close()


def _split_head(buf: bytes) -> tuple[int, dict[str, str], bytes] | None:
    if b"\r\n\r\n" not in buf:
        return None
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return status, headers, rest


def _dechunk(data: bytes) -> tuple[bytes, bool]:
    out = b""
    while True:
        if b"\r\n" not in data:
            return out, False
        size_line, data = data.split(b"\r\n", 1)
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return out, True
        if len(data) < size + 2:
            return out, False
        out += data[:size]
        data = data[size + 2 :]


def _complete_response(buf: bytes) -> bool:
    parsed = _split_head(buf)
    if parsed is None:
        return False
    _, headers, rest = parsed
    if "content-length" in headers:
        return len(rest) >= int(headers["content-length"])
    if "chunked" in headers.get("transfer-encoding", ""):
        return _dechunk(rest)[1]
    return False  # read until close


def _parse_response(buf: bytes) -> HttpResult:
    parsed = _split_head(buf)
    assert parsed is not None, f"incomplete HTTP response: {buf[:500]!r}"
    status, headers, rest = parsed
    if "content-length" in headers:
        rest = rest[: int(headers["content-length"])]
    elif "chunked" in headers.get("transfer-encoding", ""):
        rest = _dechunk(rest)[0]
    return HttpResult(status, headers, rest)


# ------------------------------------------------------------------------ X-Ray SDK


def make_recorder(service: str, udp_addr: tuple[str, int]):
    """A fresh, independent aws_xray_sdk recorder for one "service", sending over UDP to
    `udp_addr` through an emitter that also keeps every datagram it sent."""
    from aws_xray_sdk.core import AWSXRayRecorder
    from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter

    class RecordingEmitter(UDPEmitter):
        def __init__(self, daemon_address: str):
            super().__init__(daemon_address)
            self.sent: list[str] = []

        def _send_data(self, data: str) -> None:
            self.sent.append(data)
            super()._send_data(data)

        def documents(self) -> list[dict]:
            out = []
            for message in self.sent:
                header, body = message.split("\n", 1)
                assert json.loads(header) == {"format": "json", "version": 1}
                out.append(json.loads(body))
            return out

    address = f"{udp_addr[0]}:{udp_addr[1]}"
    recorder = AWSXRayRecorder()
    recorder.configure(
        emitter=RecordingEmitter(address),
        daemon_address=address,
        sampling=False,
        context_missing="LOG_ERROR",
        service=service,
        plugins=(),
    )
    assert (recorder.emitter.ip, recorder.emitter.port) == (udp_addr[0], udp_addr[1]), (
        "the SDK emitter is not aimed at the test server (is AWS_XRAY_DAEMON_ADDRESS set?)"
    )
    return recorder
