"""Tool output schemas as published (gymenv/mcp_server/output_schemas.py): draft-07, lean, and refusing
exactly what pydantic's own schema of the answer refuses."""

import copy

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gymenv.mcp_server.output_schemas import DIALECT, client_schema
from gymenv.schemas import EnvInfoOut, InstanceListOut, RenderOut, ResetOut, StepOut
from runs.schemas import RunStatisticsOut, RunStatusOut

MODELS = [StepOut, ResetOut, EnvInfoOut, RenderOut, InstanceListOut, RunStatisticsOut, RunStatusOut]
STEP = {"success": True, "observation": [0.01, -0.2, 0.03, 0.4], "reward": 1.0, "terminated": False,
        "truncated": False, "done": False, "info": {},
        "run_progress": {"run_id": "r", "episode_num": 1, "step_num": 2, "completed_episodes": 0,
                         "total_episodes": 10, "run_state": "running"}}


def schemas(model):
    full = model.model_json_schema(mode="serialization")
    return full, client_schema(full)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_each_answer_schema_is_published_as_valid_draft_07_without_references_or_titles(model):
    full, lean = schemas(model)
    assert lean["$schema"] == DIALECT and lean["type"] == "object"
    jsonschema.Draft7Validator.check_schema(lean)
    text = str(lean)
    assert "$ref" not in text and "$defs" not in text and "'title'" not in text
    assert lean["properties"].keys() == full["properties"].keys() and lean["required"] == full["required"]


def test_the_step_schema_keeps_the_field_descriptions_and_says_the_nested_fields_types():
    _, lean = schemas(StepOut)
    assert "non-finite" in lean["properties"]["reward"]["description"]
    progress = lean["properties"]["run_progress"]
    assert progress["description"].startswith("Absent when the run manager is off. Fields: run_id (string), ")
    assert "step_num (integer)" in progress["description"] and "properties" not in progress
    # Checked for its required names only: a client walks no subschema per nested field.
    odd_progress = {**STEP["run_progress"], "step_num": 2.5}
    assert jsonschema.Draft7Validator(lean).is_valid({**STEP, "run_progress": odd_progress})


def variants():
    """Step answers, right and wrong, by one change each to a valid one."""
    changes = st.sampled_from([
        ("reward", None), ("reward", "1"), ("reward", 2.5), ("done", 1), ("done", True), ("info", []),
        ("run_progress", None), ("run_progress", {"run_id": "r"}), ("run_progress", "r"),
        ("run_progress", {k: v for k, v in STEP["run_progress"].items() if k != "run_state"}),
        ("observation", "anything"),
    ])
    drops = st.sampled_from([None, "reward", "done", "info", "run_progress", "success", "observation"])
    return st.tuples(st.lists(changes, max_size=3), drops)


@given(variants())
def test_the_lean_step_schema_refuses_what_the_full_one_refuses_but_nested_field_types(variant):
    changes, drop = variant
    body = copy.deepcopy(STEP)
    for key, value in changes:
        body[key] = value
    if drop:
        body.pop(drop, None)
    full, lean = schemas(StepOut)
    assert jsonschema.Draft202012Validator(full).is_valid(body) == jsonschema.Draft7Validator(lean).is_valid(body)


def test_a_schema_with_what_draft_07_lacks_is_published_as_pydantic_wrote_it():
    tuple_schema = {"type": "object", "properties": {"pair": {"type": "array", "prefixItems": [{"type": "integer"}]}}}
    recursive = {"$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}},
                 "type": "object", "properties": {"head": {"$ref": "#/$defs/Node"}}}
    assert client_schema(tuple_schema) is tuple_schema
    assert client_schema(recursive) is recursive
