"""The embedded moto as make_moto_dynamodb_atomic leaves it: requests serialized per item
(as DynamoDB does), requests on other items free to run meanwhile, big items fast to write.

A write is held inside moto (while it holds its item's lock) by a gate the test opens, so
"runs meanwhile" and "waits" are shown by what completes while the gate is shut, not by
timing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from devtools import aws_local
from session_manager.store import MetadataStore

HELD = "held-session"
WAIT_SECS = 30  # a generous bound: only reached when something is wrong


class Gate:
    """Holds moto's PutItem of the HELD item until opened; says when one is being held."""

    def __init__(self) -> None:
        self.holding = threading.Event()
        self.opened = threading.Event()

    def __call__(self, item: dict[str, Any]) -> None:
        if item.get("pk", {}).get("S") == HELD:
            self.holding.set()
            assert self.opened.wait(WAIT_SECS), "the test never opened the gate"


@pytest.fixture
def gate(monkeypatch, aws) -> Iterator[Gate]:
    from moto.dynamodb.models import DynamoDBBackend

    gate = Gate()
    put_item = DynamoDBBackend.put_item

    def held_put_item(self: Any, table_name: str, item_attrs: dict[str, Any], *a, **kw) -> Any:
        gate(item_attrs)
        return put_item(self, table_name, item_attrs, *a, **kw)

    monkeypatch.setattr(DynamoDBBackend, "put_item", held_put_item)
    yield gate
    gate.opened.set()  # never leave a thread stuck, whatever the test did


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Start `call` in a daemon thread; the list gets its result (or the error it raised)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture
def new_store(table) -> Callable[[], MetadataStore]:
    """A store with a client of its own, as each concurrent Lambda instance has."""

    def make() -> MetadataStore:
        client = boto3.client("dynamodb")
        return MetadataStore(table, lambda: client)

    return make


def test_requests_on_other_sessions_complete_while_one_write_is_held(gate, new_store):
    new_store().replace("other", {"before": 1})
    writer, written = in_thread(lambda: new_store().replace(HELD, {"big": "x"}))
    assert gate.holding.wait(WAIT_SECS)

    other = new_store()
    assert other.merge("other", {"during": 2}) == {"before": 1, "during": 2}
    assert other.get("other") == {"before": 1, "during": 2}
    assert other.replace("third", {"a": 1}) == {"a": 1}
    assert other.delete("third") is True
    assert writer.is_alive() and not written  # all of that while the write was still held

    gate.opened.set()
    writer.join(WAIT_SECS)
    assert written == [{"big": "x"}]


def test_a_request_on_the_same_session_waits_for_the_held_write(gate, new_store):
    writer, _ = in_thread(lambda: new_store().replace(HELD, {"first": 1}))
    assert gate.holding.wait(WAIT_SECS)
    reader, read = in_thread(lambda: new_store().get(HELD))
    reader.join(0.5)
    assert reader.is_alive() and not read  # it cannot see the item half-written

    gate.opened.set()
    writer.join(WAIT_SECS)
    reader.join(WAIT_SECS)
    assert read == [{"first": 1}]


def test_a_scan_waits_for_item_requests_in_flight_and_then_runs(gate, new_store, table):
    writer, _ = in_thread(lambda: new_store().replace(HELD, {"a": 1}))
    assert gate.holding.wait(WAIT_SECS)
    client = boto3.client("dynamodb")
    scanner, scanned = in_thread(lambda: client.scan(TableName=table, ConsistentRead=True))
    scanner.join(0.5)
    assert scanner.is_alive()  # a scan never iterates the table while an item changes

    gate.opened.set()
    writer.join(WAIT_SECS)
    scanner.join(WAIT_SECS)
    assert [item["pk"]["S"] for item in scanned[0]["Items"]] == [HELD]


def test_a_transaction_on_several_items_is_serialized_with_each(gate, table):
    client = boto3.client("dynamodb")
    writer, _ = in_thread(
        lambda: client.put_item(TableName=table, Item={"pk": {"S": HELD}, "n": {"N": "1"}})
    )
    assert gate.holding.wait(WAIT_SECS)
    other = boto3.client("dynamodb")
    transaction = {
        "TransactItems": [
            {"Put": {"TableName": table, "Item": {"pk": {"S": "free"}}}},
            {"Put": {"TableName": table, "Item": {"pk": {"S": "revoked#call-1"}}}},
        ]
    }
    other.transact_write_items(**transaction)  # touches no held item: runs now

    held_too = {"Update": {"TableName": table, "Key": {"pk": {"S": HELD}}}}
    held_too["Update"]["UpdateExpression"] = "SET n = :n"
    held_too["Update"]["ExpressionAttributeValues"] = {":n": {"N": "2"}}
    waiting, done = in_thread(lambda: other.transact_write_items(TransactItems=[held_too]))
    waiting.join(0.5)
    assert waiting.is_alive()

    gate.opened.set()
    writer.join(WAIT_SECS)
    waiting.join(WAIT_SECS)
    assert done and not isinstance(done[0], BaseException)
    item = client.get_item(TableName=table, Key={"pk": {"S": HELD}})["Item"]
    assert item["n"] == {"N": "2"}  # the transaction ran after the held put, not before


def test_a_large_put_reads_back_and_others_are_answered_meanwhile(new_store):
    """20,000 keys (about 300 KB): minutes on moto's own quadratic PutItem, seconds now."""
    metadata = {f"key-{i:05}": i for i in range(20_000)}
    writer, written = in_thread(lambda: new_store().replace("big", metadata))
    other = new_store()
    for i in range(5):
        assert other.merge("small", {f"k{i}": i})[f"k{i}"] == i
    writer.join(120)
    assert not writer.is_alive()
    assert written and written[0] == metadata


def test_moto_still_refuses_an_item_over_its_size_limit(table):
    client = boto3.client("dynamodb")
    item = {"pk": {"S": "huge"}, **{f"a{i}": {"S": "x" * 1000} for i in range(410)}}
    with pytest.raises(ClientError) as raised:
        client.put_item(TableName=table, Item=item)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "Item" not in client.get_item(TableName=table, Key={"pk": {"S": "huge"}})


def test_making_it_atomic_twice_wraps_once(aws):
    from moto.dynamodb.responses import DynamoHandler

    aws_local.make_moto_dynamodb_atomic()
    wrapped = DynamoHandler.call_action
    aws_local.make_moto_dynamodb_atomic()
    assert DynamoHandler.call_action is wrapped
