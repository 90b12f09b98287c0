"""HTTP events in, HTTP responses out: the request and response shaping all functions share.

Accepts what the SignalWire SDK's ServerlessAdapter accepts: API Gateway REST (payload 1.0,
a named route or a `{proxy+}` one), HTTP API (payload 2.0), a Lambda function URL, and an
Application Load Balancer target (single- or multi-value headers). Each function declares
its routes; where the event does not name one of them, the function matches its routes
against the event's path (404 for none, 405 with Allow for a wrong method). A function only
parses its inputs, calls the manager and returns (status, body); everything that can go
wrong becomes the contract's error envelope:
    {"error": {"code": "...", "message": "..."}}
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from . import deadline, telemetry
from .codec import MAX_ITEM_BYTES
from .errors import (
    ConfigurationError,
    InvalidInputError,
    MethodNotAllowedError,
    NotFoundError,
    SessionManagerError,
    TooLargeError,
    UnavailableError,
)
from .validation import check_function_name, check_session_id

# Metadata fits 400 KB of DynamoDB item, but a read can send it back up to six times as
# big: a key is stored as its UTF-8 bytes and read as JSON text, where a control character
# takes six (\u0001). A write must take back what a read returned, so the body may be that
# big; a larger one cannot be valid, and reading it into json.loads would only cost memory.
MAX_BODY_BYTES = 6 * MAX_ITEM_BYTES
_JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
# A lone surrogate (a raw one, or an escape such as "\ud800" without its pair) is valid JSON
# syntax but not Unicode text: whatever field it is in, the body is malformed. The regex
# keeps the full check off the common path.
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89abcdefABCDEF]")


# Where an event came from, which decides the response's shape.
API_GATEWAY = "api-gateway"  # REST and HTTP APIs, function URLs
ALB = "alb"
ALB_MULTI_VALUE = "alb-multi-value"  # a target group with multi-value headers on


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in template.yaml: /sessions/{session_id}/metadata

    def match(self, path: str, decode: bool = True) -> dict[str, str] | None:
        """The path parameters when `path` is this route's path, else None; percent-decoded
        unless `decode` is false (a path API Gateway has decoded already)."""
        found = _route_pattern(self.path).fullmatch(path)
        if found is None:
            return None
        return {k: unquote(v) if decode else v for k, v in found.groupdict().items()}


@functools.cache
def _route_pattern(route_path: str) -> re.Pattern[str]:
    parts = re.split(r"\{(\w+)\}", route_path)  # literal, name, literal, name, ...
    return re.compile(
        "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>[^/]+)" for i, p in enumerate(parts))
    )


@dataclass(frozen=True)
class Request:
    method: str
    path_parameters: dict[str, str]
    body: str | None
    request_id: str
    route: str = ""  # the matched route's path, as declared: "/sessions/{session_id}/metadata"
    source: str = API_GATEWAY

    def session_id(self) -> str:
        return check_session_id(self.path_parameters.get("session_id"))

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 when absent, not JSON, or not an object."""
        if self.body is None or not self.body.strip():
            raise InvalidInputError("the request needs a JSON object body")
        if len(self.body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            raise TooLargeError(f"the body exceeds {MAX_BODY_BYTES} bytes")
        try:
            value = json.loads(self.body, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise InvalidInputError("the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise InvalidInputError("the body must be a JSON object")
        if _MAYBE_SURROGATE.search(self.body) and not _is_unicode(value):
            raise InvalidInputError("the body holds an unpaired surrogate")
        return value

    def string_field(self, body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"'{name}' must be a non-empty string")
        return value

    def call_id(self, body: dict[str, Any]) -> str:
        return check_session_id(self.string_field(body, "call_id"))

    def function_name(self, body: dict[str, Any]) -> str:
        return check_function_name(self.string_field(body, "function_name"))


def _is_unicode(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def event_source(event: Any) -> str:
    context = event.get("requestContext") if isinstance(event, dict) else None
    if isinstance(context, dict) and "elb" in context:
        return ALB_MULTI_VALUE if "multiValueHeaders" in event else ALB
    return API_GATEWAY


def parse_event(
    event: dict[str, Any], routes: Iterable[Route] = (), fallback_request_id: str = ""
) -> Request:
    """The request an event carries, routed to one of `routes` (any path when none).

    Events without a request id (ALB's, a direct invoke's) take `fallback_request_id`:
    Lambda's own. As the SignalWire SDK's ServerlessAdapter does, an event without a
    requestContext (a direct invoke, a console test) is read for what it has: its method
    is `httpMethod`, else POST with a body and GET without; a body given as JSON rather
    than as a string is taken as that JSON."""
    if not isinstance(event, dict):
        raise InvalidInputError(_NOT_AN_HTTP_EVENT)
    context = event.get("requestContext")
    if context is None:
        context = {}
    elif not isinstance(context, dict):
        raise InvalidInputError(_NOT_AN_HTTP_EVENT)
    source = event_source(event)
    http = context.get("http")
    if event.get("version") == "2.0" and isinstance(http, dict):
        method = http.get("method")
    elif "httpMethod" in event or context:
        method = event.get("httpMethod")
    else:
        method = "POST" if event.get("body") else "GET"
    request_id = context.get("requestId")
    if not request_id and (source != API_GATEWAY or not context):
        request_id = fallback_request_id
    parameters = event.get("pathParameters") or {}
    body = event.get("body")
    if not (
        isinstance(method, str)
        and isinstance(request_id, str)
        and isinstance(parameters, dict)
        and all(isinstance(v, str) for v in parameters.values())
    ):
        raise InvalidInputError(_NOT_AN_HTTP_EVENT)
    method = method.upper()
    route, parameters = _route(event, method, list(routes), parameters)
    if isinstance(body, str) and event.get("isBase64Encoded"):
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            raise InvalidInputError("the body is not valid base64 UTF-8") from None
    elif body is not None and not isinstance(body, str):
        body = _json_text(body)
    return Request(
        method=method,
        path_parameters=parameters,
        body=body,
        request_id=request_id,
        route=route,
        source=source,
    )


_NOT_AN_HTTP_EVENT = (
    "not an HTTP event from API Gateway, a function URL or a load balancer: a direct "
    "invoke needs httpMethod and path (or pathParameters), and a body that is a JSON "
    "object or a string"
)


def _json_text(body: Any) -> str:
    """A body an event gives as JSON (a direct invoke's object), as its JSON text."""
    try:
        return json.dumps(body, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise InvalidInputError("the body is neither a string nor JSON") from None


def _route(
    event: dict[str, Any], method: str, routes: list[Route], parameters: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """(the route's path, its path parameters); 404 or 405 when no route fits."""
    if not routes:
        return "", parameters
    named = _named_route(event)
    if named in {r.path for r in routes}:
        # API Gateway matched one of our routes and filled its parameters in.
        candidates = [r for r in routes if r.path == named]
    elif (called := _routing_path(event, parameters)) is not None:
        path, decode = called
        candidates, parameters = [], {}
        for route in routes:
            found = route.match(path, decode)
            if found is not None:
                candidates.append(route)
                parameters = found
        if not candidates:
            raise NotFoundError("no such route")
    else:
        # A direct invoke that names no path: the routes its path parameters fill in.
        # Naming neither is not taken as "/" (as the SDK does): an event that is no HTTP
        # request at all (an SQS batch, {}) deserves a 400 that says what to send.
        candidates = [
            r
            for r in routes
            if parameters and set(_route_pattern(r.path).groupindex) == set(parameters)
        ]
        if len({r.path for r in candidates}) != 1:
            raise InvalidInputError(
                "the event names no path: send path (such as "
                f"{' or '.join(sorted({r.path for r in routes}))}) with its parameters filled in"
            )
    allowed = sorted({r.method for r in candidates})
    if method not in allowed:
        raise MethodNotAllowedError(f"use {' or '.join(allowed)}", {"Allow": ", ".join(allowed)})
    return candidates[0].path, parameters


def _named_route(event: dict[str, Any]) -> str | None:
    """The route path API Gateway says it matched: an HTTP API's routeKey ("GET /x"), a
    REST API's resource; None for function URLs ("$default") and load balancers."""
    if event.get("version") == "2.0":
        route_key = event.get("routeKey")
        if isinstance(route_key, str) and " " in route_key:
            return route_key.split(" ", 1)[1]
        return None
    resource = event.get("resource")
    return resource if isinstance(resource, str) else None


def _routing_path(event: dict[str, Any], parameters: dict[str, str]) -> tuple[str, bool] | None:
    """(the path to match our routes against, whether it is still percent-encoded), as the
    SDK's ServerlessAdapter reads it: a `{proxy+}` route's proxy parameter (API Gateway
    has decoded it: decoding it again would turn `x%41` into `xA`), else rawPath (an HTTP
    API stage other than $default taken off), else path. Without a trailing slash, which
    the SDK strips too. None when the event names no path (a direct invoke)."""
    if "proxy" in parameters:
        return _without_slashes(parameters["proxy"]), False
    raw_path = event.get("rawPath")
    if isinstance(raw_path, str) and raw_path:
        context = event.get("requestContext") or {}
        stage = context.get("stage")
        if (
            isinstance(stage, str)
            and stage not in ("", "$default")
            and (raw_path == f"/{stage}" or raw_path.startswith(f"/{stage}/"))
        ):
            raw_path = raw_path[len(stage) + 1 :] or "/"
        return _without_slashes(raw_path), True
    path = event.get("path")
    if isinstance(path, str) and path:
        return _without_slashes(path), True
    return None


def _without_slashes(path: str) -> str:
    return "/" + path.strip("/")


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A proxy response both payload formats and function URLs accept."""
    return {
        "statusCode": status,
        "headers": {**_JSON_HEADERS, **(headers or {})},
        # UTF-8 as it is, not \u escapes: a read of non-ASCII metadata near the item limit
        # would otherwise triple, past what a write (MAX_BODY_BYTES) takes back.
        "body": json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        "isBase64Encoded": False,
    }


def shape_response(response: dict[str, Any], source: str) -> dict[str, Any]:
    """The response as the event's source requires it: a load balancer wants a
    statusDescription, and multiValueHeaders when the request came with them."""
    if source == API_GATEWAY:
        return response
    shaped = dict(response)
    status = shaped["statusCode"]
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    shaped["statusDescription"] = f"{status} {phrase}".strip()
    if source == ALB_MULTI_VALUE:
        shaped["multiValueHeaders"] = {k: [v] for k, v in shaped.pop("headers").items()}
    return shaped


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> dict[str, Any]:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def endpoint(
    operation: str, routes: Iterable[tuple[str, str]]
) -> Callable[[Callable[[Request], tuple[int, Any]]], telemetry.Handler]:
    """Turn `fn(request) -> (status, body)` into an instrumented Lambda handler for
    `routes` [(method, path), ...] (template.yaml's, which a test holds them to)."""
    declared = tuple(Route(method.upper(), path) for method, path in routes)

    def decorate(fn: Callable[[Request], tuple[int, Any]]) -> telemetry.Handler:
        @functools.wraps(fn)
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            return invoke(fn, declared, operation, event, context)

        instrumented = telemetry.instrument(handler)
        instrumented.routes = declared  # type: ignore[attr-defined]
        return instrumented

    return decorate


def invoke(
    fn: Callable[[Request], tuple[int, Any]],
    routes: tuple[Route, ...],
    operation: str,
    event: dict[str, Any],
    context: Any,
) -> dict[str, Any]:
    """One invocation: the event parsed and routed, `fn` called, every failure mapped to
    the error envelope (never a stack trace, the event or a secret to the caller or the
    log), the response shaped for the event's source."""
    telemetry.count(operation)
    request_id = ""
    # AWS calls from here on fit in the function's remaining time (deadline.py).
    invocation = deadline.begin(context)
    try:
        request = parse_event(event, routes, getattr(context, "aws_request_id", "") or "")
        request_id = request.request_id
        status, body = fn(request)
        response = json_response(status, body)
    except SessionManagerError as error:
        response = _error_response(error, request_id, operation)
    except Exception as error:
        response = _internal_error(error, request_id, operation)
    finally:
        deadline.end(invocation)
    return shape_response(response, event_source(event))


def _error_response(error: SessionManagerError, request_id: str, operation: str) -> dict[str, Any]:
    if isinstance(error, UnavailableError):
        telemetry.count("Unavailable")
        telemetry.logger.warning("AWS unavailable", extra={"reason": str(error)})
        message = "the backing store is busy or unreachable; retry"
        return error_response(error.status, error.code, message, error.headers)
    if error.status >= 500:  # the deployment's fault: ConfigurationError
        return _internal_error(error, request_id, operation)
    return error_response(error.status, error.code, str(error), error.headers)


def _internal_error(error: Exception, request_id: str, operation: str) -> dict[str, Any]:
    # Only the exception's type and where it was raised: its message or locals could hold
    # a token, a key or the caller's data.
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    telemetry.count("InternalError")
    telemetry.logger.error(
        "unexpected error",
        extra={
            "operation": operation,
            "error_type": type(error).__name__,
            "where": f"{frame.filename}:{frame.lineno} in {frame.name}" if frame else "",
            # Our own configuration messages name a variable, never a value worth hiding.
            "detail": str(error) if isinstance(error, ConfigurationError) else "",
        },
    )
    return error_response(
        500, "internal_error", f"unexpected error; request id {request_id or 'unknown'}"
    )
