"""session_manager.telemetry through the real handlers: structured JSON logs (with
the API Gateway request id as correlation id, and never the event, a token or a key) and
EMF metrics (one per operation, one TokenRejected per refusal, by reason)."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

import pytest
from lambda_harness import FAR_FUTURE, FUNCTIONS, request_id

from session_manager import telemetry, tokens

OPERATIONS = {
    "get_metadata": "GetMetadata",
    "set_metadata": "SetMetadata",
    "delete_metadata": "DeleteMetadata",
    "create_token": "CreateToken",
    "validate_token": "ValidateToken",
}

MARKER = "caller-data-7f3e9b"  # stands for whatever a caller sends


def body_for(name: str, signing_key: str) -> dict[str, Any]:
    if name == "set_metadata":
        return {"note": MARKER}
    if name == "create_token":
        return {"function_name": "get_weather", "note": MARKER}
    token = tokens.mint(signing_key.encode(), "call-1", "get_weather", FAR_FUTURE)
    return {"token": token, "call_id": "call-1", "function_name": "get_weather"}


def test_every_function_has_an_operation_name():
    assert set(OPERATIONS) == set(FUNCTIONS)


# -- logs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_log_lines_carry_the_request_id_as_correlation_id(
    load_function, output, throttle, signing_key, name
):
    # A throttled call is one that logs (a warning); the request id must be on it.
    throttle("secretsmanager" if "token" in name else "dynamodb")
    function = load_function(name)
    event = function.event(function.methods()[0], body_for(name, signing_key))
    assert function.invoke(event).status == 503

    logs = output().logs
    assert logs, "a 503 is logged"
    for log in logs:
        assert log["correlation_id"] == request_id(event)


@pytest.fixture
def debug_logging():
    level = telemetry.logger.level
    telemetry.logger.setLevel(logging.DEBUG)
    yield
    telemetry.logger.setLevel(level)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_the_event_is_never_logged(
    load_function, output, monkeypatch, debug_logging, signing_key, name
):
    """Not even when Powertools is told to log events (the variable is read when the
    module loads), and not at DEBUG."""
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    function = load_function(name)
    body = body_for(name, signing_key)
    responses = [function(method, body) for method in function.methods()]
    assert all(r.status < 300 for r in responses), [r.body for r in responses]

    printed = output().text
    for secret in (MARKER, signing_key, json.dumps(body), *map(str, body.values())):
        if secret in {"call-1", "get_weather"}:
            continue  # ids, not secrets; they may name what failed
        assert secret not in printed
    for response in responses:
        if "token" in response.body:
            assert response.body["token"] not in printed


# -- metrics ----------------------------------------------------------------------------------


def metric_values(document: dict[str, Any]) -> dict[str, Any]:
    names = [
        metric["Name"]
        for directive in document["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    ]
    return {name: document[name] for name in names}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_invocation_emits_its_operation_metric_once(load_function, output, signing_key, name):
    function = load_function(name)
    body = body_for(name, signing_key)
    for method in function.methods():
        function(method, body)
        function(method, "not json")  # errors count as invocations of the operation too

    documents = output().metrics
    invocations = 2 * len(function.methods())
    assert len(documents) == invocations  # one EMF document per invocation
    for document in documents:
        assert metric_values(document) == {OPERATIONS[name]: [1.0]}


def test_unavailable_and_internal_errors_are_counted(load_function, output, throttle, monkeypatch):
    throttle("dynamodb")
    get = load_function("get_metadata")
    assert get().status == 503
    (document,) = output().metrics
    assert metric_values(document) == {"GetMetadata": [1.0], "Unavailable": [1.0]}

    monkeypatch.setattr(get.manager, "get_session_metadata", lambda _: 1 / 0)
    assert get().status == 500
    (document,) = output().metrics
    assert metric_values(document) == {"GetMetadata": [1.0], "InternalError": [1.0]}


def test_each_refused_token_emits_token_rejected_with_its_reason(
    load_function, output, signing_key
):
    validate = load_function("validate_token")
    key = signing_key.encode()
    cases = {
        tokens.Refusal.MALFORMED: ("garbage", "call-1", "f"),
        tokens.Refusal.WRONG_FUNCTION: (tokens.mint(key, "call-1", "f", FAR_FUTURE), "call-1", "g"),
        tokens.Refusal.WRONG_CALL: (tokens.mint(key, "call-1", "f", FAR_FUTURE), "call-2", "f"),
        tokens.Refusal.EXPIRED: (
            tokens.mint(key, "call-1", "f", int(time.time()) - 1),
            "call-1",
            "f",
        ),
        tokens.Refusal.BAD_SIGNATURE: (
            tokens.mint(b"z" * 40, "call-1", "f", FAR_FUTURE),
            "call-1",
            "f",
        ),
    }
    for reason, (token, call_id, function_name) in cases.items():
        response = validate(
            body={"token": token, "call_id": call_id, "function_name": function_name}
        )
        assert response.body == {"valid": False, "reason": reason}

        documents = output().metrics
        rejected = [d for d in documents if "TokenRejected" in metric_values(d)]
        (document,) = rejected
        assert document["reason"] == reason
        assert metric_values(document) == {"TokenRejected": [1.0]}
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert any("reason" in dimensions for dimensions in directive["Dimensions"])
        # ...and the operation's own metric, in its own document.
        assert [metric_values(d) for d in documents if d is not document] == [
            {"ValidateToken": [1.0]}
        ]


def test_a_valid_token_emits_no_rejection(load_function, output, signing_key):
    validate = load_function("validate_token")
    token = tokens.mint(signing_key.encode(), "call-1", "f", FAR_FUTURE)
    assert validate(body={"token": token, "call_id": "call-1", "function_name": "f"}).body == {
        "valid": True
    }
    assert [metric_values(d) for d in output().metrics] == [{"ValidateToken": [1.0]}]


# -- tracing ----------------------------------------------------------------------------------


@pytest.fixture
def tracer_calls(monkeypatch) -> list[dict[str, Any]]:
    """Every Tracer.capture_lambda_handler call, with its options; the real one still runs."""
    from aws_lambda_powertools import Tracer

    calls: list[dict[str, Any]] = []
    real = Tracer.capture_lambda_handler

    def spy(self, lambda_handler=None, **options):
        calls.append(options)
        return real(self, lambda_handler, **options)

    monkeypatch.setattr(Tracer, "capture_lambda_handler", spy)
    return calls


def test_tracer_wraps_the_handler_when_switched_on(import_function, monkeypatch, tracer_calls):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    # Outside Lambda there is no X-Ray segment to attach to: tell the SDK not to mind.
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "IGNORE_ERROR")
    function = import_function("get_metadata")
    assert tracer_calls == [{"capture_response": False}]
    assert function.invoke(function.event("GET")).status == 200


def test_tracer_is_not_even_imported_by_default(import_function, tracer_calls):
    function = import_function("get_metadata")  # POWERTOOLS_TRACE_DISABLED=true (conftest)
    assert tracer_calls == []
    assert function.invoke(function.event("GET")).status == 200


def test_tracing_without_the_xray_sdk_warns_and_serves(
    import_function, monkeypatch, output, tracer_calls
):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "false")
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # as in the layer: not shipped
    function = import_function("get_metadata")
    assert tracer_calls == []
    assert function.invoke(function.event("GET")).status == 200
    assert any("aws-xray-sdk" in log.get("message", "") for log in output().logs)


# -- configuration read from the environment (a fresh Python: telemetry reads it at import) --

_PRINT = """
from session_manager import telemetry

@telemetry.instrument
def handler(event, context):
    telemetry.count("GetMetadata")
    telemetry.count_token_rejection("expired")
    telemetry.logger.info("info line")
    telemetry.logger.warning("warning line")
    return {}

handler({"requestContext": {"requestId": "req-7"}}, None)
"""


def printed_lines(**environment: str) -> list[dict[str, Any]]:
    import os
    import subprocess

    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "POWERTOOLS_SERVICE_NAME": "svc",
        "POWERTOOLS_METRICS_NAMESPACE": "NS",
        "POWERTOOLS_TRACE_DISABLED": "true",
        **environment,
    }
    result = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", _PRINT], env=env, capture_output=True, text=True, check=True
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_metrics_disabled_prints_logs_only():
    lines = printed_lines(POWERTOOLS_METRICS_DISABLED="true")
    assert [line["message"] for line in lines] == ["info line", "warning line"]
    assert all(line["correlation_id"] == "req-7" for line in lines)


@pytest.mark.parametrize(
    ("environment", "messages"),
    [
        ({}, ["info line", "warning line"]),
        ({"LOG_LEVEL": "WARNING"}, ["warning line"]),
        ({"POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "DEBUG"}, ["warning line"]),
    ],
)
def test_log_level_comes_from_the_environment(environment, messages):
    lines = printed_lines(POWERTOOLS_METRICS_DISABLED="true", **environment)
    assert [line["message"] for line in lines] == messages


def test_metrics_carry_namespace_and_service():
    documents = [line for line in printed_lines() if "_aws" in line]
    assert len(documents) == 2
    for document in documents:
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "NS"
        assert document["service"] == "svc"
        assert all("service" in dimensions for dimensions in directive["Dimensions"])


def test_add_metric_writes_the_unit_it_is_given(capsys, monkeypatch):
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    metrics = telemetry.Metrics()
    metrics.add_metric("KeyFetchLatency", "Milliseconds", 12.5)
    metrics.add_metric("Requests", value=2)
    metrics.flush()
    (line,) = capsys.readouterr().out.splitlines()
    document = json.loads(line)
    (directive,) = document["_aws"]["CloudWatchMetrics"]
    assert directive["Metrics"] == [
        {"Name": "KeyFetchLatency", "Unit": "Milliseconds"},
        {"Name": "Requests", "Unit": "Count"},
    ]
    assert document["KeyFetchLatency"] == [12.5]
    assert document["Requests"] == [2.0]
