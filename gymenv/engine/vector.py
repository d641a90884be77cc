"""Vector instances (SPEC 12): num_envs sub-envs made by gymnasium.make_vec, driven like any instance.

A VectorInstance is an Instance (the same owner thread, bounded calls, retirement and run controls)
whose operations step a gymnasium VectorEnv: actions are lists of num_envs, validated against the
single action space one by one; answers are lists of num_envs; `info` is as gymnasium gives it. Its
recorder (gymenv.engine.recorder.VectorRecorder) records each sub-env's episodes with its env_index.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import concatenate, create_empty_array, iterate

from gymenv import catalogue, spaces
from gymenv.engine.describe import describe_env
from gymenv.engine.instance import Instance, check_seed
from gymenv.engine.recorder import VectorRecorder
from gymenv.observations import Observation, check_format, is_image
from gymenv.schemas import (
    BatchStepOut,
    CloseOut,
    RenderOut,
    SampleOut,
    VectorEnvInfo,
    VectorResetOut,
    VectorStepOut,
)
from gymenv.schemas import Instance as InstanceSummary
from gymenv.spaces.codec import phrase_of, schema_of
from gymenv.spaces.messages import clip
from gymsite.errors import EpisodeOver, InvalidAction, InvalidArgument, ResetRequired

# The wire's names of gymnasium's AutoresetMode (whose values are "NextStep", "SameStep", "Disabled").
AUTORESET_MODES = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP,
                   "disabled": AutoresetMode.DISABLED}
VECTORIZATION_MODES = ("sync", "async")


@dataclass(frozen=True)
class VectorOptions:
    num_envs: int
    vectorization_mode: str = "sync"
    autoreset_mode: str = "next_step"

    @classmethod
    def checked(cls, *, num_envs: Any, vectorization_mode: Any, autoreset_mode: Any, max_num_envs: int,
                render_mode: Any) -> VectorOptions:
        """What a client asks for when opening a vector instance, or a 422 saying what is expected."""
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or not 2 <= num_envs <= max_num_envs:
            raise InvalidArgument(f"num_envs must be an integer from 2 to {max_num_envs} (this server's "
                                  f"--max-num-envs), got {clip(str(num_envs), 40)}")
        vectorization_mode = "sync" if vectorization_mode is None else vectorization_mode
        if vectorization_mode not in VECTORIZATION_MODES:
            raise InvalidArgument("vectorization_mode must be sync or async, "
                                  f"not {clip(str(vectorization_mode), 40)!r}")
        autoreset_mode = "next_step" if autoreset_mode is None else autoreset_mode
        if autoreset_mode not in AUTORESET_MODES:
            raise InvalidArgument("autoreset_mode must be next_step, same_step or disabled, "
                                  f"not {clip(str(autoreset_mode), 40)!r}")
        if render_mode is not None:
            raise InvalidArgument("vector instances do not render: open one without render_mode")
        return cls(num_envs, vectorization_mode, autoreset_mode)


class VectorInstance(Instance):
    """num_envs sub-envs of one env id, stepped together on the instance's owner thread."""

    run: VectorRecorder | None  # type: ignore[assignment]
    num_envs: int

    def __init__(self, *, vector: VectorOptions, **kwargs: Any):
        super().__init__(**kwargs)
        self.vector = vector
        self.num_envs = vector.num_envs
        self.venv: VectorEnv | None = None
        self.single_observation_space: gym.Space | None = None
        # next_step: the sub-envs whose next step is their reset (they ended on the last one).
        self._autoreset = np.zeros(self.num_envs, dtype=np.bool_)
        # disabled: the sub-envs that ended and wait for a reset naming them in options.reset_mask.
        self._ended = np.zeros(self.num_envs, dtype=np.bool_)

    # -- operations: run on the owner thread only -------------------------------------------

    def op_open(self) -> None:
        extra: dict[str, Any] = {}
        limit = self.policy.max_steps_per_episode if self.policy is not None else None
        spec_limit = catalogue.env_spec(self.env_id).max_episode_steps
        if limit is not None and (spec_limit is None or limit < spec_limit):
            # Each sub-env truncates itself at the run's step limit, so that its autoreset follows.
            extra["max_episode_steps"] = limit
        self.venv = gym.make_vec(self.env_id, num_envs=self.num_envs, vectorization_mode=self.vector.vectorization_mode,
                                 vector_kwargs={"autoreset_mode": AUTORESET_MODES[self.vector.autoreset_mode]},
                                 **self.env_kwargs, **extra)
        self.observation_space = self.venv.observation_space
        self.single_observation_space = self.venv.single_observation_space
        self.obs_format = ("json" if self.requested_obs_format is None
                           else check_format(self.observation_space, self.requested_obs_format))
        if self.described is None:
            self.described = self._describe(self.venv)
        self._autoreset[:] = False
        self._ended[:] = False
        self._open_recorder(catalogue.env_spec(self.env_id), self._recorder_factory)

    def op_reset(self, seed: int | None = None, options: dict | None = None,  # type: ignore[override]
                 obs_format: str | None = None, expected_episode: int | None = None) -> VectorResetOut:
        check_seed(seed)
        _single_env_only("expected_episode", expected_episode)
        if options is not None and not isinstance(options, dict):
            raise InvalidArgument("options must be a JSON object or null")
        options = dict(options or {})
        mask = self._reset_mask(options.pop("reset_mask", None))
        if self.run is not None:
            self.run.before_reset()
        if self.venv is None:
            self.op_open()
        venv = self._venv()
        fmt = self._format(obs_format)
        if mask is not None:
            options["reset_mask"] = mask
        try:
            obs, info = venv.reset(seed=seed, options=options or None)
        except Exception as exc:
            if options:
                self.op_close()
                raise InvalidArgument(f"{self.env_id} refused the reset options: {type(exc).__name__}: "
                                      f"{clip(str(exc), 200)}") from exc
            raise self._env_failed(exc) from exc
        which = np.ones(self.num_envs, dtype=np.bool_) if mask is None else mask
        progress = None
        if self.run is not None:
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
            progress = self.run.on_reset(seeds=seeds, observations=self._singles(obs),
                                         infos=split_info(info, self.num_envs),
                                         mask=None if mask is None else mask.tolist())
        self.needs_reset = False
        self.episode_over = False
        self._autoreset[which] = False
        self._ended[which] = False
        return VectorResetOut(observation=Observation(venv.observation_space, obs).wire(fmt),
                              info=spaces.to_json(info), run_progress=progress)

    def op_step(self, data: Any, obs_format: str | None = None,  # type: ignore[override]
                expected_step: int | None = None) -> VectorStepOut:
        _single_env_only("expected_step", expected_step)
        if self.venv is None or self.needs_reset:
            raise ResetRequired("call reset before step: this vector instance has no episodes in progress")
        venv = self.venv
        fmt = self._format(obs_format)
        actions = self._decode(data)
        if self.vector.autoreset_mode == "disabled" and self._ended.any():
            raise EpisodeOver(f"sub-envs {np.flatnonzero(self._ended).tolist()} ended and autoreset is disabled: "
                              'reset them with options {"reset_mask": [...]} (true for each one to reset)')
        if self.run is not None:
            self.run.before_step()
        try:
            obs, rewards, terminated, truncated, info = venv.step(actions)
        except Exception as exc:
            raise self._env_failed(exc) from exc
        rewards = np.asarray(rewards, dtype=np.float64)
        finite = [float(r) if np.isfinite(r) else None for r in rewards]
        ended = np.logical_or(terminated, truncated)
        info_json = spaces.to_json(info)
        progress = None
        if self.run is not None:
            progress = self._record(data, obs, finite, terminated, truncated, ended, info)
        if self.vector.autoreset_mode == "next_step":
            self._autoreset = ended
        elif self.vector.autoreset_mode == "disabled":
            self._ended |= ended
        return VectorStepOut(observation=Observation(venv.observation_space, obs).wire(fmt), reward=finite,
                             terminated=terminated.tolist(), truncated=truncated.tolist(), done=ended.tolist(),
                             info=info_json, run_progress=progress)

    def op_step_batch(self, data: list, obs_format: str | None = None, last_only: bool = False,
                      progress: Any = None, expected_step: int | None = None) -> BatchStepOut:
        raise InvalidArgument(f"a vector instance takes one step at a time: send action as a list of {self.num_envs} "
                              "actions (one per sub-env), not actions")

    def op_render(self, mode: str | None = None) -> RenderOut:
        raise InvalidArgument("vector instances do not render; open a single instance to look at the env")

    def op_close(self) -> CloseOut:
        if self.venv is not None:
            venv, self.venv = self.venv, None
            venv.close()
        self.needs_reset = True
        self.episode_over = False
        return CloseOut()

    def op_sample(self) -> SampleOut:
        venv = self._venv()
        single = venv.single_action_space
        sample = venv.action_space.sample()
        return SampleOut(action=[spaces.encode(single, a) for a in iterate(venv.action_space, sample)])

    # -- helpers ------------------------------------------------------------------------------

    def _record(self, data: list, obs: Any, rewards: list, terminated: np.ndarray, truncated: np.ndarray,
                ended: np.ndarray, info: dict):
        """What the recorder needs of one step: each sub-env's step (an ended sub-env's last observation
        and info, with same_step), then the episodes that start in this step."""
        assert self.run is not None and self.single_observation_space is not None
        single = self.single_observation_space
        observations = self._singles(obs)
        infos = split_info(info, self.num_envs)
        resets: list[tuple[int, Any, dict]] = []
        mode = self.vector.autoreset_mode
        if mode == "next_step":
            resets = [(i, observations[i], infos[i]) for i in np.flatnonzero(self._autoreset).tolist()]
        elif mode == "same_step" and ended.any():
            final_infos = split_info(info["final_info"], self.num_envs)
            for i in np.flatnonzero(ended).tolist():
                resets.append((i, observations[i], {k: v for k, v in infos[i].items()
                                                    if k not in ("final_obs", "final_info")}))
                final = Observation(single, info["final_obs"][i])
                observations[i] = final if isinstance(observations[i], Observation) else final.json()
                infos[i] = final_infos[i]
        return self.run.on_step(actions=data, observations=observations, rewards=rewards,
                                terminated=terminated.tolist(), truncated=truncated.tolist(), infos=infos,
                                resets=resets)

    def _decode(self, data: Any) -> Any:
        venv = self.venv
        assert venv is not None
        single = venv.single_action_space
        if not isinstance(data, list) or len(data) != self.num_envs:
            given = f"a list of {len(data)}" if isinstance(data, list) else f"a JSON {type(data).__name__}"
            raise InvalidAction(f"a vector instance of {self.num_envs} sub-envs takes action as a list of "
                                f"{self.num_envs} actions, one per sub-env, each {phrase_of(single)}; got {given}")
        decoded = []
        for i, item in enumerate(data):
            try:
                decoded.append(spaces.decode(single, item))
            except spaces.ActionError as exc:
                raise InvalidAction(f"action[{i}] (sub-env {i}): {exc}; no sub-env was stepped") from None
        out = create_empty_array(single, self.num_envs)
        assert out is not None  # None only for spaces of no batched form, which make_vec refuses
        return concatenate(single, decoded, out)

    def _reset_mask(self, mask: Any) -> np.ndarray | None:
        if mask is None:
            return None
        if (not isinstance(mask, list) or len(mask) != self.num_envs or not all(type(m) is bool for m in mask)
                or not any(mask)):
            raise InvalidArgument(f"options.reset_mask must be a list of {self.num_envs} booleans, at least one "
                                  "true (the sub-envs to reset)")
        return np.array(mask, dtype=np.bool_)

    def _singles(self, obs: Any) -> list:
        """Each sub-env's observation, for the recorder: a small Box's as the JSON of its row of the batch
        (one encoding for all N), anything else as an Observation (which encodes itself as the ledger needs)."""
        assert self.venv is not None and self.single_observation_space is not None
        single = self.single_observation_space
        if isinstance(single, gym.spaces.Box) and not is_image(single):
            return spaces.encode(self.venv.observation_space, obs)
        return [Observation(single, value) for value in iterate(self.venv.observation_space, obs)]

    def _venv(self) -> VectorEnv:
        if self.venv is None:
            raise ResetRequired("this instance's envs are closed; call reset to re-create them")
        return self.venv

    def _describe(self, venv: VectorEnv) -> dict:
        # The docs, meanings and limits are the single env's: described from one throwaway make.
        env = gym.make(self.env_id, **self.env_kwargs)
        try:
            single = describe_env(self.env_id, env)
        finally:
            env.close()
        action = venv.single_action_space
        n = self.num_envs
        schema = {"type": "array", "items": schema_of(action), "minItems": n, "maxItems": n,
                  "description": f"a list of {n} actions, one per sub-env, each {phrase_of(action)}"}
        return {**single, "action_space": spaces.describe(venv.action_space),
                "observation_space": spaces.describe(venv.observation_space), "action_schema": schema,
                "single_action_space": single["action_space"],
                "single_observation_space": single["observation_space"], "num_envs": n,
                "vectorization_mode": self.vector.vectorization_mode, "autoreset_mode": self.vector.autoreset_mode}

    # -- read-only views ----------------------------------------------------------------------

    def env_info(self) -> VectorEnvInfo:
        assert self.described is not None
        return VectorEnvInfo(id=self.env_id, instance_id=self.instance_id, render_mode=None, **self.described)

    def summary(self) -> InstanceSummary:
        return super().summary().model_copy(update={"num_envs": self.num_envs})


def split_info(info: dict, n: int) -> list[dict]:
    """A vector env's info (arrays, each `key` with its `_key` mask) as n per-sub-env info dicts, strict JSON."""
    if not info:
        return [{} for _ in range(n)]
    return [spaces.to_json(dict(_entries(info, i))) for i in range(n)]


def _entries(info: dict, i: int) -> Iterator[tuple[str, Any]]:
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get(f"_{key}")
        if mask is not None and not mask[i]:
            continue
        if isinstance(value, dict):
            yield key, dict(_entries(value, i))
        else:
            yield key, value[i]


def _single_env_only(name: str, value: Any) -> None:
    # Its sub-envs' episodes and steps have no one number to check against.
    if value is not None:
        raise InvalidArgument(f"{name} is for single-env instances: a vector instance's sub-envs each count their own")
