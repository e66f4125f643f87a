"""`roentgen run -- CMD`: the container entrypoint. Real processes: the runner, an
application (the real Python X-Ray SDK where it matters) and `roentgen serve`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import _free_udp_and_tcp_port
from xray_testlib import wait_for_segments, xray_client

APP = textwrap.dedent(
    """
    import os, signal, sys, time
    from aws_xray_sdk.core import xray_recorder
    xray_recorder.configure(service="app", sampling=False, context_missing="LOG_ERROR",
                            daemon_address=os.environ["DAEMON"], plugins=())

    def on_term(signum, frame):
        print("app: got SIGTERM", flush=True)
        segment = xray_recorder.begin_segment("app-shutdown")
        segment.put_annotation("final", True)
        xray_recorder.end_segment()
        print("app: final", segment.trace_id, segment.id, flush=True)
        sys.exit(3)

    signal.signal(signal.SIGTERM, on_term)
    print("app: ready", flush=True)
    while True:
        time.sleep(0.05)
    """
)


def runner_cmd(binary, endpoint: str, port: int, *command: str, extra=()) -> list[str]:
    return [
        str(binary), "run", "-e", endpoint,
        "-b", f"127.0.0.1:{port}", "-t", f"127.0.0.1:{port}", "-l", "warn", *extra,
        "--", *command,
    ]


def wait_line(proc, prefix: str, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
    raise AssertionError(f"no line starting with {prefix!r}")


def start_app(binary, tmp_path: Path, endpoint: str, launcher: list[str] | None = None):
    script = tmp_path / "app.py"
    script.write_text(APP)
    port = _free_udp_and_tcp_port()
    env = dict(os.environ, DAEMON=f"127.0.0.1:{port}")
    cmd = (launcher or []) + runner_cmd(binary, endpoint, port, sys.executable, str(script))
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=env,
    )
    wait_line(proc, "app: ready")
    return proc


def check_final_segment(proc, backend, started: float, code: int):
    assert wait_line(proc, "app: got SIGTERM")
    final = wait_line(proc, "app: final").split()
    trace_id, segment_id = final[2], final[3]
    rc = proc.wait(timeout=10)
    elapsed = time.monotonic() - started
    assert rc == code, proc.stderr.read()
    assert elapsed < 1.0, f"the runner took {elapsed:.2f}s to exit"
    # The segment the app sent from its SIGTERM handler was delivered before the exit.
    xray = xray_client(backend.http_url)
    wait_for_segments(xray, trace_id, [segment_id])


def test_sigterm_reaches_the_app_and_its_last_segment_arrives(make_server, roentgen_bin, tmp_path):
    backend = make_server(udp=False, tcp=False)
    proc = start_app(roentgen_bin, tmp_path, backend.http_url)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    check_final_segment(proc, backend, started, 3)


def test_sigterm_as_pid_1_of_a_new_pid_namespace(make_server, roentgen_bin, tmp_path):
    probe = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", "true"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot create a PID namespace here: {probe.stderr.strip()}")
    backend = make_server(udp=False, tcp=False)
    proc = start_app(
        roentgen_bin, tmp_path, backend.http_url,
        launcher=["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"],
    )
    # The runner is PID 1 inside: find it (the child of `unshare`) and signal it.
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    assert len(children) == 1, children
    runner = int(children[0])
    nspid = next(
        line.split()[1:] for line in Path(f"/proc/{runner}/status").read_text().splitlines()
        if line.startswith("NSpid:")
    )
    assert nspid[-1] == "1", f"the runner is not PID 1 in its namespace: NSpid {nspid}"
    started = time.monotonic()
    os.kill(runner, signal.SIGTERM)
    check_final_segment(proc, backend, started, 3)


def run_plain(binary, *command: str, timeout: float = 20.0, extra=()) -> subprocess.CompletedProcess:
    port = _free_udp_and_tcp_port()
    return subprocess.run(
        runner_cmd(binary, "http://127.0.0.1:9", port, *command, extra=extra),
        capture_output=True, text=True, timeout=timeout,
    )


def test_exit_statuses_like_a_shell(roentgen_bin, tmp_path):
    assert run_plain(roentgen_bin, "sh", "-c", "exit 7").returncode == 7
    killed = run_plain(roentgen_bin, "sh", "-c", "kill -9 $$")
    assert killed.returncode == 137
    missing = run_plain(roentgen_bin, "no-such-command-anywhere")
    assert missing.returncode == 127
    assert "no-such-command-anywhere: command not found" in missing.stderr
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    denied = run_plain(roentgen_bin, str(script))
    assert denied.returncode == 126, denied.stderr
    # stdout and stderr of the application pass through.
    echoed = run_plain(roentgen_bin, "sh", "-c", "echo out; echo err >&2")
    assert echoed.stdout == "out\n" and "err\n" in echoed.stderr


def children_of(pid: int) -> list[tuple[str, str, str]]:
    """(pid, state, command line) of every process whose parent is `pid`."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(pid):
            out.append((entry.name, fields.get("State", "").strip(), cmdline))
    return out


def test_orphaned_grandchildren_are_reaped(roentgen_bin):
    port = _free_udp_and_tcp_port()
    # The inner shell starts a short sleep in the background and exits at once: the
    # sleep is orphaned, re-parented to the runner (a child subreaper), and exits.
    proc = subprocess.Popen(
        runner_cmd(roentgen_bin, "http://127.0.0.1:9", port,
                   "sh", "-c", "sh -c 'sleep 0.7 &'; sleep 2"),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        time.sleep(0.35)
        adopted = [c for c in children_of(proc.pid) if c[2] == "sleep 0.7"]
        assert adopted, f"the orphan was not re-parented to the runner: {children_of(proc.pid)}"
        time.sleep(0.9)
        zombies = [c for c in children_of(proc.pid) if c[1].startswith("Z")]
        assert zombies == [], f"orphans left defunct: {zombies}"
    finally:
        assert proc.wait(timeout=10) == 0


def test_signals_reach_the_whole_group_with_g(roentgen_bin, tmp_path):
    marker = tmp_path / "grandchild-got-term"
    port = _free_udp_and_tcp_port()
    script = f"""
    (trap 'touch {marker}; exit 0' TERM; while true; do sleep 0.05; done) &
    trap 'wait; exit 0' TERM
    while true; do sleep 0.05; done
    """
    proc = subprocess.Popen(
        runner_cmd(roentgen_bin, "http://127.0.0.1:9", port, "sh", "-c", script, extra=["-g"]),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
    assert marker.exists(), "SIGTERM did not reach the grandchild in the child's group"
