"""gymsite's env engine: Gymnasium instances served over REST and MCP."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gymenv.programmatic import GymHTTPServer, GymService

__all__ = ["GymHTTPServer", "GymService"]


def __getattr__(name: str):
    # Lazy, so `import gymenv` inside Django's app loading stays cheap and side-effect free.
    if name in __all__:
        from gymenv import programmatic

        return getattr(programmatic, name)
    raise AttributeError(name)
