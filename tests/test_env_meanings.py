"""What actions and observations mean (SPEC 10): action names, observation notes, plain-text ansi renders."""

import gymnasium as gym
import pytest

from gymenv import catalogue, meanings
from gymenv.engine.describe import describe_env
from tests import toy_envs  # noqa: F401 - registers DictToy-v0

TABLES = {
    "CartPole-v1": ["left", "right"],
    "MountainCar-v0": ["left", "not", "right"],
    "Acrobot-v1": ["-1", "0", "+1"],
    "FrozenLake-v1": ["left", "down", "right", "up"],
    "CliffWalking-v1": ["up", "right", "down", "left"],
    "Taxi-v4": ["south", "north", "east", "west", "pick up", "drop off"],
    "Blackjack-v1": ["stick", "hit"],
}


def info_of(env_id, **kwargs):
    env = gym.make(env_id, **kwargs)
    try:
        return describe_env(env_id, env)
    finally:
        env.close()


def ends_a_sentence(text: str) -> bool:
    tail = text.rstrip()
    return bool(tail) and not tail.endswith("...") and tail[-1] in ".!?)]`\"'*|"


@pytest.mark.parametrize("env_id", TABLES)
def test_classic_and_toy_text_envs_name_each_action_in_action_order(env_id):
    names = info_of(env_id)["action_meanings"]
    assert len(names) == len(TABLES[env_id]) and all(w in n for w, n in zip(TABLES[env_id], names, strict=True)), names


def test_envs_whose_actions_have_no_names_carry_none():
    assert info_of("Pendulum-v1")["action_meanings"] is None  # a Box of torques
    assert info_of("DictToy-v0")["action_meanings"] is None  # a Dict of a move and a force


def test_frozenlake_explains_the_map_of_its_own_instance_and_the_cell_number():
    note = info_of("FrozenLake-v1", desc=["SFFHF", "FHFFF", "FFFHG"], is_slippery=False)["observation_meaning"]
    assert "SFFHF\nFHFFF\nFFFHG" in note and "row * ncols + col" in note and "nrow=3" in note and "ncols=5" in note
    assert "not slippery" in note
    assert "SFFF\nFHFH\nFFFH\nHFFG" in info_of("FrozenLake-v1")["observation_meaning"]


def test_cliffwalking_and_taxi_explain_their_integer_observation():
    assert "row * ncols + col" in info_of("CliffWalking-v1")["observation_meaning"]
    assert "passenger_location) * 4 + destination" in info_of("Taxi-v4")["observation_meaning"]


def test_an_atari_env_names_its_actions_as_ale_does():
    gym.register_envs(pytest.importorskip("ale_py"))
    assert info_of("ALE/Pong-v5")["action_meanings"] == ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE", "LEFTFIRE"]


def test_minigrid_names_its_actions_and_gives_the_image_legend_without_memory_addresses():
    pytest.importorskip("minigrid")
    info = info_of("MiniGrid-Empty-5x5-v0")
    assert info["action_meanings"] == ["left", "right", "forward", "pickup", "drop", "toggle", "done"]
    note = info["observation_meaning"]
    assert "2 wall" in note and "8 goal" in note and "0 red" in note and "2 locked" in note
    assert " at 0x" not in info["observation_space"]["repr"], info["observation_space"]["repr"]
    assert "MissionSpace(<function EmptyEnv._gen_mission>" in info["observation_space"]["repr"]


def cut_descriptions(*packages: str) -> dict:
    """The envs of these packages whose description does not end a sentence, with its last words."""
    env_ids = [i for i, spec in gym.registry.items() if str(spec.entry_point).startswith(packages)]
    assert env_ids, packages
    return {i: d[-60:] for i in env_ids if not ends_a_sentence(d := catalogue.env_description(i))}


def test_every_classic_control_and_toy_text_description_ends_a_sentence():
    assert not cut_descriptions("gymnasium.envs.classic_control", "gymnasium.envs.toy_text")


def test_every_atari_description_ends_a_sentence():
    gym.register_envs(pytest.importorskip("ale_py"))
    assert not cut_descriptions("ale_py")


def test_plain_text_brackets_the_highlighted_cell_and_drops_every_other_escape():
    frozen = "  (Right)\nSFFF\n\x1b[41mF\x1b[0mHFH\n"
    assert meanings.plain_text(frozen) == "  (Right)\nSFFF\n[F]HFH\n"
    # Taxi: the taxi's highlight wraps the passenger's colour; a foreground colour alone is no mark.
    taxi = "|\x1b[43m\x1b[34;1mR\x1b[0m\x1b[0m: |\x1b[35mY\x1b[0m|"
    assert meanings.plain_text(taxi) == "|[R]: |Y|"
    assert meanings.plain_text("\x1b[38;5;41mF\x1b[0m\x1b[2J") == "F"  # 41 here is a colour number


def test_an_ansi_render_over_rest_has_no_escape_codes_and_brackets_the_agent(door):
    rest = door(env_id="FrozenLake-v1", render_mode="ansi").rest
    assert rest.post("/reset", {"seed": 0}).status == 200
    assert rest.post("/render", {}).body["render"] == "\n[S]FFF\nFHFH\nFFFH\nHFFG\n"


def test_env_info_over_rest_carries_the_meanings_of_the_instance(door):
    rest = door(env_id="CartPole-v1", allow_env=("FrozenLake-v1",), allow_env_kwargs=True).rest
    made = rest.post("/envs", {"env_id": "FrozenLake-v1", "env_kwargs": {"desc": ["SFH", "FFG"]}})
    info = rest.get(f"/envs/{made.body['instance_id']}").body["env_info"]
    assert info["action_meanings"] == ["move left", "move down", "move right", "move up"]
    assert "SFH\nFFG" in info["observation_meaning"]
    assert rest.get("/info").body["env_info"]["observation_meaning"] is None
