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

import tests.toy_envs  # noqa: E402,F401 - registers the toy envs


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
def serve(transactional_db, settings):
    """Starts gymsite (the real ASGI app, uvicorn, real DB) for an EngineConfig; stops it after the test."""
    import httpx2
    import uvicorn

    from gymenv.engine import Engine, EngineConfig, set_engine
    from gymsite.asgi import create_app

    started = []

    def start(*, token: str | None = None, **config) -> LiveServer:
        settings.GYMSITE_TOKEN = token
        engine = Engine(EngineConfig(**config))
        engine.start()
        app = create_app(engine=engine)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning"))
        server.install_signal_handlers = lambda: None  # not the main thread
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the server did not start within 20 s"
            time.sleep(0.02)
        client = httpx2.Client(timeout=30)
        started.append((server, thread, client))
        return LiveServer(f"http://127.0.0.1:{port}", engine, client)

    yield start
    for server, thread, client in started:
        client.close()
        server.should_exit = True
        thread.join(timeout=30)
    set_engine(None)


@dataclass
class Door:
    """An engine, its MCP server in memory, and REST on the same engine through Django's test client."""

    engine: object
    server: object  # an MCPServer: mcp.Client(server) connects to it in memory
    rest: object

    def post(self, path: str, body: dict) -> dict:
        return self.rest.post(path, json.dumps(body), content_type="application/json").json()

    def get(self, path: str) -> dict:
        return self.rest.get(path).json()


@pytest.fixture
def door(transactional_db, client):
    """Starts an engine for an EngineConfig and builds its MCP server; shuts the engine down after the test."""
    from gymenv.engine import Engine, EngineConfig, set_engine
    from gymenv.mcp_server import build_server

    engines = []

    def start(**config) -> Door:
        engine = Engine(EngineConfig(**config))
        engine.start()
        engines.append(engine)
        set_engine(engine)  # REST's views find the engine there
        return Door(engine, build_server(engine), client)

    yield start
    for engine in engines:
        engine.shutdown()
    set_engine(None)


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
        proc = subprocess.Popen([sys.executable, "manage.py", "runserver_gym", *args, "--port", str(port)],
                                cwd=Path(__file__).resolve().parent.parent, env=env,
                                stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
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
