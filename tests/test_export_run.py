"""export_run (SPEC 14): JSON Lines to stdout, the same records as GET /runs/{id}/export.jsonl; a Minari
dataset that minari.load_dataset reads back exactly as the ledger holds it; spaces Minari cannot store
refused in one clear sentence."""

import io
import json
import sys

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from gymnasium.utils.env_checker import data_equivalence

RUNS = {"env_id": "CartPole-v1", "run_manager": True, "allow_env": ("GraphToy-v0", "PixelsToy-v0")}


def play(d, iid, episodes):
    for seed, actions in episodes:
        d.post(f"/envs/{iid}/reset", {"seed": seed})
        for a in actions:
            d.post(f"/envs/{iid}/step", {"action": a})
    return d.get(f"/envs/{iid}/run/status")["run_id"]


def without_duration(line: str) -> dict:
    record = json.loads(line)
    record.pop("duration", None)  # an open episode's runs to now
    return record


def export(*args, out=None):
    err = io.StringIO()
    call_command("export_run", *args, stdout=out or io.StringIO(), stderr=err)
    return err.getvalue()


def test_jsonl_goes_to_stdout_with_the_records_of_the_rest_export_and_progress_to_stderr(door, capsysbinary):
    d = door(**RUNS)
    iid = d.post("/envs", {})["instance_id"]
    run_id = play(d, iid, [(1, [0, 1]), (2, [1])])
    said = export(run_id, "--format", "jsonl")
    lines = capsysbinary.readouterr().out.decode().splitlines()
    rest = d.rest.get(f"/runs/{run_id}/export.jsonl").body.splitlines()
    assert [without_duration(line) for line in lines] == [without_duration(line) for line in rest]
    assert [json.loads(line)["type"] for line in lines] == ["run", "episode", "step", "step", "episode", "step"]
    assert "6/6 lines" in said


def test_an_unknown_run_is_a_command_error_naming_it(door):
    door(**RUNS)
    with pytest.raises(CommandError, match="00000000-0000-0000-0000-000000000000"):
        export("00000000-0000-0000-0000-000000000000")


minari = pytest.importorskip("minari") if sys.version_info >= (3, 11) else None


@pytest.fixture
def datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "datasets"))


@pytest.mark.filterwarnings("ignore::DeprecationWarning:h5py.*")
def test_a_minari_dataset_reads_back_the_ledgers_observations_actions_rewards_and_flags(door, datasets):
    d = door(**RUNS, max_steps_per_episode=4)
    iid = d.post("/envs", {})["instance_id"]
    run_id = play(d, iid, [(5, [0, 1, 0, 1]), (6, [1, 1])])  # a truncated episode, then an open one
    said = export(run_id, "--format", "minari", "--dataset-id", "gymsite/cartpole/test-v0")
    assert "wrote Minari dataset gymsite/cartpole/test-v0: 2 episodes, 6 steps" in said
    dataset = minari.load_dataset("gymsite/cartpole/test-v0")
    for got, num in zip(dataset.iterate_episodes(), (1, 2), strict=True):
        steps = d.get(f"/runs/{run_id}/episodes/{num}/steps")["steps"]
        reset = [line for line in d.rest.get(f"/runs/{run_id}/export.jsonl").body.splitlines()
                 if json.loads(line)["type"] == "episode"][num - 1]
        assert data_equivalence(got.observations.tolist(),
                                [json.loads(reset)["observation"]] + [s["observation"] for s in steps])
        assert got.actions.tolist() == [s["action"] for s in steps]
        assert got.rewards.tolist() == [s["reward"] for s in steps]
        assert got.terminations.tolist() == [s["terminated"] for s in steps]
        assert got.truncations.tolist() == [s["truncated"] for s in steps]
    assert [e.truncations[-1] for e in dataset.iterate_episodes()] == [True, False]


@pytest.mark.filterwarnings("ignore::DeprecationWarning:h5py.*")
def test_image_observations_go_to_minari_losslessly(door, datasets):
    d = door(**RUNS)
    iid = d.post("/envs", {"env_id": "PixelsToy-v0"})["instance_id"]
    run_id = play(d, iid, [(3, [0, 2])])
    export(run_id, "--format", "minari", "--dataset-id", "pixels-v0")
    got = next(minari.load_dataset("pixels-v0").iterate_episodes())
    steps = d.get(f"/runs/{run_id}/episodes/1/steps?obs_format=json")["steps"]
    assert got.observations.dtype == np.uint8 and got.observations.shape == (3, 12, 10, 3)
    assert got.observations[1:].tolist() == [s["observation"] for s in steps]


def test_a_space_minari_cannot_store_is_refused_clearly(door, datasets):
    d = door(**RUNS)
    iid = d.post("/envs", {"env_id": "GraphToy-v0"})["instance_id"]
    run_id = play(d, iid, [(0, [1])])
    with pytest.raises(CommandError, match=r"observation space holds a Graph space, which Minari cannot store"):
        export(run_id, "--format", "minari")
