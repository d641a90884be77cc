"""Spaces rebuilt from their descriptions (gymenv/spaces/rebuild.py), as clients rebuild env_info's."""

import json

import numpy as np
import pytest
from gymnasium import spaces as S
from hypothesis import given, settings
from hypothesis import strategies as st

from gymenv import spaces
from gymenv.spaces.rebuild import UnknownSpace, from_description, value_from_json
from tests.test_spaces import GYMNASIUM_CASTS, any_space, graphs

every_space = st.one_of(any_space, graphs)


def over_the_wire(desc: dict) -> dict:
    return json.loads(json.dumps(desc, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(every_space)
def test_a_space_rebuilt_from_its_description_equals_it(space):
    desc = spaces.describe(space)
    rebuilt = from_description(over_the_wire(desc))
    assert rebuilt == space, (rebuilt, space)
    assert spaces.describe(rebuilt) == desc


@GYMNASIUM_CASTS  # decoding a Sequence or Graph checks it with contains(), which casts lists
@settings(max_examples=300, deadline=None)
@given(every_space, st.integers(0, 2**32 - 1))
def test_a_value_read_back_from_its_json_is_the_value_sent(space, seed):
    space.seed(seed)
    value = space.sample()
    wire = over_the_wire(spaces.encode(space, value))
    assert spaces.encode(space, value_from_json(space, wire)) == wire


@pytest.mark.parametrize("space", [
    S.Box(-1.0, 1.0, (3,), np.float32), S.Box(0, 255, (2, 2), np.uint8), S.Discrete(4, start=1),
    S.MultiDiscrete([2, 3]), S.MultiBinary(3),
], ids=str)
def test_numeric_values_come_back_with_the_spaces_own_dtype_and_shape(space):
    space.seed(0)
    value = space.sample()
    back = value_from_json(space, over_the_wire(spaces.encode(space, value)))
    assert np.asarray(back).dtype == np.asarray(value).dtype and np.array_equal(back, value) and back in space


def test_a_box_with_infinite_and_uneven_bounds_comes_back_exactly():
    high = np.array([4.8, np.inf, 0.41887903, np.inf], dtype=np.float32)  # CartPole's observation space
    space = S.Box(-high, high, dtype=np.float32)
    rebuilt = from_description(over_the_wire(spaces.describe(space)))
    assert rebuilt == space and np.array_equal(rebuilt.high, space.high) and rebuilt.dtype == np.float32


def test_non_finite_observation_values_come_back_as_nan():
    space = S.Box(-np.inf, np.inf, (2,), np.float32)
    back = value_from_json(space, [None, 1.5])
    assert np.isnan(back[0]) and back[1] == 1.5 and back.dtype == np.float32


def test_a_space_described_only_by_its_repr_is_refused_by_name():
    with pytest.raises(UnknownSpace, match="cannot rebuild a MissionSpace"):
        from_description({"type": "MissionSpace", "repr": "MissionSpace(<function>, None)"})
