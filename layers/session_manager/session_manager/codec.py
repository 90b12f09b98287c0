"""Session metadata as the table holds it: each value JSON text under an `m.<key>` name,
and the limits on keys, values and a session's total size.

One size rule for every write: a session's metadata bytes are the UTF-8 bytes of each
attribute name (`m.` and the key) plus its JSON text, exactly what DynamoDB counts. A PUT,
a merge and a read-modify-write all count with `metadata_bytes`, so what a GET returns
re-encodes to the same bytes, and a PUT of it is accepted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

from .errors import InvalidInputError, TooLargeError

logger = logging.getLogger(__name__)

KEY_PREFIX = "m."
MAX_KEY_CHARS = 1024
# DynamoDB's limit for nested attributes. A value's depth counts its containers (objects and
# lists), the value itself included: 1 and "x" are depth 0, [] and {"a": 1} depth 1,
# {"a": [1]} depth 2. That is the depth DynamoDB would see were each key stored as a native
# top-level attribute; deeper values are refused before anything is written.
MAX_NESTING = 32
# DynamoDB's item limit is 400 KB, attribute names included. 400,000 bytes stays under both
# AWS (409,600) and moto (405,000), so what we accept is what every backend stores.
MAX_ITEM_BYTES = 400_000


def check_key(key: object) -> str:
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or not _is_utf8(key):
        raise InvalidInputError(
            f"metadata keys must be strings of at most {MAX_KEY_CHARS} characters"
        )
    return key


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_nesting(key: str, value: Any) -> None:
    """Refuse a value nested deeper than MAX_NESTING (see there for how depth counts).

    Iterative, so a value a million levels deep (or a list that contains itself) is refused
    cleanly instead of exhausting the stack. Object keys inside a value must be strings: JSON
    would turn 1 into "1" and could merge two keys into one, so the read would differ."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(node, dict):
            children = node.values()
            if not all(isinstance(k, str) for k in node):
                raise InvalidInputError(f"metadata value for {key!r} has a non-string object key")
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth + 1 > MAX_NESTING:
            raise InvalidInputError(
                f"metadata value for {key!r} nests deeper than {MAX_NESTING} levels"
            )
        stack.extend((child, depth + 1) for child in children)


def encode_value(key: str, value: Any) -> str:
    """The value's canonical JSON text; decode_values(...) gives the value back exactly."""
    check_nesting(key, value)
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        # A lone surrogate ("\ud800") is valid JSON but no UTF-8 text can carry it.
        encoded.encode("utf-8")
        return encoded
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidInputError(f"metadata value for {key!r} is not JSON: {error}") from None


def split_changes(
    changes: Mapping[str, Any], allow_none: bool = False
) -> tuple[dict[str, str], list[str]]:
    """Checked and encoded: (key -> JSON text to set, keys to remove). None removes its
    key unless `allow_none` (a PUT stores null)."""
    if not isinstance(changes, Mapping):
        raise InvalidInputError("metadata must be a JSON object")
    to_set: dict[str, str] = {}
    to_remove: list[str] = []
    for key, value in changes.items():
        check_key(key)
        if value is None and not allow_none:
            to_remove.append(key)
        else:
            to_set[key] = encode_value(key, value)
    return to_set, to_remove


def decode_values(encoded: Mapping[str, str]) -> dict[str, Any]:
    """Decode each value; one that is no JSON or nests past MAX_NESTING (only another
    writer stores one) is left out and logged by count, so a read never fails."""
    decoded: dict[str, Any] = {}
    for key, text in encoded.items():
        try:
            value = json.loads(text)
            check_nesting(key, value)
        except (ValueError, RecursionError):  # InvalidInputError is a ValueError
            continue
        decoded[key] = value
    if len(decoded) < len(encoded):
        # Neither keys nor values are logged: they are the caller's data.
        logger.warning("skipped %d undecodable metadata values", len(encoded) - len(decoded))
    return decoded


def metadata_bytes(encoded: Mapping[str, str]) -> int:
    """What the metadata attributes weigh in an item: UTF-8 names plus JSON text."""
    return sum(len((KEY_PREFIX + k).encode()) + len(v.encode()) for k, v in encoded.items())


def check_metadata_bytes(size: int, limit: int) -> None:
    if size > limit:
        overhead = MAX_ITEM_BYTES - limit
        raise TooLargeError(
            f"metadata needs {size + overhead} bytes; one session holds at most {MAX_ITEM_BYTES}"
        )
