"""Programs the tests run as real servers (never mocks): free ports on 127.0.0.1, waiting for a server, and
starting and always stopping long-running processes, with whatever they spawn."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_USER = "embtune"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin(name: str) -> str:
    """Debian's server binaries live under /usr/lib/postgresql/<major>/bin, outside PATH."""
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        pytest.fail(f"PostgreSQL's {name} is not installed: .ci/run installs Debian's postgresql package")
    return str(found)


def wait_until(check, timeout: float, what: str, interval: float = 0.5, log: Path | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - not up yet
            value = None
        if value:
            return value
        time.sleep(interval)
    tail = log.read_text()[-3000:] if log and log.exists() else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Postgres:
    port: int
    user: str = PG_USER

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{db}"

    def query(self, db: str, sql: str, params=()) -> list[tuple]:
        import psycopg2

        with psycopg2.connect(host="127.0.0.1", port=self.port, user=self.user, dbname=db) as conn:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()


@dataclass
class Processes:
    """Long-running programs of one test; each gets its own session, and `stop_all` ends every one of them and
    whatever they spawned (run workers included), also when the test failed."""

    logs: Path
    running: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start(self, name: str, cmd: list[str], env: dict, cwd: Path) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = proc
        return proc

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.running.pop(name)
        _signal_tree(proc.pid, sig)
        proc.wait(timeout=30)

    def stop_all(self) -> None:
        for name in list(self.running):
            proc = self.running.pop(name)
            _signal_tree(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            _signal_tree(proc.pid, signal.SIGKILL)


def _signal_tree(pid: int, sig: int) -> None:
    """The process, its children (run workers a code server started) and its session."""
    import psutil

    try:
        parent = psutil.Process(pid)
        family = [*parent.children(recursive=True), parent]
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.send_signal(sig)
        except psutil.NoSuchProcess:
            pass
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class FakeOpenAI:
    """A small OpenAI-compatible server on 127.0.0.1, reached through litellm exactly as a hosted provider is
    (`openai/<model>` with `api_base`).

    /v1/chat/completions: `replies` is a list, each request taking the next scripted reply (the last one
    repeating), or a function of the request's prompt; a reply is `(status, body text, headers, delay s)`.
    /v1/embeddings: `embed(texts) -> vectors` answers (e.g. a tiny sentence-transformers model's encode); the
    first requests answer each status of `embedding_errors` instead (429, 503..., or `(status, error message)`).
    `requests` counts the chat requests that reached it; `embedding_requests` and `embedded_texts` the others."""

    def __init__(self, replies=(), embed=None, embedding_errors=()):
        import http.server
        import json
        import threading

        self.replies, self.requests = replies if callable(replies) else list(replies), 0
        self.embed, self.embedding_errors = embed, list(embedding_errors)
        self.embedding_requests, self.embedded_texts = 0, 0
        self.lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server API
                request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path.rstrip("/").endswith("/embeddings"):
                    status, body, headers = server._embeddings(request)
                    return self._send(status, body, headers)
                with server.lock:
                    server.requests += 1
                    n = server.requests
                if callable(server.replies):
                    status, text, headers, delay = server.replies(request["messages"][-1]["content"])
                else:
                    status, text, headers, delay = server.replies[min(n, len(server.replies)) - 1]
                time.sleep(delay)
                body = ({"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": text}}],
                         "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}
                        if status == 200 else {"error": {"message": text, "type": "error"}})
                self._send(status, body, headers)

            def _send(self, status: int, body: dict, headers: dict) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    for k, v in {"Content-Type": "application/json", **headers}.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (its timeout)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.api_base = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def _embeddings(self, request: dict) -> tuple[int, dict, dict]:
        texts = request["input"] if isinstance(request["input"], list) else [request["input"]]
        with self.lock:
            self.embedding_requests += 1
            if self.embedding_errors:
                error = self.embedding_errors.pop(0)
                status, message = error if isinstance(error, tuple) else (error, f"scripted {error}")
                return status, {"error": {"message": message, "type": "error"}}, {"Retry-After": "0"}
            self.embedded_texts += len(texts)
            vectors = [list(map(float, v)) for v in self.embed(texts)]
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
        return 200, {"object": "list", "data": data, "model": request.get("model", "fake"),
                     "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)}}, {}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def message_offset(kind: str) -> int:
    """Where a provider's error message starts in the text of the error litellm raises for a 401 from FakeOpenAI
    (`kind`: "chat" or "embedding"), so a test can place a key across a given character of that text."""
    import litellm

    server = FakeOpenAI([(401, "MARK", {}, 0.0)], embedding_errors=[(401, "MARK")])
    try:
        if kind == "chat":
            litellm.completion(model="openai/probe", messages=[{"role": "user", "content": "x"}],
                               api_base=server.api_base, api_key="none", max_retries=0, timeout=10)
        else:
            litellm.embedding(model="openai/probe", input=["x"], api_base=server.api_base, api_key="none",
                              max_retries=0, timeout=10)
    except Exception as e:  # noqa: BLE001 - the error is what is measured
        return str(e).index("MARK")
    finally:
        server.close()
    raise AssertionError("the probe's 401 raised nothing")
