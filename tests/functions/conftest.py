"""Fixtures for the Lambda functions: each handler imported afresh on moto, events in both
API Gateway payload formats, captured log and metric output, AWS call counters, AWS failures.

No __init__.py in this folder: like tests/session_manager, a package here would be named
after its folder (`functions`); helpers live in lambda_harness.py, a name of their own.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from lambda_harness import (
    EVENT_FORMATS,
    FUNCTIONS,
    LambdaFunction,
    drop_function_modules,
    import_handler,
)

from devtools import events

# Imported here, at collection, on purpose: telemetry's log handler binds its stream to the
# sys.stdout of the moment it is created. Made now, that is pytest's session-wide stdout,
# not the capture of whichever test imported it first (closed once that test ends).
from session_manager import telemetry

# -- the functions --------------------------------------------------------------------------


@pytest.fixture(params=list(EVENT_FORMATS), ids=list(EVENT_FORMATS))
def event_format(request) -> Callable[..., dict[str, Any]]:
    """Every test that builds its events with `load_function` runs once per payload format."""
    return EVENT_FORMATS[request.param]


@pytest.fixture
def import_function(env) -> Iterator[Callable[..., LambdaFunction]]:
    """`import_function(name, make_event=http_api_event)`: the function's module imported
    now, under `env`, as Lambda's INIT does.

    Why afresh each time: the module builds `manager = SessionManager.from_env()` at import,
    reading the environment of that moment, and the manager then creates its boto3 clients
    on first use and keeps them, with the signing key it fetched, for the module's life.
    devtools.lambda_runtime.load_handler caches the module in sys.modules under a fixed name, so
    without this a later test would get a manager made for an earlier test: its moto state
    gone, its key cached (no cold call to count), deaf to endpoint variables the test set.
    So every functions/*/app.py module is dropped from sys.modules before each import (in
    case other code left one) and after the test: each import is a true cold start on this
    test's moto mock (test_http.py checks it).
    """

    def load(
        name: str, make_event: Callable[..., dict[str, Any]] = events.http_api_event
    ) -> LambdaFunction:
        spec = FUNCTIONS[name]
        module, handler = import_handler(spec)
        return LambdaFunction(spec, module, handler, make_event)

    yield load
    drop_function_modules()


@pytest.fixture
def load_function(import_function, event_format) -> Callable[[str], LambdaFunction]:
    """`load_function(name)`: as import_function, with events in this test's payload format."""
    return lambda name: import_function(name, event_format)


# One fixture per function, each run in both payload formats (load_function).
@pytest.fixture
def get_metadata(load_function) -> LambdaFunction:
    return load_function("get_metadata")


@pytest.fixture
def set_metadata(load_function) -> LambdaFunction:
    return load_function("set_metadata")


@pytest.fixture
def delete_metadata(load_function) -> LambdaFunction:
    return load_function("delete_metadata")


@pytest.fixture
def create_token(load_function) -> LambdaFunction:
    return load_function("create_token")


@pytest.fixture
def validate_token(load_function) -> LambdaFunction:
    return load_function("validate_token")


# -- log and metric output -------------------------------------------------------------------


@dataclass
class Output:
    """What the functions printed: JSON log records and EMF metric documents (JSON
    lines on stdout, as Lambda ships them to CloudWatch), and all of stdout and stderr."""

    text: str
    logs: list[dict[str, Any]]
    metrics: list[dict[str, Any]]

    def metric_names(self, document: dict[str, Any]) -> list[str]:
        return [
            metric["Name"]
            for directive in document["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        ]


class _CurrentStdout:
    """Writes to whatever sys.stdout is at the moment of writing."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


@pytest.fixture
def output(capsys, monkeypatch) -> Callable[[], Output]:
    """`output()`: what was printed since the last call, parsed."""
    # telemetry.log_handler holds the stream it was made with, and capsys swaps its stream
    # between a test's setup and call phases: follow sys.stdout instead of holding one.
    monkeypatch.setattr(telemetry.log_handler, "stream", _CurrentStdout())

    def read() -> Output:
        captured = capsys.readouterr()
        logs, metrics = [], []
        for line in captured.out.splitlines():
            if line.startswith("{"):
                document = json.loads(line)
                (metrics if "_aws" in document else logs).append(document)
        return Output(captured.out + captured.err, logs, metrics)

    return read


# -- AWS calls and failures -----------------------------------------------------------------


def _session_events() -> Any:
    """boto3's default session's event emitter; every client made later copies it."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    return boto3.DEFAULT_SESSION.events


@pytest.fixture
def aws_calls(env) -> Iterator[Counter[str]]:
    """API calls (GetItem, GetSecretValue...) made by boto3 clients created from now on.

    Registered on boto3's default session, whose handlers each new client copies: the
    manager creates its clients lazily inside the first (cold) invocation, so there is no
    client to hook before it, and a client first made in a warm call is counted too.
    before-call fires once per API call, not per HTTP attempt. It depends on `env`, so the
    setup's own clients (table, secret) already exist and their calls are not counted.
    """
    calls: Counter[str] = Counter()

    def record(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    session_events = _session_events()
    session_events.register("before-call.*.*", record, unique_id="tests-functions-aws-calls")
    yield calls
    session_events.unregister("before-call.*.*", unique_id="tests-functions-aws-calls")


@pytest.fixture
def no_backoff(monkeypatch) -> SimpleNamespace:
    """botocore's retries without their backoff sleeps (seconds each); counts the sleeps,
    one per retry, so a test can see that the retries happened."""
    slept = SimpleNamespace(count=0)

    def sleep(_secs: float) -> None:
        slept.count += 1

    # Only botocore.endpoint's name for `time`: time.sleep stays real everywhere else.
    monkeypatch.setattr(botocore.endpoint, "time", SimpleNamespace(sleep=sleep))
    return slept


@dataclass
class AwsFault:
    service: str
    code: str
    attempts: int = 0  # HTTP attempts answered with the error


_SERVICE_IDS = {"dynamodb": "dynamodb", "secretsmanager": "secrets-manager"}


@pytest.fixture
def aws_error(env, no_backoff) -> Iterator[Callable[[str, str], AwsFault]]:
    """`aws_error("dynamodb", code)`: from now on, every HTTP attempt of that service's
    new clients gets HTTP 400 with that error code, as AWS answers it. botocore handles the
    answer as it would a real one: throttling codes are retried with backoff, then raised."""
    session_events = _session_events()
    registered: list[tuple[str, Callable[..., Any]]] = []

    def start(service: str, code: str) -> AwsFault:
        fault = AwsFault(service, code)
        body = json.dumps({"__type": code, "message": "injected by the test"}).encode()

        def respond(request: Any, **_: Any) -> AWSResponse:
            fault.attempts += 1
            raw = SimpleNamespace(stream=lambda **_: iter([body]))
            headers = {"x-amzn-ErrorType": code, "Content-Type": "application/x-amz-json-1.1"}
            return AWSResponse(request.url, 400, headers, raw)

        event_name = f"before-send.{_SERVICE_IDS[service]}.*"
        # First, so this answer wins over moto's own before-send handler.
        session_events.register_first(event_name, respond)
        registered.append((event_name, respond))
        return fault

    yield start
    for event_name, respond in registered:
        session_events.unregister(event_name, respond)


@pytest.fixture
def throttle(aws_error) -> Callable[[str], AwsFault]:
    """`throttle("dynamodb" | "secretsmanager")`: the service throttles every request."""
    codes = {
        "dynamodb": "ProvisionedThroughputExceededException",
        "secretsmanager": "ThrottlingException",
    }
    return lambda service: aws_error(service, codes[service])
