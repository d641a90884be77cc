"""Owner threads cannot hang a caller: closed threads refuse at once, waits are bounded, counts are exact.

These run on the engine alone (no Django, no database): the recorder port is what the ledger plugs into.
"""

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from gymenv.engine import DEFAULT_INSTANCE, Engine
from gymenv.engine.owner import OwnerThread
from gymsite import serving
from gymsite.errors import EnvTimeout, InstanceClosed

BOUND = 10  # seconds: every wait in these tests is bounded; none comes near it when the code is right


def engine(**options) -> Engine:
    config = serving.ServerConfig(env_id="CartPole-v1", run_manager=False, **options)
    started = Engine(serving.engine_config(config))
    started.start()
    return started


@pytest.fixture
def cartpole():
    made = engine(allow_env=("CartPole-v1",), idle_timeout=60)
    yield made
    made.shutdown()


def test_a_closed_owner_thread_refuses_a_call_at_once_instead_of_queueing_it_for_ever():
    owner = OwnerThread("t")
    ran = threading.Event()
    assert owner.close(ran.set)
    with pytest.raises(InstanceClosed):
        owner.put(lambda: None)
    assert ran.wait(BOUND) and owner.join(BOUND)


def test_calls_queued_before_close_still_run_in_order_before_the_last_one():
    owner = OwnerThread("t")
    gate, order = threading.Event(), []
    owner.put(lambda: gate.wait(BOUND))
    for n in range(3):
        owner.put(lambda n=n: order.append(n))
    owner.close(lambda: order.append("last"))
    assert not owner.close(lambda: order.append("twice"))  # closing again queues nothing
    gate.set()
    assert owner.join(BOUND) and order == [0, 1, 2, "last"]


def test_a_request_whose_instance_is_reaped_between_lookup_and_call_is_told_so(cartpole):
    iid = cartpole.create_sync().instance_id
    inst = cartpole.get(iid)  # a request has looked its instance up...
    assert cartpole.reap_idle(now=inst.last_used_at + 3600) == [iid]  # ...and the reaper closes it now
    with pytest.raises(InstanceClosed):
        asyncio.run(asyncio.wait_for(inst.call(inst.op_sample), BOUND))


def test_the_reaper_never_closes_an_instance_with_a_call_in_flight(cartpole):
    inst = cartpole.create_sync()
    inside, release = threading.Event(), threading.Event()
    future = inst.submit(lambda: (inside.set(), release.wait(BOUND)))
    assert inside.wait(BOUND) and inst.in_flight == 1
    assert cartpole.reap_idle(now=inst.last_used_at + 3600) == []
    release.set()
    future.result(BOUND)
    assert inst.in_flight == 0
    assert cartpole.reap_idle(now=inst.last_used_at + 3600) == [inst.instance_id]


def test_in_flight_counts_exactly_under_concurrent_callers(cartpole):
    inst = cartpole.get(DEFAULT_INSTANCE)
    gate = threading.Event()
    blocker = inst.submit(lambda: gate.wait(BOUND))
    with ThreadPoolExecutor(8) as pool:
        queued = list(pool.map(lambda _: inst.submit(lambda: None), range(400)))
        assert inst.in_flight == 401
        gate.set()
        blocker.result(BOUND)
        for f in queued:
            f.result(BOUND)
    assert inst.in_flight == 0


def test_a_hung_env_call_answers_env_timeout_within_its_bound_and_the_instance_lives_on():
    made = engine(call_timeout=0.2)
    try:
        inst = made.get(DEFAULT_INSTANCE)
        release = threading.Event()
        with pytest.raises(EnvTimeout):
            asyncio.run(inst.call(lambda: release.wait(BOUND)))
        with pytest.raises(EnvTimeout):
            inst.call_sync(lambda: release.wait(BOUND))
        release.set()
        assert inst.call_sync(lambda: "answered") == "answered"
    finally:
        made.shutdown()


def test_shutdown_closes_every_instance_and_later_calls_are_refused(cartpole):
    inst = cartpole.create_sync()
    cartpole.shutdown()
    assert inst.join(BOUND) and cartpole.instances() == []
    with pytest.raises(InstanceClosed):
        inst.call_sync(inst.op_sample)
