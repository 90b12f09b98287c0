"""The gateway alone, with handlers that echo their event: what a function receives for a
request, and how its answer becomes HTTP. No AWS here."""

from __future__ import annotations

import base64
import http.client
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_http import TIMEOUT_SECS, Client

from devtools import template
from devtools.gateway import Gateway, GatewayServer, NoRoute, RouteTable

pytestmark = pytest.mark.slow


def function(logical_id: str, *routes: tuple[str, str]) -> template.Function:
    return template.Function(
        logical_id=logical_id,
        name=logical_id.lower(),
        code_dir=Path("."),
        handler="app.handler",
        routes=tuple(template.Route(method, path) for method, path in routes),
    )


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"event": event, "function": context.function_name}),
    }


@pytest.fixture(scope="module")
def echo_server() -> Iterator[GatewayServer]:
    """The template's routes, every function replaced by `echo`."""
    functions = template.functions()
    gateway = Gateway(RouteTable(functions), {f.logical_id: echo for f in functions})
    server = GatewayServer(gateway, 0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def echo_client(echo_server) -> Client:
    return Client(echo_server.url)


def test_event_is_http_api_payload_2(echo_client):
    reply = echo_client.request(
        "PATCH",
        "/sessions/call%2D1/metadata?b=2&a=1&a=3&empty=",
        raw=b'{"k": "v"}',
        headers={"X-Custom": "yes", "Cookie": "c1=v1; c2=v2", "User-Agent": "agent/9"},
    )
    assert reply.status == 200
    event, function_name = reply.json["event"], reply.json["function"]
    assert function_name == "SetMetadataFunction"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "PATCH /sessions/{session_id}/metadata"
    assert event["rawPath"] == "/sessions/call%2D1/metadata"  # as sent
    assert event["pathParameters"] == {"session_id": "call-1"}  # decoded
    assert event["rawQueryString"] == "b=2&a=1&a=3&empty="
    assert event["queryStringParameters"] == {"b": "2", "a": "1,3", "empty": ""}
    assert event["headers"]["x-custom"] == "yes"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["body"] == '{"k": "v"}'
    assert event["isBase64Encoded"] is False
    http = event["requestContext"]["http"]
    assert http["method"] == "PATCH"
    assert http["path"] == "/sessions/call%2D1/metadata"
    assert http["sourceIp"] == "127.0.0.1"
    assert http["userAgent"] == "agent/9"
    assert event["requestContext"]["requestId"] == reply.headers["apigw-requestid"]


def test_binary_body_is_base64_and_no_body_is_absent(echo_client):
    raw = bytes(range(256))
    event = echo_client.request("PUT", "/sessions/s1/metadata", raw=raw).json["event"]
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw

    event = echo_client.get("/sessions/s1/metadata").json["event"]
    assert "body" not in event
    assert "queryStringParameters" not in event
    assert event["isBase64Encoded"] is False


def test_chunked_body_reaches_the_function(echo_server):
    host, port = echo_server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECS)
    try:
        connection.request(
            "POST", "/tokens/validate", body=iter([b'{"token": ', b'"t"}']), encode_chunked=True
        )
        response = connection.getresponse()
        event = json.loads(response.read())["event"]
    finally:
        connection.close()
    assert response.status == 200
    assert event["body"] == '{"token": "t"}'


def test_keep_alive_serves_several_requests_on_one_connection(echo_server):
    host, port = echo_server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECS)
    try:
        statuses = []
        for path in ("/sessions/a/metadata", "/nope", "/sessions/b/metadata"):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.request("HEAD", "/sessions/a/metadata")
        head = connection.getresponse()
        assert head.read() == b""
    finally:
        connection.close()
    assert statuses == [200, 404, 200]
    assert head.status == 405  # no HEAD route in the template, as in API Gateway
    assert int(head.headers["Content-Length"]) > 0


def test_a_handler_that_raises_is_a_500_in_the_envelope():
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise ValueError("boom")

    table = RouteTable([function("Broken", ("GET", "/x"))])
    server = GatewayServer(Gateway(table, {"Broken": broken}), 0).start()
    try:
        reply = Client(server.url).get("/x")
    finally:
        server.stop()
    assert reply.status == 500
    assert reply.error_code == "internal_error"
    assert "boom" not in reply.json["error"]["message"]  # no exception text to the caller


def test_response_headers_cookies_and_base64_bodies():
    def answer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "statusCode": 202,
            "headers": {"X-One": "1", "Content-Length": "999"},
            "cookies": ["a=1", "b=2"],
            "body": base64.b64encode(b"\x00\xff").decode(),
            "isBase64Encoded": True,
        }

    def bare(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {"just": "json"}  # payload 2.0's inferred format: 200, JSON

    table = RouteTable([function("Answer", ("GET", "/a")), function("Bare", ("GET", "/b"))])
    server = GatewayServer(Gateway(table, {"Answer": answer, "Bare": bare}), 0).start()
    try:
        client = Client(server.url)
        first, second = client.get("/a"), client.get("/b")
    finally:
        server.stop()
    assert first.status == 202
    assert first.body == b"\x00\xff"
    assert first.headers["X-One"] == "1"
    assert first.headers["Content-Length"] == "2"  # the real length, not the handler's
    assert first.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert (second.status, second.json) == (200, {"just": "json"})


def test_route_choice_follows_api_gateway():
    table = RouteTable(
        [
            function("Static", ("GET", "/items/special")),
            function("Param", ("GET", "/items/{id}"), ("DELETE", "/items/{id}")),
            function("Greedy", ("GET", "/files/{path+}")),
            function("Any", ("ANY", "/any/{id}")),
        ]
    )
    assert table.resolve("GET", "/items/special").binding.function.logical_id == "Static"
    param = table.resolve("GET", "/items/42")
    assert param.binding.function.logical_id == "Param"
    assert param.path_parameters == {"id": "42"}
    greedy = table.resolve("GET", "/files/a/b%20c.txt")
    assert greedy.path_parameters == {"path": "a/b c.txt"}
    assert table.resolve("PATCH", "/any/1").binding.function.logical_id == "Any"
    assert table.resolve("GET", "/items") == NoRoute()
    assert table.resolve("POST", "/items/42") == NoRoute(allow=("DELETE", "GET"))


def test_one_route_in_two_functions_is_refused():
    with pytest.raises(ValueError, match="GET /x"):
        RouteTable([function("One", ("GET", "/x")), function("Two", ("GET", "/x"))])
