"""Ledger rows: a Run is num_episodes Episodes on one env instance; an Episode is a list of Steps."""

import io
import json
import uuid
import zlib
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from django.db import models

from gymenv.observations import Observation

# Observations whose JSON is larger than this are stored zlib-compressed (image frames:
# a 210x160x3 Atari frame is ~430 KB of JSON, ~17 KB compressed).
OBSERVATION_INLINE_BYTES = 2048
_NPY_MAGIC = b"\x93NUMPY"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


if TYPE_CHECKING:
    from enum import Enum

    class _TextChoices(str, Enum):
        """What mypy is told of Django's TextChoices (Django ships no types): a str enum with `choices`."""

        choices: ClassVar[list[tuple[str, str]]]
else:
    _TextChoices = models.TextChoices


class RunState(_TextChoices):
    IDLE = "idle"
    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    # Ended on purpose before its episodes were done (run reset, instance deleted or reaped, clean shutdown).
    STOPPED = "stopped"
    # The env raised, the ledger failed, or the process died ("interrupted").
    ERROR = "error"




class Run(models.Model):
    run_id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    instance_id = models.CharField(max_length=100)
    env_id = models.CharField(max_length=200)
    env_kwargs = models.JSONField(default=dict, blank=True)
    env_spec = models.JSONField(null=True, blank=True)

    num_episodes = models.PositiveIntegerField()
    max_steps_per_episode = models.PositiveIntegerField()
    # The threshold in force for this run: the operator's override or the spec's reward_threshold.
    success_threshold = models.FloatField(null=True, blank=True)

    state = models.CharField(max_length=10, choices=RunState.choices, default=RunState.RUNNING)
    # "host:pid" of the process that drives the run, so a restart closes only runs whose process died
    # (runs_interrupt_stale); empty for runs made before it was recorded.
    owner = models.CharField(max_length=200, blank=True, default="")
    error = models.TextField(blank=True, default="")
    reason = models.TextField(blank=True, default="", help_text="Why a stopped run was stopped.")
    # A fork's source: the run, episode and step whose state it started from (SPEC 14).
    parent_run = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="forks")
    parent_episode_num = models.PositiveIntegerField(null=True, blank=True)
    parent_step_num = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When its first episode began.")
    ended_at = models.DateTimeField(null=True, blank=True)

    # Totals over ended episodes, updated when an episode ends (never per step: see manager.py).
    completed_episodes = models.PositiveIntegerField(default=0)
    successful_episodes = models.PositiveIntegerField(default=0)
    total_steps = models.PositiveBigIntegerField(default=0)
    total_reward = models.FloatField(default=0.0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["-created_at"], name="run_newest"),
            models.Index(fields=["env_id", "-created_at"], name="run_env_newest"),
            models.Index(fields=["state", "-created_at"], name="run_state_newest"),
        ]

    def __str__(self):
        return f"{self.env_id} run {self.run_id}"


class CompressedObservation(models.Model):
    """An observation kept as JSON when small; else in `observation_zlib`: an image observation as its
    PNG (lossless, and smaller than zlib of the pixels), anything else as zlib of its JSON or .npy."""

    observation_json = models.JSONField(null=True, blank=True)
    observation_zlib = models.BinaryField(null=True, blank=True, editable=False)

    class Meta:
        abstract = True

    @property
    def observation(self):
        """The observation as plain JSON."""
        array = self.observation_array
        if array is not None:
            return array.tolist()
        if self.observation_zlib is None:
            return self.observation_json
        return json.loads(zlib.decompress(self.observation_zlib))

    @property
    def observation_png(self) -> bytes | None:
        data = self.observation_zlib
        return bytes(data) if data is not None and bytes(data[:8]) == PNG_MAGIC else None

    @property
    def observation_array(self) -> np.ndarray | None:
        """The exact array, for observations stored as one (images, and .npy frames of older rows)."""
        if self.observation_zlib is None:
            return None
        png = self.observation_png
        if png is not None:
            from PIL import Image

            return np.asarray(Image.open(io.BytesIO(png)))
        data = zlib.decompress(self.observation_zlib)
        return np.load(io.BytesIO(data), allow_pickle=False) if data.startswith(_NPY_MAGIC) else None

    @staticmethod
    def pack_observation(observation) -> dict:
        """Field values for an observation (a gymenv Observation, or its JSON): an image as its PNG; else
        JSON when small, else zlib of a uint8 .npy (frames that came as JSON) or of the JSON."""
        if isinstance(observation, Observation):
            if observation.image:
                array = np.asarray(observation.value)
                if array.ndim == 2 or array.shape[2] != 1:  # PNG has no HxWx1: those go as .npy below
                    return {"observation_json": None, "observation_zlib": observation.png()}
            observation = observation.json()
        frame = _as_image(observation)
        if frame is not None and frame.nbytes > OBSERVATION_INLINE_BYTES // 4:
            buf = io.BytesIO()
            np.save(buf, frame, allow_pickle=False)
            # Level 1: frames compress nearly as well as at level 6, for half the CPU.
            return {"observation_json": None, "observation_zlib": zlib.compress(buf.getvalue(), 1)}
        text = json.dumps(observation, separators=(",", ":"), allow_nan=False)
        if len(text) <= OBSERVATION_INLINE_BYTES:
            return {"observation_json": observation, "observation_zlib": None}
        return {"observation_json": None, "observation_zlib": zlib.compress(text.encode(), 1)}


def _as_image(observation) -> np.ndarray | None:
    """A nested list of integers 0..255 (a frame, as the wire carries it) as uint8, else None.

    Building the array costs half of writing the JSON it replaces, and the bytes compress better.
    """
    if not (isinstance(observation, list) and observation and isinstance(observation[0], list)):
        return None
    try:
        array = np.asarray(observation)
    except (ValueError, OverflowError, TypeError):  # ragged, or not numbers
        return None
    if array.dtype.kind not in "iu" or array.size == 0 or array.min() < 0 or array.max() > 255:
        return None
    return array.astype(np.uint8)


class Episode(CompressedObservation):
    """One episode; `observation` is the one its reset returned."""

    # No index of its own: the (run, episode_num) constraint's index starts with it.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="episodes", db_index=False)
    episode_num = models.PositiveIntegerField()
    # Which sub-env of a vector instance played it (0-based, as in make_vec's arrays); null for a single env.
    env_index = models.PositiveIntegerField(null=True, blank=True)
    # JSON, not BigIntegerField: seeds go up to 2**128 (numpy's SeedSequence takes any size).
    seed = models.JSONField(null=True, blank=True)
    # The reset's options: with the seed and the actions, what a replay needs (runs/replay.py).
    options = models.JSONField(null=True, blank=True)
    reset_info = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    # Written when the episode ends; while it is open the run manager keeps them in memory
    # and a dead process's open episode is summed from its steps (runs_interrupt_stale).
    total_steps = models.PositiveIntegerField(default=0)
    total_reward = models.FloatField(default=0.0)
    final_reward = models.FloatField(null=True, blank=True)
    terminated = models.BooleanField(default=False)
    truncated = models.BooleanField(default=False)
    done = models.BooleanField(default=False, help_text="Ended by termination, truncation or the step limit.")
    success = models.BooleanField(default=False)
    abandoned = models.BooleanField(default=False, help_text="Ended before done: by a reset, or with its run.")

    class Meta:
        ordering = ["run_id", "episode_num"]
        constraints = [
            models.UniqueConstraint(fields=["run", "episode_num"], name="episode_unique_num"),
        ]

    def __str__(self):
        return f"episode {self.episode_num}"

    @property
    def duration(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class Step(CompressedObservation):
    """One env.step: the action sent and what the env answered (`observation` is the one after it)."""

    # No index of its own (one less to update per step): the (episode, step_num) constraint's starts with it.
    episode = models.ForeignKey(Episode, on_delete=models.CASCADE, related_name="steps", db_index=False)
    step_num = models.PositiveIntegerField()
    action = models.JSONField()
    # Null when the env returned a non-finite reward (JSON and SQLite have no NaN).
    reward = models.FloatField(null=True)
    terminated = models.BooleanField(default=False)
    truncated = models.BooleanField(default=False)
    info = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["episode_id", "step_num"]
        constraints = [
            # Also the index that serves "steps of an episode by step_num".
            models.UniqueConstraint(fields=["episode", "step_num"], name="step_unique_num"),
        ]

    def __str__(self):
        return f"step {self.step_num}"
