"""API Gateway proxy events as the service sends them for this API's IAM-authorized routes.

HTTP API (payload 2.0) events are what the deployed API sends and what the local API
builds for each request; REST API (payload 1.0) events are for callers that put the
functions behind a REST API, as the SignalWire SDK's ServerlessAdapter accepts both.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl

ACCOUNT = "123456789012"
_CALLER = {
    "accessKey": "AKIAIOSFODNN7EXAMPLE",
    "accountId": ACCOUNT,
    "callerId": "AIDAJQABLZS4A3QDU576Q",
    "principalOrgId": None,
    "userArn": f"arn:aws:iam::{ACCOUNT}:user/agent",
    "userId": "AIDAJQABLZS4A3QDU576Q",
}


def _encode(body: Any, base64_body: bool) -> tuple[str | None, bool]:
    """The event's body and isBase64Encoded: a str is sent as is, bytes as UTF-8 text or,
    when they are not UTF-8 (or base64_body asks for it), base64; anything else as JSON."""
    if body is None:
        return None, False
    if isinstance(body, bytes | bytearray):
        raw = bytes(body)
        if not base64_body:
            try:
                return raw.decode("utf-8"), False
            except UnicodeDecodeError:
                pass
        return base64.b64encode(raw).decode("ascii"), True
    text = body if isinstance(body, str) else json.dumps(body)
    if base64_body:
        return base64.b64encode(text.encode()).decode(), True
    return text, False


def fill_path(route_path: str, path_parameters: dict[str, str] | None) -> str:
    """The template's path with its {parameters} filled in: /sessions/{session_id}/..."""
    for name, value in (path_parameters or {}).items():
        route_path = route_path.replace("{" + name + "}", value)
    return route_path


def _query_parameters(raw_query: str) -> dict[str, str]:
    """queryStringParameters as HTTP APIs send them: decoded, repeated names joined by ','."""
    parameters: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        parameters[name] = f"{parameters[name]},{value}" if name in parameters else value
    return parameters


def http_api_event(
    method: str,
    route_path: str,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    *,
    base64_body: bool = False,
    headers: dict[str, str] | None = None,
    raw_query: str = "",
    source_ip: str = "203.0.113.10",
    raw_path: str | None = None,
    route_key: str | None = None,
    cookies: list[str] | None = None,
    default_headers: bool = True,
) -> dict[str, Any]:
    """A payload 2.0 event for `route_path` (the template's path, with {params}).

    For an event made from a real request (the local API): `raw_path` is the path as sent
    (default: route_path with the parameters put in), `route_key` the matched route when it
    differs from "METHOD route_path" (an ANY route), `cookies` the Cookie header's parts,
    `default_headers=False` sends only the given headers. `body` may be bytes: UTF-8 text
    is passed as is, anything else base64-encoded, as API Gateway does.
    """
    path = fill_path(route_path, path_parameters)
    if raw_path is not None:
        path = raw_path
    route_key = route_key or f"{method} {route_path}"
    encoded, is_base64 = _encode(body, base64_body)
    now = time.time()
    all_headers = (
        {
            "accept": "application/json",
            "content-type": "application/json",
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "signalwire-agent/1.0",
        }
        if default_headers
        else {}
    )
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": all_headers,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "authorizer": {"iam": dict(_CALLER)},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": all_headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64,
    }
    if cookies:
        event["cookies"] = list(cookies)
    if raw_query:
        event["queryStringParameters"] = _query_parameters(raw_query)
    if path_parameters:
        event["pathParameters"] = dict(path_parameters)
    if encoded is not None:
        event["body"] = encoded
    return event


def rest_event(
    method: str,
    route_path: str,
    path_parameters: dict[str, str] | None = None,
    body: Any = None,
    *,
    base64_body: bool = False,
) -> dict[str, Any]:
    """A payload 1.0 event (REST API proxy integration) for the same route."""
    path = fill_path(route_path, path_parameters)
    encoded, is_base64 = _encode(body, base64_body)
    now = time.time()
    headers = {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "signalwire-agent/1.0",
    }
    return {
        "resource": route_path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": dict(path_parameters) if path_parameters else None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "abc123",
            "resourceId": "r3s0uc",
            "resourcePath": route_path,
            "httpMethod": method,
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "identity": {
                "accessKey": _CALLER["accessKey"],
                "accountId": ACCOUNT,
                "caller": _CALLER["callerId"],
                "sourceIp": "203.0.113.10",
                "user": _CALLER["userId"],
                "userAgent": "signalwire-agent/1.0",
                "userArn": _CALLER["userArn"],
            },
        },
        "body": encoded,
        "isBase64Encoded": is_base64,
    }
