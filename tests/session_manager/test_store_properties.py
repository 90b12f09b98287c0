"""Whatever a write accepts, a read returns (hypothesis, on moto in-process).

- Any JSON object the store accepts comes back exactly: same keys, same types (1 stays 1,
  1.0 stays 1.0, True stays True), same nesting, through replace and through merge.
- Anything refused leaves what was stored unchanged.
- Any sequence of merges: each is accepted exactly when its result fits MAX_ITEM_BYTES (no
  sequence grows a session past it), and a PUT of what GET returns is always accepted.

Each example writes to a session id of its own, so examples share the table but no state.
Example counts are bounded to keep the suite fast.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_manager import InvalidInputError, TooLargeError
from session_manager.codec import MAX_ITEM_BYTES, MAX_NESTING, encode_value
from session_manager.store import item_bytes

# The store fixture is function-scoped but holds no per-example state (fresh session ids).
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)
keys = st.text(max_size=30)
metadata = st.dictionaries(keys, json_values, max_size=8)


def deep(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


# Values a caller may send that the store must refuse: past the nesting limit, a lone
# surrogate (no UTF-8 carries it), a float JSON has no spelling for, a non-string object key.
hostile_values = st.one_of(
    st.integers(min_value=MAX_NESTING + 1, max_value=MAX_NESTING + 200).map(deep),
    st.just("\ud800"),
    st.sampled_from([float("nan"), float("inf"), -float("inf")]),
    st.dictionaries(st.integers(), json_values, min_size=1, max_size=2),
)


def exactly(value: Any) -> str:
    """Equal only when types match too (1 vs 1.0 vs True), at any depth."""
    return json.dumps(value, sort_keys=True)


def fresh_session() -> str:
    return f"prop-{uuid.uuid4().hex}"


@SETTINGS
@given(metadata=metadata)
def test_replace_then_get_returns_exactly_what_was_written(store, metadata):
    session = fresh_session()
    assert exactly(store.replace(session, metadata)) == exactly(metadata)
    assert exactly(store.get(session)) == exactly(metadata)


@SETTINGS
@given(before=metadata, changes=st.dictionaries(keys, json_values | st.none(), max_size=8))
def test_merge_is_a_shallow_update_that_reads_back_exactly(store, before, changes):
    session = fresh_session()
    store.replace(session, before)
    expected = {**before, **changes}
    expected = {k: v for k, v in expected.items() if not (k in changes and changes[k] is None)}
    assert exactly(store.merge(session, changes)) == exactly(expected)
    assert exactly(store.get(session)) == exactly(expected)


@SETTINGS
@given(
    before=metadata,
    good=metadata,
    hostile=st.dictionaries(keys, hostile_values, max_size=2),
    operation=st.sampled_from(["merge", "replace"]),
)
def test_a_write_with_a_bad_value_is_refused_whole_and_changes_nothing(
    store, before, good, hostile, operation
):
    session = fresh_session()
    store.replace(session, before)
    attempt = {**good, **hostile}
    if hostile:
        with pytest.raises((InvalidInputError, TooLargeError)):
            getattr(store, operation)(session, attempt)
        assert exactly(store.get(session)) == exactly(before)
    else:
        written = getattr(store, operation)(session, attempt)
        assert exactly(store.get(session)) == exactly(written)


@pytest.mark.parametrize("depth", [MAX_NESTING - 1, MAX_NESTING])
def test_the_deepest_accepted_values_read_back(store, depth):
    session = fresh_session()
    assert store.replace(session, {"v": deep(depth)}) == {"v": deep(depth)}
    assert store.get(session) == {"v": deep(depth)}


# Merges of big values over a few keys: sequences that cross the limit, overwrite and
# remove. A value is "x" * n: sizes that sum to just past 400,000 (390,000 + 12,000 is under
# what DynamoDB and moto store, over what we accept) and any size up to 200,000.
sizes = st.sampled_from([0, 12_000, 195_000, 390_000]) | st.integers(0, 200_000)
big_changes = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.none() | sizes.map(lambda n: "x" * n),
    min_size=1,
    max_size=3,
)


@settings(SETTINGS, max_examples=25)
@given(steps=st.lists(big_changes, min_size=1, max_size=6))
def test_a_merge_is_accepted_exactly_when_the_result_fits_and_get_is_always_a_valid_put(
    store, steps
):
    session = fresh_session()
    model: dict[str, Any] = {}
    for changes in steps:
        after = {k: v for k, v in {**model, **changes}.items() if v is not None}
        encoded = {k: encode_value(k, v) for k, v in after.items()}
        if item_bytes(session, encoded) <= MAX_ITEM_BYTES:
            assert store.merge(session, changes) == after
            model = after
        else:
            with pytest.raises(TooLargeError):
                store.merge(session, changes)
        assert store.get(session) == model
    assert store.replace(session, store.get(session)) == model
