"""Helpers for the local API's tests: a urllib client that only speaks to 127.0.0.1, a free
port, a token signature check. Every wait is bounded (TIMEOUT_SECS)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from devtools import aws_local

SIGNING_KEY = aws_local.SAMPLE_KEY
TIMEOUT_SECS = 10


@dataclass
class Reply:
    status: int
    headers: Any  # email.message.Message: case-insensitive get()
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error_code(self) -> str:
        """The error envelope's code; fails the test when the body is not the envelope."""
        envelope = self.json
        assert set(envelope) == {"error"}, envelope
        assert set(envelope["error"]) == {"code", "message"}, envelope
        assert isinstance(envelope["error"]["message"], str)
        return envelope["error"]["code"]


class Client:
    """urllib against one base URL; 4xx and 5xx are replies, not exceptions."""

    def __init__(self, base_url: str) -> None:
        assert base_url.startswith("http://127.0.0.1:")
        self.base_url = base_url

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        url = self.base_url + path  # http://127.0.0.1 only, checked in __init__
        request = urllib.request.Request(url, data=data, method=method, headers=headers or {})  # noqa: S310
        if data is not None and not request.has_header("Content-type"):
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECS) as response:  # noqa: S310
                return Reply(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            with error:
                return Reply(error.code, error.headers, error.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def patch(self, path: str, body: Any) -> Reply:
        return self.request("PATCH", path, body)

    def put(self, path: str, body: Any) -> Reply:
        return self.request("PUT", path, body)

    def post(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, body)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)


def raw_exchange(base_url: str, data: bytes) -> Reply:
    """Send `data` as it is on a new connection to the server and read one response: for
    framing the urllib client would never produce. A server that does not answer fails the
    test with a timeout instead of hanging it."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    assert host == "127.0.0.1"
    with socket.create_connection((host, int(port)), timeout=TIMEOUT_SECS) as connection:
        connection.sendall(data)
        method = data.split(b" ", 1)[0].decode("latin-1")  # HEAD: no body to read
        response = http.client.HTTPResponse(connection, method=method)
        response.begin()
        with response:
            return Reply(response.status, response.headers, response.read())


def free_port() -> int:
    """A port nobody listens on right now, on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def token_signed_with(token: str, key: str) -> bool:
    """Whether `token` carries the contract's HMAC over its own fields under `key`."""
    padded = token + "=" * (-len(token) % 4)
    call_id, function_name, expiry, nonce, signature = (
        base64.urlsafe_b64decode(padded).decode().rsplit(".", 4)
    )
    message = f"{call_id}:{function_name}:{expiry}:{nonce}".encode()
    expected = hmac.new(key.encode(), message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)
