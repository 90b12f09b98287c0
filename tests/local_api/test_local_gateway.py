"""The gateway alone, with handlers that echo their event: what a function receives for a
request, and how its answer becomes HTTP. No AWS here."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from local_http import TIMEOUT_SECS, Client, raw_exchange

from devtools import template
from local_api.gateway import (
    MAX_BODY_BYTES,
    MAX_LINE_BYTES,
    MAX_TRAILERS,
    Gateway,
    GatewayServer,
    NoRoute,
    Request,
    RouteTable,
    _RequestHandler,
)

pytestmark = pytest.mark.slow


def function(
    logical_id: str, *routes: tuple[str, str], timeout_secs: int = 10
) -> template.Function:
    return template.Function(
        logical_id=logical_id,
        name=logical_id.lower(),
        code_dir=Path("."),
        handler="app.handler",
        routes=tuple(template.Route(method, path) for method, path in routes),
        timeout_secs=timeout_secs,
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


def test_each_function_runs_with_its_own_timeout():
    """The context's remaining time starts at the function's Timeout (template.yaml), which
    the layer's time budget reads: not one figure for every function."""
    remaining: dict[str, int] = {}

    def record(event: dict[str, Any], context: Any) -> dict[str, Any]:
        remaining[context.function_name] = context.get_remaining_time_in_millis()
        return {"statusCode": 204, "body": ""}

    functions = [function("Short", ("GET", "/short"), timeout_secs=3)]
    functions.append(function("Long", ("GET", "/long"), timeout_secs=28))
    gateway = Gateway(RouteTable(functions), {"Short": record, "Long": record})
    for path in ("/short", "/long"):
        assert gateway.handle(Request("GET", path, [], b"")).status == 204
    assert 2_000 < remaining["Short"] <= 3_000
    assert 27_000 < remaining["Long"] <= 28_000


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


# -- framing: raw bytes over a socket ------------------------------------------------------

VALIDATE = "/tokens/validate"


def raw_request(method: str = "POST", path: str = VALIDATE, *headers: bytes, body=b"") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode()
    return head + b"".join(header + b"\r\n" for header in headers) + b"\r\n" + body


def chunked(body: bytes) -> bytes:
    return raw_request("POST", VALIDATE, b"Transfer-Encoding: chunked", body=body)


@pytest.fixture
def no_server_errors(caplog):
    """A framing error is the client's: answered, never logged as the server's failure
    (a traceback)."""
    caplog.set_level(logging.WARNING)
    yield
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def assert_refused(reply, status: int, code: str) -> None:
    assert reply.status == status, reply.body
    assert reply.error_code == code
    # The rest of the request was not read: the connection cannot carry another one.
    assert reply.headers["Connection"] == "close"


@pytest.mark.parametrize(
    "value",
    [
        b"\xb2",  # "²" in latin-1, how http.server decodes headers: str.isdigit says yes
        b"1\xb2",
        "\u0663".encode(),  # ARABIC-INDIC DIGIT THREE, which int() reads as 3
        b"-1",
        b"+2",
        b"0x2",
        b"2 2",
        b"2\xa0",  # a no-break space, which str.strip() would remove
        b"",
    ],
)
def test_content_length_must_be_ascii_digits(echo_server, no_server_errors, value):
    data = raw_request("POST", VALIDATE, b"Content-Length: " + value, body=b"{}")
    assert_refused(raw_exchange(echo_server.url, data), 400, "invalid_request")


def test_duplicate_content_lengths_must_agree(echo_server, no_server_errors):
    same = raw_request("POST", VALIDATE, b"Content-Length: 2", b"Content-Length: 2", body=b"{}")
    reply = raw_exchange(echo_server.url, same)
    assert reply.status == 200
    assert reply.json["event"]["body"] == "{}"
    assert raw_exchange(echo_server.url, same.replace(b"2\r\nContent", b"2, 2\r\nX")).status == 200

    differ = raw_request("POST", VALIDATE, b"Content-Length: 2", b"Content-Length: 3", body=b"{}x")
    assert_refused(raw_exchange(echo_server.url, differ), 400, "invalid_request")


@pytest.mark.parametrize("value", [str(MAX_BODY_BYTES + 1).encode(), b"9" * 5000])
def test_content_length_over_the_cap_is_413_before_reading(echo_server, no_server_errors, value):
    """5,000 digits: past what int() converts; refused by its length alone."""
    data = raw_request("PUT", "/sessions/s1/metadata", b"Content-Length: " + value)
    assert_refused(raw_exchange(echo_server.url, data), 413, "payload_too_large")


@pytest.mark.parametrize(
    "encoding", [b"chunked\r\nContent-Length: 2", b"gzip", b"gzip, chunked", b"chunked, chunked"]
)
def test_transfer_encoding_is_chunked_alone(echo_server, no_server_errors, encoding):
    """Both framings at once is how requests are smuggled past a proxy: refused."""
    data = raw_request(
        "POST", VALIDATE, b"Transfer-Encoding: " + encoding, body=b"2\r\n{}\r\n0\r\n\r\n"
    )
    assert_refused(raw_exchange(echo_server.url, data), 400, "invalid_request")


def test_chunked_body_with_extensions_and_trailers_is_read(echo_server, no_server_errors):
    body = b'5;name=value\r\n{"a":\r\n00000002 ; x\r\n1}\r\n0\r\nX-Trailer: t\r\n\r\n'
    reply = raw_exchange(echo_server.url, chunked(body))
    assert reply.status == 200
    assert reply.json["event"]["body"] == '{"a":1}'


@pytest.mark.parametrize(
    "body",
    [
        b"-1\r\nxx\r\n0\r\n\r\n",  # int(b"-1", 16) is -1, and read(-1) waits for the client
        b"0x2\r\n{}\r\n0\r\n\r\n",
        b"+2\r\n{}\r\n0\r\n\r\n",
        b"2_0\r\n" + b"x" * 32 + b"\r\n0\r\n\r\n",
        b" 2\r\n{}\r\n0\r\n\r\n",
        b"\r\n{}\r\n0\r\n\r\n",
        b"000000002\r\n{}\r\n0\r\n\r\n",  # more than 8 hex digits
        b"2;" + b"e" * MAX_LINE_BYTES + b"\r\n{}\r\n0\r\n\r\n",  # extension past the bound
        b"2\r\n{}xx\r\n0\r\n\r\n",  # a chunk longer than its size
        b"2\n{}\r\n0\r\n\r\n",  # no CR
        b"2\r\n{}\r\n0\r\nno colon\r\n\r\n",
        b"2\r\n{}\r\n0\r\nX-T: " + b"t" * MAX_LINE_BYTES + b"\r\n\r\n",
        b"2\r\n{}\r\n0\r\n" + b"X-T: t\r\n" * (MAX_TRAILERS + 1) + b"\r\n",
    ],
)
def test_malformed_chunked_framing_is_400(echo_server, no_server_errors, body):
    assert_refused(raw_exchange(echo_server.url, chunked(body)), 400, "invalid_request")


def test_chunked_body_over_the_cap_is_413(echo_server, no_server_errors):
    reply = raw_exchange(echo_server.url, chunked(b"ffffffff\r\n{}"))
    assert_refused(reply, 413, "payload_too_large")


@pytest.mark.parametrize("method", ["TRACE", "FOO", "HEAD", "OPTIONS"])
def test_any_method_without_a_route_is_405_with_allow(echo_server, no_server_errors, method):
    reply = raw_exchange(echo_server.url, raw_request(method, "/sessions/s1/metadata"))
    assert reply.status == 405
    assert reply.headers["Allow"] == "DELETE, GET, PATCH, PUT"
    if method != "HEAD":
        assert reply.error_code == "method_not_allowed"

    assert raw_exchange(echo_server.url, raw_request(method, "/nope")).status == 404


def test_a_method_that_is_not_a_token_is_400(echo_server, no_server_errors):
    reply = raw_exchange(echo_server.url, raw_request("G@T", "/sessions/s1/metadata"))
    assert_refused(reply, 400, "invalid_request")


def access_line(caplog, marker: str) -> str:
    """The one access line holding `marker`. The server logs it after sending the answer,
    so it may land a moment after the client has read it: wait for it, boundedly."""
    give_up = time.monotonic() + TIMEOUT_SECS
    while True:
        found = [r.getMessage() for r in caplog.records if marker in r.getMessage()]
        if found or time.monotonic() > give_up:
            (line,) = found
            return line
        time.sleep(0.01)


def test_control_characters_of_the_request_line_are_escaped_in_the_log(echo_server, caplog):
    """An escape sequence in a path must not reach the console raw: it could clear the
    screen or forge lines (ANSI escape injection)."""
    caplog.set_level(logging.DEBUG, logger="local_api")
    data = b"GET /nope\x1b[2J\x1b]0;owned\x07\x9b HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    assert raw_exchange(echo_server.url, data).status == 404
    access = access_line(caplog, "-> 404")
    lines = [record.getMessage() for record in caplog.records]
    assert access.startswith("GET /nope\\x1b[2J\\x1b]0;owned\\x07\\x9b -> 404 ")
    assert not any(c in line for line in lines for c in "\x1b\x07\x9b")


def test_a_token_in_the_query_string_is_masked_in_the_log(echo_server, caplog):
    """The SDK sends a tool token as ?__token=: a credential until it expires, it never
    reaches the console."""
    caplog.set_level(logging.DEBUG, logger="local_api")
    token = "Y2FsbC0xLmxvb2t1cC4xNzAwMDAwMDAwLmFiY2RlZi5zaWduYXR1cmU"
    path = f"/nope?a=1&__token={token}&b=2"
    assert raw_exchange(echo_server.url, raw_request("GET", path)).status == 404
    access = access_line(caplog, "-> 404")
    lines = [record.getMessage() for record in caplog.records]
    assert access.startswith("GET /nope?a=1&__token=***&b=2 -> 404 ")
    assert not any(token in line for line in lines)


def test_a_head_that_trickles_in_is_cut_off_at_the_deadline(echo_server, monkeypatch):
    """A client that sends its headers a byte at a time, each byte well within the socket
    timeout, gets a 408 once the head deadline passes, and the connection is closed."""
    monkeypatch.setattr(_RequestHandler, "head_timeout", 0.5, raising=False)
    host, port = echo_server.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_SECS) as connection:
        connection.sendall(b"GET /sessions/s1/metadata HTTP/1.1\r\nHost: x\r\n")
        connection.settimeout(0.1)
        received = b""
        for _ in range(100):  # up to 100 bytes, one per 0.1 s: 20 times the deadline
            try:
                connection.sendall(b"X")
            except OSError:
                break
            try:
                received = connection.recv(65536)
            except TimeoutError:
                continue
            break
        connection.settimeout(TIMEOUT_SECS)
        while chunk := connection.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 408 "), received
    assert b'"code":"request_timeout"' in received
    assert b"Connection: close" in received
