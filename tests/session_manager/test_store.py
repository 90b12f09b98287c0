"""Session metadata in DynamoDB (moto): expiry on read, one-call merges that never lose a
concurrent writer's key, JSON round-trips, the 400 KB limit, cleanup, typed errors.

Time is a FakeClock shared by every store in a test: a session "expires" when the test
moves the clock past its expires_at, while DynamoDB (moto, like the real service for
hours or days) still holds the item.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from session_manager import InvalidInputError, TooLargeError, UnavailableError
from session_manager.codec import MAX_ITEM_BYTES, MAX_KEY_CHARS, MAX_NESTING, encode_value
from session_manager.store import (
    MAX_UPDATE_KEYS,
    PARTITION_KEY,
    TTL_ATTRIBUTE,
    MetadataStore,
    item_bytes,
)

TTL = 3600
SESSION = "call-1"


@pytest.fixture
def make_store(table, clock) -> Callable[[], MetadataStore]:
    """Another instance, as another Lambda would be: its own client, the same table."""

    def make() -> MetadataStore:
        client = boto3.client("dynamodb")
        return MetadataStore(table, lambda: client, ttl_secs=TTL, clock=clock)

    return make


def run_concurrently(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, all released at once by a barrier."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(i: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[i] = call()
        except BaseException as error:  # reported in the test's own thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def exactly(value: Any) -> str:
    """A value's JSON: equal only when types match too (1 vs 1.0 vs True)."""
    return json.dumps(value, sort_keys=True)


# -- reads ----------------------------------------------------------------------------------


def test_unknown_session_reads_as_empty(store, ddb_calls):
    assert store.get("never-written") == {}
    assert ddb_calls == {"GetItem": 1}


def test_get_is_one_consistent_read(store, ddb_client):
    seen: list[dict[str, Any]] = []
    ddb_client.meta.events.register(
        "provide-client-params.dynamodb.*", lambda params, **_: seen.append(params)
    )
    store.merge(SESSION, {"a": 1})
    seen.clear()
    store.get(SESSION)
    assert len(seen) == 1
    assert seen[0]["ConsistentRead"] is True


def test_another_instance_reads_what_one_wrote(store, make_store):
    store.merge(SESSION, {"a": 1})
    assert make_store().get(SESSION) == {"a": 1}


# -- values round-trip as JSON --------------------------------------------------------------

ROUND_TRIPS = {
    "zero": 0,
    "int": 42,
    "negative int": -7,
    "int beyond 2**53": 2**63 + 1,
    "int beyond DynamoDB's 38 digits": 10**40 + 1,
    "float": 1.5,
    "whole float": 1.0,
    "negative zero": -0.0,
    "tiny float": 5e-324,
    "pi": math.pi,
    "true": True,
    "false": False,
    "empty string": "",
    "unicode": "ünïcödé ✓ 🎉",
    "empty list": [],
    "list": [1, 2.5, "x", True],
    "None in a list": [None, 1, None],
    "only None in a list": [None],
    "empty object": {},
    "nested": {"a": {"b": [1, {"c": None, "d": 2.0}], "e": []}},
    "list of lists": [[1, [2, [3.0]]], []],
}


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_values_round_trip_through_merge(store, value):
    assert exactly(store.merge(SESSION, {"v": value})) == exactly({"v": value})
    assert exactly(store.get(SESSION)) == exactly({"v": value})


@pytest.mark.parametrize("value", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_values_round_trip_through_replace(store, value):
    assert exactly(store.replace(SESSION, {"v": value})) == exactly({"v": value})
    assert exactly(store.get(SESSION)) == exactly({"v": value})


def test_many_keys_of_every_kind_round_trip_together(store):
    assert exactly(store.merge(SESSION, ROUND_TRIPS)) == exactly(ROUND_TRIPS)
    assert exactly(store.get(SESSION)) == exactly(ROUND_TRIPS)


@pytest.mark.parametrize("key", ["", "with space", "dots.in.key", "#hash", ":colon", "ключ", "m."])
def test_any_string_key_round_trips(store, key):
    assert store.merge(SESSION, {key: 1}) == {key: 1}
    assert store.get(SESSION) == {key: 1}


# -- merge, replace, delete -----------------------------------------------------------------


def test_merge_is_shallow_and_none_removes_a_key(store):
    store.merge(SESSION, {"keep": 1, "drop": 2, "nested": {"x": 1, "y": 2}})
    merged = store.merge(SESSION, {"drop": None, "nested": {"x": 9}, "new": [None]})
    expected = {"keep": 1, "nested": {"x": 9}, "new": [None]}
    assert merged == expected
    assert store.get(SESSION) == expected


def test_merge_into_a_new_session_is_one_update_item(store, ddb_calls):
    assert store.merge(SESSION, {"a": 1, "gone": None}) == {"a": 1}
    assert ddb_calls == {"UpdateItem": 1}


def test_merge_into_a_live_session_is_one_update_item(store, ddb_calls):
    store.merge(SESSION, {"a": 1})
    ddb_calls.clear()
    assert store.merge(SESSION, {"b": 2}) == {"a": 1, "b": 2}
    assert ddb_calls == {"UpdateItem": 1}


def test_replace_drops_keys_not_in_the_new_metadata(store, ddb_calls):
    store.merge(SESSION, {"a": 1, "b": 2})
    ddb_calls.clear()
    # replace stores exactly the body, a None value included (it is not a removal here).
    assert store.replace(SESSION, {"b": 3, "c": None}) == {"b": 3, "c": None}
    assert store.get(SESSION) == {"b": 3, "c": None}
    assert ddb_calls["PutItem"] == 1


def test_replace_with_nothing_empties_the_session(store):
    store.merge(SESSION, {"a": 1})
    assert store.replace(SESSION, {}) == {}
    assert store.get(SESSION) == {}


def test_delete_reports_whether_a_live_session_existed(store, ddb_calls):
    store.merge(SESSION, {"a": 1})
    ddb_calls.clear()
    assert store.delete(SESSION) is True
    assert ddb_calls == {"DeleteItem": 1}
    assert store.get(SESSION) == {}
    assert store.delete(SESSION) is False  # absent


# -- sliding TTL ----------------------------------------------------------------------------


def test_every_write_sets_expires_at_to_now_plus_ttl_as_whole_seconds(store, raw_item, clock):
    clock.now = 1_700_000_000.75  # a fractional clock must still store whole seconds
    store.merge(SESSION, {"a": 1})
    assert raw_item(SESSION)["expires_at"] == {"N": str(1_700_000_000 + TTL)}

    clock.advance(100)
    store.merge(SESSION, {"b": 2})
    assert raw_item(SESSION)["expires_at"] == {"N": str(1_700_000_100 + TTL)}

    clock.advance(100)
    store.replace(SESSION, {"c": 3})
    assert raw_item(SESSION)["expires_at"] == {"N": str(1_700_000_200 + TTL)}

    clock.advance(100)
    store.get(SESSION)  # reading does not extend a session
    assert raw_item(SESSION)["expires_at"] == {"N": str(1_700_000_200 + TTL)}


def test_a_session_kept_written_never_expires(store, clock):
    for i in range(5):
        store.merge(SESSION, {f"k{i}": i})
        clock.advance(TTL - 1)
    assert store.get(SESSION) == {f"k{i}": i for i in range(5)}


def test_expires_at_is_the_tables_ttl_attribute(dynamodb, table):
    description = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert description["AttributeName"] == TTL_ATTRIBUTE
    assert description["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
    (key,) = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    assert key == {"AttributeName": PARTITION_KEY, "KeyType": "HASH"}


# -- expired but still present --------------------------------------------------------------


@pytest.fixture
def expired_session(store, raw_item, clock) -> str:
    """A session past its expires_at that DynamoDB has not deleted yet."""
    store.merge(SESSION, {"old": "secret", "shared": "old"})
    clock.advance(TTL)  # expires_at == now: no longer live
    assert raw_item(SESSION) is not None
    return SESSION


def test_get_one_second_before_expiry_still_sees_the_session(store, clock):
    store.merge(SESSION, {"a": 1})
    clock.advance(TTL - 1)
    assert store.get(SESSION) == {"a": 1}


def test_get_treats_an_expired_item_as_absent(store, expired_session):
    assert store.get(expired_session) == {}


def test_merge_into_an_expired_item_does_not_leak_its_old_keys(
    store, expired_session, raw_item, ddb_calls, clock
):
    merged = store.merge(expired_session, {"shared": "new", "fresh": 1, "old_too": None})
    assert merged == {"shared": "new", "fresh": 1}
    assert store.get(expired_session) == {"shared": "new", "fresh": 1}
    item = raw_item(expired_session)
    assert "m.old" not in item
    assert item["expires_at"] == {"N": str(int(clock()) + TTL)}
    assert ddb_calls["UpdateItem"] == 1  # refused: the item is there but expired
    assert ddb_calls["PutItem"] == 1  # so the session starts afresh


def test_replace_of_an_expired_item_keeps_only_the_new_metadata(store, expired_session):
    assert store.replace(expired_session, {"fresh": 1}) == {"fresh": 1}
    assert store.get(expired_session) == {"fresh": 1}


def test_delete_of_an_expired_item_reports_false_and_removes_it(store, expired_session, raw_item):
    assert store.delete(expired_session) is False
    assert raw_item(expired_session) is None


# -- concurrency ----------------------------------------------------------------------------

WRITERS = 8


def test_concurrent_merges_into_a_new_session_lose_no_key(make_store):
    stores = [make_store() for _ in range(WRITERS)]
    results = run_concurrently(
        [lambda s=s, i=i: s.merge(SESSION, {f"k{i}": i}) for i, s in enumerate(stores)]
    )
    assert stores[0].get(SESSION) == {f"k{i}": i for i in range(WRITERS)}
    for i, merged in enumerate(results):
        assert merged[f"k{i}"] == i  # each writer sees at least its own key


def test_concurrent_merges_into_a_live_session_lose_no_key(make_store):
    stores = [make_store() for _ in range(WRITERS)]
    stores[0].merge(SESSION, {"existing": True})
    run_concurrently(
        [lambda s=s, i=i: s.merge(SESSION, {f"k{i}": i}) for i, s in enumerate(stores)]
    )
    expected = {"existing": True, **{f"k{i}": i for i in range(WRITERS)}}
    assert stores[0].get(SESSION) == expected


def test_concurrent_merges_into_an_expired_session_lose_no_key_and_leak_none(make_store, clock):
    stores = [make_store() for _ in range(WRITERS)]
    stores[0].merge(SESSION, {"old": 1})
    clock.advance(TTL + 1)
    run_concurrently(
        [lambda s=s, i=i: s.merge(SESSION, {f"k{i}": i}) for i, s in enumerate(stores)]
    )
    assert stores[0].get(SESSION) == {f"k{i}": i for i in range(WRITERS)}


# -- merges too big for one expression ------------------------------------------------------

MANY = 300  # keys: more than MAX_UPDATE_KEYS, so a merge of them is a read-modify-write


def many_keys(prefix: str, value: Any = 1) -> dict[str, Any]:
    return {f"{prefix}{i}": value for i in range(MANY)}


def test_merge_of_many_keys_takes_the_rewrite_path(store, ddb_calls):
    assert store.merge(SESSION, many_keys("a")) == many_keys("a")
    assert ddb_calls == {"GetItem": 1, "PutItem": 1}
    assert store.get(SESSION) == many_keys("a")


def test_a_hundred_keys_still_fit_one_update_item(store, ddb_calls):
    keys = {f"k{i}": i for i in range(100)}
    assert store.merge(SESSION, keys) == keys
    assert ddb_calls == {"UpdateItem": 1}


def test_rewrite_merges_into_the_existing_session_and_removes(store):
    store.merge(SESSION, {"keep": 1, "drop": 2})
    changes = {**many_keys("a"), "drop": None}
    expected = {"keep": 1, **many_keys("a")}
    assert store.merge(SESSION, changes) == expected
    assert store.get(SESSION) == expected


def test_rewrite_into_an_expired_session_does_not_leak(store, expired_session):
    assert store.merge(expired_session, many_keys("a")) == many_keys("a")
    assert store.get(expired_session) == many_keys("a")


def rewrite_merge(i: int) -> dict[str, Any]:
    """Writer i's merge: too many keys for one expression, all shared by every writer
    (which keeps moto's item small) but one, `own<i>`, that only this writer sets."""
    return {**many_keys("shared-"), f"own{i}": i}


def test_concurrent_rewrites_lose_no_key(make_store):
    stores = [make_store() for _ in range(WRITERS)]
    run_concurrently(
        [lambda s=s, i=i: s.merge(SESSION, rewrite_merge(i)) for i, s in enumerate(stores)]
    )
    expected = {**many_keys("shared-"), **{f"own{i}": i for i in range(WRITERS)}}
    assert stores[0].get(SESSION) == expected


def test_concurrent_rewrites_and_small_merges_lose_no_key(make_store):
    stores = [make_store() for _ in range(WRITERS)]
    calls = [
        (lambda s=s, i=i: s.merge(SESSION, rewrite_merge(i)))
        if i % 2
        else (lambda s=s, i=i: s.merge(SESSION, {f"own{i}": i}))
        for i, s in enumerate(stores)
    ]
    run_concurrently(calls)
    expected = {**many_keys("shared-"), **{f"own{i}": i for i in range(WRITERS)}}
    assert stores[0].get(SESSION) == expected


@pytest.mark.parametrize("count", [MAX_UPDATE_KEYS, MAX_UPDATE_KEYS + 1, 160, 220, 280, 1000])
def test_merges_of_any_key_count_succeed_and_round_trip(store, count):
    """moto's expression parser failed (RecursionError, a 500) from about 154 keys, and
    its PutItem took seconds from a few thousand: every count here must just work."""
    store.merge(SESSION, {"keep": True, "drop": 1})
    changes = {**{f"k{i}": [i, {"n": i / 2}] for i in range(count)}, "drop": None}
    expected = {"keep": True, **{f"k{i}": [i, {"n": i / 2}] for i in range(count)}}
    assert exactly(store.merge(SESSION, changes)) == exactly(expected)
    assert exactly(store.get(SESSION)) == exactly(expected)


def test_removals_count_towards_one_update_items_keys(store, ddb_calls):
    store.merge(SESSION, {f"k{i}": i for i in range(60)})
    ddb_calls.clear()
    changes = {**{f"k{i}": None for i in range(60)}, **{f"n{i}": i for i in range(41)}}
    assert store.merge(SESSION, changes) == {f"n{i}": i for i in range(41)}
    assert ddb_calls == {"GetItem": 1, "PutItem": 1}  # 101 keys: past one UpdateItem


def test_the_biggest_update_item_is_inside_dynamodbs_expression_limits(store, clock):
    """DynamoDB: an expression of at most 4 KB, at most 300 operators in an UpdateExpression
    (each `=` counted, to be safe), placeholders of at most 255 bytes."""
    half = MAX_UPDATE_KEYS // 2
    to_set = {"k" * MAX_KEY_CHARS + str(i): "1" for i in range(MAX_UPDATE_KEYS - half)}
    to_remove = ["r" * MAX_KEY_CHARS + str(i) for i in range(half)]
    request = store._merge_request(SESSION, to_set, to_remove, int(clock()), room=0)
    for name in ("UpdateExpression", "ConditionExpression"):
        assert len(request[name].encode()) <= 4096
    assert request["UpdateExpression"].count("=") <= 300
    placeholders = [*request["ExpressionAttributeNames"], *request["ExpressionAttributeValues"]]
    assert max(len(p.encode()) for p in placeholders) <= 255


class Sleeps(list):
    """A sleep that only records how long it was asked to sleep."""

    def __call__(self, secs: float) -> None:
        self.append(secs)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def slow_store(table, ddb_client, clock, sleeps) -> MetadataStore:
    return MetadataStore(table, lambda: ddb_client, ttl_secs=TTL, clock=clock, sleep=sleeps)


def lose_races(store: MetadataStore, times: int) -> None:
    """The store's next `times` conditional puts find the item changed by someone else."""
    put = store._put
    lost = iter(range(times))

    def racing_put(*args: Any, **kwargs: Any) -> bool:
        if kwargs.get("expect") is not None and next(lost, None) is not None:
            return False
        return put(*args, **kwargs)

    store._put = racing_put  # type: ignore[method-assign]


def test_a_rewrite_that_loses_races_backs_off_with_jitter_and_lands(slow_store, sleeps):
    lose_races(slow_store, 4)
    assert slow_store.merge(SESSION, many_keys("a")) == many_keys("a")
    assert len(sleeps) == 4
    ceilings = [0.04, 0.08, 0.16, 0.32]  # base 0.02 s, doubled each attempt
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))
    assert slow_store.get(SESSION) == many_keys("a")


def test_a_rewrite_that_keeps_losing_gives_up_as_unavailable(slow_store, sleeps):
    lose_races(slow_store, 1000)
    with pytest.raises(UnavailableError):
        slow_store.merge(SESSION, many_keys("a"))
    assert len(sleeps) == 9  # ten attempts, a backoff between each two
    assert sum(sleeps) <= 3.1  # inside any Lambda timeout worth having
    assert slow_store.get(SESSION) == {}


# -- nesting: DynamoDB's 32 levels ----------------------------------------------------------


def nested(depth: int, leaf: Any = 1) -> Any:
    """A value `depth` containers deep, alternating lists and objects."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


@pytest.mark.parametrize("operation", ["merge", "replace"])
def test_a_value_exactly_max_nesting_deep_round_trips(store, operation):
    value = nested(MAX_NESTING)
    assert getattr(store, operation)(SESSION, {"deep": value}) == {"deep": value}
    assert store.get(SESSION) == {"deep": value}


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 980, 100_000])
@pytest.mark.parametrize("operation", ["merge", "replace"])
def test_a_value_nested_deeper_is_refused_and_nothing_written(store, ddb_calls, operation, depth):
    store.merge(SESSION, {"kept": 1})
    ddb_calls.clear()
    with pytest.raises(InvalidInputError, match="nests deeper than 32"):
        getattr(store, operation)(SESSION, {"ok": 1, "deep": nested(depth)})
    assert ddb_calls == {}
    assert store.get(SESSION) == {"kept": 1}


def test_how_depth_counts():
    """Containers count, the value itself included; scalars add nothing."""
    for value in (1, "x", None, [], {}, {"a": [1]}, nested(MAX_NESTING)):
        encode_value("k", value)
    with pytest.raises(InvalidInputError):
        encode_value("k", nested(MAX_NESTING, leaf=[]))  # the empty list is level 33


def test_a_value_that_contains_itself_is_refused(store, ddb_calls):
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(InvalidInputError):
        store.merge(SESSION, {"loop": loop})
    assert ddb_calls == {}


def test_non_string_object_keys_inside_a_value_are_refused(store, ddb_calls):
    # JSON would read {1: "a", "1": "b"} back as {"1": "b"}: not what was written.
    with pytest.raises(InvalidInputError, match="non-string"):
        store.merge(SESSION, {"v": {1: "a", "1": "b"}})
    assert ddb_calls == {}


# -- the read path never fails --------------------------------------------------------------

FOREIGN = {
    "not JSON": {"S": "{nope"},
    "too deep": {"S": "[" * 40 + "]" * 40},
    "deeper than Python parses": {"S": "[" * 5_000 + "]" * 5_000},
    "a number attribute": {"N": "1"},
    "a map attribute": {"M": {"a": {"S": "b"}}},
}


@pytest.mark.parametrize("attribute", FOREIGN.values(), ids=FOREIGN.keys())
def test_an_attribute_another_writer_left_is_skipped_not_a_failure(
    store, dynamodb, table, raw_item, attribute
):
    store.merge(SESSION, {"good": [1, 2]})
    dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": SESSION}},
        UpdateExpression="SET #b = :b",
        ExpressionAttributeNames={"#b": "m.bad"},
        ExpressionAttributeValues={":b": attribute},
    )
    assert store.get(SESSION) == {"good": [1, 2]}
    assert store.merge(SESSION, {"more": 3}) == {"good": [1, 2], "more": 3}
    assert store.merge(SESSION, many_keys("a")) == {"good": [1, 2], "more": 3, **many_keys("a")}
    assert store.get(SESSION) == {"good": [1, 2], "more": 3, **many_keys("a")}


def test_cleanup_leaves_items_that_are_not_sessions(store, dynamodb, table, clock, raw_item):
    marker = {"pk": {"S": "revoked#call-1"}, TTL_ATTRIBUTE: {"N": str(int(clock()) - 1)}}
    dynamodb.put_item(TableName=table, Item=marker)
    store.merge(SESSION, {"a": 1})
    clock.advance(TTL)
    assert store.cleanup(max_age_secs=0) == 1
    assert raw_item("revoked#call-1") == marker


# -- the 400 KB item limit ------------------------------------------------------------------


def filler_for(session_id: str, key: str, extra_bytes: int = 0) -> str:
    """A string value that makes the item exactly MAX_ITEM_BYTES (+ extra_bytes) big."""
    base = item_bytes(session_id, {key: encode_value(key, "")})
    return "x" * (MAX_ITEM_BYTES - base + extra_bytes)


def test_metadata_exactly_at_the_limit_is_stored_and_read_back(store, ddb_calls):
    value = filler_for(SESSION, "blob")
    assert item_bytes(SESSION, {"blob": encode_value("blob", value)}) == MAX_ITEM_BYTES
    assert store.merge(SESSION, {"blob": value}) == {"blob": value}
    assert store.get(SESSION) == {"blob": value}
    assert store.replace(SESSION, {"blob": value}) == {"blob": value}
    assert store.get(SESSION) == {"blob": value}


@pytest.mark.parametrize("operation", ["merge", "replace"])
def test_one_byte_over_the_limit_is_refused_before_any_call(store, ddb_calls, raw_item, operation):
    value = filler_for(SESSION, "blob", extra_bytes=1)
    with pytest.raises(TooLargeError):
        getattr(store, operation)(SESSION, {"blob": value})
    assert ddb_calls == {}
    assert raw_item(SESSION) is None


def test_the_limit_counts_key_names(store, ddb_calls):
    value = filler_for(SESSION, "blob")  # fits under the name "blob" ...
    with pytest.raises(TooLargeError):
        store.merge(SESSION, {"blob2": value})  # ... not under a name one byte longer
    assert ddb_calls == {}


def test_the_limit_counts_utf8_bytes_not_characters(store, ddb_calls):
    chars = len(filler_for(SESSION, "blob")) // 2 + 1  # "é" is 2 bytes
    with pytest.raises(TooLargeError):
        store.merge(SESSION, {"blob": "é" * chars})
    assert ddb_calls == {}
    assert store.merge(SESSION, {"blob": "é" * (chars - 1)})


def test_dynamodbs_own_size_error_is_too_large_and_writes_nothing(store, ddb_calls):
    # Each half fits on its own; together they do not, whichever of us or DynamoDB sees it.
    store.merge(SESSION, {"first": "a" * 250_000})
    with pytest.raises(TooLargeError):
        store.merge(SESSION, {"second": "b" * 200_000})
    assert ddb_calls["UpdateItem"] == 2
    assert store.get(SESSION) == {"first": "a" * 250_000}


def test_successive_merges_cannot_grow_a_session_past_the_limit(store, raw_item):
    # Each merge fits on its own and the two together fit DynamoDB's 409,600 bytes (and
    # moto's 405,000), but not our 400,000: what GET returns must stay a PUT we accept.
    store.merge(SESSION, {"first": "a" * 390_000})
    with pytest.raises(TooLargeError):
        store.merge(SESSION, {"second": "b" * 12_000})
    stored = store.get(SESSION)
    assert stored == {"first": "a" * 390_000}
    assert store.replace(SESSION, stored) == stored


def test_merges_fill_a_session_exactly_to_the_limit_and_a_put_of_it_is_accepted(store):
    store.merge(SESSION, {"first": "a" * 200_000})
    base = item_bytes(SESSION, {"first": encode_value("first", "a" * 200_000)})
    last = "b" * (MAX_ITEM_BYTES - base - item_bytes_of_entry("second", ""))
    store.merge(SESSION, {"second": last})
    stored = store.get(SESSION)
    assert item_bytes(SESSION, {k: encode_value(k, v) for k, v in stored.items()}) == (
        MAX_ITEM_BYTES
    )
    assert store.replace(SESSION, stored) == stored
    with pytest.raises(TooLargeError):
        store.merge(SESSION, {"x": 1})


def test_overwriting_a_key_near_the_limit_is_accepted_again_and_again(store, ddb_calls):
    value = filler_for(SESSION, "blob")
    for letter in "abcd":
        assert store.merge(SESSION, {"blob": letter * len(value)}) == {"blob": letter * len(value)}
    assert store.get(SESSION) == {"blob": "d" * len(value)}


def item_bytes_of_entry(key: str, value: Any) -> int:
    """What one more key adds to an item's size."""
    return item_bytes(SESSION, {key: encode_value(key, value)}) - item_bytes(SESSION, {})


def test_rewrite_path_checks_the_merged_size_before_writing(store, ddb_calls):
    store.merge(SESSION, {"first": "a" * 300_000})
    ddb_calls.clear()
    with pytest.raises(TooLargeError):
        store.merge(SESSION, many_keys("k", "b" * 400))  # 300 x ~400 bytes
    assert ddb_calls == {"GetItem": 1}
    assert store.get(SESSION) == {"first": "a" * 300_000}


# -- cleanup --------------------------------------------------------------------------------


def test_cleanup_removes_expired_sessions_only(store, clock, raw_item):
    store.merge("stale-1", {"a": 1})
    store.merge("stale-2", {"a": 1})
    clock.advance(TTL)
    store.merge("live", {"a": 1})
    assert store.cleanup() == 2
    assert raw_item("stale-1") is None and raw_item("stale-2") is None
    assert store.get("live") == {"a": 1}
    assert store.cleanup() == 0


def test_cleanup_with_max_age_removes_sessions_not_written_for_that_long(store, clock):
    store.merge("old", {"a": 1})
    clock.advance(600)
    store.merge("recent", {"a": 1})
    clock.advance(100)
    assert store.cleanup(max_age_secs=300) == 1  # "old" was written 700 s ago
    assert store.get("old") == {}
    assert store.get("recent") == {"a": 1}


def test_cleanup_of_an_empty_table_removes_nothing(store):
    assert store.cleanup() == 0
    assert store.cleanup(max_age_secs=1) == 0


def test_cleanup_follows_scan_pages(store, clock, ddb_calls):
    # ~100 KB per item: DynamoDB (and moto) return at most 1 MB per Scan page.
    blob = "x" * 100_000
    for i in range(30):
        store.merge(f"stale-{i:02}", {"blob": blob})
    clock.advance(TTL)
    for i in range(5):
        store.merge(f"live-{i}", {"blob": blob})
    ddb_calls.clear()

    assert store.cleanup() == 30
    assert ddb_calls["Scan"] >= 3
    assert ddb_calls["DeleteItem"] == 30
    assert all(store.get(f"live-{i}") == {"blob": blob} for i in range(5))


def test_cleanup_spares_a_session_rewritten_after_the_scan_found_it(
    store, make_store, clock, ddb_client
):
    store.merge("revived", {"old": 1})
    store.merge("stale", {"old": 1})
    clock.advance(TTL)

    other = make_store()  # another instance writing while the sweep runs
    found: list[str] = []

    def revive_after_first_page(parsed: dict[str, Any], **_: Any) -> None:
        if not found:
            found.extend(item["pk"]["S"] for item in parsed["Items"])
            other.merge("revived", {"new": 2})

    ddb_client.meta.events.register("after-call.dynamodb.Scan", revive_after_first_page)
    assert store.cleanup() == 1
    assert "revived" in found  # it was stale when scanned ...
    assert store.get("revived") == {"new": 2}  # ... and survived the delete
    assert store.get("stale") == {}


# -- invalid input never reaches DynamoDB ---------------------------------------------------

BAD_SESSION_IDS = ["", "s" * 129, "a b", "a/b", "a:b", "é", "a\n", None, 123, ["a"]]


@pytest.mark.parametrize("session_id", BAD_SESSION_IDS, ids=repr)
def test_invalid_session_id_is_refused_before_any_call(store, ddb_calls, session_id):
    for operation in (
        lambda: store.get(session_id),
        lambda: store.merge(session_id, {"a": 1}),
        lambda: store.replace(session_id, {"a": 1}),
        lambda: store.delete(session_id),
    ):
        with pytest.raises(InvalidInputError):
            operation()
    assert ddb_calls == {}


def test_longest_session_id_is_accepted(store):
    session_id = "A-z_0.9" + "s" * 121  # 128 characters
    assert store.merge(session_id, {"a": 1}) == {"a": 1}
    assert store.get(session_id) == {"a": 1}


class Unserialisable:
    pass


def circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


BAD_METADATA = {
    "NaN": {"v": float("nan")},
    "infinity": {"v": float("inf")},
    "-infinity": {"v": -math.inf},
    "NaN in a list": {"v": [1, float("nan")]},
    "object": {"v": Unserialisable()},
    "set": {"v": {1, 2}},
    "bytes": {"v": b"raw"},
    "Decimal": {"v": Decimal("1.5")},
    "datetime": {"v": datetime(2025, 1, 1)},
    "circular": {"v": circular()},
    "int key": {1: "v"},
    "None key": {None: "v"},
    "tuple key": {("a",): "v"},
    "key too long": {"k" * (MAX_KEY_CHARS + 1): "v"},
    # Valid JSON escapes of no Unicode text: DynamoDB could not store them as strings.
    "lone surrogate value": {"v": "\ud800"},
    "lone surrogate in a nested value": {"v": {"w": ["ok", "x\udc00y"]}},
    "lone surrogate key": {"\ud800": "v"},
    # Not an object at all.
    "list of pairs": [("a", 1)],
    "string": "a=1",
    "None": None,
    "number": 42,
}


@pytest.mark.parametrize("metadata", BAD_METADATA.values(), ids=BAD_METADATA.keys())
def test_invalid_metadata_is_refused_before_any_call(store, ddb_calls, metadata):
    with pytest.raises(InvalidInputError):
        store.merge(SESSION, metadata)
    with pytest.raises(InvalidInputError):
        store.replace(SESSION, metadata)
    assert ddb_calls == {}


def test_a_bad_value_among_good_ones_writes_nothing(store, raw_item):
    with pytest.raises(InvalidInputError):
        store.merge(SESSION, {"good": 1, "bad": float("nan")})
    assert raw_item(SESSION) is None


def test_longest_key_is_accepted(store):
    key = "k" * MAX_KEY_CHARS
    assert store.merge(SESSION, {key: 1}) == {key: 1}


# -- AWS throttling or unreachable ----------------------------------------------------------

OPERATIONS = {
    "get": lambda s: s.get(SESSION),
    "merge": lambda s: s.merge(SESSION, {"a": 1}),
    "rewrite merge": lambda s: s.merge(SESSION, many_keys("a")),
    "replace": lambda s: s.replace(SESSION, {"a": 1}),
    "delete": lambda s: s.delete(SESSION),
    "cleanup": lambda s: s.cleanup(),
}


@pytest.mark.parametrize("kind", ["throttled", "unreachable"])
@pytest.mark.parametrize("operation", OPERATIONS.values(), ids=OPERATIONS.keys())
def test_throttling_or_unreachable_raises_unavailable(store, ddb_client, outage, kind, operation):
    outage(ddb_client, kind).active = True
    with pytest.raises(UnavailableError) as raised:
        operation(store)
    assert raised.value.retry_after_secs > 0


def test_throttling_reported_by_dynamodb_raises_unavailable(table, clock):
    # botocore's own Stubber builds the error response as DynamoDB sends it.
    client = boto3.client("dynamodb")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "get_item",
            service_error_code="ProvisionedThroughputExceededException",
            http_status_code=400,
        )
        with pytest.raises(UnavailableError):
            MetadataStore(table, lambda: client, clock=clock).get(SESSION)


def test_a_missing_table_is_an_error_not_an_empty_session(aws, clock):
    client = boto3.client("dynamodb")
    absent = MetadataStore("no-such-table", lambda: client, clock=clock)
    with pytest.raises(ClientError) as raised:
        absent.get(SESSION)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_merge_that_finds_no_room_costs_one_put_more_and_no_read(store, ddb_calls):
    store.merge(SESSION, {"blob": filler_for(SESSION, "blob")})
    ddb_calls.clear()
    assert store.merge(SESSION, {"blob": "small"}) == {"blob": "small"}
    assert ddb_calls == {"UpdateItem": 1, "PutItem": 1}
    ddb_calls.clear()
    store.merge(SESSION, {"next": 1})  # the put left an exact size: room again
    assert ddb_calls == {"UpdateItem": 1}


def test_a_session_written_without_a_size_is_merged_and_counted(store, dynamodb, table, clock):
    # As an item written before the size attribute existed.
    dynamodb.put_item(
        TableName=table,
        Item={
            PARTITION_KEY: {"S": SESSION},
            TTL_ATTRIBUTE: {"N": str(int(clock()) + TTL)},
            "v": {"S": "old"},
            "m.first": {"S": '"' + "a" * 390_000 + '"'},
        },
    )
    with pytest.raises(TooLargeError):
        store.merge(SESSION, {"second": "b" * 12_000})
    assert store.merge(SESSION, {"second": 2}) == {"first": "a" * 390_000, "second": 2}
