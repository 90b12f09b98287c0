"""The identifier checks: check_function_name spells FUNCTION_NAME in string methods (it
is on the path of every token minted), so the two must accept exactly the same names."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from session_manager import InvalidInputError
from session_manager.validation import (
    FUNCTION_NAME,
    SESSION_ID,
    check_function_name,
    check_session_id,
)

# Around the rule's edges: ASCII word characters, a dot, a colon, a dash, Unicode letters
# and digits that str.isidentifier alone would accept.
NAME_ALPHABET = st.sampled_from(list("aZ_09.:-é٣\u017f K"))


def accepted(check, value: object) -> bool:
    try:
        check(value)
    except InvalidInputError:
        return False
    return True


@settings(max_examples=500, deadline=None)
@given(st.text(NAME_ALPHABET, max_size=70) | st.text(max_size=8))
def test_function_name_check_agrees_with_the_pattern(name):
    assert accepted(check_function_name, name) == (FUNCTION_NAME.fullmatch(name) is not None)


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "_",
        "class",
        "A" * 64,
        "A" * 65,
        "",
        "1a",
        "a-b",
        "a.b",
        "a:b",
        "é",
        "a٣",
        "\u017f",
        "a b",
    ],
)
def test_function_name_edges(name):
    assert accepted(check_function_name, name) == (FUNCTION_NAME.fullmatch(name) is not None)


@pytest.mark.parametrize("value", [None, 1, b"abc", ["a"]])
def test_non_strings_are_refused(value):
    assert not accepted(check_function_name, value)
    assert not accepted(check_session_id, value)


@pytest.mark.parametrize("session_id", ["a", "root.2", "x" * 128, "x" * 129, "", "a/b", "a b"])
def test_session_id_check_is_the_pattern(session_id):
    assert accepted(check_session_id, session_id) == (SESSION_ID.fullmatch(session_id) is not None)
