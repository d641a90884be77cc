"""The ledger's promise with a real server: SIGKILL mid-run loses no answered step, and the restart closes the run."""

import signal
import threading
import time

import httpx2

ARGS = ["--env", "CartPole-v1", "--num-episodes", "1000", "--max-steps-per-episode", "30"]


def test_a_sigkilled_server_loses_no_answered_step_and_its_restart_closes_the_run(spawn):
    first = spawn(ARGS)
    client = httpx2.Client(base_url=first.base, timeout=10)
    run_id = client.get("/run/status").json()["run_id"]
    answered, failed = [], []

    def drive():
        try:
            client.post("/reset", json={"seed": 0})
            while True:
                r = client.post("/step", json={"action": len(answered) % 2})
                if r.status_code != 200:
                    failed.append(r.text)
                    return
                answered.append(1)
                if r.json()["done"]:
                    client.post("/reset", json={})
        except httpx2.HTTPError:
            return  # the server is gone

    driver = threading.Thread(target=drive)
    driver.start()
    deadline = time.monotonic() + 60
    while len(answered) < 150:
        assert time.monotonic() < deadline and driver.is_alive(), failed
        time.sleep(0.005)
    first.proc.send_signal(signal.SIGKILL)  # mid-run: a step is very likely in flight
    driver.join(timeout=30)
    first.proc.wait(timeout=10)
    assert not failed, failed

    second = spawn(ARGS)  # the same database
    history = httpx2.get(f"{second.base}/runs/{run_id}", timeout=10).json()
    assert history["state"] == "error" and history["error"] == "interrupted"
    recorded = sum(e["total_steps"] for e in history["episodes"])
    # Every answered step is there, the open episode's included; at most one more, whose answer was cut off.
    assert len(answered) <= recorded <= len(answered) + 1
    assert httpx2.get(f"{second.base}/run/status", timeout=10).json()["run_id"] != run_id
