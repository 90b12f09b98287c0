"""Fixtures for the layer's tests: a settable clock, AWS call counters, managers on moto.

No __init__.py in this folder on purpose: with one, pytest (prepend import mode) would name
this package `session_manager`, after its folder, and shadow the layer's own package.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from session_manager import SessionManager
from session_manager.store import MetadataStore


class FakeClock:
    """Epoch seconds that only move when a test moves them: expiry without sleeping."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, secs: float) -> None:
        self.now += secs


def count_calls(client: Any) -> Counter[str]:
    """Count the API calls `client` makes, by operation name (GetItem, PutItem...).

    before-call fires once per API call, before botocore's retries, so the count is what
    the code asked for, not how many HTTP attempts it took.
    """
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    client.meta.events.register("before-call.*.*", record)
    return calls


class Outage:
    """Makes a real client fail every call while `active`, as AWS does when it throttles
    or cannot be reached. Raised from before-call, so botocore does not retry it: the
    test sees the error that botocore would raise once its retries are spent."""

    def __init__(self, client: Any, kind: str = "unreachable") -> None:
        self.active = False
        self.attempts = 0
        self._error = {"unreachable": unreachable, "throttled": throttled}[kind]
        client.meta.events.register("before-call.*.*", self._fail)

    def _fail(self, model: Any, **_: Any) -> None:
        if self.active:
            self.attempts += 1
            raise self._error(model.name)


def unreachable(operation: str) -> Exception:
    return EndpointConnectionError(endpoint_url="https://aws.invalid")


def throttled(operation: str) -> Exception:
    code = "ProvisionedThroughputExceededException"
    return ClientError({"Error": {"Code": code, "Message": "slow down"}}, operation)


@pytest.fixture
def outage() -> type[Outage]:
    """`outage(client, "unreachable" | "throttled")`, switched on with `.active = True`."""
    return Outage


@pytest.fixture
def calls_of() -> Callable[[Any], Counter[str]]:
    """`calls_of(client)`: a Counter of the API calls that client makes from now on."""
    return count_calls


@pytest.fixture
def clock() -> FakeClock:
    # Near the real time, so tokens the real-time SDK mints are not wildly off.
    return FakeClock(float(int(time.time())))


@pytest.fixture
def ddb_client(aws) -> Any:
    """A DynamoDB client of the code under test's own, so setup calls are not counted."""
    return boto3.client("dynamodb")


@pytest.fixture
def sm_client(aws) -> Any:
    """A Secrets Manager client of the code under test's own."""
    return boto3.client("secretsmanager")


@pytest.fixture
def ddb_calls(ddb_client) -> Counter[str]:
    return count_calls(ddb_client)


@pytest.fixture
def sm_calls(sm_client) -> Counter[str]:
    return count_calls(sm_client)


@pytest.fixture
def make_manager(table, secret, clock) -> Callable[..., SessionManager]:
    """SessionManager on the moto table and secret; each call is a new (cold) instance
    with clients of its own unless some are passed."""

    def make(**overrides: Any) -> SessionManager:
        settings: dict[str, Any] = {
            "table_name": table,
            "secret_id": secret,
            "clock": clock,
            "dynamodb_client": boto3.client("dynamodb"),
            "secrets_client": boto3.client("secretsmanager"),
        }
        settings.update(overrides)
        return SessionManager(**settings)

    return make


@pytest.fixture
def manager(make_manager, ddb_client, sm_client) -> SessionManager:
    """The manager most tests use; its calls are counted by ddb_calls and sm_calls."""
    return make_manager(dynamodb_client=ddb_client, secrets_client=sm_client)


@pytest.fixture
def store(table, ddb_client, clock) -> MetadataStore:
    return MetadataStore(table, lambda: ddb_client, ttl_secs=3600, clock=clock)


@pytest.fixture
def raw_item(dynamodb, table) -> Callable[[str], dict[str, Any] | None]:
    """The item as DynamoDB holds it, read past the code under test."""

    def read(session_id: str) -> dict[str, Any] | None:
        response = dynamodb.get_item(
            TableName=table, Key={"pk": {"S": session_id}}, ConsistentRead=True
        )
        return response.get("Item")

    return read
