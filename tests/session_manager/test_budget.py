"""The time budget: each invocation's deadline (deadline.py) and how the AWS clients keep
inside it (aws.py's hooks): per-attempt read timeouts, refused attempts, bounded retries."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
from botocore.exceptions import EndpointConnectionError, ReadTimeoutError
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


# -- one attempt ----------------------------------------------------------------------------


def attempt(due: float | None) -> dict:
    request = SimpleNamespace(context={} if due is None else {"session_manager_deadline": due})
    aws._fit_attempt(request)
    return request.context


def test_an_attempt_waits_at_most_the_ceiling():
    assert attempt(deadline.now() + 60)["read_timeout"] == aws.MAX_READ_SECS


def test_an_attempt_near_the_deadline_waits_only_what_is_left():
    read = attempt(deadline.now() + 2.0)["read_timeout"]
    assert aws.MIN_READ_SECS <= read <= 2.0 - aws.CONNECT_TIMEOUT_SECS


def test_an_attempt_below_the_floor_is_refused():
    with pytest.raises(DeadlineExceededError):
        attempt(deadline.now() + aws.CONNECT_TIMEOUT_SECS + aws.MIN_READ_SECS - 0.05)
    assert issubclass(DeadlineExceededError, UnavailableError)  # so: a 503


def test_without_per_request_timeouts_an_attempt_needs_the_whole_ceiling(monkeypatch):
    # Older botocore (a Lambda runtime's) waits the client's read_timeout, whatever we say.
    monkeypatch.setattr(aws, "PER_REQUEST_READ_TIMEOUT", False)
    assert attempt(deadline.now() + 60)["read_timeout"] == aws.MAX_READ_SECS
    with pytest.raises(DeadlineExceededError):
        attempt(deadline.now() + aws.CONNECT_TIMEOUT_SECS + aws.MAX_READ_SECS - 0.05)


# -- retries --------------------------------------------------------------------------------


def retry(attempts: int, due: float, **outcome) -> float | bool:
    request_dict = {"context": {"session_manager_deadline": due}}
    return aws._retry_within_deadline(attempts=attempts, request_dict=request_dict, **outcome)


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
    assert retry(aws.MAX_ATTEMPTS, far, **throttled()) is False


def test_other_failures_are_not_retried():
    far = deadline.now() + 60
    denied = {"response": (SimpleNamespace(status_code=400), {"Error": {"Code": "AccessDenied"}})}
    assert retry(1, far, **denied) is False
    assert retry(1, far, response=(SimpleNamespace(status_code=200), {})) is False
    assert retry(1, far, caught_exception=DeadlineExceededError("late")) is False


def test_no_retry_when_another_attempt_cannot_fit():
    almost = deadline.now() + aws.CONNECT_TIMEOUT_SECS + aws.MIN_READ_SECS - 0.05
    assert retry(1, almost, **throttled()) is False
    # With a little room, the sleep shrinks to leave the next attempt its floor.
    room = 0.05
    soon = deadline.now() + aws.CONNECT_TIMEOUT_SECS + aws.MIN_READ_SECS + room
    assert retry(2, soon, **throttled()) <= room


# -- a real client against a hung endpoint ---------------------------------------------------


def test_the_python_api_outside_lambda_gives_up_within_the_default_budget(hung, monkeypatch, table):
    monkeypatch.setattr(deadline, "DEFAULT_BUDGET_SECS", 2.5)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", hung.url)
    manager = SessionManager(table_name=table, secret_key="k" * 40)
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        manager.get_session_metadata("c1")
    took = time.monotonic() - started
    assert hung.connections >= 1
    assert took < 2.5


def test_a_hung_attempt_is_cut_to_the_time_left(hung, monkeypatch, invocation, table):
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", hung.url)
    manager = SessionManager(table_name=table, secret_key="k" * 40)
    invocation(3500)  # 2.5 s: one attempt of 1.5 s fits, no room for a second
    started = time.monotonic()
    with pytest.raises(UnavailableError):
        manager.get_session_metadata("c1")
    assert time.monotonic() - started < 2.5
    assert hung.connections == 1


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
