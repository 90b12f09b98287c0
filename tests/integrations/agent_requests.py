"""Requests as SignalWire and API Gateway make them to an agent on Lambda.

Shared by the agent tests; the `lambda_env` fixture is in conftest.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"
BASIC_AUTH = ("signalwire", "basic-auth-password-shared-by-instances")
# Where SignalWire fetches the SWML: the agent's URL with its basic auth credentials.
AGENT_URL = f"https://{BASIC_AUTH[0]}:{BASIC_AUTH[1]}@{API_DOMAIN}/"

# Variables the SDKs read that would change what these tests see, if a developer has them.
SDK_VARIABLES = (
    "SIGNALWIRE_SWAIG_SECRET",  # the SDK's own shared key: the tests show the bug without it
    "SIGNALWIRE_SIGNING_KEY",  # webhook signatures: the tests' requests are unsigned
    "SWML_PROXY_URL_BASE",
    "SWML_BASIC_AUTH_USER",
    "SWML_BASIC_AUTH_PASSWORD",
    "AWS_LAMBDA_FUNCTION_URL",
)


def http_api_event(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event for `url`, with the basic auth that
    SignalWire sends for the credentials in a webhook URL."""
    parts = urlsplit(url)
    credentials = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path or "/",
        "rawQueryString": parts.query,
        "headers": {
            "authorization": f"Basic {credentials}",
            "content-type": "application/json",
            "host": parts.hostname,
        },
        "requestContext": {
            "domainName": parts.hostname,
            "stage": "$default",
            "http": {"method": method, "path": parts.path or "/", "sourceIp": "203.0.113.9"},
        },
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
    }


def swml_request(call_id: str) -> dict[str, Any]:
    """The body SignalWire posts to fetch the SWML when a call starts (abridged)."""
    return {"call": {"call_id": call_id, "direction": "inbound"}, "call_id": call_id}


def swaig_request(function: str, call_id: str | None, **args: Any) -> dict[str, Any]:
    """The body SignalWire posts to a SWAIG function's web_hook_url (abridged)."""
    body: dict[str, Any] = {
        "function": function,
        "argument": {"parsed": [args], "raw": json.dumps(args)},
    }
    if call_id is not None:
        body["call_id"] = call_id
    return body


def function_url(swml: dict[str, Any], function: str) -> str:
    """The web_hook_url the SWML gives one SWAIG function (its token in the query)."""
    for verb in swml["sections"]["main"]:
        if "ai" in verb:
            for entry in verb["ai"]["SWAIG"]["functions"]:
                if entry["function"] == function:
                    return entry["web_hook_url"]
    raise AssertionError(f"no SWAIG function {function!r} in the SWML")


def token_in(url: str) -> str:
    (token,) = parse_qs(urlsplit(url).query)["__token"]
    return token
