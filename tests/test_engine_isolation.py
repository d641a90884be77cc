"""A blocked env must stall nobody else: each instance has its own owner thread, the event loop stays free."""

import threading

from tests.toy_envs import BlockingEnv


def test_a_step_blocked_in_its_env_delays_neither_health_nor_another_instance(serve):
    srv = serve(env_id="BlockingToy-v0", allow_env=("CartPole-v1",))
    fast = srv.post("/envs", {"env_id": "CartPole-v1"}).body["instance_id"]
    srv.post("/reset", {})
    srv.post(f"/envs/{fast}/reset", {"seed": 0})
    BlockingEnv.entered.clear()
    BlockingEnv.release.clear()

    slow_reply = {}
    slow = threading.Thread(target=lambda: slow_reply.update(r=srv.post("/step", {"action": 0})))
    slow.start()
    try:
        assert BlockingEnv.entered.wait(timeout=10), "the blocking step never reached env.step()"
        for _ in range(20):  # each would wait for the blocked step, and time out, if they shared a thread
            assert srv.client.get(srv.base + "/health", timeout=5).status_code == 200
            r = srv.client.post(f"{srv.base}/envs/{fast}/step", json={"action": 0}, timeout=5)
            assert r.status_code == 200, r.text
            if r.json()["done"]:
                srv.client.post(f"{srv.base}/envs/{fast}/reset", json={}, timeout=5)
        assert slow.is_alive() and "r" not in slow_reply  # all of that while the step was still blocked
    finally:
        BlockingEnv.release.set()
        slow.join(timeout=10)
    assert slow_reply["r"].status == 200


def test_calls_on_one_instance_run_in_order_on_its_owner_thread(serve):
    srv = serve(env_id="CartPole-v1")
    inst = srv.engine.get("default")
    names = {inst.call_sync(lambda: threading.current_thread().name) for _ in range(5)}
    assert len(names) == 1 and names != {threading.current_thread().name}
