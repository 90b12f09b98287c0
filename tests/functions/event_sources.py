"""The other event sources the SignalWire SDK's ServerlessAdapter accepts, built from the
harness's API Gateway events: a Lambda function URL, a REST API `{proxy+}` route, and an
Application Load Balancer target (single- and multi-value headers). Also reads back any
response shape as the harness's single-value one.

A module of its own name (not conftest.py), as lambda_harness.py, so tests can import it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from devtools import events

FUNCTION_URL_DOMAIN = "a1b2c3d4e5f6g7h8.lambda-url.us-east-1.on.aws"
ALB_DOMAIN = "sessions-alb-1234567890.us-east-1.elb.amazonaws.com"
TARGET_GROUP = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/sessions/0a1b2c3d"


def function_url(v2_event: dict[str, Any]) -> dict[str, Any]:
    """A function URL event: payload 2.0 with no route and no path parameters."""
    event = copy.deepcopy(v2_event)
    event["routeKey"] = "$default"
    event.pop("pathParameters", None)
    context = event["requestContext"]
    context.update(
        routeKey="$default", domainName=FUNCTION_URL_DOMAIN, domainPrefix="a1b2c3d4e5f6g7h8"
    )
    context["apiId"] = "a1b2c3d4e5f6g7h8"
    event["headers"]["host"] = FUNCTION_URL_DOMAIN
    return event


def rest_proxy(v1_event: dict[str, Any]) -> dict[str, Any]:
    """A REST API event for a `/{proxy+}` resource: the path is in pathParameters.proxy."""
    event = copy.deepcopy(v1_event)
    event["resource"] = "/{proxy+}"
    event["requestContext"]["resourcePath"] = "/{proxy+}"
    event["pathParameters"] = {"proxy": event["path"].lstrip("/")}
    return event


def alb(v1_event: dict[str, Any], multi_value: bool = False) -> dict[str, Any]:
    """An ALB target event for the same request: no request id, no path parameters."""
    headers = {k.lower(): v for k, v in v1_event["headers"].items()}
    headers["host"] = ALB_DOMAIN
    headers["x-amzn-trace-id"] = "Root=1-67891233-abcdef012345678912345678"
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": TARGET_GROUP}},
        "httpMethod": v1_event["httpMethod"],
        "path": v1_event["path"],
        "body": v1_event["body"] or "",
        "isBase64Encoded": v1_event["isBase64Encoded"],
    }
    if multi_value:
        event["multiValueQueryStringParameters"] = {}
        event["multiValueHeaders"] = {k: [v] for k, v in headers.items()}
    else:
        event["queryStringParameters"] = {}
        event["headers"] = headers
    return event


# name -> (builder of the harness's events it starts from, conversion)
SOURCES: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[dict], dict]]] = {
    "function-url": (events.http_api_event, function_url),
    "rest-proxy": (events.rest_event, rest_proxy),
    "alb": (events.rest_event, alb),
    "alb-multivalue": (events.rest_event, lambda e: alb(e, multi_value=True)),
}


def make_event(source: str) -> Callable[..., dict[str, Any]]:
    """An event builder with the harness's signature, for LambdaFunction.make_event."""
    build, convert = SOURCES[source]
    return lambda *args, **kwargs: convert(build(*args, **kwargs))


def single_value(raw: dict[str, Any]) -> dict[str, Any]:
    """An ALB response read as the harness reads API Gateway's: `headers`, one value each,
    and no statusDescription."""
    raw = dict(raw)
    raw.pop("statusDescription", None)
    if "multiValueHeaders" in raw:
        raw["headers"] = {k: ", ".join(v) for k, v in raw.pop("multiValueHeaders").items()}
    return raw
