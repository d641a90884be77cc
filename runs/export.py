"""Exporting a run: JSON Lines (the records of GET /runs/{id}/export.jsonl) or a Minari dataset (the
`[minari]` extra). Both read the ledger in chunks, one episode at a time."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np
from gymnasium import spaces as gym_spaces

from gymsite.errors import InvalidArgument
from runs import selectors
from runs.models import Episode, Run, Step
from runs.replay import CHUNK, make_env

# Spaces Minari 0.5 cannot store (its storages write fixed-shape arrays per space).
MINARI_UNSUPPORTED = (gym_spaces.Graph, gym_spaces.Sequence, gym_spaces.OneOf)


def export_jsonl(run: Run, out: BinaryIO, progress: Callable[[int], None] | None = None) -> int:
    """Write the run's JSON Lines to `out`; returns how many lines."""
    lines = 0
    for line in selectors.run_export_lines(run=run):
        out.write(line)
        lines += 1
        if progress is not None:
            progress(1)
    return lines


def export_minari(run: Run, dataset_id: str, progress: Callable[[int], None] | None = None) -> Any:
    """Write the run as the Minari dataset `dataset_id` (under MINARI_DATASETS_PATH); returns it.

    Each episode is an EpisodeBuffer built from lists (no jax: minari's `create` extra is needed only by
    its DataCollector), observations including the reset one, stored losslessly (no JPEG). Episodes with
    no step have no transition to store and are left out."""
    try:
        import minari
        from minari.data_collector.episode_buffer import EpisodeBuffer
    except ImportError:
        raise InvalidArgument('--format minari needs Minari: pip install -e ".[minari]"') from None
    env = make_env(run)
    try:
        for name, space in (("observation", env.observation_space), ("action", env.action_space)):
            bad = _unsupported(space)
            if bad is not None:
                raise InvalidArgument(f"{run.env_id}'s {name} space holds a {bad} space, which Minari cannot store "
                                      "(no Graph, Sequence or OneOf): export this run as jsonl instead")
        dataset = None
        for n, episode in enumerate(_episodes_with_steps(run)):
            steps = list(_steps(episode))
            buffer = EpisodeBuffer(
                id=n, seed=_minari_seed(episode.seed), options=episode.options or None,
                observations=_stack(env.observation_space, [_observation(episode)]
                                    + [_observation(s) for s in steps]),
                actions=_stack(env.action_space, [s.action for s in steps]),
                rewards=[s.reward if s.reward is not None else float("nan") for s in steps],
                terminations=[s.terminated for s in steps], truncations=[s.truncated for s in steps], infos={})
            with warnings.catch_warnings():
                # Minari's advice to name an author, a permalink, an eval env...: nothing the ledger knows.
                warnings.filterwarnings("ignore", category=UserWarning, module=r"minari\b")
                if dataset is None:
                    dataset = minari.create_dataset_from_buffers(
                        dataset_id, buffer=[buffer], env=env, algorithm_name="gymsite ledger export",
                        description=f"run {run.pk} of {run.env_id}, exported from the gymsite ledger",
                        jpeg_encoding=False)
                else:
                    dataset.update_dataset_from_buffer([buffer])
            if progress is not None:
                progress(len(steps))
        if dataset is None:
            raise InvalidArgument(f"run {run.pk} has no step to export")
        return dataset
    finally:
        env.close()


def _unsupported(space: gym_spaces.Space) -> str | None:
    if isinstance(space, MINARI_UNSUPPORTED):
        return type(space).__name__
    subspaces = (space.spaces.values() if isinstance(space, gym_spaces.Dict)
                 else space.spaces if isinstance(space, gym_spaces.Tuple) else ())
    return next((found for sub in subspaces if (found := _unsupported(sub)) is not None), None)


def _episodes_with_steps(run: Run):
    return run.episodes.filter(steps__isnull=False).distinct().order_by("episode_num").iterator(chunk_size=CHUNK)


def _steps(episode: Episode):
    return episode.steps.order_by("step_num").iterator(chunk_size=CHUNK)


def _observation(row: Step | Episode) -> Any:
    array = row.observation_array  # images come back as the exact array, not as lists of lists
    return array if array is not None else row.observation


def _minari_seed(seed: Any) -> int | None:
    # HDF5 attributes are 64-bit: a larger seed (numpy takes up to 2**128) stays in the ledger only.
    return seed if isinstance(seed, int) and 0 <= seed < 2**63 else None


def _stack(space: gym_spaces.Space, values: list) -> Any:
    """Ledger JSON values of `space` as Minari's buffers hold them: an array per leaf, dicts and tuples of them."""
    if isinstance(space, gym_spaces.Dict):
        return {key: _stack(sub, [v[key] for v in values]) for key, sub in space.spaces.items()}
    if isinstance(space, gym_spaces.Tuple):
        return tuple(_stack(sub, [v[i] for v in values]) for i, sub in enumerate(space.spaces))
    if isinstance(space, gym_spaces.Text):
        return list(values)
    return np.asarray(values, dtype=space.dtype)
