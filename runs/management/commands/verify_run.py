"""manage.py verify_run RUN_ID [--episode N]: replay recorded episodes in a fresh env and report the first
step that differs. Exit codes: 0 every episode matches, 1 one diverges, 2 nothing could be verified."""

from __future__ import annotations

import importlib

from django.core.management.base import BaseCommand, CommandError

from gymsite.errors import GymsiteError
from runs import replay, selectors
from runs.models import Run, Step
from runs.progress import Progress, plural
from runs.schemas import VerifyOut


class Command(BaseCommand):
    help = "Replay a recorded run's episodes (seed, options, actions) in a fresh env and report the first divergence."

    def add_arguments(self, parser):
        parser.add_argument("run_id")
        parser.add_argument("--episode", type=int, metavar="N", help="only this episode (default: all)")
        parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                            help="import a module that registers the run's env first (ale_py, minigrid); repeatable")

    def handle(self, *args, run_id: str, episode: int | None, imports: list[str], **options):
        for module in imports:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise CommandError(f"--import {module}: {exc}", returncode=2) from None
        try:
            run = selectors.run_get(run_id=run_id)
            episodes = replay.episodes_of(run, episode)
        except GymsiteError as exc:
            raise CommandError(exc.message, returncode=2) from None
        reports = self.verify(run, episodes)
        diverged = [r for r in reports if not r.matched]
        steps = sum(r.steps_checked for r in reports)
        if diverged:
            raise CommandError(f"{len(diverged)} of {plural(len(reports), 'episode')} diverge", returncode=1)
        self.stdout.write(f"run {run.pk}: {plural(len(reports), 'episode')}, {plural(steps, 'step')}: all match")

    def verify(self, run: Run, episodes: list) -> list[VerifyOut]:
        bar = Progress(Step.objects.filter(episode__in=episodes).count(), "steps", stream=self.stderr._out)
        reports = []
        try:
            for ep in episodes:
                try:
                    env = replay.make_env(run)
                except Exception as exc:  # noqa: BLE001 - whatever gymnasium raises, said in one line
                    raise CommandError(f"cannot make {run.env_id} to replay run {run.pk}: {type(exc).__name__}: "
                                       f"{exc} (an env registered by a module needs --import MODULE)",
                                       returncode=2) from None
                report = replay.verify_episode(run, ep, env=env, progress=bar.advance)
                reports.append(report)
                if report.divergence is not None:
                    d = report.divergence
                    where = "the reset" if d.step_num == 0 else f"step {d.step_num}"
                    self.stderr.write(f"\nepisode {ep.episode_num} diverges at {where}: {d.field} recorded "
                                      f"{str(d.recorded)[:200]}, replayed {str(d.replayed)[:200]}")
        finally:
            bar.finish()
        return reports
