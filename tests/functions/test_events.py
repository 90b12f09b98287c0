"""events/: the sample events for `sam local invoke`, checked against the template and run
through their functions on moto.

Per the contract, an event file's name starts with its function's name, and every function
has at least one HTTP API (payload 2.0) event and one REST API (payload 1.0) event named
`<name>-rest.json`; and, for the other sources the SDK's ServerlessAdapter accepts,
`<name>-function-url.json`, `-rest-proxy.json`, `-alb.json` and `-alb-multivalue.json`.
A `<name>-direct-invoke.json` is what a direct invoke or a console test sends: no
requestContext, the body as a JSON object, a trailing slash or only path parameters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from event_sources import SOURCES, single_value
from lambda_harness import FUNCTIONS, LambdaFunction, as_response

from devtools import template
from devtools.context import LambdaContext

EVENTS_DIR = template.ROOT / "events"
# The HTTP functions' events; rotate_signing_key's come from Secrets Manager, and
# tests/functions/test_rotate_signing_key.py runs them.
_NOT_HTTP = [f.name for f in template.functions(http_only=False) if f.name not in FUNCTIONS]
EVENT_FILES = sorted(
    p
    for p in EVENTS_DIR.glob("*.json")
    if not any(re.fullmatch(rf"{re.escape(f)}(-[\w-]+)?", p.stem) for f in _NOT_HTTP)
)


def function_of(path: Path) -> str:
    """The function an event file is for: its name up to the first '-' or the end."""
    (name,) = [f for f in FUNCTIONS if re.fullmatch(rf"{re.escape(f)}(-[\w-]+)?", path.stem)]
    return name


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def is_http_api(event: dict[str, Any]) -> bool:
    return event.get("version") == "2.0"


def source_of(event: dict[str, Any]) -> str:
    """Which source the event is shaped as: the names of event_sources.SOURCES, or
    "http-api", "rest" or "direct-invoke"."""
    if "requestContext" not in event:
        return "direct-invoke"
    if "elb" in event["requestContext"]:
        return "alb-multivalue" if "multiValueHeaders" in event else "alb"
    if is_http_api(event):
        return "function-url" if event["routeKey"] == "$default" else "http-api"
    return "rest-proxy" if event["resource"] == "/{proxy+}" else "rest"


def test_there_are_event_files():
    assert EVENT_FILES


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_each_file_is_named_after_one_function(path):
    assert function_of(path) in FUNCTIONS


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_has_a_2_0_event_and_a_rest_1_0_event(name):
    mine = [p for p in EVENT_FILES if function_of(p) == name]
    assert any(is_http_api(load(p)) for p in mine), f"no HTTP API 2.0 event for {name}"
    rest = EVENTS_DIR / f"{name}-rest.json"
    assert rest.exists(), f"no {rest.name}"
    assert not is_http_api(load(rest))
    assert "httpMethod" in load(rest)


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_each_function_has_an_event_for_every_other_source(name, source):
    path = EVENTS_DIR / f"{name}-{source}.json"
    assert path.exists(), f"no {path.name}"
    assert source_of(load(path)) == source


def route_of(path: str, routes: set[tuple[str, str]], method: str) -> tuple[str, str]:
    """The (method, route) whose path fills in to `path`."""
    (found,) = [
        (m, r)
        for m, r in routes
        if m == method and re.fullmatch(re.sub(r"\{\w+\}", "[^/]+", r), path)
    ]
    return found


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_each_event_is_for_a_route_its_function_declares(path):
    event = load(path)
    routes = {(r.method, r.path) for r in FUNCTIONS[function_of(path)].routes}
    source = source_of(event)
    if source == "direct-invoke":
        method = event["httpMethod"]
        if "path" in event:
            assert route_of("/" + event["path"].strip("/"), routes, method)
        else:
            (parameter,) = event["pathParameters"]
            assert [r for m, r in routes if m == method and "{" + parameter + "}" in r]
        return
    if source in ("function-url", "alb", "alb-multivalue", "rest-proxy"):
        # No route named: the function matches its own routes against the path.
        if source == "function-url":
            method, called = event["requestContext"]["http"]["method"], event["rawPath"]
            assert "pathParameters" not in event
            assert ".lambda-url." in event["requestContext"]["domainName"]
        elif source == "rest-proxy":
            method, called = event["httpMethod"], "/" + event["pathParameters"]["proxy"]
            assert called == event["path"]
        else:
            method, called = event["httpMethod"], event["path"]
            assert "requestId" not in event["requestContext"]
            multi = source == "alb-multivalue"
            assert ("headers" in event) is not multi
            assert ("multiValueQueryStringParameters" in event) is multi
        assert route_of(called, routes, method)
        return
    if is_http_api(event):
        method, route_path = event["routeKey"].split(" ", 1)
        assert event["requestContext"]["routeKey"] == event["routeKey"]
        assert event["requestContext"]["http"]["method"] == method
        raw_path = event["rawPath"]
    else:
        method, route_path = event["httpMethod"], event["resource"]
        assert event["requestContext"]["resourcePath"] == route_path
        assert event["requestContext"]["httpMethod"] == method
        raw_path = event["path"]
    assert (method, route_path) in routes
    # The path parameters are the route's, and fill it in to the path that was called.
    parameters = event.get("pathParameters") or {}
    assert set(parameters) == set(re.findall(r"{(\w+)}", route_path))
    filled = route_path
    for name, value in parameters.items():
        filled = filled.replace("{" + name + "}", value)
    assert raw_path == filled
    assert event["requestContext"]["requestId"]


@pytest.mark.parametrize("path", EVENT_FILES, ids=[p.name for p in EVENT_FILES])
def test_each_event_runs_through_its_function_on_moto(import_function, path):
    function: LambdaFunction = import_function(function_of(path))
    event = load(path)
    raw = function.handler(event, LambdaContext.for_function(function.spec))
    response = as_response(single_value(raw))
    if source_of(event).startswith("alb"):
        assert raw["statusDescription"].startswith(f"{response.status} ")
    assert 200 <= response.status < 300, response.body
    if function.spec.name == "validate_token":
        # Its token was signed with devtools.aws_local.SAMPLE_KEY, which the moto secret
        # holds: a refusal here would mean the sample is stale or the key changed.
        assert response.body == {"valid": True}
