"""The owner thread: one per instance, running that instance's env calls in order until it is closed."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from gymsite.errors import InstanceClosed

log = logging.getLogger(__name__)
_STOP = object()


class OwnerThread:
    """Runs the calls put to it, in order, on one thread (GL renderers give black frames off the
    thread that first rendered). Leaner than a one-worker ThreadPoolExecutor plus wrap_future (on
    the step path the hand-off is most of what the engine adds), with the same closed state: once
    closed, `put` refuses at once instead of queueing a call that would never run.
    """

    def __init__(self, name: str):
        self.name = name
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, call: Callable[[], None]) -> None:
        with self._lock:
            if self._closed:
                raise InstanceClosed(f"instance thread {self.name} is closed: the instance was deleted or reaped")
            self._calls.put(call)

    def close(self, last: Callable[[], None] | None = None) -> bool:
        """Refuse new calls; `last` runs after those already queued, then the thread ends.
        False when it was closed already (and `last` was not queued)."""
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            if last is not None:
                self._calls.put(last)
            self._calls.put(_STOP)
            return True

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        while (call := self._calls.get()) is not _STOP:
            try:
                call()
            except Exception:
                log.exception("a call on %s failed outside its caller's reach", self.name)
