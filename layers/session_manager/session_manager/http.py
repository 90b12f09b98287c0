"""API Gateway in, API Gateway out: the request and response shaping all functions share.

Accepts REST API (payload 1.0) and HTTP API (payload 2.0) proxy events, as the SignalWire
SDK's ServerlessAdapter does. A function only parses its inputs, calls the manager and
returns (status, body); everything that can go wrong becomes the contract's error envelope:
    {"error": {"code": "...", "message": "..."}}
"""

from __future__ import annotations

import functools
import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.data_classes import (
    APIGatewayProxyEvent,
    APIGatewayProxyEventV2,
)

from . import deadline, telemetry
from .errors import (
    ConfigurationError,
    InvalidInputError,
    TooLargeError,
    UnavailableError,
)
from .validation import check_function_name, check_session_id

# Metadata fits 400 KB of DynamoDB item; a body larger than this cannot be valid, and
# reading it into json.loads would only cost memory.
MAX_BODY_BYTES = 512 * 1024
_JSON_HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}
# A lone surrogate (a raw one, or an escape such as "\ud800" without its pair) is valid JSON
# syntax but not Unicode text: whatever field it is in, the body is malformed. The regex
# keeps the full check off the common path.
_MAYBE_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89abcdefABCDEF]")


class HttpError(Exception):
    """An error with its status and code, raised by request parsing and by functions."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass(frozen=True)
class Request:
    method: str
    path_parameters: dict[str, str]
    body: str | None
    request_id: str

    def session_id(self) -> str:
        return _checked(check_session_id, self.path_parameters.get("session_id"))

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; 400 when absent, not JSON, or not an object."""
        if self.body is None or not self.body.strip():
            raise HttpError(400, "invalid_request", "the request needs a JSON object body")
        if len(self.body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES:
            raise HttpError(400, "invalid_request", f"the body exceeds {MAX_BODY_BYTES} bytes")
        try:
            value = json.loads(self.body, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise HttpError(400, "invalid_request", "the body is not valid JSON") from None
        if not isinstance(value, dict):
            raise HttpError(400, "invalid_request", "the body must be a JSON object")
        if _MAYBE_SURROGATE.search(self.body) and not _is_unicode(value):
            raise HttpError(400, "invalid_request", "the body holds an unpaired surrogate")
        return value

    def string_field(self, body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if not isinstance(value, str) or not value:
            raise HttpError(400, "invalid_request", f"'{name}' must be a non-empty string")
        return value

    def call_id(self, body: dict[str, Any]) -> str:
        return _checked(check_session_id, self.string_field(body, "call_id"))

    def function_name(self, body: dict[str, Any]) -> str:
        return _checked(check_function_name, self.string_field(body, "function_name"))


def _is_unicode(value: Any) -> bool:
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _checked(check: Callable[[Any], str], value: Any) -> str:
    try:
        return check(value)
    except InvalidInputError as error:
        raise HttpError(400, "invalid_request", str(error)) from None


def parse_event(event: dict[str, Any]) -> Request:
    not_a_proxy_event = HttpError(400, "invalid_request", "not an API Gateway proxy event")
    if not isinstance(event, dict) or not isinstance(event.get("requestContext"), dict):
        raise not_a_proxy_event
    if event.get("version") == "2.0":
        parsed: APIGatewayProxyEvent | APIGatewayProxyEventV2 = APIGatewayProxyEventV2(event)
    else:
        parsed = APIGatewayProxyEvent(event)
    try:
        # Powertools' accessors index the event: a field missing (an ALB or hand-made event
        # with a requestContext) is the sender's mistake, not an internal error.
        method = parsed.http_method
        path_parameters = parsed.path_parameters or {}
        request_id = parsed.request_context.request_id
    except (KeyError, TypeError):
        raise not_a_proxy_event from None
    if not (
        isinstance(method, str)
        and isinstance(path_parameters, dict)
        and isinstance(request_id, str)
        and isinstance(event.get("body"), str | None)
    ):
        raise not_a_proxy_event
    try:
        body = parsed.decoded_body
    except (ValueError, UnicodeDecodeError):
        raise HttpError(400, "invalid_request", "the body is not valid base64 UTF-8") from None
    return Request(
        method=method.upper(),
        path_parameters=path_parameters,
        body=body,
        request_id=request_id,
    )


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> dict:
    """A proxy response both payload formats accept."""
    return {
        "statusCode": status,
        "headers": {**_JSON_HEADERS, **(headers or {})},
        "body": json.dumps(body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> dict:
    return json_response(status, {"error": {"code": code, "message": message}}, headers)


def endpoint(
    operation: str, methods: tuple[str, ...]
) -> Callable[[Callable[[Request], tuple[int, Any]]], telemetry.Handler]:
    """Turn `fn(request) -> (status, body)` into an instrumented Lambda handler that maps
    every failure to the error envelope and never lets a stack trace, the event or a
    secret reach the caller or the log."""

    def decorate(fn: Callable[[Request], tuple[int, Any]]) -> telemetry.Handler:
        @functools.wraps(fn)
        def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
            telemetry.count(operation)
            request_id = ""
            # AWS calls from here on fit in the function's remaining time (deadline.py).
            invocation = deadline.begin(context)
            try:
                request = parse_event(event)
                request_id = request.request_id
                if request.method not in methods:
                    raise HttpError(
                        405,
                        "method_not_allowed",
                        f"use {' or '.join(methods)}",
                        {"Allow": ", ".join(methods)},
                    )
                status, body = fn(request)
                return json_response(status, body)
            except HttpError as error:
                return error_response(error.status, error.code, error.message, error.headers)
            except InvalidInputError as error:
                return error_response(400, "invalid_request", str(error))
            except TooLargeError as error:
                return error_response(413, "metadata_too_large", str(error))
            except UnavailableError as error:
                telemetry.count("Unavailable")
                telemetry.logger.warning("AWS unavailable", extra={"reason": str(error)})
                return error_response(
                    503,
                    "service_unavailable",
                    "the backing store is busy or unreachable; retry",
                    {"Retry-After": str(error.retry_after_secs)},
                )
            except Exception as error:
                return _internal_error(error, request_id, operation)
            finally:
                deadline.end(invocation)

        return telemetry.instrument(handler)

    return decorate


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
