"""What was acknowledged survives kill -9; what was received survives SIGTERM."""

from __future__ import annotations

import json
import random
import signal
import time

from xray_testlib import (
    UdpSender,
    all_summaries,
    batch_get,
    dumps,
    new_id,
    new_trace_id,
    poll,
    segment_doc,
    xray_client,
)

RECEIVED = "roentgen_ingest_received_segments_total"


def make_corpus(n_traces: int, per_trace: int, since: float) -> tuple[dict[str, dict[str, str]], list[str]]:
    """n_traces traces of per_trace segments each, serialised in assorted but valid
    ways (compact, spaced, pretty-printed, non-ASCII, escaped). Returns
    ({trace id: {segment id: document text}}, all texts in a shuffled order)."""
    rng = random.Random(1234)
    corpus: dict[str, dict[str, str]] = {}
    texts: list[str] = []
    for t in range(n_traces):
        start = since + 1 + t * 0.01
        trace_id = new_trace_id(start)
        root_id = new_id()
        corpus[trace_id] = {}
        for k in range(per_trace):
            seg_id = root_id if k == 0 else new_id()
            doc = {
                "trace_id": trace_id,
                "id": seg_id,
                "name": "frontend" if k == 0 else f"backend-{k}",
                "start_time": start + k * 0.001,
                "end_time": start + 0.5 - k * 0.001,
                "annotations": {"idx": t, "part": k, "ok": k % 2 == 0, "city": "Zürich ☃"},
                "metadata": {"default": {"note": "line1\nline2 \"quoted\" \\ back", "n": [1, 2.5, None]}},
                "http": {"request": {"method": "GET", "url": f"http://x/{t}/{k}"}, "response": {"status": 200}},
            }
            if k:
                doc["parent_id"] = root_id
            style = (t * per_trace + k) % 4
            if style == 0:
                text = dumps(doc)
            elif style == 1:
                text = json.dumps(doc, separators=(", ", ": "), ensure_ascii=False)
            elif style == 2:
                text = json.dumps(doc, indent=2, sort_keys=True)
            else:
                text = "  " + json.dumps(doc, ensure_ascii=True) + "\n"
            corpus[trace_id][seg_id] = text
            texts.append(text)
    rng.shuffle(texts)
    return corpus, texts


def assert_all_verbatim(xray, corpus: dict[str, dict[str, str]], timeout: float = 20.0) -> None:
    missing: list[str] = []

    def complete():
        traces, _ = batch_get(xray, corpus)
        got = {tid: {s["Id"]: s["Document"] for s in segs} for tid, segs in traces.items()}
        missing[:] = [
            f"{tid}/{sid}" for tid, want in corpus.items() for sid in want if sid not in got.get(tid, {})
        ]
        return None if missing else got

    total = sum(map(len, corpus.values()))
    got = poll(
        complete,
        f"all {total} documents",
        timeout=timeout,
        describe=lambda: f"{len(missing)} of {total} missing, e.g. {missing[:5]}",
    )
    for tid, want in corpus.items():
        assert got[tid] == want, f"trace {tid}: documents differ from what was sent"


def assert_summaries(xray, since: float, trace_ids, timeout: float = 20.0) -> None:
    want = set(trace_ids)

    def complete():
        found, _ = all_summaries(xray, since)
        ids = [s["Id"] for s in found]
        return ids if want <= set(ids) else None

    ids = poll(complete, f"summaries of {len(want)} traces", timeout=timeout)
    assert len(ids) == len(set(ids)), "a trace was summarised twice"


def test_acknowledged_documents_survive_kill9(server, xray):
    since = time.time() - 10
    corpus, texts = make_corpus(n_traces=50, per_trace=4, since=since)
    assert len(texts) == 200

    for i in range(0, len(texts), 25):
        resp = xray.put_trace_segments(TraceSegmentDocuments=texts[i : i + 25])
        assert resp.get("UnprocessedTraceSegments", []) == [], resp["UnprocessedTraceSegments"]
    server.kill9()  # the instant the last call was answered

    server.start()
    xray2 = xray_client(server.http_url)
    assert_all_verbatim(xray2, corpus)
    assert_summaries(xray2, since, corpus)
    # The same again after a second, graceful restart.
    server.restart()
    xray3 = xray_client(server.http_url)
    assert_all_verbatim(xray3, corpus, timeout=10)


def test_sigterm_drains_received_udp(server, xray):
    since = time.time() - 10
    n = 100
    docs = [segment_doc(trace_id=new_trace_id(), name="burst", start=since + 1 + i * 0.001) for i in range(n)]
    base = server.metric(RECEIVED)

    with UdpSender(server.udp_addr) as udp:
        for i in range(0, n, 25):
            for d in docs[i : i + 25]:
                udp.send_doc(d)
            sent = min(i + 25, n)
            # Datagrams the process has not read yet may be lost at SIGTERM; wait until
            # the server has received them all (in chunks, so no burst overflows the
            # socket buffer).
            poll(
                lambda sent=sent: server.metric(RECEIVED) - base >= sent,
                f"{RECEIVED} to reach {sent}",
            )

    rc = server.terminate()
    assert rc == 0, f"exit code {rc} after SIGTERM:\n{server.log_tail()}"

    server.start()
    xray2 = xray_client(server.http_url)
    corpus = {d["trace_id"]: {d["id"]: dumps(d)} for d in docs}
    assert_all_verbatim(xray2, corpus)
    assert_summaries(xray2, since, corpus)


def test_sigint_is_graceful(server, xray):
    doc = segment_doc(name="before-sigint")
    xray.put_trace_segments(TraceSegmentDocuments=[dumps(doc)])
    rc = server.terminate(sig=signal.SIGINT)
    assert rc == 0, f"exit code {rc} after SIGINT:\n{server.log_tail()}"
    server.start()
    assert_all_verbatim(xray_client(server.http_url), {doc["trace_id"]: {doc["id"]: dumps(doc)}})


STORED = "roentgen_ingest_stored_segments_total"


def test_stored_udp_documents_survive_kill9(server, xray):
    """UDP documents are written without waiting for the disk (nobody waits on them),
    but once the server counts them stored, a crash of the process loses none."""
    since = time.time() - 10
    corpus, texts = make_corpus(n_traces=40, per_trace=5, since=since)
    base = server.metric(STORED)
    with UdpSender(server.udp_addr) as udp:
        for i in range(0, len(texts), 25):
            for text in texts[i : i + 25]:
                udp.send_doc(text)
            sent = min(i + 25, len(texts))
            poll(
                lambda sent=sent: server.metric(STORED) - base >= sent,
                f"{STORED} to reach {sent}",
            )
        # A last small write on its own, the crash right after it is counted: nothing
        # written after it can push it out of a buffer inside the process.
        last = segment_doc(name="last-before-crash", start=since + 5)
        udp.send_doc(last)
        poll(
            lambda: server.metric(STORED) - base >= len(texts) + 1,
            "the last document to be stored",
            interval=0.005,
        )
    server.kill9()
    corpus[last["trace_id"]] = {last["id"]: dumps(last)}

    server.start()
    xray2 = xray_client(server.http_url)
    assert_all_verbatim(xray2, corpus)
    assert_summaries(xray2, since, corpus)


def test_kill9_under_sustained_load_loses_nothing_acknowledged(server):
    """Four writers call PutTraceSegments back to back; the server is killed with
    SIGKILL in the middle of it. Every document of every call that was answered with
    success is there after the restart, verbatim; calls cut off by the kill may or may
    not have landed."""
    import threading

    since = time.time() - 10
    acked: dict[str, dict[str, str]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    calls = [0]

    def writer(w: int) -> None:
        client = xray_client(server.http_url)
        n = 0
        while not stop.is_set():
            batch: dict[str, dict[str, str]] = {}
            texts = []
            for _ in range(20):
                doc = segment_doc(trace_id=new_trace_id(since + 5), name=f"writer-{w}")
                text = dumps(doc)
                batch.setdefault(doc["trace_id"], {})[doc["id"]] = text
                texts.append(text)
            try:
                resp = client.put_trace_segments(TraceSegmentDocuments=texts)
            except Exception:  # noqa: BLE001 - the kill cuts calls off; not acknowledged
                return
            if resp.get("UnprocessedTraceSegments"):
                continue  # refused (throttled): not acknowledged
            with lock:
                for tid, docs in batch.items():
                    acked.setdefault(tid, {}).update(docs)
                calls[0] += 1
            n += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    poll(lambda: calls[0] >= 200, what="writers under way", timeout=60)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(timeout=30)
    with lock:
        snapshot = {tid: dict(docs) for tid, docs in acked.items()}
    assert sum(map(len, snapshot.values())) >= 4000

    server.start()
    assert_all_verbatim(xray_client(server.http_url), snapshot, timeout=30)
    print(f"kill -9 under load: {calls[0]} calls and "
          f"{sum(map(len, snapshot.values()))} documents acknowledged, all there after restart")
