"""Observation formats (SPEC 10): json, png, npy and none, per request and per instance, doors and ledger."""

import base64
import gzip
import io
import json

import anyio
import gymnasium as gym
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client

from gymenv.observations import Observation, check_format, default_format
from gymsite.errors import InvalidArgument


def pixels(value: dict) -> np.ndarray:
    raw = base64.b64decode(value["data"])
    if value["encoding"] == "npy":
        return np.load(io.BytesIO(raw), allow_pickle=False)
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(raw))).reshape(value["shape"])


def reference(env_id, seed, actions, **kwargs):
    env = gym.make(env_id, **kwargs)
    observations = [env.reset(seed=seed)[0]] + [env.step(a)[0] for a in actions]
    env.close()
    return observations


@settings(max_examples=40, deadline=None)
@given(shape=st.sampled_from([(8, 8), (9, 8, 1), (8, 11, 3), (16, 8, 4)]), seed=st.integers(0, 2**32 - 1))
def test_png_and_npy_give_back_any_image_bit_for_bit(shape, seed):
    space = gym.spaces.Box(0, 255, shape, np.uint8)
    value = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    for fmt in ("png", "npy"):
        wire = Observation(space, value).wire(fmt)
        assert wire["encoding"] == fmt and wire["shape"] == list(shape) and wire["dtype"] == "uint8"
        assert np.array_equal(pixels(wire), value)


def test_formats_follow_the_space():
    image, vector = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8), gym.spaces.Box(-1, 1, (3,), np.float32)
    assert default_format(image) == "png" and default_format(vector) == "json"
    assert default_format(gym.spaces.Box(0, 255, (7, 8, 3), np.uint8)) == "json"  # under 8 pixels: no image
    with pytest.raises(InvalidArgument, match="png needs an image"):
        check_format(vector, "png")
    with pytest.raises(InvalidArgument, match="json, png, npy, none"):
        check_format(vector, "jpeg")
    with pytest.raises(InvalidArgument, match="npy needs a Box"):
        check_format(gym.spaces.Discrete(3), "npy")


def test_rest_answers_each_format_and_the_instance_keeps_its_own(serve):
    srv = serve(env_id="PixelsToy-v0", run_manager=True)
    expected = reference("PixelsToy-v0", 4, [1, 2, 0])
    reset = srv.post("/reset", {"seed": 4})
    assert reset.body["observation"]["encoding"] == "png" and np.array_equal(pixels(reset.body["observation"]),
                                                                             expected[0])
    npy = srv.post("/step", {"action": 1, "obs_format": "npy"}).body["observation"]
    assert np.array_equal(pixels(npy), expected[1])
    assert srv.post("/step", {"action": 2, "obs_format": "json"}).body["observation"] == expected[2].tolist()
    none = srv.post("/step", {"action": 0, "obs_format": "none"})
    assert none.status == 200 and none.body["observation"] is None and none.body["reward"] == 0.0
    iid = srv.post("/envs", {"obs_format": "npy"}).body["instance_id"]
    assert srv.get("/envs").body["instances"][-1]["obs_format"] == "npy"
    assert srv.post(f"/envs/{iid}/reset", {"seed": 4}).body["observation"]["encoding"] == "npy"


def test_the_ledger_gives_back_the_exact_images_in_any_format(serve):
    srv = serve(env_id="PixelsToy-v0", run_manager=True)
    expected = reference("PixelsToy-v0", 9, [1, 1])
    progress = srv.post("/reset", {"seed": 9, "obs_format": "none"}).body["run_progress"]
    for action in (1, 1):
        srv.post("/step", {"action": action, "obs_format": "none"})
    base = f"/runs/{progress['run_id']}/episodes/1/steps"
    for query in ("", "?obs_format=png", "?obs_format=npy"):
        steps = srv.get(base + query).body["steps"]
        for step, frame in zip(steps, expected[1:], strict=True):
            assert np.array_equal(pixels(step["observation"]), frame), (query, step["step_num"])
    assert srv.get(base + "?obs_format=json").body["steps"][0]["observation"] == expected[1].tolist()
    assert srv.get(base + "?obs_format=none").body["steps"][0]["observation"] is None


def test_dict_observations_encode_only_their_array_parts(serve):
    srv = serve(env_id="PixelsToy-v0", env_kwargs={"with_vector": True})
    expected = reference("PixelsToy-v0", 2, [], with_vector=True)[0]
    png = srv.post("/reset", {"seed": 2}).body["observation"]
    assert np.array_equal(pixels(png["image"]), expected["image"]) and isinstance(png["vector"], list)
    npy = srv.post("/reset", {"seed": 2, "obs_format": "npy"}).body["observation"]
    assert np.array_equal(pixels(npy["vector"]), expected["vector"]) and pixels(npy["vector"]).dtype == np.float32


def test_a_refused_format_moves_nothing(serve):
    srv = serve(env_id="CartPole-v1")
    assert srv.post("/reset", {"seed": 1}).status == 200
    r = srv.post("/step", {"action": 0, "obs_format": "png"})
    assert r.status == 422 and "png" in r.body["error"]
    assert srv.post("/envs", {"obs_format": "png"}).status == 422
    assert srv.post("/step", {"action": 0}).body["observation"] == reference("CartPole-v1", 1, [0])[1].tolist()


def test_big_answers_are_gzipped_only_for_clients_that_ask(serve):
    srv = serve(env_id="PixelsToy-v0", env_kwargs={"shape": (64, 64, 3)})
    srv.post("/reset", {"seed": 1})
    plain = srv.client.post(srv.base + "/step", json={"action": 0, "obs_format": "json"},
                            headers={"Accept-Encoding": "identity"})
    with srv.client.stream("POST", srv.base + "/step", json={"action": 0, "obs_format": "json"},
                           headers={"Accept-Encoding": "gzip"}) as zipped:
        raw = b"".join(zipped.iter_raw())
    assert "content-encoding" not in plain.headers and zipped.headers["content-encoding"] == "gzip"
    assert len(raw) < len(plain.content) // 2
    assert np.asarray(json.loads(gzip.decompress(raw))["observation"]).shape == (64, 64, 3)
    assert "accept-encoding" in zipped.headers["vary"].lower()
    small = srv.client.post(srv.base + "/step", json={"action": 0, "obs_format": "none"},
                            headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under 1 KB: not worth the CPU


def test_mcp_sends_an_image_once_as_image_content_with_a_text_summary(door):
    srv = door(env_id="PixelsToy-v0", env_kwargs={"shape": (32, 32, 3)})
    expected = reference("PixelsToy-v0", 5, [2], shape=(32, 32, 3))

    async def go():
        async with Client(srv.server) as client:
            return (await client.call_tool("reset_env", {"seed": 5}),
                    await client.call_tool("step_env", {"action": 2}),
                    await client.call_tool("step_env", {"action": 2, "obs_format": "npy"}))

    reset, step, as_npy = anyio.run(go)
    for result, frame in zip((reset, step), expected, strict=True):
        (image,) = [c for c in result.content if c.type == "image"]
        assert image.mime_type == "image/png" and np.array_equal(pixels({"encoding": "png", "data": image.data,
                                                                          "shape": [32, 32, 3]}), frame)
        (text,) = [c.text for c in result.content if c.type == "text"]
        assert len(text) < 1500 and image.data not in text
        assert image.data not in str(result.structured_content)  # the frame travels once
        assert result.structured_content["observation"]["shape"] == [32, 32, 3]
    assert '"reward":2.0' in next(c.text for c in step.content if c.type == "text")
    assert [c.type for c in as_npy.content] == ["text"]
    assert as_npy.structured_content["observation"]["encoding"] == "npy"
