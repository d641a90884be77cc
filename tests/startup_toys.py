"""Envs that fail to be made as the optional families do when their dependency is missing, whatever is
installed here (`--import tests.startup_toys`): the start-up hints' tests."""

import gymnasium as gym
from gymnasium.error import DependencyNotInstalled


class NeedsBox2DEnv(gym.Env):
    def __init__(self, render_mode=None):
        # gymnasium's own words when LunarLander's module cannot import Box2D.
        raise DependencyNotInstalled('Box2D is not installed, you can install it by run `pip install swig` followed '
                                     'by `pip install "gymnasium[box2d]"`')


class NeedsOSMesaEnv(gym.Env):
    def __init__(self, render_mode=None):
        # What PyOpenGL raises under MUJOCO_GL=osmesa when libOSMesa cannot be loaded (importing mujoco).
        raise AttributeError("'NoneType' object has no attribute 'glGetError'")


for _id, _cls in (("NeedsBox2DToy-v0", NeedsBox2DEnv), ("NeedsOSMesaToy-v0", NeedsOSMesaEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=f"{__name__}:{_cls.__name__}")
