"""How the local API starts and stops: `python -m local_api` as a real process, and
the external-endpoint and configuration paths of the in-process LocalApi."""

from __future__ import annotations

import os
import signal
import string
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from local_http import SIGNING_KEY, TIMEOUT_SECS, Client, free_port, token_signed_with
from moto.server import ThreadedMotoServer

from devtools import template
from local_api.backend import external_endpoints
from local_api.process import COMMAND, START_SECS, environment, serving
from local_api.server import LocalApi

pytestmark = pytest.mark.slow

ROOT = template.ROOT


def test_serve_process_answers_and_stops_cleanly_on_ctrl_c():
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # As `make serve` runs it: PORT and SIGNING_SECRET from the environment.
    with serving(port, signing_key=SIGNING_KEY) as process:
        client = Client(url)
        session = f"proc-{uuid.uuid4().hex[:8]}"
        assert client.patch(f"/sessions/{session}/metadata", {"a": 1}).status == 200
        assert client.get(f"/sessions/{session}/metadata").json["metadata"] == {"a": 1}
        created = client.post(f"/sessions/{session}/tokens", {"function_name": "f"})
        assert created.status == 201
        # The process's secret was seeded from SIGNING_SECRET.
        assert token_signed_with(created.json["token"], SIGNING_KEY)

        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=TIMEOUT_SECS * 2)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    # The banner: the URL, every route of the template, a curl example.
    assert f"Local API on {url}" in stdout
    for function in template.functions():
        for route in function.routes:
            assert any(
                route.method in line and route.path in line and function.logical_id in line
                for line in stdout.splitlines()
            ), (route, stdout)
    assert f"curl -s -X PATCH {url}/sessions/demo/metadata" in stdout
    # One access line per request, then the stop.
    assert f"PATCH /sessions/{session}/metadata -> 200 SetMetadataFunction" in stderr
    assert "SIGINT: stopping" in stderr
    assert '"_aws"' not in stdout  # no EMF metrics on the console by default


def test_serve_process_stops_cleanly_on_sigterm():
    with serving(free_port()) as process:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT_SECS * 2)
    assert process.returncode == 0, stderr
    assert "SIGTERM: stopping" in stderr
    assert "Traceback" not in stderr, stderr


def test_serve_process_refuses_a_short_signing_secret():
    result = subprocess.run(  # noqa: S603 - this interpreter, a fixed module
        COMMAND,
        cwd=ROOT,
        env=environment(free_port(), signing_key="too-short"),
        capture_output=True,
        text=True,
        timeout=START_SECS,
        check=False,
    )
    assert result.returncode == 1
    assert "SIGNING_SECRET must be at least 32 characters" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def moto_server():
    """moto's own server in a thread, on a free 127.0.0.1 port: an external endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        # moto's state is per process, not per server: start from an empty one.
        reset = urllib.request.Request(url + "/moto-api/reset", data=b"", method="POST")  # noqa: S310
        urllib.request.urlopen(reset, timeout=TIMEOUT_SECS).close()  # noqa: S310 - 127.0.0.1
        yield url
    finally:
        server.stop()


def test_external_endpoint_gets_the_table_and_secret_and_serves(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    monkeypatch.delenv("SESSIONS_TABLE", raising=False)
    monkeypatch.delenv("SIGNING_SECRET_ID", raising=False)
    before = dict(os.environ)
    session = f"ext-{uuid.uuid4().hex[:8]}"
    table_name = template.table().logical_id
    secret_name = template.secret_logical_id()

    with LocalApi(port=0) as api:
        assert api.backend is not None and not api.backend.embedded
        dynamodb = boto3.client("dynamodb", endpoint_url=moto_server)
        secrets = boto3.client("secretsmanager", endpoint_url=moto_server)

        table = dynamodb.describe_table(TableName=table_name)["Table"]
        assert [k["AttributeName"] for k in table["KeySchema"]] == [template.table().partition_key]
        ttl = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        assert ttl["AttributeName"] == template.table().ttl_attribute
        assert ttl["TimeToLiveStatus"] in ("ENABLED", "ENABLING")
        # No SIGNING_SECRET: a key as GenerateSecretString makes it, 64 letters and digits.
        key = secrets.get_secret_value(SecretId=secret_name)["SecretString"]
        assert len(key) == 64 and set(key) <= set(string.ascii_letters + string.digits)

        client = Client(api.url)
        assert client.patch(f"/sessions/{session}/metadata", {"n": 1}).status == 200
        assert client.get(f"/sessions/{session}/metadata").json["metadata"] == {"n": 1}
        token = client.post(f"/sessions/{session}/tokens", {"function_name": "f"}).json["token"]
        assert token_signed_with(token, key)

    # Still there once the local API has stopped: it lives on the endpoint, not in an
    # embedded moto (which would have been wiped when it stopped).
    item = dynamodb.get_item(TableName=table_name, Key={"pk": {"S": session}})
    assert "Item" in item
    assert dict(os.environ) == before  # the local API put the environment back


def test_restart_on_the_same_endpoint_keeps_the_key_unless_signing_secret_says(
    moto_server, monkeypatch
):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    secrets = boto3.client("secretsmanager", endpoint_url=moto_server)
    secret_name = template.secret_logical_id()
    with LocalApi(port=0):
        first = secrets.get_secret_value(SecretId=secret_name)["SecretString"]
    with LocalApi(port=0):
        assert secrets.get_secret_value(SecretId=secret_name)["SecretString"] == first
    with LocalApi(port=0, signing_key=SIGNING_KEY):
        assert secrets.get_secret_value(SecretId=secret_name)["SecretString"] == SIGNING_KEY


def test_shell_variables_name_resources_and_override_the_template(monkeypatch):
    monkeypatch.setenv("SESSIONS_TABLE", "my-sessions")
    monkeypatch.setenv("SIGNING_SECRET_ID", "my-key")
    monkeypatch.setenv("TOKEN_EXPIRY_SECS", "60")
    with LocalApi(port=0, signing_key=SIGNING_KEY) as api:
        assert api.overrides["TOKEN_EXPIRY_SECS"] == "60"
        # The embedded moto answers this process's clients while the API runs.
        boto3.client("dynamodb").describe_table(TableName="my-sessions")
        assert (
            boto3.client("secretsmanager").get_secret_value(SecretId="my-key")["SecretString"]
            == SIGNING_KEY
        )
        before = int(time.time())
        created = Client(api.url).post("/sessions/c1/tokens", {"function_name": "f"}).json
        assert before + 60 <= created["expires_at"] <= int(time.time()) + 60


def test_one_local_api_per_process():
    with LocalApi(port=0), pytest.raises(RuntimeError, match="already running"):
        LocalApi(port=0).start()


def test_endpoint_variables_choose_the_backend_per_service():
    assert external_endpoints({}) == {"dynamodb": None, "secretsmanager": None}
    assert external_endpoints({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}) == {
        "dynamodb": "http://127.0.0.1:4566",
        "secretsmanager": "http://127.0.0.1:4566",
    }
    # DynamoDB Local has no Secrets Manager: the secret stays in the embedded moto.
    assert external_endpoints({"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:8000"}) == {
        "dynamodb": "http://127.0.0.1:8000",
        "secretsmanager": None,
    }
    both = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:5000",
    }
    assert external_endpoints(both) == {
        "dynamodb": "http://127.0.0.1:4566",
        "secretsmanager": "http://127.0.0.1:5000",
    }
    # botocore ignores them all when told to; so does the choice of backend.
    ignored = {**both, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert external_endpoints(ignored) == {"dynamodb": None, "secretsmanager": None}
