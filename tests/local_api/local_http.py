"""Helpers for the local API's tests: the contract suite's client held to 127.0.0.1, raw
exchanges, a free port, a token signature check. Every wait is bounded (TIMEOUT_SECS)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import socket

from devtools import aws_local
from tests.contract.target import TIMEOUT_SECS, Reply, Target

__all__ = ["TIMEOUT_SECS", "Client", "Reply", "free_port", "raw_exchange", "token_signed_with"]

SIGNING_KEY = aws_local.SAMPLE_KEY


class Client(Target):
    """The contract suite's client (tests/contract/target.py), held to 127.0.0.1: the local
    API's own tests reach nothing else."""

    def __init__(self, base_url: str) -> None:
        assert base_url.startswith("http://127.0.0.1:")
        super().__init__(base_url)


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
