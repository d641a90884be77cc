"""The env engine: live instances, each on its own owner thread. It runs without Django; the ledger
reaches it only through the recorder port (gymenv/engine/recorder.py)."""

from gymenv.engine.core import DEFAULT_INSTANCE, Engine, EngineConfig
from gymenv.engine.instance import Instance
from gymenv.engine.recorder import EpisodeRecorder, RecorderFactory, RecorderSpec, RunPolicy

__all__ = ["DEFAULT_INSTANCE", "Engine", "EngineConfig", "EpisodeRecorder", "Instance", "RecorderFactory",
           "RecorderSpec", "RunPolicy"]
