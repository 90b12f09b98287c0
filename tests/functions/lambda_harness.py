"""Helpers for the function tests: calling a handler as API Gateway does, reading its
response, and what every response must look like.

A module of its own (not conftest.py) so the test modules can import it by a name no other
test folder uses: every conftest.py is imported as `conftest`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from devtools import events, lambda_runtime, template
from devtools.context import LambdaContext

FUNCTIONS: dict[str, template.Function] = {f.name: f for f in template.functions()}
FUNCTIONS_DIR = template.ROOT / "functions"
EVENT_FORMATS = {"http-api-2.0": events.http_api_event, "rest-1.0": events.rest_event}

# A token lifetime no test outlives: 2100-01-01.
FAR_FUTURE = 4102444800


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: Any  # the parsed JSON body
    raw: dict[str, Any]  # what the handler returned

    @property
    def text(self) -> str:
        return self.raw["body"]


def as_response(raw: dict[str, Any]) -> Response:
    """What every response must be, whatever the outcome: a proxy response with a JSON
    body; parsed."""
    assert set(raw) >= {"statusCode", "headers", "body"}, raw
    assert raw.get("isBase64Encoded", False) is False
    assert raw["headers"]["Content-Type"] == "application/json"
    return Response(raw["statusCode"], raw["headers"], json.loads(raw["body"]), raw)


def assert_error(response: Response, status: int, code: str | None = None) -> dict[str, str]:
    """The contract's error envelope and nothing else: {"error": {"code", "message"}}."""
    assert response.status == status, response.body
    assert set(response.body) == {"error"}, response.body
    error = response.body["error"]
    assert set(error) == {"code", "message"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return error


def assert_unavailable(response: Response) -> None:
    """503 in the envelope, with a Retry-After: AWS throttled, unreachable or too slow."""
    assert_error(response, 503, "service_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def request_id(event: dict[str, Any]) -> str:
    """API Gateway's request id, in requestContext in both payload formats."""
    return event["requestContext"]["requestId"]


def drop_function_modules() -> None:
    """Forget every imported functions/*/app.py, whatever name it was imported under."""
    prefix = str(FUNCTIONS_DIR) + os.sep  # load_handler imports them by this absolute path
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if isinstance(path, str) and os.path.abspath(path).startswith(prefix):
            del sys.modules[name]


def import_handler(spec: template.Function) -> tuple[ModuleType, Callable[..., Any]]:
    """A fresh import of the function's module (Lambda's INIT) and its handler."""
    drop_function_modules()
    handler = lambda_runtime.load_handler(spec)
    # Powertools' decorators keep __wrapped__; the innermost function is the module's own.
    inner = handler
    while hasattr(inner, "__wrapped__"):
        inner = inner.__wrapped__
    module = sys.modules[inner.__module__]
    assert Path(module.__file__).resolve() == (spec.code_dir / "app.py").resolve()
    return module, handler


@dataclass
class LambdaFunction:
    """One imported function, called with events of one payload format."""

    spec: template.Function
    module: ModuleType
    handler: Callable[[Any, Any], dict[str, Any]]
    make_event: Callable[..., dict[str, Any]]

    @property
    def manager(self) -> Any:
        return self.module.manager

    def route_path(self) -> str:
        """The first route's path (delete_metadata's second route takes `route=`)."""
        return self.spec.routes[0].path

    def methods(self) -> list[str]:
        return sorted({route.method for route in self.spec.routes})

    def event(
        self,
        method: str | None = None,
        body: Any = None,
        *,
        session_id: str | None = "call-1",
        base64_body: bool = False,
        route: str | None = None,
    ) -> dict[str, Any]:
        """An event for this function's route (from the template), or `route`; `method`
        defaults to the function's only method; `session_id=None` leaves the path
        parameter out."""
        if method is None:
            (method,) = self.methods()
        path = route or self.route_path()
        parameters = None
        if "{session_id}" in path and session_id is not None:
            parameters = {"session_id": session_id}
        return self.make_event(method, path, parameters, body, base64_body=base64_body)

    def invoke(self, event: Any) -> Response:
        return as_response(self.handler(event, LambdaContext.for_function(self.spec)))

    def __call__(self, method: str | None = None, body: Any = None, **kwargs: Any) -> Response:
        return self.invoke(self.event(method, body, **kwargs))
