"""`uvicorn gymsite.asgi:application` serves the server the environment describes, as runserver_gym does."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def uvicorn(env: dict, port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "uvicorn", "gymsite.asgi:application", "--port", str(port)],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_uvicorn_serves_the_environments_server_on_both_doors(server_database_url, tmp_path):
    port = free_port()
    env = dict(os.environ, DATABASE_URL=server_database_url, GYMSITE_DATA_DIR=str(tmp_path),
               GYMSITE_ENV="CartPole-v1", GYMSITE_ALLOW_ENV="Pendulum-v1", GYMSITE_NUM_EPISODES="3")
    proc = uvicorn(env, port, tmp_path / "log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "log").read_text()
            assert time.monotonic() < deadline, "no /health within 60 s"
            try:
                health = json.load(urllib.request.urlopen(base + "/health", timeout=2))
                break
            except OSError:
                time.sleep(0.1)
        assert health["env_id"] == "CartPole-v1"
        reset = urllib.request.Request(base + "/reset", data=b'{"seed": 1}', method="POST",
                                       headers={"Content-Type": "application/json"})
        assert json.load(urllib.request.urlopen(reset, timeout=10))["run_progress"]["total_episodes"] == 3
        tools = urllib.request.Request(base + "/mcp", method="POST",
                                       data=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
                                       headers={"Content-Type": "application/json",
                                                "Accept": "application/json, text/event-stream"})
        listing = urllib.request.urlopen(tools, timeout=10).read().decode()
        assert '"step_env"' in listing and "Pendulum-v1" in listing
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_without_gymsite_env_the_application_refuses_to_start_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "GYMSITE_ENV"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", GYMSITE_DATA_DIR=str(tmp_path))
    proc = uvicorn(env, free_port(), tmp_path / "log")
    assert proc.wait(timeout=60) != 0
    assert "GYMSITE_ENV is not set" in (tmp_path / "log").read_text()
