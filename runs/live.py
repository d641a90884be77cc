"""This process's live run managers, by run id: /runs/{id} overlays a live run's open episode, and
start-up housekeeping must not close a live run. Weak: a manager dropped without close() leaves."""

from __future__ import annotations

import threading
import weakref
from typing import Protocol


class RunManager(Protocol):
    """What the registry's readers ask of a live run (runs.manager.RunManager is one)."""

    def live_episode(self, run_id: str): ...


_live: weakref.WeakValueDictionary[str, RunManager] = weakref.WeakValueDictionary()
_lock = threading.Lock()


def live_manager(run_id: str) -> RunManager | None:
    with _lock:
        return _live.get(str(run_id))


def live_run_ids() -> list[str]:
    with _lock:
        return list(_live.keys())


def register(run_id: str, manager: RunManager) -> None:
    with _lock:
        _live[run_id] = manager


def unregister(run_id: str, manager: RunManager) -> None:
    with _lock:
        if _live.get(run_id) is manager:
            del _live[run_id]
