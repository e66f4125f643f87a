"""What `roentgen serve` does with a data directory that is not a healthy store of its
own: a foreign directory is refused untouched, a damaged store stops the start with the
damage named, never a panic; a store written before the marker file still opens."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from xray_testlib import poll, segment_doc, window, xray_client


def start_fails(srv) -> str:
    """Runs the server's command to its end; it must exit non-zero, without a panic.
    Returns its stderr."""
    out = subprocess.run(srv.command(), capture_output=True, text=True, timeout=60)
    assert out.returncode not in (0, 101), out.stderr  # 101: a Rust panic
    assert out.returncode != 0
    assert "panicked" not in out.stderr, out.stderr
    return out.stderr


def filled(make_server) -> tuple[object, list[str]]:
    """A server that stored a few traces and stopped cleanly, with their ids."""
    srv = make_server()
    xray = xray_client(srv.http_url)
    docs = [segment_doc(name="kept") for _ in range(20)]
    t0 = time.time()
    xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    want = {d["trace_id"] for d in docs}
    poll(lambda: want <= {s["Id"] for s in xray.get_trace_summaries(
        **window(t0))["TraceSummaries"]}, what="stored")
    srv.stop()
    return srv, sorted(want)


def test_a_foreign_directory_is_refused_untouched(make_server, tmp_path):
    srv = make_server(start=False)
    srv.data_dir.mkdir(parents=True)
    (srv.data_dir / "thesis.tex").write_text("\\documentclass{article}\n")
    (srv.data_dir / "photos").mkdir()
    err = start_fails(srv)
    assert "is not a Roentgen data directory" in err and "thesis.tex" in err, err
    assert sorted(p.name for p in srv.data_dir.iterdir()) == ["photos", "thesis.tex"]


def test_a_damaged_store_stops_the_start_naming_it(make_server):
    srv, _ = filled(make_server)
    tables = sorted(p for p in srv.data_dir.rglob("tables/*") if p.is_file())
    assert tables, "a stopped store has flushed tables"
    with open(tables[0], "r+b") as f:
        f.seek(40)
        f.write(os.urandom(256))
    err = start_fails(srv)
    assert "open the store" in err and "Checksum" in err, err


def test_a_garbled_engine_version_stops_the_start(make_server):
    srv, _ = filled(make_server)
    (srv.data_dir / "version").write_bytes(b"\x00garbage")
    err = start_fails(srv)
    assert "open the store" in err, err


def test_a_store_from_before_the_marker_opens(make_server):
    srv, ids = filled(make_server)
    marker = srv.data_dir / "ROENTGEN_STORE"
    assert marker.exists()
    marker.unlink()
    srv.start()
    assert marker.exists()
    got = xray_client(srv.http_url).batch_get_traces(TraceIds=ids[:5])["Traces"]
    assert sorted(t["Id"] for t in got) == ids[:5]


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
    ).returncode == 0


@pytest.mark.allow_server_errors("failed to write batch", "below the .*reserve")
def test_a_full_disk_refuses_writes_keeps_what_is_stored_and_recovers(make_server, tmp_path):
    """The data directory on a 48 MiB file system (tmpfs) with a 16 MiB reserve: writes
    go on until the reserve is reached, are then refused with a clear, retryable error
    (nothing stored is damaged, reads go on), and succeed again by themselves once the
    file system grows."""
    from botocore.exceptions import ClientError

    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "48m"):
        pytest.skip("mounting a tmpfs needs root (CAP_SYS_ADMIN); the full-disk test cannot run")
    srv = None
    try:
        srv = make_server(start=False, extra_args=["--min-free-space", "16MiB"])
        srv.data_dir = disk / "data"
        srv.start()
        xray = xray_client(srv.http_url)
        pad = "x" * 30_000
        acked: dict[str, dict] = {}
        refusal = None
        for _ in range(400):
            docs = []
            for _ in range(20):
                d = segment_doc(name="filler")
                d["metadata"] = {"default": {"pad": pad}}
                docs.append(d)
            try:
                resp = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
            except ClientError as e:
                refusal = e.response["Error"]
                break
            if resp["UnprocessedTraceSegments"]:
                refusal = resp["UnprocessedTraceSegments"][0]
                break
            acked.update({d["trace_id"]: d for d in docs})
        assert refusal is not None, "the reserve was never reached"
        assert len(acked) >= 200
        text = json.dumps(refusal)
        assert "reserve" in text and "Throttled" in text, text
        assert srv.healthz() == 200
        print(f"full disk: {len(acked)} documents acknowledged, then {text}")
        # What was acknowledged is all there.
        ids = sorted(acked)
        for i in range(0, len(ids), 100):
            got = xray.batch_get_traces(TraceIds=ids[i : i + 100])
            assert sorted(t["Id"] for t in got["Traces"]) == ids[i : i + 100]
        # Space returns: writes succeed again without a restart.
        subprocess.run(["mount", "-o", "remount,size=256m", str(disk)], check=True)
        late = segment_doc(name="after-space-returned")

        def accepted():
            try:
                r = xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(late)])
            except ClientError:
                return False
            return not r["UnprocessedTraceSegments"]

        poll(accepted, what="writes accepted once space returned", timeout=20)
        poll(lambda: xray.batch_get_traces(TraceIds=[late["trace_id"]])["Traces"],
             what="the late document stored")
    finally:
        if srv is not None and srv.proc is not None:
            srv.stop()
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
