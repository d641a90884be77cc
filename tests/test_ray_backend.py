"""The Ray backend (SPEC 16): instances in Ray actors, served by two front processes on one PostgreSQL.

The cluster is a throwaway Ray head on loopback (`ray start --head --block`, one CPU, free ports),
ended by signalling that one command and then its process group: `ray stop` would stop every Ray
cluster of this user on the machine. The database is a throwaway one (ray_front_<random>) on the
PostgreSQL of DATABASE_URL or CI_POSTGRES_URL, else 127.0.0.1:5432 as postgres; without one the
tests skip. The fronts are real `runserver_gym` processes. Marked `ray` (`-m "not ray"` leaves them out).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from gymsite import serving
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
ENV = "CartPole-v1"
START_TIMEOUT = 120
# Ray's single-machine mode keeps "127.0.0.1" as given (else Ray swaps loopback for this machine's
# network address); no usage reports.
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


# -- the configuration (no Ray needed) ------------------------------------------------------------

def test_an_unknown_backend_is_refused_before_anything_starts():
    with pytest.raises(serving.ConfigError, match="--backend must be one of local, ray"):
        serving.ServerConfig(env_id=ENV, backend="threads").check()


def test_a_ray_address_without_the_ray_backend_is_refused():
    with pytest.raises(serving.ConfigError, match="--ray-address needs --backend ray"):
        serving.ServerConfig(env_id=ENV, ray_address="127.0.0.1:6379").check()


def test_the_backend_and_the_ray_address_come_from_the_environment():
    found = serving.environ_settings({"GYMSITE_BACKEND": "ray", "GYMSITE_RAY_ADDRESS": "10.0.0.5:6379"})
    assert found == {"backend": "ray", "ray_address": "10.0.0.5:6379"}


def test_the_in_process_backend_stays_the_default():
    assert serving.ServerConfig(env_id=ENV).backend == "local"
    assert serving.engine_config(serving.ServerConfig(env_id=ENV)).backend.__name__ == "LocalInstances"


# -- the cluster, the database, the fronts --------------------------------------------------------

def ray_cli() -> str:
    return str(Path(sys.executable).parent / "ray")


@pytest.fixture(scope="module")
def ray_address():
    pytest.importorskip("ray", reason="the [ray] extra is not installed")
    port = free_port()
    address = f"127.0.0.1:{port}"
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-t-", dir="/tmp"))  # Ray's socket paths must stay short
    log_path = temp_dir / "head.log"
    with open(log_path, "wb") as log:
        head = subprocess.Popen(
            [ray_cli(), "start", "--head", "--block", "--port", str(port), "--node-ip-address", "127.0.0.1",
             "--num-cpus", "1", "--include-dashboard", "false", "--disable-usage-stats",
             "--dashboard-agent-listen-port", str(free_port()), "--temp-dir", str(temp_dir)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=dict(os.environ, **RAY_ENV))
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while subprocess.run([ray_cli(), "status", "--address", address], capture_output=True, timeout=60,
                             env=dict(os.environ, **RAY_ENV)).returncode != 0:
            assert head.poll() is None, f"ray start exited with {head.returncode}:\n{log_path.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"no Ray head within {START_TIMEOUT}s:\n{log_path.read_text()[-2000:]}"
            time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # whatever of the cluster outlived the SIGTERM
        except (ProcessLookupError, PermissionError):
            pass
        head.wait(timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def database_url():
    psycopg = pytest.importorskip("psycopg")
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        url = os.environ.get("CI_POSTGRES_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    server, name = url.rsplit("/", 1)[0], f"ray_front_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL for the Ray tests at {server}: {exc}")
    yield f"{server}/{name}"
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Front:
    """One `runserver_gym --backend ray` process and plain HTTP to it."""

    def __init__(self, database_url: str, ray_address: str, workdir: Path):
        self.port = free_port()
        self.log_path = workdir / f"front-{self.port}.log"
        env = dict(os.environ, DATABASE_URL=database_url, GYMSITE_DATA_DIR=str(workdir), SDL_VIDEODRIVER="dummy",
                   **RAY_ENV)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "manage.py", "runserver_gym", "--env", ENV, "--backend", "ray", "--ray-address",
                 ray_address, "--num-episodes", "1000", "--port", str(self.port)],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self.proc.poll() is None, f"the front exited with {self.proc.returncode}:\n{self.log()}"
            assert time.monotonic() < deadline, f"no /health within {START_TIMEOUT}s:\n{self.log()}"
            try:
                if self.request("GET", "/health", timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def request(self, method: str, path: str, body=None, timeout: float = 60) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    def post(self, path: str, body=None) -> tuple[int, dict]:
        return self.request("POST", path, {} if body is None else body)

    def get(self, path: str) -> tuple[int, dict]:
        return self.request("GET", path)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def workdir():
    path = Path(tempfile.mkdtemp(prefix="gymsite-ray-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def fronts(database_url, ray_address, workdir):
    """Two fronts, one after the other (the first brings the fresh database up to date); stopped
    before the cluster ends and the database is dropped."""
    started: list[Front] = []
    try:
        for _ in range(2):
            started.append(Front(database_url, ray_address, workdir))
        yield started
    finally:
        for front in started:
            front.stop()


def new_instance(front: Front) -> str:
    status, body = front.post("/envs")
    assert status == 201, body
    return body["instance_id"]


def gymnasium_trajectory(seed: int, actions: list[int]) -> list[tuple]:
    env = gym.make(ENV)
    obs, _ = env.reset(seed=seed)
    out: list[tuple] = [(obs, None, False, False)]
    for action in actions:
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append((obs, float(reward), bool(terminated), bool(truncated)))
    return out


# -- behaviour ------------------------------------------------------------------------------------

@pytest.mark.ray
def test_an_instance_opened_on_one_front_steps_renders_on_the_other_as_gymnasium_does(fronts):
    a, b = fronts
    iid = new_instance(a)
    actions = [0, 1, 1, 0, 1, 0, 0]
    ref = gymnasium_trajectory(5, actions)
    status, body = b.post(f"/envs/{iid}/reset", {"seed": 5})
    assert status == 200 and np.array_equal(np.asarray(body["observation"], dtype=np.float32), ref[0][0])
    for k, action in enumerate(actions):
        status, body = (a, b)[k % 2].post(f"/envs/{iid}/step", {"action": action})
        assert status == 200, body
        obs, reward, terminated, truncated = ref[k + 1]
        assert np.array_equal(np.asarray(body["observation"], dtype=np.float32), obs), k
        assert (body["reward"], body["terminated"], body["truncated"]) == (reward, terminated, truncated)
        assert body["run_progress"]["step_num"] == k + 1
    status, frame = a.post(f"/envs/{iid}/render")
    assert status == 200 and frame["format"] == "png" and frame["shape"] == [400, 600, 3]
    run_id = body["run_progress"]["run_id"]
    for front in (a, b):  # every answered step is committed, whichever front answered it
        status, detail = front.get(f"/runs/{run_id}")
        assert status == 200 and detail["total_steps"] == len(actions), detail


@pytest.mark.ray
def test_an_instance_deleted_on_one_front_is_gone_from_the_other(fronts):
    a, b = fronts
    iid = new_instance(b)
    assert b.post(f"/envs/{iid}/reset", {"seed": 0})[0] == 200  # b holds a handle on it
    assert a.request("DELETE", f"/envs/{iid}")[0] == 200
    assert iid not in [i["instance_id"] for i in b.get("/envs")[1]["instances"]]
    status, body = b.post(f"/envs/{iid}/step", {"action": 0})
    assert (status, body["code"]) == (404, "not_found"), body


@pytest.mark.ray
def test_a_killed_actor_ends_its_run_in_error_with_the_partial_episode_and_the_rest_goes_on(
        fronts, ray_address):
    a, b = fronts
    doomed, other = new_instance(a), new_instance(b)
    for iid in (doomed, other):
        assert a.post(f"/envs/{iid}/reset", {"seed": 3})[0] == 200
    for via in (a, b, a):
        status, body = via.post(f"/envs/{doomed}/step", {"action": 1})
        assert status == 200, body
    run_id = body["run_progress"]["run_id"]
    kill_actor(ray_address, doomed)

    status, body = b.post(f"/envs/{doomed}/step", {"action": 1})
    assert (status, body["code"]) == (500, "instance_lost"), body
    assert f"its run {run_id} ended in error" in body["error"]
    status, run = a.get(f"/runs/{run_id}")
    assert run["state"] == "error" and "Ray actor serving it died" in run["error"], run
    assert [(e["episode_num"], e["total_steps"]) for e in run["episodes"]] == [(1, 3)]
    # Forgotten where it was answered; the other front, which also held it, says the same.
    assert a.post(f"/envs/{doomed}/step", {"action": 1})[1]["code"] == "instance_lost"
    assert b.post(f"/envs/{doomed}/step", {"action": 1})[1]["code"] == "not_found"
    for via in (a, b):
        assert via.post(f"/envs/{other}/step", {"action": 0})[0] == 200
        assert doomed not in [i["instance_id"] for i in via.get("/envs")[1]["instances"]]


@pytest.mark.ray
def test_a_front_starting_up_leaves_the_runs_of_live_actors_alone(fronts, database_url, ray_address, workdir):
    a, _ = fronts
    iid = new_instance(a)
    assert a.post(f"/envs/{iid}/reset", {"seed": 1})[0] == 200
    status, body = a.post(f"/envs/{iid}/step", {"action": 0})
    run_id = body["run_progress"]["run_id"]
    third = Front(database_url, ray_address, workdir)  # its start-up closes the runs of dead processes
    try:
        assert third.get(f"/runs/{run_id}")[1]["state"] == "running"
        status, body = third.post(f"/envs/{iid}/step", {"action": 0})
        assert status == 200 and body["run_progress"]["step_num"] == 2, body
    finally:
        third.stop()
    # A front that stops leaves the cluster's instances to the others.
    assert a.post(f"/envs/{iid}/step", {"action": 0})[0] == 200


def kill_actor(ray_address: str, instance_id: str) -> None:
    """ray.kill from a driver of its own, as a crash would (no dispose, the run left open); then until
    the cluster no longer names the actor (ray.kill returns before it is dead), within a bound."""
    script = ("import ray, sys, time\n"
              "ray.init(address=sys.argv[1], namespace='gymsite', log_to_driver=False)\n"
              "ray.kill(ray.get_actor(sys.argv[2]), no_restart=True)\n"
              "deadline = time.monotonic() + 60\n"
              "while sys.argv[2] in ray.util.list_named_actors() and time.monotonic() < deadline:\n"
              "    time.sleep(0.1)\n"
              "sys.exit(sys.argv[2] in ray.util.list_named_actors())")
    done = subprocess.run([sys.executable, "-c", script, ray_address, instance_id], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, **RAY_ENV))
    assert done.returncode == 0, f"the actor was not killed within 60 s: {done.stderr[-2000:]}"
