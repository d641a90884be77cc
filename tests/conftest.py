"""Shared fixtures: a real gymsite ASGI app under uvicorn on a free port and plain HTTP to it, or an engine
with its MCP server for in-memory clients."""

import json
import os
import socket
import threading
import time
from dataclasses import dataclass

import pytest

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")

import tests.toy_envs  # noqa: F401 - registers the toy envs


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def strict_loads(text: str):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token!r}")

    return json.loads(text, parse_constant=refuse)


@dataclass
class Reply:
    status: int
    body: object
    headers: dict


@dataclass
class LiveServer:
    base: str
    engine: object
    client: object

    def request(self, method: str, path: str, body=None, *, raw: bytes | None = None,
                content_type: str = "application/json", headers: dict | None = None) -> Reply:
        hdrs = dict(headers or {})
        content = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        if content is not None:
            hdrs.setdefault("Content-Type", content_type)
        r = self.client.request(method, self.base + path, content=content, headers=hdrs)
        try:
            parsed = strict_loads(r.text) if r.text else None
        except ValueError:
            parsed = None
        return Reply(r.status_code, parsed, dict(r.headers))

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, {} if body is None and "raw" not in kw else body, **kw)


@pytest.fixture
def serve(transactional_db):
    """Starts gymsite for a ServerConfig (the real ASGI app from the composition root, uvicorn, the
    real DB) on a free port; stops it after the test. The run manager is off unless a test asks for
    it (run_manager=True): most tests exercise the engine and the doors, the ledger's opt in."""
    import httpx2
    import uvicorn

    from gymsite import serving

    started = []

    def start(**options) -> LiveServer:
        config = serving.ServerConfig(**{"port": free_port(), "run_manager": False, **options})
        engine = serving.build_engine(serving.resolve(config))
        app = serving.build_app(engine, config)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, lifespan="on",
                                               log_level="warning"))
        server.install_signal_handlers = lambda: None  # not the main thread
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start within 20 s"
            time.sleep(0.02)
        client = httpx2.Client(timeout=30)
        started.append((server, thread, client))
        return LiveServer(f"http://127.0.0.1:{config.port}", engine, client)

    yield start
    for server, thread, client in started:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class Door:
    """An engine, its MCP server in memory, and REST on the same engine in memory (tests/rest_memory.py)."""

    engine: object
    server: object  # an MCPServer: mcp.Client(server) connects to it in memory
    rest: object

    def post(self, path: str, body: dict) -> dict:
        return self.rest.post(path, body).body

    def get(self, path: str) -> dict:
        return self.rest.get(path).body


@pytest.fixture
def door(transactional_db):
    """Builds an engine for a ServerConfig through the composition root and its MCP server; the
    run manager is off unless asked for, as with `serve`. Shuts the engine down after the test."""
    from gymenv.mcp_server import build_server
    from gymsite import serving
    from tests.rest_memory import MemoryREST

    rests = []

    def start(**options) -> Door:
        config = serving.ServerConfig(**{"run_manager": False, **options})
        engine = serving.build_engine(serving.resolve(config))
        rests.append(MemoryREST(engine, config))
        return Door(engine, build_server(engine), rests[-1])

    yield start
    for rest in rests:
        rest.close()


@pytest.fixture
def server_database_url(tmp_path):
    """A fresh database for a server process: an SQLite file, or a throwaway PostgreSQL database
    when the suite runs on PostgreSQL (DATABASE_URL)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        yield f"sqlite:///{tmp_path / 'server.sqlite3'}"
        return
    import uuid

    import psycopg

    name = f"gymsite_e2e_{uuid.uuid4().hex[:10]}"
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class ServerProcess:
    proc: object
    base: str
    log_path: object

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def spawn(server_database_url, tmp_path):
    """Starts `manage.py runserver_gym ARGS` as a real process and waits for /health."""
    import signal
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    procs = []

    def start(args: list[str], *, wait: bool = True) -> ServerProcess:
        port = free_port()
        env = dict(os.environ, DATABASE_URL=server_database_url, SDL_VIDEODRIVER="dummy",
                   GYMSITE_DATA_DIR=str(tmp_path))
        log_path = tmp_path / f"server-{port}.log"
        with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen([sys.executable, "manage.py", "runserver_gym", *args, "--port", str(port)],
                                    cwd=Path(__file__).resolve().parent.parent, env=env,
                                    stdout=log, stderr=subprocess.STDOUT)
        procs.append(proc)
        server = ServerProcess(proc, f"http://127.0.0.1:{port}", log_path)
        deadline = time.monotonic() + 60
        while wait:
            assert proc.poll() is None, f"server exited with {proc.returncode}:\n{server.log()}"
            assert time.monotonic() < deadline, f"no /health within 60 s:\n{server.log()}"
            try:
                with urllib.request.urlopen(server.base + "/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        return server

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
