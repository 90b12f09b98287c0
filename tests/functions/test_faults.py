"""The functions against failing AWS: every request is answered inside the function's
timeout, as the contract's envelope.

- hung: a real listener that accepts and never answers (fault_endpoints.HungEndpoint);
- unreachable: a loopback port that refuses connections;
- throttling: every attempt answered with the service's throttling error;
- Secrets Manager down while a warm instance holds the key: every call still works;
- a race on a session's first write: it lands exactly once.

The hung cases run each route with Lambda's 10 s (template.yaml's Timeout) in the slow
suite, and with a 3 s context in the quick one; both assert the bound that matters: the
503 arrives before the function would have been killed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from fault_endpoints import HungEndpoint, unreachable_url
from lambda_harness import LambdaFunction, Response, as_response, assert_unavailable

from devtools import aws_local, events, template
from devtools.context import LambdaContext
from session_manager import SessionManager, aws, keys

FUNCTION_TIMEOUT_SECS = template.load()["Globals"]["Function"]["Timeout"]
# What each route sends: (function, method, body).
METADATA_CALLS = [
    ("get_metadata", "GET", None),
    ("set_metadata", "PATCH", {"step": 2}),
    ("set_metadata", "PUT", {"step": 2}),
    ("delete_metadata", "DELETE", None),
]


@pytest.fixture
def hung() -> Iterator[HungEndpoint]:
    endpoint = HungEndpoint()
    yield endpoint
    endpoint.close()


def invoke(fn: LambdaFunction, event: dict[str, Any], remaining_ms: int) -> tuple[Response, float]:
    """The handler's answer with a context of `remaining_ms`, and how long it took."""
    context = LambdaContext(function_name=fn.spec.name, remaining_ms=remaining_ms)
    started = time.monotonic()
    raw = fn.handler(event, context)
    return as_response(raw), time.monotonic() - started


def token_calls(signing_key: str) -> list[tuple[str, str, Any]]:
    """create token, validate a genuine token, validate a forged one."""
    genuine = SessionManager(secret_key=signing_key).generate_token("lookup", "call-1")
    forged = SessionManager(secret_key="f" * 40).generate_token("lookup", "call-1")
    check = {"call_id": "call-1", "function_name": "lookup"}
    return [
        ("create_token", "POST", {"function_name": "lookup"}),
        ("validate_token", "POST", {**check, "token": genuine}),
        ("validate_token", "POST", {**check, "token": forged}),
    ]


def run_against(
    endpoint_url: str,
    monkeypatch: pytest.MonkeyPatch,
    import_function: Callable[..., LambdaFunction],
    signing_key: str,
    remaining_ms: int,
) -> list[tuple[str, float]]:
    """Every route, each on a cold instance of its own, both services at `endpoint_url`;
    each answer checked to be a 503; the time of each returned.

    The routes run at once, each in its own thread as Lambda runs each instance apart: a
    hung endpoint makes every one of them wait out its budget, and one after the other
    that was a minute of the suite. Each instance's deadline lives in its own thread.
    """
    for variable in (aws_local.ENDPOINT_VARIABLES[s] for s in ("dynamodb", "secretsmanager")):
        monkeypatch.setenv(variable, endpoint_url)
    calls = [
        (import_function(name), method, body)
        for name, method, body in METADATA_CALLS + token_calls(signing_key)
    ]
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        answers = list(
            pool.map(
                lambda call: invoke(call[0], call[0].event(call[1], call[2]), remaining_ms), calls
            )
        )
    timings = []
    for (fn, method, _), (response, took) in zip(calls, answers, strict=True):
        assert_unavailable(response)
        timings.append((f"{method} {fn.spec.name}", took))
    return timings


# -- hung and unreachable endpoints ---------------------------------------------------------


@pytest.mark.slow
def test_hung_aws_is_answered_503_within_the_function_timeout(
    hung, monkeypatch, import_function, signing_key
):
    remaining_ms = FUNCTION_TIMEOUT_SECS * 1000
    timings = run_against(hung.url, monkeypatch, import_function, signing_key, remaining_ms)
    print("\nagainst a hung endpoint, 10 s left:", [f"{n} {t:.2f}s" for n, t in timings])
    assert hung.connections >= len(timings)  # the calls really went to the listener
    assert max(took for _, took in timings) < FUNCTION_TIMEOUT_SECS


def test_hung_aws_with_little_time_left_is_answered_within_that_time(
    hung, monkeypatch, import_function, signing_key
):
    timings = run_against(hung.url, monkeypatch, import_function, signing_key, 3000)
    print("\nagainst a hung endpoint, 3 s left:", [f"{n} {t:.2f}s" for n, t in timings])
    assert hung.connections >= len(timings)
    assert max(took for _, took in timings) < 3


def test_unreachable_aws_is_answered_503_fast(monkeypatch, import_function, signing_key):
    timings = run_against(unreachable_url(), monkeypatch, import_function, signing_key, 10_000)
    print("\nagainst a refusing port:", [f"{n} {t:.2f}s" for n, t in timings])
    # Refused connections are retried (twice, with short sleeps), then given up.
    assert max(took for _, took in timings) < 2


def test_no_time_left_answers_503_without_calling_aws(import_function, aws_calls):
    fn = import_function("get_metadata")
    response, _ = invoke(fn, fn.event("GET"), remaining_ms=1200)
    assert_unavailable(response)
    assert aws_calls["GetItem"] == 1  # asked for, and refused before anything was sent


# -- throttling -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "method", "body", "service", "code"),
    [
        ("get_metadata", "GET", None, "dynamodb", "ProvisionedThroughputExceededException"),
        ("set_metadata", "PATCH", {"a": 1}, "dynamodb", "ThrottlingException"),
        ("create_token", "POST", {"function_name": "f"}, "secretsmanager", "ThrottlingException"),
    ],
)
def test_throttling_is_retried_with_backoff_then_503(
    import_function, aws_error, no_backoff, name, method, body, service, code
):
    fault = aws_error(service, code)
    fn = import_function(name)
    response, _ = invoke(fn, fn.event(method, body), 10_000)
    assert_unavailable(response)
    assert fault.attempts == aws.MAX_ATTEMPTS
    assert no_backoff.count == aws.MAX_ATTEMPTS - 1  # a backoff before each retry


def test_a_throttled_call_that_recovers_succeeds(import_function, env, no_backoff):
    """Throttled on all attempts but the last, which moto answers: a 200."""
    attempts: list[str] = []
    body = b'{"__type": "ProvisionedThroughputExceededException", "message": "slow down"}'

    def throttle_then_answer(request: Any, **_: Any) -> AWSResponse | None:
        attempts.append(request.url)
        if len(attempts) == aws.MAX_ATTEMPTS:
            return None  # moto answers
        raw = SimpleNamespace(stream=lambda **_: iter([body]))
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0"}, raw)

    session = boto3.DEFAULT_SESSION or boto3.setup_default_session() or boto3.DEFAULT_SESSION
    session.events.register_first("before-send.dynamodb.*", throttle_then_answer)
    try:
        fn = import_function("get_metadata")
        response, _ = invoke(fn, fn.event("GET"), 10_000)
    finally:
        session.events.unregister("before-send.dynamodb.*", throttle_then_answer)
    assert response.status == 200, response.body
    assert len(attempts) == aws.MAX_ATTEMPTS
    assert no_backoff.count == aws.MAX_ATTEMPTS - 1


# -- Secrets Manager down while the key is cached -------------------------------------------


@pytest.mark.parametrize("failure", ["hung", "unreachable"])
def test_secrets_manager_down_with_a_cached_key_keeps_minting_and_validating(
    monkeypatch, import_function, hung, failure
):
    monkeypatch.setenv("SECRET_CACHE_SECS", "1")
    create, validate = import_function("create_token"), import_function("validate_token")
    # Warm: each instance has fetched the key.
    minted = invoke(create, create.event("POST", {"function_name": "lookup"}), 10_000)[0]
    assert minted.status == 201
    check = {"call_id": "call-1", "function_name": "lookup"}
    before = validate.event("POST", {**check, "token": minted.body["token"]})
    assert invoke(validate, before, 10_000)[0].body == {"valid": True}

    # Secrets Manager goes down for both instances: their clients now reach a dead endpoint.
    monkeypatch.setenv(
        "AWS_ENDPOINT_URL_SECRETS_MANAGER", hung.url if failure == "hung" else unreachable_url()
    )
    for fn in (create, validate):
        fn.manager._clients["secretsmanager"] = aws.client("secretsmanager")
    time.sleep(1.1)  # the cached keys are due for a refetch, which will fail

    forged = SessionManager(secret_key="f" * 40).generate_token("lookup", "call-1")
    started = time.monotonic()
    minted = invoke(create, create.event("POST", {"function_name": "lookup"}), 10_000)[0]
    during = validate.event("POST", {**check, "token": minted.body["token"]})
    genuine = invoke(validate, during, 10_000)[0]
    refused = invoke(validate, validate.event("POST", {**check, "token": forged}), 10_000)[0]
    took = time.monotonic() - started
    print(f"\nwarm, Secrets Manager {failure}: mint + validate + forged in {took:.2f}s")

    assert minted.status == 201, minted.body
    assert genuine.body == {"valid": True}
    assert refused.body == {"valid": False, "reason": "bad_signature"}
    # Each refetch with a key in hand gets CACHED_FETCH_SECS at most: three such here
    # (create's, validate's, the forged token's refresh), well inside one function timeout.
    assert took < 3 * keys.CACHED_FETCH_SECS + 1


# -- a race on a session's first write ------------------------------------------------------


def test_concurrent_first_merges_into_a_new_session_land_exactly_once(
    import_function, dynamodb, table
):
    fn = import_function("set_metadata", events.http_api_event)
    writers = 8
    barrier = threading.Barrier(writers)
    statuses: list[int] = []

    def merge(i: int) -> None:
        event = fn.event("PATCH", {f"key{i}": i}, session_id="race-1")
        barrier.wait()
        statuses.append(invoke(fn, event, 10_000)[0].status)

    threads = [threading.Thread(target=merge, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * writers
    items = dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    assert [item["pk"]["S"] for item in items] == ["race-1"]
    get = import_function("get_metadata", events.http_api_event)
    response, _ = invoke(get, get.event("GET", session_id="race-1"), 10_000)
    assert response.body["metadata"] == {f"key{i}": i for i in range(writers)}
