"""Shared fixtures. The environment is set before anything imports boto3 or Powertools:
fake credentials (so nothing can reach real AWS), a region, tracing off."""

import os

for _name in list(os.environ):
    # A developer's own endpoints or profile must never leak into the suite.
    if _name.startswith("AWS_ENDPOINT_URL") or _name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        del os.environ[_name]
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "signalwire-sessions-test",
        "POWERTOOLS_METRICS_NAMESPACE": "SignalWireSessionsTest",
    }
)

import base64  # noqa: E402
import io  # noqa: E402
import logging  # noqa: E402
from collections.abc import Iterator  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from devtools import aws_local, template  # noqa: E402

TABLE_NAME = "sessions-test"
SECRET_NAME = "signing-key-test"


@pytest.fixture
def aws():
    """moto in-process, DynamoDB made atomic per item as the real service is."""
    aws_local.make_moto_dynamodb_atomic()
    with mock_aws():
        yield


@pytest.fixture
def dynamodb(aws):
    return boto3.client("dynamodb")


@pytest.fixture
def secretsmanager(aws):
    return boto3.client("secretsmanager")


@pytest.fixture
def table(dynamodb):
    """The template's table (key schema, TTL) under a test name."""
    aws_local.ensure_table(dynamodb, TABLE_NAME)
    return TABLE_NAME


@pytest.fixture
def secret(secretsmanager):
    aws_local.ensure_secret(secretsmanager, SECRET_NAME, aws_local.SAMPLE_KEY)
    return SECRET_NAME


@pytest.fixture
def signing_key(secretsmanager, secret) -> str:
    """The key the `secret` fixture seeded the moto secret with, as the secret holds it."""
    return secretsmanager.get_secret_value(SecretId=secret)["SecretString"]


@pytest.fixture
def env(monkeypatch, table, secret):
    """The functions' environment as template.yaml defines it, pointed at the moto table
    and secret."""
    (function, *_) = template.functions()
    variables = template.resolve_environment(
        function.environment,
        {template.table().logical_id: table, template.secret_logical_id(): secret},
    )
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


# -- logs at DEBUG: no key in them ---------------------------------------------------------


def key_forms(key: str) -> list[str]:
    """The spellings of a key a log line could carry: plain, hex, base64 (both alphabets)."""
    raw = key.encode()
    return [
        key,
        raw.hex(),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        repr(raw),
    ]


class EverythingLogged:
    """Every record of every logger at DEBUG, as caplog and a stream handler on root see it."""

    def __init__(self, caplog: pytest.LogCaptureFixture, stream: io.StringIO) -> None:
        self._caplog = caplog
        self._stream = stream

    def text(self) -> str:
        records = "\n".join(
            f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in self._caplog.records
        )
        return records + "\n" + self._stream.getvalue()

    def leaked(self, key: str, text: str | None = None) -> list[str]:
        """The forms of `key` found in `text` (by default, everything logged)."""
        text = self.text() if text is None else text
        return [form for form in key_forms(key) if form in text]


@pytest.fixture
def everything_logged(caplog) -> Iterator[EverythingLogged]:
    """Root at DEBUG, as `logging.basicConfig(level=logging.DEBUG)` or LOG_LEVEL=DEBUG on
    Lambda sets it, and botocore's and urllib3's own loggers at DEBUG too: a user may turn
    them up, and the key must stay out regardless. Ask for it after the fixtures that
    read a key themselves (`signing_key`): their own calls are logged too."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)  # root, restored after the test
    for name in ("botocore", "botocore.parsers", "botocore.endpoint", "urllib3"):
        caplog.set_level(logging.DEBUG, logger=name)
    yield EverythingLogged(caplog, stream)
    root.removeHandler(handler)
