"""The ledger writer: every run-manager write goes through it, one writer at a time.

How a write is committed depends on what a commit costs:
- PostgreSQL: one writer thread, group commit. Writes queued while a transaction commits go into
  the next one, so the per-commit WAL flush is shared by all instances stepping at that moment,
  over one DB connection however many instances are live (max_connections defaults to 100).
- SQLite: a commit is a WAL append (synchronous=NORMAL: no fsync), cheaper than handing the write
  to another thread and back (two cross-core wake-ups, most of the ledger's cost per step). So the
  caller commits on its own thread, under one process-wide lock: SQLite has a single write lock,
  and callers racing for it would sleep in its busy handler's 1, 2, 5, 10... ms steps.
Either way a caller gets its answer only after the transaction holding its write has committed,
which is what "an answered step is never lost" needs. The writer thread's queue is bounded: a
stalled database makes callers wait (backpressure) instead of growing memory.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connection, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from gymsite.errors import LedgerFailed

log = logging.getLogger(__name__)

T = TypeVar("T")
_STOP = object()


class LedgerWriter:
    def __init__(self, *, max_queue: int = 1024, max_batch: int = 256, timeout: float = 60.0,
                 idle_close: float = 1.0, inline: bool | None = None):
        # None: commit inline on SQLite, through the writer thread elsewhere (see the module docstring).
        self.inline = inline
        self.max_batch = max_batch
        self.timeout = timeout
        # An idle writer gives its connection back (a test database can then be dropped; an idle
        # server holds none); reconnecting after a pause costs about a millisecond.
        self.idle_close = idle_close
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        # Re-entrant: a write made from inside a write (on SQLite) must not deadlock.
        self._inline_lock = threading.RLock()

    def call(self, fn: Callable[[], T], *, single_statement: bool = False) -> T:
        """Run `fn` (ORM writes) in one transaction; return its result once committed.

        `single_statement`: `fn` makes one write, which autocommit commits by itself (on the
        step path, an explicit transaction around it cost more than the INSERT).
        """
        db = connections[DEFAULT_DB_ALIAS]  # once: each read through the `connection` proxy is a thread-local lookup
        if self.inline if self.inline is not None else db.vendor == "sqlite":
            with self._inline_lock:
                try:
                    if single_statement:
                        return _once_more_if_disconnected(fn, db)
                    return _once_more_if_disconnected(lambda: _atomically(fn), db)
                except Exception:
                    self._recover_connection()
                    raise
        if threading.current_thread() is self._thread:
            with transaction.atomic():  # a write made from inside a write: no queue, no deadlock
                return fn()
        future: Future = Future()
        self._ensure_started()
        try:
            self._queue.put((fn, future), timeout=self.timeout)
            return future.result(timeout=self.timeout)
        except (queue.Full, FutureTimeout):
            raise LedgerFailed(f"the database did not commit a ledger write within {self.timeout:.0f} s") from None

    def stop(self) -> None:
        """Commit what is queued, close the writer's DB connection and end the thread (it restarts on demand)."""
        with self._start_lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=self.timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                # Daemon: a server killed mid-write loses only writes nobody has been answered for.
                self._thread = threading.Thread(target=self._loop, name="ledger-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.idle_close)
                except queue.Empty:
                    connection.close()
                    item = self._queue.get()
                if item is _STOP:
                    return
                batch = [item]
                stop = False
                while len(batch) < self.max_batch:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is _STOP:
                        stop = True
                        break
                    batch.append(more)
                self._commit(batch)
                if stop:
                    return
        finally:
            connection.close()

    def _commit(self, batch: list[tuple[Callable[[], Any], Future]]) -> None:
        try:
            results = _once_more_if_disconnected(lambda: _atomically(lambda: [fn() for fn, _ in batch]))
        except Exception as exc:  # noqa: BLE001 - reported to the caller whose write failed
            self._recover_connection()
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            # One bad write rolled back the whole group: commit the writes one by one so that
            # only the caller whose write fails hears about it.
            for item in batch:
                self._commit([item])
            return
        for (_, future), result in zip(batch, results, strict=True):
            future.set_result(result)

    @staticmethod
    def _recover_connection() -> None:
        # A dropped connection (database restarted) would fail every later write: reconnect lazily.
        try:
            if connection.connection is not None and not connection.is_usable():
                connection.close()
        except Exception:
            log.exception("closing the ledger's broken database connection failed")


def _atomically(fn: Callable[[], T]) -> T:
    with transaction.atomic():
        return fn()


def _once_more_if_disconnected(write: Callable[[], T], db: BaseDatabaseWrapper | None = None) -> T:
    """Runs `write`, and once more on a new connection if the database connection was lost under it
    (a database restart, a killed backend), which rolled the write back. (Lost during COMMIT, the
    write may have landed: a retried step then meets its unique step number and fails, not doubles.)
    A statement that failed on a live connection (a constraint, bad data) is not retried. Only
    outside a transaction: inside one, the whole transaction is what has to run again.
    """
    db = db or connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    used = db.connection
    try:
        return write()
    except (OperationalError, InterfaceError):
        if db.in_atomic_block or not _connection_lost(used):
            raise
        log.warning("the ledger's database connection was lost: reconnecting to write again")
        db.close()
        return write()


def _connection_lost(used) -> bool:
    # Django drops (and reopens) a connection whose rollback failed, so the one the write used can be
    # gone already; a broken one it kept (no transaction to roll back) fails is_usable().
    current = connection.connection
    return current is None or current is not used or not connection.is_usable()


_writer = LedgerWriter()


def ledger_call(fn: Callable[[], T], *, single_statement: bool = False) -> T:
    """Commit `fn`'s writes through the process's ledger writer; returns after the commit."""
    return _writer.call(fn, single_statement=single_statement)


def ledger_stop() -> None:
    """Flush and stop the ledger writer (server shutdown, end of a test session: frees its DB connection)."""
    _writer.stop()
