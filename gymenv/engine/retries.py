"""Retry-safe resets and steps (SPEC 14): the last answer is kept, so a retry of it is answered again
instead of moving the env a second time; any other request whose number is not the next is refused."""

from __future__ import annotations

import json
from typing import Any

from gymenv.schemas import ResetOut, StepOut
from gymsite.errors import InvalidArgument, OutOfOrder


def _key(value: Any) -> str:
    # Type-strict: 1, 1.0 and true are different actions (SPEC 5), and == would call them equal.
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def _check_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"{name} must be null or a positive integer, got {str(value)[:40]!r}")


class LastAnswer:
    """The episode and step numbers an instance stands at, and the answer that brought it there."""

    def __init__(self) -> None:
        self.episode_num = 0  # the run's number of the current episode (0: none yet)
        self.step_num = 0  # steps answered in it
        self._answer: ResetOut | StepOut | None = None
        # What the answered request sent (an action, or [seed, options]); compared only when a retry comes.
        self._request: Any = None

    def place(self, *, episode_num: int, step_num: int) -> None:
        """Stand at these numbers with no answer to repeat (a resumed or forked instance)."""
        self.episode_num, self.step_num = episode_num, step_num
        self._answer, self._request = None, None

    def forget(self) -> None:
        """The env was closed or failed: there is nothing left a retry could be answered from."""
        self._answer, self._request = None, None

    def retried_reset(self, expected: Any, seed: Any, options: Any) -> ResetOut | None:
        """The repeated answer for a retry of the last reset; None for the next episode; else OutOfOrder."""
        if expected is None:
            return None
        _check_number("expected_episode", expected)
        if expected == self.episode_num + 1:
            return None
        if (expected == self.episode_num and isinstance(self._answer, ResetOut)
                and _key(self._request) == _key([seed, options])):
            return self._answer.model_copy(update={"repeated": True})
        raise OutOfOrder(f"expected_episode {expected} does not fit: this instance is in episode {self.episode_num} "
                         f"after step {self.step_num}, so a reset starts episode {self.episode_num + 1}"
                         + (" (a retry of the last reset must repeat its number, seed and options, with no step "
                            "since)" if expected == self.episode_num else ""))

    def retried_step(self, expected: Any, action: Any) -> StepOut | None:
        """The repeated answer for a retry of the last step; None for the next step; else OutOfOrder."""
        if expected is None:
            return None
        _check_number("expected_step", expected)
        if expected == self.step_num + 1:
            return None
        if expected == self.step_num and isinstance(self._answer, StepOut) and _key(self._request) == _key(action):
            return self._answer.model_copy(update={"repeated": True})
        raise OutOfOrder(f"expected_step {expected} does not fit: episode {self.episode_num} is at step "
                         f"{self.step_num}, so the next step is {self.step_num + 1}"
                         + (" (a retry of the last step must send the same action)"
                            if expected == self.step_num else ""))

    def check_batch(self, expected: Any) -> None:
        """A batch is never answered twice: its expected_step must be its first step's number. A retried
        batch whose answer was lost is refused (nothing steps twice), and the refusal says where it stands."""
        if expected is None:
            return
        _check_number("expected_step", expected)
        if expected != self.step_num + 1:
            raise OutOfOrder(f"expected_step {expected} does not fit: episode {self.episode_num} is at step "
                             f"{self.step_num}, so a batch's first step is {self.step_num + 1} (a batch is not "
                             "answered again: read where the run stands with /run/status)")

    def answered_reset(self, answer: ResetOut, *, seed: Any, options: Any) -> None:
        progress = answer.run_progress
        self.episode_num = progress.episode_num if progress is not None else self.episode_num + 1
        self.step_num = 0
        self._answer, self._request = answer, [seed, options]

    def answered_batch(self, steps: int, progress: Any) -> None:
        self.step_num = progress.step_num if progress is not None else self.step_num + steps
        self._answer, self._request = None, None

    def answered_step(self, answer: StepOut, *, action: Any) -> None:
        progress = answer.run_progress
        self.step_num = progress.step_num if progress is not None else self.step_num + 1
        self._answer, self._request = answer, action
