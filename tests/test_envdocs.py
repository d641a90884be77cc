"""Env docs read one way: sections with or without markdown headings, excerpts ending on a whole sentence."""

import pytest

from gymenv.catalogue import MAX_DESCRIPTION_CHARS, env_description
from gymenv.envdocs import excerpt, section, sections

DOC = """Intro nobody reads.

## Description
A cart moves. A pole, e.g. a stick, balances on it.

## Action Space
- 0: left
- 1: right

## Credits
Someone."""


def test_sections_are_read_from_markdown_headings_and_unknown_headings_end_them():
    assert [h for h, _ in sections(DOC)] == ["Description", "Action Space", "Credits"]
    assert section(DOC, "action space") == "- 0: left\n- 1: right"


def test_sections_are_read_from_bare_headings_as_descriptions_carry_them():
    assert section("Description\nA cart moves.\n\nAction Space\n- 0: left", "description") == "A cart moves."


def test_an_absent_section_is_empty():
    assert section(DOC, "rewards") == ""


@pytest.mark.parametrize("limit, expected", [
    (20, "A cart moves."),
    (40, "A cart moves."),  # "e.g." ends no sentence
    (60, "A cart moves. A pole, e.g. a stick, balances on it."),
])
def test_an_excerpt_ends_at_the_last_sentence_end_within_its_budget(limit, expected):
    assert excerpt(section(DOC, "description"), limit) == expected


def test_an_excerpt_keeps_whole_list_items_and_table_rows():
    assert excerpt("Moves:\n- 0: left\n- 1: right", 20) == "Moves:\n- 0: left"
    assert excerpt("| 0 | Cart Position |\n| 1 | Cart Velocity |", 30) == "| 0 | Cart Position |"


def test_an_excerpt_never_ends_on_the_number_opening_a_list_item():
    assert excerpt("Balance it.\n\n1. the pole falls over", 16) == "Balance it."


def test_an_excerpt_never_ends_on_a_line_that_opens_the_list_it_cut():
    assert excerpt("Balance it. It ends if:\n\n1. the pole falls over", 30) == "Balance it."


def test_an_excerpt_is_empty_when_not_even_one_sentence_fits():
    assert excerpt("One long sentence without an end in sight", 10) == ""


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "FrozenLake-v1", "Blackjack-v1"])
def test_env_descriptions_and_their_excerpts_end_on_a_whole_sentence_or_block(env_id):
    full = env_description(env_id)
    assert len(full) <= MAX_DESCRIPTION_CHARS and not full.endswith("...")
    cut = excerpt(full, 500)
    assert cut and full.startswith(cut)
    rest = full[len(cut):]
    assert cut[-1] in ".!?" or rest.startswith("\n"), (cut[-60:], rest[:40])
