"""The client env_kwargs policy: plain small JSON naming no file, module or class."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gymenv.env_kwargs import MAX_DEPTH, PATH_LIKE_NAMES, check_client_env_kwargs
from gymsite.errors import InvalidArgument

LIMIT = 4096

safe_keys = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True).filter(
    lambda k: not any(name in k for name in PATH_LIKE_NAMES) and k != "render_mode")
safe_strings = st.from_regex(r"[A-Za-z0-9 _-]{0,20}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False, allow_infinity=False) \
    | safe_strings


def nested(depth: int):
    """JSON values whose containers sit at most `depth` levels deep."""
    if depth == 0:
        return scalars
    inner = nested(depth - 1)
    return scalars | st.lists(inner, max_size=3) | st.dictionaries(safe_keys, inner, max_size=3)


safe_kwargs = st.dictionaries(safe_keys, nested(MAX_DEPTH - 1), max_size=5)
path_values = st.sampled_from(["/etc/shadow", "C:\\Windows\\win.ini", "~root/.ssh/id_rsa", "./model.xml",
                               "../x", "gymnasium.envs.classic_control:CartPoleEnv", "os:system",
                               "http://evil.example/x.xml", "file:///etc/passwd"])
path_keys = st.tuples(st.from_regex(r"[a-z_]{0,5}", fullmatch=True), st.sampled_from(PATH_LIKE_NAMES),
                      st.from_regex(r"[a-z_]{0,5}", fullmatch=True), st.booleans()).map(
    lambda parts: (parts[0] + parts[1] + parts[2]).upper() if parts[3] else parts[0] + parts[1] + parts[2])
any_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                    max_size=4), max_leaves=30)


def bury(value, path: list[str]):
    """`value` at the end of a chain of one-key objects and one-item lists."""
    for step in reversed(path):
        value = [value] if step == "[]" else {step: value}
    return value


@given(safe_kwargs)
def test_plain_json_with_ordinary_names_is_accepted_unchanged(kwargs):
    assert check_client_env_kwargs(kwargs, allowed_keys=None, max_bytes=1 << 20) == kwargs


@given(safe_keys, st.lists(st.sampled_from(["[]", "level"]), max_size=MAX_DEPTH - 1), path_values)
def test_a_path_like_value_anywhere_is_refused(key, path, value):
    with pytest.raises(InvalidArgument, match="path, URL or import string"):
        check_client_env_kwargs({key: bury(value, path)}, allowed_keys=None, max_bytes=LIMIT)


@given(path_keys, scalars)
def test_a_path_like_key_is_refused_unless_the_operator_allows_it(key, value):
    with pytest.raises(InvalidArgument, match="names a file, URL, module or class"):
        check_client_env_kwargs({key: value}, allowed_keys=None, max_bytes=LIMIT)
    with pytest.raises(InvalidArgument, match="names a file, URL, module or class"):
        check_client_env_kwargs({"options": {key: value}}, allowed_keys=frozenset({"other"}), max_bytes=LIMIT)
    assert check_client_env_kwargs({key: value}, allowed_keys=frozenset({key}), max_bytes=LIMIT) == {key: value}


@given(path_keys, path_values, safe_keys, path_values)
def test_only_an_allowed_key_may_carry_a_path(allowed, path, other, other_path):
    ok = check_client_env_kwargs({allowed: path}, allowed_keys=frozenset({allowed}), max_bytes=LIMIT)
    assert ok == {allowed: path}
    with pytest.raises(InvalidArgument):
        check_client_env_kwargs({allowed: path, other: other_path}, allowed_keys=frozenset({allowed}), max_bytes=LIMIT)


@given(any_json)
def test_any_json_is_either_refused_with_invalid_argument_or_returned_within_the_bound(value):
    kwargs = value if isinstance(value, dict) else {"value": value}
    try:
        checked = check_client_env_kwargs(kwargs, allowed_keys=None, max_bytes=256)
    except InvalidArgument as err:
        assert err.message.startswith("env_kwargs") or "render_mode" in err.message
    else:
        assert checked == kwargs
        assert len(json.dumps(checked, allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode()) <= 256


def test_mujocos_xml_file_is_refused():
    with pytest.raises(InvalidArgument, match="'xml_file' names a file"):
        check_client_env_kwargs({"xml_file": "/etc/shadow"}, allowed_keys=None, max_bytes=LIMIT)


def test_ordinary_mujoco_kwargs_are_accepted():
    kwargs = {"frame_skip": 5, "reset_noise_scale": 0.1, "default_camera_config": {"distance": 4.0, "elevation": -20},
              "healthy_z_range": [0.2, 1.0], "terminate_when_unhealthy": True, "camera_name": None}
    assert check_client_env_kwargs(kwargs, allowed_keys=None, max_bytes=LIMIT) == kwargs


def test_render_mode_is_refused_even_when_allowed():
    with pytest.raises(InvalidArgument, match="render_mode"):
        check_client_env_kwargs({"render_mode": "human"}, allowed_keys=frozenset({"render_mode"}), max_bytes=LIMIT)


@pytest.mark.parametrize("kwargs, message", [
    ([1, 2], "must be a JSON object"),
    ("x", "must be a JSON object"),
    ({"gravity": float("nan")}, "plain JSON"),
    ({"gravity": float("inf")}, "plain JSON"),
    ({"shape": (1, 2)}, "only JSON values"),
    ({"size": {1: 2}}, "keys must be strings"),
    ({"noise": "x" * LIMIT}, f"at most {LIMIT} bytes"),
    ({"a": [[[[1]]]]}, f"nested deeper than {MAX_DEPTH} levels"),
])
def test_what_is_not_small_plain_json_is_refused(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        check_client_env_kwargs(kwargs, allowed_keys=None, max_bytes=LIMIT)


def test_containers_up_to_the_depth_bound_are_accepted():
    kwargs = {"a": [[[1]]]}
    assert check_client_env_kwargs(kwargs, allowed_keys=None, max_bytes=LIMIT) == kwargs


def test_the_answer_is_a_copy():
    kwargs = {"gravity": 9.8}
    checked = check_client_env_kwargs(kwargs, allowed_keys=None, max_bytes=LIMIT)
    checked["gravity"] = 0
    assert kwargs == {"gravity": 9.8}
