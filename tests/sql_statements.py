"""The SQL statements a block of code sends, in order: through Django's cursors and straight to the
DB-API connection, which the ledger's step path uses (runs/services.py), so Django's
CaptureQueriesContext alone would miss them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection

# Transaction control: SQLite's is sent as statements, PostgreSQL's is not.
CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def sql_statements() -> Iterator[list[str]]:
    """The first word of each statement this thread sends (an executemany counts once), without
    transaction control."""
    seen: list[str] = []

    def through_django(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    connection.ensure_connection()
    raw = connection.connection
    connection.connection = _Counting(raw, seen)
    try:
        with connection.execute_wrapper(through_django):
            yield (kinds := [])
    finally:
        connection.connection = raw
        kinds.extend(word for word in (sql.split()[0].upper() for sql in seen) if word not in CONTROL)


class _Counting:
    def __init__(self, raw: Any, seen: list[str]):
        self._raw, self._seen = raw, seen

    def execute(self, sql: str, params: Any = ()) -> Any:
        self._seen.append(sql)
        return self._raw.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)
