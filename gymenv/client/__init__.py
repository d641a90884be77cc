"""Clients that are Gymnasium envs (SPEC 13): RemoteEnv and RemoteVectorEnv drive a gymsite server over
REST. They need gymnasium and numpy only: no Django, no server-side set-up."""

import gymnasium

from gymenv.client.env import RemoteEnv
from gymenv.client.http import RemoteError
from gymenv.client.vector import RemoteVectorEnv

__all__ = ["RemoteEnv", "RemoteError", "RemoteVectorEnv"]

# gymnasium.make("gymsite/Remote-v0", url=..., env_id=...) once this module is imported.
if "gymsite/Remote-v0" not in gymnasium.registry:
    gymnasium.register("gymsite/Remote-v0", entry_point="gymenv.client.env:RemoteEnv")
