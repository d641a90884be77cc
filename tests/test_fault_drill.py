"""The fault drill (issue 8): a runserver_gym SIGKILLed under several clients loses no answered step and
its restart closes the runs as interrupted; on PostgreSQL, the ledger's connections killed mid-run cost
no answered step and no run, and a step that could not be recorded is never answered 200."""

import http.client
import json
import os
import signal
import threading
import time
from urllib.parse import urlsplit

import pytest

ARGS = ["--env", "CartPole-v1", "--num-episodes", "1000", "--max-steps-per-episode", "25", "--max-instances", "16"]
CLIENTS, STEPS_BEFORE_KILL, WAIT = 6, 600, 60
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))


class Client:
    """One agent on its own instance, over its own HTTP connection: what the server answered it."""

    def __init__(self, base: str):
        url = urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=WAIT)
        self.answered: list[tuple[str, int, int, float]] = []  # (run_id, episode, step, reward), each answered 200
        self.refused: list[tuple[int, dict]] = []

    def call(self, method: str, path: str, body=None) -> tuple[int, dict]:
        self.conn.request(method, path, None if body is None else json.dumps(body),
                          {"Content-Type": "application/json"})
        response = self.conn.getresponse()
        return response.status, json.loads(response.read())

    def drive(self, stop: threading.Event) -> None:
        """Steps and resets until stopped or the server is gone."""
        try:
            status, body = self.call("POST", "/envs", {})
            assert status == 201, body
            prefix = f"/envs/{body['instance_id']}"
            seed = 0
            while not stop.is_set():
                self.call("POST", f"{prefix}/reset", {"seed": seed})
                seed, done = seed + 1, False
                while not done and not stop.is_set():
                    status, body = self.call("POST", f"{prefix}/step", {"action": len(self.answered) % 2})
                    if status != 200:
                        self.refused.append((status, body))
                        return
                    progress = body["run_progress"]
                    self.answered.append((progress["run_id"], progress["episode_num"], progress["step_num"],
                                          body["reward"]))
                    done = body["done"]
        except (OSError, http.client.HTTPException):
            return  # the server is gone, maybe in the middle of an answer (IncompleteRead)
        finally:
            self.conn.close()


def load(base: str, clients: int, stop: threading.Event) -> tuple[list[Client], list[threading.Thread]]:
    agents = [Client(base) for _ in range(clients)]
    threads = [threading.Thread(target=a.drive, args=(stop,)) for a in agents]
    for t in threads:
        t.start()
    return agents, threads


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {WAIT} s"
        time.sleep(0.01)


def get(base: str, path: str) -> dict:
    client = Client(base)
    try:
        return client.call("GET", path)[1]
    finally:
        client.conn.close()


def recorded_steps(base: str, run_id: str) -> dict[tuple[str, int, int], float]:
    """Every step the ledger holds for a run, read back through a server on its database."""
    client, found = Client(base), {}
    run = get(base, f"/runs/{run_id}")
    for episode in run["episodes"]:
        page = 1
        while True:
            _, steps = client.call("GET", f"/runs/{run_id}/episodes/{episode['episode_num']}/steps"
                                          f"?page={page}&page_size=1000")
            found.update({(run_id, episode["episode_num"], s["step_num"]): s["reward"] for s in steps["steps"]})
            if page >= steps["num_pages"]:
                break
            page += 1
    client.conn.close()
    return found


def test_a_server_sigkilled_under_several_clients_keeps_every_answered_step_and_its_restart_closes_the_runs(spawn):
    first = spawn(ARGS)
    stop = threading.Event()
    agents, threads = load(first.base, CLIENTS, stop)
    wait_for(lambda: sum(len(a.answered) for a in agents) >= STEPS_BEFORE_KILL
             or not any(t.is_alive() for t in threads), "the clients' steps")
    first.proc.send_signal(signal.SIGKILL)  # mid-load: steps are in flight on several instances
    first.proc.wait(timeout=WAIT)
    for t in threads:
        t.join(timeout=WAIT)
    assert not any(a.refused for a in agents), [a.refused for a in agents]

    second = spawn(ARGS)  # the same database: its start closes the dead process's runs
    answered = {(run, ep, step): reward for a in agents for run, ep, step, reward in a.answered}
    runs = {run for run, _, _ in answered}
    found = {}
    for run_id in runs:
        steps = recorded_steps(second.base, run_id)
        found.update(steps)
        stats = get(second.base, f"/runs/{run_id}")
        assert (stats["state"], stats["error"]) == ("error", "interrupted"), stats
        # Each episode closed with its steps summed, the one open at the kill included.
        assert [e["total_steps"] for e in stats["episodes"]] == \
            [sum(1 for _, ep, _ in steps if ep == e["episode_num"]) for e in stats["episodes"]], stats["episodes"]
    lost = {key: reward for key, reward in answered.items() if found.get(key, "missing") != reward}
    figures = f"{len(answered)} steps answered by {len(agents)} clients, {len(found)} found in the ledger, " \
              f"{len(lost)} lost"
    print(f"\nfault drill (SIGKILL, {'PostgreSQL' if ON_POSTGRES else 'SQLite'}): {figures}")
    assert len(answered) >= STEPS_BEFORE_KILL and not lost, f"{figures}: {sorted(lost)[:10]}"
    assert len(found) <= len(answered) + len(agents), f"{figures}: more than one unanswered step per client"


@pytest.mark.skipif(not ON_POSTGRES, reason="a killed database connection is a PostgreSQL failure; SQLite has none")
def test_the_ledgers_connections_killed_mid_run_cost_no_answered_step_and_no_run(spawn, server_database_url):
    import psycopg

    server = spawn(ARGS)
    stop = threading.Event()
    agents, threads = load(server.base, 1, stop)

    def sixty_more_steps() -> None:
        target = len(agents[0].answered) + 60
        wait_for(lambda: len(agents[0].answered) >= target or not threads[0].is_alive(), "the client's steps")

    kills = 0
    with psycopg.connect(server_database_url, autocommit=True) as killer:
        for _ in range(5):
            sixty_more_steps()
            kills += killer.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    sixty_more_steps()  # the run goes on after the last kill
    stop.set()
    threads[0].join(timeout=WAIT)

    agent = agents[0]
    # A step the ledger could not record is answered with an error saying so, never 200.
    assert all(status == 500 and body["code"] == "ledger_error" for status, body in agent.refused), agent.refused
    answered = {(run, ep, step): reward for run, ep, step, reward in agent.answered}
    (run_id,) = {run for run, _, _ in answered}
    found = recorded_steps(server.base, run_id)
    lost = [key for key, reward in answered.items() if found.get(key, "missing") != reward]
    status = get(server.base, f"/runs/{run_id}")
    figures = f"{kills} backends killed, {len(answered)} steps answered, {len(found)} found in the ledger, " \
              f"{len(lost)} lost, {len(agent.refused)} refused, run {status['state']}"
    print(f"\nfault drill (killed connections, PostgreSQL): {figures}")
    assert kills >= 5 and not lost and not agent.refused and status["state"] == "running", figures
    assert "connection was lost: reconnecting" in server.log(), "no write met a killed connection"
