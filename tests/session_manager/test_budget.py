"""The time budget: each invocation's deadline (deadline.py) and how the AWS clients keep
inside it (aws.py's hooks): per-attempt read timeouts, refused attempts, bounded retries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from fault_endpoints import HungEndpoint

from devtools.context import LambdaContext
from session_manager import SessionManager, UnavailableError, aws, deadline
from session_manager.errors import DeadlineExceededError
from session_manager.keys import CACHED_FETCH_SECS


@pytest.fixture
def hung() -> Iterator[HungEndpoint]:
    endpoint = HungEndpoint()
    yield endpoint
    endpoint.close()


@pytest.fixture
def invocation() -> Iterator[Callable[[int], None]]:
    """`invocation(remaining_ms)`: a deadline set as the handler wrapper sets it."""
    tokens = []

    def begin(remaining_ms: int) -> None:
        tokens.append(deadline.begin(LambdaContext(remaining_ms=remaining_ms)))

    yield begin
    for token in reversed(tokens):
        deadline.end(token)


# -- the deadline ---------------------------------------------------------------------------


def test_an_invocation_gets_its_remaining_time_less_the_margin(invocation):
    assert deadline.current() is None
    invocation(10_000)
    left = deadline.current() - deadline.now()
    assert 10 - deadline.MARGIN_SECS - 0.1 < left <= 10 - deadline.MARGIN_SECS


def test_a_long_function_timeout_is_capped(invocation):
    invocation(900_000)
    assert deadline.current() - deadline.now() <= deadline.MAX_BUDGET_SECS


def test_a_context_without_remaining_time_gets_the_default():
    token = deadline.begin(None)
    try:
        left = deadline.current() - deadline.now()
        assert deadline.DEFAULT_BUDGET_SECS - 0.1 < left <= deadline.DEFAULT_BUDGET_SECS
    finally:
        deadline.end(token)
    assert deadline.current() is None


def test_outside_an_invocation_each_call_gets_the_default_budget():
    left = deadline.for_call() - deadline.now()
    assert deadline.DEFAULT_BUDGET_SECS - 0.1 < left <= deadline.DEFAULT_BUDGET_SECS


def test_at_most_narrows_and_never_extends(invocation):
    invocation(3000)  # 2 s
    outer = deadline.current()
    with deadline.at_most(0.5):
        assert deadline.current() < outer
    with deadline.at_most(60):
        assert deadline.current() == outer
    assert deadline.current() == outer


# -- one attempt, on a real client of the installed botocore (moto answers) ---------------
#
# `make test` runs these on the newest botocore and on the floor that pyproject.toml
# declares (.venv-floor), which predates per-request read timeouts: each run checks the
# rule its botocore gets, on botocore's own request objects.

# Can this botocore cut an attempt's wait? (botocore >= 1.43.68) If not, each attempt
# waits up to the client's whole read timeout.
CUTS = aws.PER_REQUEST_READ_TIMEOUT
WHOLE_WAIT = aws.READ_TIMEOUT_SECS


@pytest.fixture
def sent(table) -> tuple[Any, list[float | None]]:
    """A layer client on the moto table, and the read timeout each attempt it sends was
    given (None: the client's own, MAX_READ_SECS)."""
    client = aws.client("dynamodb")
    timeouts: list[float | None] = []

    def record(request: Any, **_: Any) -> None:
        timeouts.append((getattr(request, "context", None) or {}).get("read_timeout"))

    client.meta.events.register_last("before-send.dynamodb", record)
    return client, timeouts


def test_an_attempt_waits_at_most_the_ceiling(sent, table):
    client, timeouts = sent
    with deadline.at_most(60):
        client.describe_table(TableName=table)
    assert timeouts == [aws.MAX_READ_SECS if CUTS else None]


def test_an_attempt_near_the_deadline_waits_only_what_is_left(sent, table):
    client, timeouts = sent
    with deadline.at_most(2.0):
        client.describe_table(TableName=table)
    if CUTS:
        [read] = timeouts
        assert aws.MIN_READ_SECS <= read <= 2.0 - aws.CONNECT_TIMEOUT_SECS
    else:  # its whole (short) wait fits
        assert aws.CONNECT_TIMEOUT_SECS + WHOLE_WAIT < 2.0
        assert timeouts == [None]


def test_an_attempt_below_the_floor_is_refused(sent, table):
    client, timeouts = sent
    late = deadline.at_most(aws.CONNECT_TIMEOUT_SECS + aws.MIN_READ_SECS - 0.05)
    with late, pytest.raises(DeadlineExceededError):
        client.describe_table(TableName=table)
    assert timeouts == []
    assert issubclass(DeadlineExceededError, UnavailableError)  # so: a 503


def test_without_per_request_timeouts_an_attempt_needs_the_whole_ceiling(
    sent, table, monkeypatch
):
    # The fallback for a botocore that cannot cut a wait, run here whatever botocore this is.
    monkeypatch.setattr(aws, "PER_REQUEST_READ_TIMEOUT", False)
    client, timeouts = sent
    with deadline.at_most(60):
        client.describe_table(TableName=table)
    assert timeouts == [None]
    late = deadline.at_most(aws.CONNECT_TIMEOUT_SECS + WHOLE_WAIT - 0.05)
    with late, pytest.raises(DeadlineExceededError):
        client.describe_table(TableName=table)
    assert timeouts == [None]


def test_a_call_that_fails_for_good_is_sent_once(sent):
    # "Do not retry" must read so on every botocore: one that takes False for a sleep of
    # 0 s would send this call for ever.
    client, timeouts = sent
    with pytest.raises(ClientError) as failed:
        client.describe_table(TableName="no-such-table")
    assert aws.error_code(failed.value) == "ResourceNotFoundException"
    assert len(timeouts) == 1


# -- retries --------------------------------------------------------------------------------


def retry(attempts: int, due: float, **outcome) -> float | None:
    token = aws._call_deadline.set(due)  # as before-call sets it for a real call
    try:
        return aws._retry_within_deadline(attempts=attempts, **outcome)
    finally:
        aws._call_deadline.reset(token)


def throttled() -> dict:
    http = SimpleNamespace(status_code=400)
    return {"response": (http, {"Error": {"Code": "ThrottlingException"}})}


def test_transient_failures_are_retried_with_jittered_backoff():
    far = deadline.now() + 60
    for attempts in (1, 2):
        cap = aws.BACKOFF_BASE_SECS * 2 ** (attempts - 1)
        assert 0 <= retry(attempts, far, **throttled()) <= cap
        refused = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")
        assert 0 <= retry(attempts, far, caught_exception=refused) <= cap
        timed_out = ReadTimeoutError(endpoint_url="http://127.0.0.1:1")
        assert 0 <= retry(attempts, far, caught_exception=timed_out) <= cap
    assert retry(aws.MAX_ATTEMPTS, far, **throttled()) is None


def test_other_failures_are_not_retried():
    far = deadline.now() + 60
    denied = {"response": (SimpleNamespace(status_code=400), {"Error": {"Code": "AccessDenied"}})}
    assert retry(1, far, **denied) is None
    assert retry(1, far, response=(SimpleNamespace(status_code=200), {})) is None
    assert retry(1, far, caught_exception=DeadlineExceededError("late")) is None


def test_no_retry_when_another_attempt_cannot_fit():
    shortest = aws.MIN_READ_SECS if CUTS else WHOLE_WAIT
    almost = deadline.now() + aws.CONNECT_TIMEOUT_SECS + shortest - 0.05
    assert retry(1, almost, **throttled()) is None
    # With a little room, the sleep shrinks to leave the next attempt its floor.
    room = 0.05
    soon = deadline.now() + aws.CONNECT_TIMEOUT_SECS + shortest + room
    assert retry(2, soon, **throttled()) <= room


# -- a real client against a hung endpoint ---------------------------------------------------


def test_the_python_api_outside_lambda_gives_up_within_the_default_budget(hung, monkeypatch, table):
    budget = 2.5
    monkeypatch.setattr(deadline, "DEFAULT_BUDGET_SECS", budget)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", hung.url)
    manager = SessionManager(table_name=table, secret_key="k" * 40)
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        manager.get_session_metadata("c1")
    took = time.monotonic() - started
    assert hung.connections >= 1
    assert took < budget


def test_a_hung_attempt_is_cut_to_the_time_left(hung, monkeypatch, invocation, table):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", hung.url)
    manager = SessionManager(table_name=table, secret_key="k" * 40)
    invocation(3500)  # 2.5 s: one attempt of 1.5 s fits, no room for a second
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        manager.get_session_metadata("c1")
    assert time.monotonic() - started < 2.5
    # Where botocore cannot cut a wait, every wait is the floor's 0.5 s: two attempts fit.
    assert hung.connections == (1 if CUTS else 2)


def test_a_cached_key_refetch_gets_a_short_budget(hung, monkeypatch, make_manager, invocation):
    manager = make_manager(secret_cache_secs=1)
    token = manager.generate_token("f", "c1")  # key cached from moto
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", hung.url)
    manager._clients["secretsmanager"] = aws.client("secretsmanager")
    manager._keys._cache_secs = 0  # every operation refetches, and meets the hung endpoint
    invocation(10_000)
    started = time.monotonic()
    assert manager.validate_token("c1", "f", token)
    assert time.monotonic() - started < CACHED_FETCH_SECS
