"""The Ray backend (SPEC 16): each instance in a Ray actor, served by any gymsite process on the cluster.

An instance is a named detached actor in the `gymsite` namespace, named by its instance id, so
every front process (runserver_gym, uvicorn workers) that joins the cluster finds it by id. The
actor (`InstanceHost`) holds an ordinary `Instance` and its recorder, and runs Instance's own
`op_*` operations on its one thread (max_concurrency=1): an instance's calls stay in order on one
thread, as on the in-process owner thread, and one step is one actor call. The recorder (the run
manager) lives in the actor too, with Django configured there from the front's DATABASE_URL: the
ledger write of a step is committed before the step is answered, whichever process serves it.

Instances belong to the cluster, not to a front: a front that stops leaves them to the others;
they go when deleted, when any front's reaper finds them idle, or with the cluster. A front that
finds an instance's actor dead closes its run as `error` (the partial episode kept) through
`RaySettings.on_lost` and answers InstanceLost; the other instances are untouched.

Runs without Django: what the actors need of the project (Django's set-up, the recorder) is named
by dotted paths in RaySettings, which the composition root (gymsite/serving.py) fills in.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import ActorDiedError, GetTimeoutError, RayActorError

from gymenv.engine.core import DEFAULT_INSTANCE
from gymenv.engine.instance import Instance
from gymenv.schemas import EnvInfo
from gymenv.schemas import Instance as InstanceSummary
from gymsite.errors import EnvFailed, EnvTimeout, GymsiteError, InstanceLost, InvalidArgument, UnknownInstance

log = logging.getLogger(__name__)

NAMESPACE = "gymsite"
# Actor names are instance ids; anything else a client sends is not looked up on the cluster.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
VIEW_TIMEOUT = 2.0  # seconds a listing waits for each actor's view (see RayInstances.values)


@dataclass(frozen=True)
class RaySettings:
    address: str | None  # None: ray.init's own choice (RAY_ADDRESS, a local cluster, else a private one)
    call_timeout: float  # the bound on any wait for an actor (ServerConfig.call_timeout)
    # For the actors' processes: the front's database and settings (DATABASE_URL, GYMSITE_*, ...).
    environ: dict[str, str] = field(default_factory=dict)
    setup: str | None = None  # "module:function" run in each actor first (Django's set-up)
    recorder: str | None = None  # "module:Class" of the recorder, imported in the actor after set-up
    imports: tuple[str, ...] = ()  # modules registering envs (the operator's --import)
    # Called in the front when an instance's actor is found dead: (last known run id, reason) ->
    # whether the instance was lost (its run closed now or before for that reason) rather than deleted.
    on_lost: Callable[[str, str], bool] | None = None

    def for_actor(self) -> dict:
        """What an actor needs, as plain data: on_lost stays in the front (it would import the ledger
        before the actor has set Django up)."""
        return {"environ": self.environ, "setup": self.setup, "recorder": self.recorder, "imports": self.imports}


def import_string(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def lost_reason(instance_id: str) -> str:
    """The same words from every front, so that each can tell a lost instance's run from a deleted one's."""
    return f"instance {instance_id} was lost: the Ray actor serving it died"


def _last_line(text: str) -> str:
    lines = [line for line in str(text).splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else "no message"


# -- the actor --------------------------------------------------------------------------------------

class InstanceHost:
    """One instance inside its Ray actor. Every method answers ("ok", value) or ("error", exception):
    the domain error crosses to the front as itself, not as Ray's wrapper with a remote traceback."""

    def __init__(self, spec: dict, settings: dict):
        os.environ.update(settings["environ"])
        if settings["setup"]:
            import_string(settings["setup"])()
        for module in settings["imports"]:
            importlib.import_module(module)
        recorder = import_string(settings["recorder"]) if settings["recorder"] else None
        self.inst = Instance(**spec, recorder_factory=recorder)
        self.opened = False
        self.retired = False

    def open(self) -> tuple[str, Any]:
        """Make the env once: a second front attaching to the shared default instance finds it open."""
        def open_once() -> dict:
            if not self.opened:
                self.inst.op_open()
                self.opened = True
            return self._view(full=True)

        return self._outcome(open_once)

    def call(self, op: str, *args: Any) -> tuple[str, Any]:
        if not op.startswith("op_"):
            raise ValueError(f"not an instance operation: {op}")
        return self._outcome(getattr(self.inst, op), *args)

    def run_call(self, method: str) -> tuple[str, Any]:
        """A run control (status, statistics, reset, start, pause, resume), with the view after it."""
        def control() -> tuple[Any, dict]:
            assert self.inst.run is not None  # the front asks only when the run manager is on
            return getattr(self.inst.run, method)(), self._view(full=False)

        return self._outcome(control)

    def view(self, full: bool = False) -> dict | None:
        """What other fronts see: nothing while its front is still making the env, or once retired."""
        return self._view(full) if self.opened and not self.retired else None

    def dispose(self, reason: str, idle_before: float | None = None) -> bool:
        """The last call: end the run, close the env. False (nothing done) when retired already or,
        with `idle_before`, used since then."""
        if self.retired or (idle_before is not None and self.inst.last_used_at >= idle_before):
            return False
        self.retired = True
        self.inst.op_dispose(reason)
        return True

    def _outcome(self, fn: Callable[..., Any], *args: Any) -> tuple[str, Any]:
        if self.retired:
            return "error", UnknownInstance(f"no instance {self.inst.instance_id!r}: it was deleted or reaped")
        try:
            return "ok", fn(*args)
        except Exception as exc:  # noqa: BLE001 - handed to the front, which raises it as the in-process code would
            return "error", exc
        finally:
            self.inst.last_used_at = time.time()

    def _view(self, full: bool) -> dict:
        view: dict[str, Any] = {"summary": self.inst.summary(), "last_used_at": self.inst.last_used_at}
        if full:
            view["env_info"] = self.inst.env_info()
        return view


# -- the front's side -------------------------------------------------------------------------------

@dataclass(frozen=True)
class RemoteOp:
    """`handle.op_step` on a RayInstance: the name of the Instance operation the actor runs."""

    name: str


class RemoteRecorder:
    """The run controls of an instance's recorder, which lives in its actor (request threads call these)."""

    def __init__(self, inst: RayInstance):
        self._inst = inst

    @property
    def run_id(self) -> str:
        return str(self._inst.summary().run_id)

    def status(self) -> Any:
        return self._inst.run_call("status")

    def statistics(self) -> Any:
        return self._inst.run_call("statistics")

    def reset(self) -> Any:
        return self._inst.run_call("reset")

    def start(self) -> Any:
        return self._inst.run_call("start")

    def pause(self) -> Any:
        return self._inst.run_call("pause")

    def resume(self) -> Any:
        return self._inst.run_call("resume")


class RayInstance:
    """A front's handle on one instance's actor, with Instance's calling surface (the engine drives it
    as it drives an Instance). What it reports between calls is the actor's view at the last refresh."""

    def __init__(self, actor: Any, *, instance_id: str, env_id: str, render_mode: str | None, call_timeout: float,
                 records: bool, registry: RayInstances):
        self.actor = actor
        self.instance_id = instance_id
        self.env_id = env_id
        self.render_mode = render_mode
        self.call_timeout = call_timeout
        self.run: RemoteRecorder | None = RemoteRecorder(self) if records else None
        self.needs_reset = True
        self.last_used_at = time.time()
        self._registry = registry
        self._summary: InstanceSummary | None = None
        self._env_info: EnvInfo | None = None
        self._shared = False  # attached to another front's default instance: never retired from here

    def __getattr__(self, name: str) -> RemoteOp:
        # Instance's operations by name, whatever they are (op_step, op_render, ...): the actor runs them.
        if name.startswith("op_"):
            return RemoteOp(name)
        raise AttributeError(name)

    # -- calls --------------------------------------------------------------------------------------

    async def call(self, op: RemoteOp, *args: Any) -> Any:
        try:
            outcome = await asyncio.wait_for(self._remote(op, args), self.call_timeout)
        except asyncio.TimeoutError:
            raise self._timeout() from None
        except RayActorError as exc:
            raise await asyncio.to_thread(self._lost, exc) from None
        return self._result(op, outcome)

    def call_sync(self, op: RemoteOp, *args: Any) -> Any:
        return self._result(op, self._get(self._remote(op, args)))

    def run_call(self, method: str) -> Any:
        answer, view = self._result(None, self._get(self.actor.run_call.remote(method)))
        self.refresh(view)
        return answer

    def _remote(self, op: RemoteOp, args: tuple) -> Any:
        if op.name == "op_open":
            return self.actor.open.remote()
        # A callback (a long batch's progress report) cannot cross into the actor: the batch runs unreported.
        return self.actor.call.remote(op.name, *(None if callable(arg) else arg for arg in args))

    def _get(self, ref: Any) -> Any:
        try:
            return ray.get(ref, timeout=self.call_timeout)
        except GetTimeoutError:
            raise self._timeout() from None
        except RayActorError as exc:
            raise self._lost(exc) from None

    def _result(self, op: RemoteOp | None, outcome: tuple[str, Any]) -> Any:
        status, value = outcome
        if status == "error":
            raise value
        if op is not None and op.name == "op_open":
            self.refresh(value)
            if self._summary is not None and self._summary.env_id != self.env_id:
                self._shared = True
                raise InvalidArgument(f"the Ray cluster's default instance serves {self._summary.env_id}, not "
                                      f"{self.env_id}: start every gymsite process of a cluster with the same --env")
        return value

    def _timeout(self) -> EnvTimeout:
        return EnvTimeout(f"{self.env_id} (instance {self.instance_id}) did not answer within "
                          f"{self.call_timeout:.0f} s; the call may still finish in its Ray actor")

    def _lost(self, exc: RayActorError) -> GymsiteError:
        """The actor is gone: forget it here; close its run (kept, as `error`) unless it was deleted."""
        self._registry.pop(self.instance_id, None)
        if not isinstance(exc, ActorDiedError):  # unreachable for now (a node's network blip): it may come back
            return EnvFailed(f"the Ray actor of instance {self.instance_id} is unavailable; try again")
        if exc.actor_init_failed:
            return EnvFailed(f"the Ray actor of instance {self.instance_id} failed to start: "
                             f"{_last_line(exc.error_msg)}")
        reason = lost_reason(self.instance_id)
        on_lost = self._registry.settings.on_lost
        if self.run is not None and on_lost is not None and self._summary is not None:
            if on_lost(str(self._summary.run_id), reason):
                return InstanceLost(f"{reason}; its run {self._summary.run_id} ended in error with its partial "
                                    "episode kept; open a new instance")
            return UnknownInstance(f"no instance {self.instance_id!r}: it was deleted")
        return UnknownInstance(f"no instance {self.instance_id!r}: its Ray actor is gone (deleted, or it died)")

    # -- what the engine reads --------------------------------------------------------------------

    def refresh(self, view: dict) -> None:
        summary = view["summary"]
        self._summary = summary
        self.last_used_at = view["last_used_at"]
        self.env_id, self.render_mode, self.needs_reset = summary.env_id, summary.render_mode, summary.needs_reset
        if "env_info" in view:
            self._env_info = view["env_info"]

    def summary(self) -> InstanceSummary:
        assert self._summary is not None  # set when opened or looked up
        return self._summary

    def env_info(self) -> EnvInfo:
        assert self._env_info is not None
        return self._env_info

    def retire(self, reason: str, *, idle_before: float | None = None) -> Future | None:
        """Dispose of the instance in its actor, then end the actor. With `idle_before`, only if the
        actor was not used since (checked in the actor, so a front stepping it meanwhile wins)."""
        if self._shared or (idle_before is not None and self.last_used_at >= idle_before):
            return None
        future: Future = Future()
        if idle_before is not None:
            try:
                if not ray.get(self.actor.dispose.remote(reason, idle_before), timeout=self.call_timeout):
                    return None
            except (GetTimeoutError, RayActorError):
                return None  # busy past the bound, or gone: another round (or another front) deals with it
            self._end_actor()
            future.set_result(None)
            return future

        def dispose() -> None:
            try:
                ray.get(self.actor.dispose.remote(reason), timeout=self.call_timeout)
            except RayActorError as exc:
                self._lost(exc)  # already dead: its run is closed as lost, and deleting it is done
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                self._end_actor()
                future.set_exception(exc)
                return
            self._end_actor()
            future.set_result(None)

        threading.Thread(target=dispose, name=f"retire-{self.instance_id}", daemon=True).start()
        return future

    def _end_actor(self) -> None:
        try:
            ray.kill(self.actor, no_restart=True)
        except (RayActorError, ValueError):
            pass


class RayInstances:
    """The engine's registry with the Ray backend: the cluster's named actors, with a handle cache.
    Lookups by id reach the cluster (GCS) only on a cache miss: an instance opened by another front."""

    def __init__(self, settings: RaySettings):
        self.settings = settings
        self._cache: dict[str, RayInstance] = {}
        self._lock = threading.Lock()

    def make(self, *, instance_id: str, env_id: str, env_kwargs: dict, render_mode: str | None, policy: Any,
             recorder_factory: Any, call_timeout: float, obs_format: str | None, vector: Any = None,
             origin: Any = None) -> RayInstance:
        # recorder_factory is the in-process one: the actor imports its own (settings.recorder).
        if vector is not None or origin is not None:
            raise InvalidArgument("with --backend ray, instances are single envs opened afresh: num_envs, "
                                  "resume_run and fork_from need the local backend for now")
        spec = {"instance_id": instance_id, "env_id": env_id, "env_kwargs": env_kwargs, "render_mode": render_mode,
                "policy": policy, "call_timeout": call_timeout, "obs_format": obs_format}
        actor = host_actor().options(
            name=instance_id, namespace=NAMESPACE, lifetime="detached", get_if_exists=instance_id == DEFAULT_INSTANCE,
        ).remote(spec, self.settings.for_actor())
        return RayInstance(actor, instance_id=instance_id, env_id=env_id, render_mode=render_mode,
                           call_timeout=call_timeout, records=policy is not None and recorder_factory is not None,
                           registry=self)

    def _lookup(self, instance_id: str) -> RayInstance | None:
        """The handle of an instance another front opened, or None when the cluster has no live one."""
        try:
            actor = ray.get_actor(instance_id, namespace=NAMESPACE)
            view = ray.get(actor.view.remote(True), timeout=self.settings.call_timeout)
        except (ValueError, RayActorError, GetTimeoutError):
            return None
        if view is None:  # still being opened by its front, or retired and about to end
            return None
        summary = view["summary"]
        inst = RayInstance(actor, instance_id=instance_id, env_id=summary.env_id, render_mode=summary.render_mode,
                           call_timeout=self.settings.call_timeout, records=summary.run_id is not None, registry=self)
        inst.refresh(view)
        return inst

    def __getitem__(self, instance_id: str) -> RayInstance:
        inst = self._cache.get(instance_id)
        if inst is None:
            if not isinstance(instance_id, str) or not _ID.fullmatch(instance_id):
                raise KeyError(instance_id)
            inst = self._lookup(instance_id)
            if inst is None:
                raise KeyError(instance_id)
            with self._lock:
                inst = self._cache.setdefault(instance_id, inst)
        return inst

    def __setitem__(self, instance_id: str, inst: RayInstance) -> None:
        with self._lock:
            self._cache[instance_id] = inst

    def __delitem__(self, instance_id: str) -> None:
        self.pop(instance_id)

    def pop(self, instance_id: str, default: Any = None) -> Any:
        with self._lock:
            return self._cache.pop(instance_id, default)

    def __len__(self) -> int:
        return len(self._names())

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def values(self) -> list[RayInstance]:
        """Every live instance on the cluster, each handle refreshed (one actor call each, in parallel).
        An actor still busy after VIEW_TIMEOUT (a long env call ahead of the view in its queue) is
        listed as last seen: listings and /health must not wait on the slowest env."""
        handles = []
        for name in self._names():
            try:
                handles.append(self[name])
            except KeyError:
                continue
        refs = [inst.actor.view.remote() for inst in handles]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=VIEW_TIMEOUT) if refs else ([], [])
        answered = set(ready)
        live = []
        for inst, ref in zip(handles, refs, strict=True):
            if ref not in answered:
                if inst._summary is not None:  # seen open before
                    live.append(inst)
                continue
            try:
                view = ray.get(ref)
            except RayActorError:
                continue  # it died: its next call says what became of it
            if view is not None:
                inst.refresh(view)
                live.append(inst)
        return live

    def detach_all(self) -> list[RayInstance]:
        """A front stopping closes nothing: the cluster's instances stay for the other fronts."""
        with self._lock:
            self._cache.clear()
        return []

    @staticmethod
    def _names() -> list[str]:
        return ray.util.list_named_actors()  # this process's namespace: gymsite's (connect)


_host_actor: Any = None


def host_actor() -> Any:
    """InstanceHost as a Ray actor class: one thread per instance, no CPU reserved (an env mostly waits
    for its client, and reserving one would cap instances at the cluster's CPUs), spread over the nodes."""
    global _host_actor
    if _host_actor is None:
        decorate: Any = ray.remote(  # type: ignore[call-overload]
            max_concurrency=1, num_cpus=0, max_restarts=0, scheduling_strategy="SPREAD")
        _host_actor = decorate(InstanceHost)
    return _host_actor


def connect(address: str | None) -> None:
    """Join the Ray cluster (once per process), in the gymsite namespace."""
    if not ray.is_initialized():
        ray.init(address=address, namespace=NAMESPACE, log_to_driver=False, logging_level=logging.WARNING)


class RayBackend:
    """EngineConfig.backend for `--backend ray`: joins the cluster and gives the engine its registry."""

    def __init__(self, settings: RaySettings):
        self.settings = settings

    def __call__(self) -> RayInstances:
        connect(self.settings.address)
        return RayInstances(self.settings)
