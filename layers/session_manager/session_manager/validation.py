"""Shapes of the identifiers a caller controls, checked before anything reaches AWS."""

import re

from .errors import InvalidInputError

SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# No ':' or '.': the token format and its signed message use them as separators, so a
# function name containing one could be re-split into another (call id, function) pair.
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_FUNCTION_NAME_CHARS = 64

_session_id_shape = SESSION_ID.fullmatch


def check_session_id(session_id: object) -> str:
    if isinstance(session_id, str) and _session_id_shape(session_id) is not None:
        return session_id
    raise InvalidInputError("session id must be 1 to 128 characters of A-Z a-z 0-9 . _ -")


def check_function_name(function_name: object) -> str:
    # FUNCTION_NAME, in C string methods at about half the regex's cost (every token minted
    # checks one): an ASCII identifier is exactly [A-Za-z_][A-Za-z0-9_]*, keywords included.
    # test_validation.py checks the two spellings agree.
    if (
        isinstance(function_name, str)
        and len(function_name) <= MAX_FUNCTION_NAME_CHARS
        and function_name.isascii()
        and function_name.isidentifier()
    ):
        return function_name
    raise InvalidInputError("function name must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$")
