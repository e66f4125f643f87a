"""Fixtures for Roentgen's end-to-end suite: a real `roentgen serve` process on free
loopback ports with its own data dir, and a boto3 X-Ray client aimed at it.

The binary is $ROENTGEN_BIN, else <target dir>/debug/roentgen (target dir from
$CARGO_TARGET_DIR, else <repo>/target).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from xray_testlib import xray_client  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 20.0

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A log line at ERROR level: the level is the first token, or follows the timestamp
# (tracing-subscriber's text format), or is the JSON format's "level" field.
_ERROR_LINE = re.compile(r'^(?:\S+\s+)?ERROR\b|"level"\s*:\s*"ERROR"')
_PANIC = re.compile(r"panicked at")
_SAMPLE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{.*\})?\s+(\S+)(?:\s+\S+)?\s*$")


def roentgen_binary() -> Path:
    env = os.environ.get("ROENTGEN_BIN")
    if env:
        return Path(env).resolve()
    target = os.environ.get("CARGO_TARGET_DIR")
    target_dir = (REPO_ROOT / target) if target else (REPO_ROOT / "target")
    return target_dir / "debug" / "roentgen"


# Ports handed to servers come from below the kernel's ephemeral range
# (net.ipv4.ip_local_port_range, 32768-60999 by default): a port the kernel picked for
# bind(0) and that was then released can be taken by any outgoing connection before the
# server binds it, and CI once lost a run to exactly that. Each pytest process walks its
# own stretch of 20000-32767, so no two servers of one run are handed the same port, and a
# port that cannot be bound right now (another program holds it) is skipped.
_PORT_LOW, _PORT_HIGH = 20000, 32767
_next_port = _PORT_LOW + (os.getpid() * 7919) % (_PORT_HIGH - _PORT_LOW)


def _bindable(port: int, kinds: tuple[int, ...]) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
    return True


def _take_port(kinds: tuple[int, ...]) -> int:
    global _next_port
    for _ in range(_PORT_HIGH - _PORT_LOW):
        port = _next_port
        _next_port = _PORT_LOW + (_next_port + 1 - _PORT_LOW) % (_PORT_HIGH - _PORT_LOW)
        if _bindable(port, kinds):
            return port
    raise RuntimeError(f"no free port in {_PORT_LOW}-{_PORT_HIGH}")


def _free_tcp_port() -> int:
    return _take_port((socket.SOCK_STREAM,))


def _free_udp_and_tcp_port() -> int:
    """A port number free for both UDP and TCP, like the X-Ray daemon's 2000."""
    return _take_port((socket.SOCK_DGRAM, socket.SOCK_STREAM))


def parse_prometheus(text: str) -> dict[str, float]:
    """Prometheus text exposition -> {series: value}. A labelled series is kept under
    its full `name{labels}` key and also summed into `name`."""
    out: dict[str, float] = {}
    sums: dict[str, float] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        name, labels, value = m.group(1), m.group(2), m.group(3)
        try:
            v = float(value)
        except ValueError:
            continue
        if labels:
            out[f"{name}{labels}"] = v
            sums[name] = sums.get(name, 0.0) + v
        else:
            out[name] = v
    for name, v in sums.items():
        out[name] = out.get(name, 0.0) + v
    return out


def unique_database(prefix: str) -> str:
    """A ClickHouse database name no other test uses."""
    return f"{prefix}_{os.getpid()}_{time.time_ns()}"


def clickhouse_store_url(database: str, cluster: bool = False, first: int = 1) -> str:
    """A --store URL on the test ClickHouse servers that scripts/test starts: one
    server, or (`cluster`) both shards with shard `first` listed first."""
    one = os.environ.get("ROENTGEN_TEST_CLICKHOUSE")
    if not one:
        pytest.fail("ROENTGEN_TEST_CLICKHOUSE is unset: run the suite with scripts/test", pytrace=False)
    hosts = [one.removeprefix("http://")]
    query = ""
    if cluster:
        two = os.environ["ROENTGEN_TEST_CLICKHOUSE_2"].removeprefix("http://")
        hosts = [hosts[0], two] if first == 1 else [two, hosts[0]]
        query = "?cluster=" + os.environ["ROENTGEN_TEST_CLICKHOUSE_CLUSTER"]
    return f"clickhouse://{','.join(hosts)}/{database}{query}"


class Roentgen:
    """One `roentgen serve` under test. Ports and data dir stay the same across
    restarts; each run's stderr goes to its own file under `workdir`."""

    def __init__(
        self,
        binary: Path,
        workdir: Path,
        extra_args: list[str] | None = None,
        udp: bool = True,
        tcp: bool = True,
        via_env: bool = False,
        store: str | None = None,
    ):
        """`udp`/`tcp` False pass `off` for that listener; `via_env` passes the
        settings as ROENTGEN_* environment variables instead of flags. `store` is a
        --store value; by default the embedded store, or, when ROENTGEN_E2E_STORE is
        `clickhouse`, a fresh database on $ROENTGEN_TEST_CLICKHOUSE (the API-level tests
        run a second time that way)."""
        self.binary = Path(binary)
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.host = "127.0.0.1"
        self.http_port = _free_tcp_port()
        daemon_port = _free_udp_and_tcp_port()
        self.udp_addr = (self.host, daemon_port)
        self.tcp_addr = (self.host, daemon_port)
        self.http_url = f"http://{self.host}:{self.http_port}"
        self.tls_ca: Path | None = None
        self.otlp_grpc_port = _free_tcp_port()
        self.otlp_grpc_addr = f"{self.host}:{self.otlp_grpc_port}"
        self.extra_args = list(extra_args or [])
        self.udp_enabled = udp
        self.tcp_enabled = tcp
        self.via_env = via_env
        if store is None and os.environ.get("ROENTGEN_E2E_STORE") == "clickhouse":
            store = clickhouse_store_url(unique_database("e2e"))
        self.store = store
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.stderr_paths: list[Path] = []
        self.exit_codes: list[int] = []

    # ------------------------------------------------------------------ lifecycle

    def settings(self) -> dict[str, str]:
        """flag name -> value for `serve`."""
        return {
            "http-addr": f"{self.host}:{self.http_port}",
            "udp-addr": f"{self.udp_addr[0]}:{self.udp_addr[1]}" if self.udp_enabled else "off",
            "tcp-addr": f"{self.tcp_addr[0]}:{self.tcp_addr[1]}" if self.tcp_enabled else "off",
            "otlp-grpc-addr": self.otlp_grpc_addr,
            "data-dir": str(self.data_dir),
            **({"store": self.store} if self.store else {}),
        }

    def command(self) -> list[str]:
        cmd = [str(self.binary), "serve"]
        if not self.via_env:
            for flag, value in self.settings().items():
                cmd += [f"--{flag}", value]
        return cmd + self.extra_args

    def env_settings(self) -> dict[str, str]:
        if not self.via_env:
            return {}
        return {
            "ROENTGEN_" + flag.upper().replace("-", "_"): value
            for flag, value in self.settings().items()
        }

    def start(self, timeout: float = STARTUP_TIMEOUT) -> None:
        assert self.proc is None, "server already running"
        self.runs += 1
        stderr_path = self.workdir / f"stderr.{self.runs}.log"
        stdout_path = self.workdir / f"stdout.{self.runs}.log"
        self.stderr_paths.append(stderr_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROENTGEN_")}
        env.update({"RUST_BACKTRACE": "1", "NO_COLOR": "1"})
        env.update(self.env_settings())
        with open(stderr_path, "wb") as err, open(stdout_path, "wb") as out:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=env,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        last = None
        while True:
            rc = self.proc.poll()
            if rc is not None:
                self.proc = None
                self.exit_codes.append(rc)
                raise AssertionError(
                    f"roentgen exited with {rc} during startup:\n{self.log_tail()}"
                )
            status = self.healthz()
            if status == 200:
                return
            last = status
            if time.monotonic() > deadline:
                self._force_kill()
                raise AssertionError(
                    f"/healthz not 200 within {timeout}s (last: {last}):\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = SHUTDOWN_TIMEOUT) -> int:
        """SIGTERM, wait, and assert a clean exit (code 0)."""
        rc = self.terminate(timeout)
        assert rc == 0, f"roentgen exited with {rc} after SIGTERM:\n{self.log_tail()}"
        return rc

    def terminate(self, timeout: float = SHUTDOWN_TIMEOUT, sig: int = signal.SIGTERM) -> int:
        """Send `sig` (SIGTERM) and wait; returns the exit code (no assertion). Fails if
        the process is still running after `timeout`."""
        proc = self._running_proc()
        proc.send_signal(sig)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._force_kill()
            raise AssertionError(
                f"roentgen still running {timeout}s after signal {sig}:\n{self.log_tail()}"
            )
        self.proc = None
        self.exit_codes.append(rc)
        return rc

    def kill9(self) -> None:
        proc = self._running_proc()
        proc.kill()
        proc.wait(timeout=10)
        self.exit_codes.append(proc.returncode)
        self.proc = None

    def restart(self) -> None:
        """Stop (gracefully, asserting exit 0) if running, then start again on the same
        ports and data dir."""
        if self.proc is not None:
            self.stop()
        self.start()

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _running_proc(self) -> subprocess.Popen:
        assert self.proc is not None, "server is not running"
        rc = self.proc.poll()
        if rc is not None:
            self.proc = None
            self.exit_codes.append(rc)
            raise AssertionError(f"roentgen died unexpectedly with {rc}:\n{self.log_tail()}")
        return self.proc

    def _force_kill(self) -> None:
        if self.proc is not None:
            try:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except Exception:  # noqa: BLE001
                pass
            self.proc = None

    # ---------------------------------------------------------------- observation

    def _tls_context(self):
        """With `tls_ca` set (a server started with --tls-cert), the context that
        trusts it; else None."""
        if self.tls_ca is None:
            return None
        import ssl

        return ssl.create_default_context(cafile=str(self.tls_ca))

    def use_tls(self, ca_path: Path) -> None:
        """The server speaks TLS (its --tls-cert is signed by `ca_path`)."""
        self.tls_ca = Path(ca_path)
        self.http_url = f"https://{self.host}:{self.http_port}"

    def healthz(self) -> int | None:
        try:
            with urllib.request.urlopen(
                self.http_url + "/healthz", timeout=2, context=self._tls_context()
            ) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return None

    def metrics_text(self) -> str:
        with urllib.request.urlopen(
            self.http_url + "/metrics", timeout=5, context=self._tls_context()
        ) as r:
            assert r.status == 200
            return r.read().decode("utf-8")

    def metrics(self) -> dict[str, float]:
        return parse_prometheus(self.metrics_text())

    def metric(self, name: str, default: float = 0.0) -> float:
        return self.metrics().get(name, default)

    def log_text(self) -> str:
        parts = []
        for p in self.stderr_paths:
            try:
                parts.append(p.read_text(errors="replace"))
            except FileNotFoundError:
                pass
        return "".join(parts)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def bad_log_lines(self, allowed: list[str] | None = None) -> list[str]:
        """ERROR-level lines and panics in stderr, minus those matching `allowed`."""
        bad = []
        for raw in self.log_text().splitlines():
            line = _ANSI.sub("", raw)
            if _ERROR_LINE.search(line) or _PANIC.search(line):
                if allowed and any(re.search(p, line) for p in allowed):
                    continue
                bad.append(line)
        return bad


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def _clean_sdk_env(monkeypatch):
    """The X-Ray SDK and boto3 read these; none may leak in from the environment."""
    for var in (
        "AWS_XRAY_DAEMON_ADDRESS",
        "AWS_XRAY_TRACING_NAME",
        "AWS_XRAY_CONTEXT_MISSING",
        "AWS_XRAY_SDK_ENABLED",
        "AWS_XRAY_NOOP_ID",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_XRAY",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="session")
def roentgen_bin() -> Path:
    path = roentgen_binary()
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"roentgen binary not found at {path}: build it (cargo build -p roentgen) or "
            f"set ROENTGEN_BIN",
            pytrace=False,
        )
    return path


def _finish(request, servers: list[Roentgen]) -> None:
    """Stop what still runs (SIGTERM, exit 0 required) and check the logs."""
    problems = []
    marker = request.node.get_closest_marker("allow_server_errors")
    for srv in servers:
        if srv.proc is not None:
            try:
                srv.stop()
            except AssertionError as e:
                problems.append(str(e))
        if marker is None:
            bad = srv.bad_log_lines()
        elif marker.args:
            bad = srv.bad_log_lines(list(marker.args))
        else:
            bad = []
        if bad:
            problems.append(
                f"server ({srv.workdir}) logged ERROR lines or panicked:\n" + "\n".join(bad[:50])
            )
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def server(request, roentgen_bin, tmp_path):
    """A running Roentgen on fresh ports and a fresh data dir. On teardown it is
    stopped with SIGTERM (exit 0 required) and its stderr must hold no ERROR lines or
    panics, unless the test is marked @pytest.mark.allow_server_errors(*regexes)."""
    srv = Roentgen(roentgen_bin, tmp_path / "roentgen")
    srv.start()
    try:
        yield srv
    finally:
        _finish(request, [srv])


@pytest.fixture
def make_server(request, roentgen_bin, tmp_path):
    """Factory for servers with non-default settings: make_server(udp=False,
    via_env=True, extra_args=[...], start=True). Same teardown checks as `server`."""
    made: list[Roentgen] = []

    def make(start: bool = True, **kwargs) -> Roentgen:
        srv = Roentgen(roentgen_bin, tmp_path / f"roentgen-{len(made) + 1}", **kwargs)
        made.append(srv)
        if start:
            srv.start()
        return srv

    try:
        yield make
    finally:
        _finish(request, made)


@pytest.fixture
def xray(server):
    """boto3's X-Ray client aimed at `server` (dummy credentials, no retries)."""
    return xray_client(server.http_url)
