"""A DynamoDB-compatible endpoint without the TTL API (an emulator that answers
UnknownOperationException): the local server warns and serves, since every read refuses
an expired session anyway."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from devtools import aws_local
from local_api.backend import LocalAws

TABLE = "sessions-ttl-less"
UNKNOWN = "UnknownOperationException"


def stubbed(ttl_calls: list[tuple[str, dict | None, str | None]]) -> tuple[object, Stubber]:
    """A DynamoDB client whose table exists already, then answers `ttl_calls`:
    (operation, response or None, error code or None), in order."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error("create_table", "ResourceInUseException")
    stubber.add_response("describe_table", {"Table": {"TableName": TABLE, "TableStatus": "ACTIVE"}})
    for operation, response, code in ttl_calls:
        if code:
            stubber.add_client_error(operation, code)
        else:
            stubber.add_response(operation, response)
    return client, stubber


def test_unknown_describe_time_to_live_warns_and_goes_on(caplog):
    client, stubber = stubbed([("describe_time_to_live", None, UNKNOWN)])
    with stubber, caplog.at_level(logging.WARNING, logger="devtools.aws_local"):
        aws_local.ensure_table(client, TABLE)
    stubber.assert_no_pending_responses()
    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert "no TTL API" in record.getMessage() and UNKNOWN in record.getMessage()


def test_unknown_update_time_to_live_warns_and_goes_on(caplog):
    disabled = {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
    client, stubber = stubbed(
        [("describe_time_to_live", disabled, None), ("update_time_to_live", None, UNKNOWN)]
    )
    with stubber, caplog.at_level(logging.WARNING, logger="devtools.aws_local"):
        aws_local.ensure_table(client, TABLE)
    stubber.assert_no_pending_responses()
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


def test_other_ttl_errors_still_stop_the_setup():
    client, stubber = stubbed([("describe_time_to_live", None, "AccessDeniedException")])
    with stubber, pytest.raises(ClientError, match="AccessDenied"):
        aws_local.ensure_table(client, TABLE)


# -- the whole backend against an emulator over HTTP ----------------------------------------


class _TtlLessDynamoDB(BaseHTTPRequestHandler):
    """Knows CreateTable and DescribeTable; every other operation is unknown to it."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        operation = self.headers["X-Amz-Target"].split(".")[-1]
        self.server.operations.append(operation)  # type: ignore[attr-defined]
        table = {"TableName": TABLE, "TableStatus": "ACTIVE"}
        if operation == "CreateTable":
            status, body = 200, {"TableDescription": table}
        elif operation == "DescribeTable":
            status, body = 200, {"Table": table}
        else:
            status, body = 400, {"__type": f"com.amazonaws.dynamodb.v20120810#{UNKNOWN}"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def ttl_less_endpoint() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TtlLessDynamoDB)
    server.operations = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_local_backend_starts_on_an_endpoint_without_ttl(ttl_less_endpoint, monkeypatch, caplog):
    host, port = ttl_less_endpoint.server_address
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://{host}:{port}")
    backend = LocalAws(TABLE, "signing-key-ttl-less")
    with caplog.at_level(logging.WARNING, logger="devtools.aws_local"):
        backend.start()  # raised BackendError before: the server exited at start
    try:
        assert ttl_less_endpoint.operations[0] == "CreateTable"
        assert "DescribeTimeToLive" in ttl_less_endpoint.operations
        assert any("no TTL API" in r.getMessage() for r in caplog.records)
        # The secret side (embedded moto) was set up as usual.
        secret = boto3.client("secretsmanager").get_secret_value(SecretId="signing-key-ttl-less")
        assert len(secret["SecretString"]) >= 32
    finally:
        backend.stop()
