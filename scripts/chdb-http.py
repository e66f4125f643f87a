#!/usr/bin/env python3
"""A current ClickHouse engine behind a minimal ClickHouse-style HTTP front, for tests.

What this is: the ClickHouse 26.x query engine as PyPI's `chdb-core` ships it
(`chdb.session.Session`, the real engine in-process, with a data directory), and in front
of it a small stdlib HTTP server that speaks the subset of ClickHouse's HTTP interface
Roentgen's ClickHouse store uses. It is NOT clickhouse-server. SQL, table engines, merges,
settings, formats and error codes/messages are the engine's own; everything at the HTTP
level is this file's imitation and may differ from a real server:

- `GET /ping` and `GET /` (no `query=`) answer `Ok.\\n`. Any other path runs a query.
- The query is the `query=` URL parameter, a newline, then the request body, or either
  one alone (how ClickHouse's HTTP handler concatenates them). Bodies are read by
  `Content-Length` or chunked and must be UTF-8 text (no binary formats).
- Output defaults to `TabSeparated` (`default_format=` changes it; a `FORMAT` clause in
  the query wins). The whole result is buffered, then sent with `Content-Length`: there
  is no streaming and so never a mid-stream exception trailer.
- Other URL parameters are settings, applied with `SET` for that request only;
  `database=` is applied with `USE` for that request only; `param_NAME=` are query
  parameters. `SET`/`USE` inside a query also do not outlive the request (no sessions).
- Errors: status from ClickHouse's exception-code mapping (abridged below, 500 for the
  rest), the `X-ClickHouse-Exception-Code` header, and the body
  `Code: N. DB::Exception: ... (NAME) (version V)` as the engine wrote it.
- Auth is a fresh server's: user `default` (or none) with an empty password, given as URL
  parameters, X-ClickHouse-User/-Key headers or Basic auth; anything else is refused
  (code 516, 403). No TLS, no HTTP compression, no `compress`/`decompress`, no
  `session_id`, no readonly for GET, no multi-statement refusal, no progress headers.
- Queries run one at a time (chdb serialises them anyway), and it listens on 127.0.0.1
  only. No `remote_servers`, so no clusters or `Distributed` tables.

Usage: chdb-http.py --data DIR [--port N] [--port-file FILE]
  --port 0 (the default) picks a free port. The port is printed on stdout (one line) and,
  with --port-file, written to FILE once the server accepts connections. SIGTERM or
  SIGINT stops it cleanly (the data directory is closed; exit status 0).
"""
import argparse
import base64
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from chdb import session as chdb_session

# URL parameters ClickHouse's HTTP handler reads itself (not settings). Those the shim
# cannot honour are refused rather than silently ignored.
IGNORED = {"user", "password", "quota_key", "query_id", "stacktrace", "database", "query",
           "default_format", "buffer_size", "wait_end_of_query", "client_protocol_version"}
UNSUPPORTED = {"compress", "decompress", "session_id", "session_timeout", "session_check",
               "close_session", "role"}
# ClickHouse's src/Server/HTTP/exceptionCodeToHTTPStatus.cpp, abridged; the rest is 500.
HTTP_STATUS = {
    194: 401,                                                   # REQUIRED_PASSWORD
    192: 403, 193: 403, 497: 403, 516: 403,                     # users, ACCESS_DENIED, auth
    6: 400, 25: 400, 26: 400, 27: 400, 38: 400, 41: 400, 72: 400,  # CANNOT_PARSE_*
    16: 400, 36: 400, 44: 400, 53: 400, 62: 400, 70: 400, 117: 400,
    46: 404, 47: 404, 50: 404, 56: 404, 60: 404, 63: 404, 73: 404, 81: 404, 115: 404,
    48: 501,                                                    # NOT_IMPLEMENTED
    159: 408,                                                   # TIMEOUT_EXCEEDED
    76: 503, 209: 503,                                          # CANNOT_OPEN_FILE, SOCKET_TIMEOUT
}
CODE = re.compile(r"Code: (\d+)[.,]")
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A request whose SQL might change session state (SET, USE) is followed by a reset.
MAY_CHANGE_STATE = re.compile(r"\b(SET|USE)\b", re.IGNORECASE)
# Session state chdb changes from a server's defaults; reset at start-up.
CHDB_DEFAULTS = ("implicit_select", "allow_introspection_functions")
STATE = ("SELECT name, value FROM system.settings WHERE changed AND name != 'database' "
         "UNION ALL SELECT '', currentDatabase()")


class Refused(Exception):
    """A request error the shim answers itself, with a ClickHouse error code."""

    def __init__(self, code, name, message):
        super().__init__(f"Code: {code}. DB::Exception: {message}. ({name})")


def literal(value):
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def identifier(name):
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class Engine:
    """One chdb session and the state every request starts from."""

    def __init__(self, data_dir):
        self.session = chdb_session.Session(data_dir)
        self.lock = threading.Lock()
        for name in CHDB_DEFAULTS:
            self.session.query(f"SET {name} = DEFAULT")
        self.baseline = self._state()
        self.version = self.run("SELECT version()").decode().strip()

    def run(self, sql, fmt="TabSeparated", params=None):
        return self.session.query(sql, fmt, params=params or None).bytes()

    def _state(self):
        rows = self.run(STATE).decode().splitlines()
        return dict(row.split("\t", 1) for row in rows)

    def _reset(self):
        now = self._state()
        for name, value in now.items():
            if name and self.baseline.get(name) != value:
                old = self.baseline.get(name)
                self.run(f"SET {name} = " + ("DEFAULT" if old is None else literal(old)))
        if now.get("") != self.baseline[""]:
            self.run("USE " + identifier(self.baseline[""]))

    def query(self, sql, fmt, database, settings, params):
        with self.lock:
            try:
                if database:
                    self.run("USE " + identifier(database))
                for name, value in settings:
                    self.run(f"SET {name} = {literal(value)}")
                return self.run(sql, fmt, params)
            finally:
                if settings or MAY_CHANGE_STATE.search(sql):
                    self._reset()  # reads back every changed setting: ~5 ms
                elif database:
                    self.run("USE " + identifier(self.baseline[""]))

    def close(self):
        with self.lock:
            self.session.close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as reqwest's pool expects
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server_version = "chdb-http"

    def log_message(self, fmt, *args):  # only failures are logged (below)
        pass

    def _answer(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailer
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _check_user(self, params):
        user = params.get("user", self.headers.get("X-ClickHouse-User", ""))
        password = params.get("password", self.headers.get("X-ClickHouse-Key", ""))
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        if user not in ("", "default") or password:
            raise Refused(516, "AUTHENTICATION_FAILED", f"{user or 'default'}: Authentication "
                          "failed: password is incorrect, or there is no user with such name")

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == "/ping" or (url.path == "/" and "query" not in dict(parse_qsl(url.query))):
            return self._answer(200, b"Ok.\n")
        self.do_POST()

    def do_POST(self):
        engine = self.server.engine
        try:
            params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
            try:
                body = self._body()  # read even when refusing, to keep the connection usable
            except (ValueError, OSError):
                self.close_connection = True
                raise Refused(27, "CANNOT_PARSE_INPUT_ASSERTION_FAILED", "bad request body")
            self._check_user(params)
            for name in UNSUPPORTED & params.keys():
                raise Refused(48, "NOT_IMPLEMENTED", f"URL parameter '{name}' is not "
                              "supported by scripts/chdb-http.py (it is not clickhouse-server)")
            if self.headers.get("Content-Encoding"):
                raise Refused(48, "NOT_IMPLEMENTED", "compressed request bodies are not "
                              "supported by scripts/chdb-http.py")
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                raise Refused(48, "NOT_IMPLEMENTED", "scripts/chdb-http.py takes only UTF-8 "
                              "text bodies") from None
            query = params.get("query", "")
            sql = query + "\n" + text if query else text
            if not sql.strip():
                raise Refused(62, "SYNTAX_ERROR", "Empty query")
            settings, query_params = [], {}
            for name, value in params.items():
                if name.startswith("param_"):
                    query_params[name[len("param_"):]] = value
                elif name not in IGNORED and name not in UNSUPPORTED:
                    if not SETTING_NAME.match(name):
                        raise Refused(115, "UNKNOWN_SETTING", f"Unknown setting '{name}'")
                    settings.append((name, value))
            out = engine.query(sql, params.get("default_format") or "TabSeparated",
                               params.get("database"), settings, query_params)
        except Exception as error:  # the engine's errors and Refused alike
            message = str(error).strip()
            match = CODE.search(message)
            code = int(match.group(1)) if match else 1001  # STD_EXCEPTION
            print(f"chdb-http: {message[:500]}", file=sys.stderr, flush=True)
            body = f"{message} (version {engine.version})\n".encode()
            return self._answer(HTTP_STATUS.get(code, 500), body,
                                [("X-ClickHouse-Exception-Code", str(code))])
        self._answer(200, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="data directory (created if missing)")
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1; 0 = any free")
    parser.add_argument("--port-file", help="write the port here once listening")
    args = parser.parse_args()

    os.makedirs(args.data, exist_ok=True)
    engine = Engine(os.path.abspath(args.data))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.engine = engine
    port = server.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        os.replace(args.port_file + ".tmp", args.port_file)
    print(port, flush=True)
    print(f"chdb-http: ClickHouse {engine.version} (chdb engine) on http://127.0.0.1:{port}, "
          f"data {os.path.abspath(args.data)}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        engine.close()
        if args.port_file:
            try:
                os.remove(args.port_file)
            except FileNotFoundError:
                pass
    print("chdb-http: stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
