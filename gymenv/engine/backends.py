"""Where instances live: the seam between the engine's registry and the instances themselves.

The engine keeps its instances in an `InstanceMap`, a mapping from instance id to a live instance
that also makes new ones. `LocalInstances` is the default: a dict of in-process `Instance`s, each on
its own owner thread. `gymenv/ray_backend.py` is the other: each instance in a Ray actor, found by
id from any process on the cluster. Both hand the engine objects with Instance's calling surface
(`call`, `call_sync`, `retire`, `summary`, `env_info`, `run`, the `op_*` operations), so the engine
does not know which it drives.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from gymenv.engine.instance import Instance
from gymenv.engine.recorder import RunOrigin
from gymenv.engine.vector import VectorInstance, VectorOptions


class InstanceMap(Protocol):
    """The engine's registry (read and written under the engine's lock)."""

    def make(self, **spec: Any) -> Instance:
        """A new instance for Instance's keyword arguments, not yet opened nor registered."""
        ...

    def detach_all(self) -> list[Instance]:
        """Empty the registry on shutdown; returns the instances this process must close."""
        ...

    def __getitem__(self, key: str, /) -> Instance: ...

    def __setitem__(self, key: str, value: Instance, /) -> None: ...

    def __delitem__(self, key: str, /) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[str]: ...

    def values(self) -> Any: ...

    def pop(self, key: str, default: None, /) -> Instance | None: ...


class LocalInstances(dict[str, Instance]):
    """Today's registry: the instances of this process, each on its own owner thread."""

    def make(self, *, vector: VectorOptions | None = None, origin: RunOrigin | None = None, **spec: Any) -> Instance:
        return Instance(**spec, origin=origin) if vector is None else VectorInstance(vector=vector, **spec)

    def detach_all(self) -> list[Instance]:
        instances = list(self.values())
        self.clear()
        return instances
