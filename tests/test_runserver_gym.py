"""`manage.py runserver_gym` as a user runs it: real processes, one clear line for every mistake."""

import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def run_command(args, tmp_path, timeout=90):
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", SDL_VIDEODRIVER="dummy",
               GYMSITE_DATA_DIR=str(tmp_path))
    return subprocess.run([sys.executable, "manage.py", "runserver_gym", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, needle", [
    (["--env", "NoSuchEnv-v9"], "NoSuchEnv-v9"),
    (["--env", "CartPole-v1", "--env-kwargs", "{bad"], "--env-kwargs is not valid JSON"),
    (["--env", "CartPole-v1", "--env-kwargs", "[1]"], "--env-kwargs must be a JSON object"),
    (["--env", "CartPole-v1", "--host", "0.0.0.0"], "without a token"),
    (["--env", "CartPole-v1", "--import", "no_such_module_here"], "no_such_module_here"),
    (["--env", "CartPole-v1", "--allow-env", "NoSuchEnv-v9"], "NoSuchEnv-v9"),
    (["--env", "CartPole-v1", "--env-kwargs", '{"no_such_kwarg": 1}'], "no_such_kwarg"),
    (["--env", "CartPole-v1", "--num-episodes", "-1"], "--num-episodes must be 0 (no limit) or more"),
    (["--env", "tests.toy_envs:MissingDependencyToy-v0"], "no_such_physics"),
])
def test_bad_start_arguments_end_with_one_clear_line_and_no_traceback(tmp_path, args, needle):
    p = run_command([*args, "--port", str(free_port())], tmp_path)
    out = p.stdout + p.stderr
    assert p.returncode != 0, out
    assert needle.lower() in out.lower(), out
    assert "Traceback" not in out, out
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_a_busy_port_is_one_clear_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        p = run_command(["--env", "CartPole-v1", "--port", str(port)], tmp_path)
    assert p.returncode != 0 and f"cannot listen on 127.0.0.1:{port}" in p.stderr, p.stderr
    assert "Traceback" not in p.stderr


def test_it_serves_with_no_set_up_step_and_stops_cleanly_on_sigterm(spawn):
    server = spawn(["--env", "CartPole-v1"])
    with urllib.request.urlopen(server.base + "/health", timeout=5) as r:
        assert r.status == 200
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=20) == 0, server.log()
    assert "Traceback" not in server.log()


def test_operator_module_ids_import_the_module_that_registers_the_env(spawn):
    server = spawn(["--env", "tests.toy_envs:DictToy-v0"])
    with urllib.request.urlopen(server.base + "/info", timeout=5) as r:
        assert b'"id":"DictToy-v0"' in r.read()
