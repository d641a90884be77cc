"""Small envs that make the engine's edge cases reproducible: a blocking one, one that raises, one with odd spaces."""

import threading

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class BlockingEnv(gym.Env):
    """Each step waits until the test sets `release` (bounded): the isolation test's load."""

    metadata = {"render_modes": ["ansi"]}
    entered = threading.Event()  # set once a step is inside env.step()
    release = threading.Event()

    def __init__(self, render_mode=None):
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Box(0, 1000, (1,), np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.entered.set()
        if not self.release.wait(timeout=30):
            raise TimeoutError("the test never released the step")
        self.t += 1
        return np.array([self.t], np.float32), 1.0, False, False, {}

    def render(self):
        return f"t={self.t}"


class ExplodingEnv(gym.Env):
    """Raises on the step numbered `explode_at`: an env bug the server must report, not die of."""

    metadata = {"render_modes": []}

    def __init__(self, explode_at: int = 2):
        self.explode_at = explode_at
        self.action_space = spaces.Discrete(2)
        self.observation_space = spaces.Discrete(100)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return 0, {}

    def step(self, action):
        self.t += 1
        if self.t >= self.explode_at:
            raise RuntimeError("the physics engine diverged")
        return self.t, 0.5, False, False, {"note": np.float32(np.nan)}


class DictActionEnv(gym.Env):
    """A Dict action space and a non-finite observation: the codec through the whole server."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.action_space = spaces.Dict(
            {"move": spaces.Discrete(4, start=-1), "force": spaces.Box(-1, 1, (2,), np.float32)})
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.array([0.0, np.inf]), {}

    def step(self, action):
        obs = np.array([float(action["move"]), float(action["force"][0])])
        return obs, 1.0, bool(action["move"] == 2), False, {"is_success": bool(action["move"] == 2)}


class PixelsEnv(gym.Env):
    """Seeded random pixels, HxWxC (or HxW), and a Dict of an image and a vector: the obs formats' load."""

    metadata = {"render_modes": []}

    def __init__(self, shape=(12, 10, 3), with_vector: bool = False):
        image = spaces.Box(0, 255, tuple(shape), np.uint8)
        self.with_vector = with_vector
        self.observation_space = (spaces.Dict({"image": image, "vector": spaces.Box(-1, 1, (2,), np.float32)})
                                  if with_vector else image)
        self.action_space = spaces.Discrete(3)

    def _obs(self):
        image = self.np_random.integers(0, 256, self.observation_space["image"].shape if self.with_vector
                                        else self.observation_space.shape, dtype=np.uint8)
        if self.with_vector:
            return {"image": image, "vector": self.np_random.uniform(-1, 1, 2).astype(np.float32)}
        return image

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), float(action), False, False, {}


class DriftingEnv(gym.Env):
    """Deterministic for its seed within one instance, not across instances: every make starts a new
    offset, so a replay in a fresh env diverges at step 3 (what verify, resume and fork must catch)."""

    metadata = {"render_modes": []}
    makes = 0

    def __init__(self):
        DriftingEnv.makes += 1
        self.offset = DriftingEnv.makes
        self.observation_space = spaces.Box(-1e9, 1e9, (1,), np.float64)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([float(seed or 0)]), {}

    def step(self, action):
        self.t += 1
        return np.array([float(self.t + (self.offset if self.t >= 3 else 0))]), 1.0, False, False, {}


class GraphObsEnv(gym.Env):
    """A Graph observation: what Minari cannot store."""

    metadata = {"render_modes": []}

    def __init__(self):
        self.observation_space = spaces.Graph(node_space=spaces.Discrete(3), edge_space=None)
        self.action_space = spaces.Discrete(2)

    def _obs(self):
        return spaces.GraphInstance(nodes=np.array([0, 1]), edges=None, edge_links=None)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        return self._obs(), 1.0, False, False, {}


for _id, _cls in (("BlockingToy-v0", BlockingEnv), ("DriftingToy-v0", DriftingEnv), ("GraphToy-v0", GraphObsEnv),
                  ("ExplodingToy-v0", ExplodingEnv), ("DictToy-v0", DictActionEnv),
                  ("PixelsToy-v0", PixelsEnv)):
    if _id not in gym.registry:
        gym.register(_id, entry_point=f"{__name__}:{_cls.__name__}", max_episode_steps=50)
if "MissingDependencyToy-v0" not in gym.registry:
    # Registered, but making it imports a module that needs what is not installed, whatever extras are.
    gym.register("MissingDependencyToy-v0", entry_point="tests.env_with_missing_dependency:Env")
