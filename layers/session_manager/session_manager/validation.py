"""Shapes of the identifiers a caller controls, checked before anything reaches AWS."""

import re

from .errors import InvalidInputError

SESSION_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# No ':' or '.': the token format and its signed message use them as separators, so a
# function name containing one could be re-split into another (call id, function) pair.
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def check_session_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not SESSION_ID.fullmatch(session_id):
        raise InvalidInputError("session id must be 1 to 128 characters of A-Z a-z 0-9 . _ -")
    return session_id


def check_function_name(function_name: object) -> str:
    if not isinstance(function_name, str) or not FUNCTION_NAME.fullmatch(function_name):
        raise InvalidInputError("function name must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$")
    return function_name
