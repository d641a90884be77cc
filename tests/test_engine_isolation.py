"""A slow env must stall nobody else: each instance has its own owner thread, the event loop stays free."""

import threading
import time


def test_a_one_second_step_delays_neither_health_nor_another_instance(serve):
    srv = serve(env_id="SlowToy-v0", allow_env=("CartPole-v1",))
    fast = srv.post("/envs", {"env_id": "CartPole-v1"}).body["instance_id"]
    srv.post("/reset", {})
    srv.post(f"/envs/{fast}/reset", {"seed": 0})

    slow_reply = {}
    slow = threading.Thread(target=lambda: slow_reply.update(r=srv.post("/step", {"action": 0})))
    began = time.monotonic()
    slow.start()
    time.sleep(0.1)  # the slow step is now inside env.step()

    health, steps = [], []
    while time.monotonic() - began < 0.8:
        t = time.perf_counter()
        assert srv.get("/health").status == 200
        health.append(time.perf_counter() - t)
        t = time.perf_counter()
        r = srv.post(f"/envs/{fast}/step", {"action": 0})
        steps.append(time.perf_counter() - t)
        if r.body["done"]:
            srv.post(f"/envs/{fast}/reset", {})
    slow.join(timeout=10)

    assert slow_reply["r"].status == 200 and time.monotonic() - began >= 1.0
    assert len(health) > 20, "the other routes were starved while the slow env stepped"
    # Worst case over ~hundreds of requests: a few milliseconds plus scheduling noise on a busy CI box.
    assert max(health) < 0.05, max(health)
    assert max(steps) < 0.05, max(steps)


def test_calls_on_one_instance_run_in_order_on_its_owner_thread(serve):
    srv = serve(env_id="CartPole-v1")
    inst = srv.engine.get("default")
    names = {inst.call_sync(lambda: threading.current_thread().name) for _ in range(5)}
    assert len(names) == 1 and names != {threading.current_thread().name}
