"""manage.py export_run RUN_ID --format jsonl|minari [--dataset-id ID]: JSON Lines to stdout (or --output),
or a Minari dataset under MINARI_DATASETS_PATH; progress on stderr."""

from __future__ import annotations

import importlib
import re
import sys

from django.core.management.base import BaseCommand, CommandError

from gymsite.errors import GymsiteError
from runs import export, selectors
from runs.models import Step
from runs.progress import Progress, plural


class Command(BaseCommand):
    help = "Export a recorded run as JSON Lines (stdout) or as a Minari dataset."

    def add_arguments(self, parser):
        parser.add_argument("run_id")
        parser.add_argument("--format", choices=["jsonl", "minari"], default="jsonl")
        parser.add_argument("--output", "-o", metavar="FILE", help="jsonl: write here instead of stdout")
        parser.add_argument("--dataset-id", metavar="ID",
                            help="minari: the dataset's id (default: gymsite/<env>/run-<run id>-v0)")
        parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                            help="minari: import a module that registers the run's env first; repeatable")

    def handle(self, *args, run_id: str, format: str, output: str | None, dataset_id: str | None,
               imports: list[str], **options):
        for module in imports:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise CommandError(f"--import {module}: {exc}") from None
        try:
            run = selectors.run_get(run_id=run_id)
            steps = Step.objects.filter(episode__run=run).count()
            if format == "jsonl":
                bar = Progress(1 + run.episodes.count() + steps, "lines", stream=self.stderr._out)
                if output is None:
                    export.export_jsonl(run, sys.stdout.buffer, bar.advance)
                    sys.stdout.flush()
                else:
                    with open(output, "wb") as out:
                        export.export_jsonl(run, out, bar.advance)
                bar.finish()
                return
            dataset_id = dataset_id or default_dataset_id(run.env_id, str(run.pk))
            bar = Progress(steps, "steps", stream=self.stderr._out)
            try:
                dataset = export.export_minari(run, dataset_id, bar.advance)
            finally:
                bar.finish()
        except GymsiteError as exc:
            raise CommandError(exc.message) from None
        self.stderr.write(f"wrote Minari dataset {dataset_id}: {plural(dataset.total_episodes, 'episode')}, "
                          f"{plural(dataset.total_steps, 'step')} (minari.load_dataset({dataset_id!r}))")


def default_dataset_id(env_id: str, run_id: str) -> str:
    # Minari ids are (namespace/)(env_name/)name-vN, with no further slashes or version markers.
    env_name = re.sub(r"[^A-Za-z0-9]+", "-", env_id.split("/")[-1]).strip("-")
    env_name = re.sub(r"-v\d+$", "", env_name) or "env"
    return f"gymsite/{env_name}/run-{run_id[:8]}-v0"
