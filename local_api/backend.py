"""The AWS behind the local API: an embedded moto, or the endpoints AWS_ENDPOINT_URL* name.

Each service the handlers use (DynamoDB, Secrets Manager) is *external* when botocore
would send it to a configured endpoint (AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL)
and *embedded* otherwise. botocore itself routes the calls; this module only decides
whether an embedded moto must be running and creates the template's table and secret on
whichever side holds them. So `AWS_ENDPOINT_URL_DYNAMODB=http://localhost:8000` alone
(DynamoDB Local, which has no Secrets Manager) keeps the secret in the embedded moto.

Embedded backend: moto's in-process mock (`mock_aws`), started for the server's lifetime,
rather than moto's ThreadedMotoServer on a loopback port. Measured on this project (the
server in its own process, a client process with keep-alive connections, 2 000 requests
per figure, 2 CPUs): GET ~550 vs ~285 requests/s, PATCH ~250 vs ~185, first answer
0.56 vs 0.61 s after the process starts. The server costs a second HTTP round trip (and
werkzeug's request parsing) for every AWS call, and a second port to own and shut down,
for nothing a handler could tell apart: both run the same moto backends in this process.
mock_aws also intercepts every request to an AWS domain, so nothing reaches real AWS
while it runs, whatever credentials the shell holds; a request to any other host (an
AWS_ENDPOINT_URL_<SERVICE>) goes through, which is what lets one service be external
while the other stays embedded. Whoever wants a store that outlives the server runs a
moto server and points AWS_ENDPOINT_URL at it (docs/local.md).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from devtools import aws_local
from devtools.aws_local import ENDPOINT_VARIABLES
from session_manager import wire_logs
from session_manager.keys import MIN_KEY_CHARS

DEFAULT_REGION = "us-east-1"
# DynamoDB Local and LocalStack accept any credentials; these only have to exist.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}

# Creating the table and secret must fail fast when an endpoint is down, not after
# botocore's default 60 s connect timeout and five attempts.
_SETUP_CONFIG = Config(
    connect_timeout=2, read_timeout=10, retries={"mode": "standard", "max_attempts": 2}
)


class BackendError(Exception):
    """The backend could not be prepared; the message says what to do, for a person."""


def external_endpoints(environ: Mapping[str, str]) -> dict[str, str | None]:
    """Each service's configured endpoint, as botocore will use it; None: embedded."""
    if environ.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return dict.fromkeys(ENDPOINT_VARIABLES)
    common = environ.get("AWS_ENDPOINT_URL") or None
    return {
        service: environ.get(variable) or common for service, variable in ENDPOINT_VARIABLES.items()
    }


def aws_defaults(environ: Mapping[str, str]) -> dict[str, str]:
    """What to add to the environment so boto3 needs no AWS account: credentials when the
    shell has none (a profile is never consulted), a region when none is set."""
    defaults: dict[str, str] = {}
    if not environ.get("AWS_ACCESS_KEY_ID"):
        defaults.update(FAKE_CREDENTIALS)
    if not (environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")):
        defaults["AWS_DEFAULT_REGION"] = DEFAULT_REGION
    return defaults


class LocalAws:
    """The table and the secret, on the embedded moto or on external endpoints.

    `start()` expects the environment (credentials, region, endpoints) to be in place:
    the handlers' clients read the same one.
    """

    def __init__(
        self,
        table_name: str,
        secret_id: str,
        *,
        signing_key: str | None = None,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        if signing_key is not None and len(signing_key) < MIN_KEY_CHARS:
            raise BackendError(
                f"SIGNING_SECRET must be at least {MIN_KEY_CHARS} characters "
                f"(it has {len(signing_key)})"
            )
        self.table_name = table_name
        self.secret_id = secret_id
        self.signing_key = signing_key
        self.endpoints = external_endpoints(environ)
        self._mock: Any = None

    @property
    def embedded(self) -> bool:
        """True when at least one service is served by the embedded moto."""
        return any(endpoint is None for endpoint in self.endpoints.values())

    def describe(self) -> list[str]:
        """One line per service: where it is served, and what lives there."""
        if self.signing_key is not None:
            key = "key from SIGNING_SECRET"
        elif self.endpoints["secretsmanager"] is None:
            key = "a random key; set SIGNING_SECRET to choose it"
        else:
            key = "its key, or a random one if it was new"
        what = {
            "dynamodb": f"table {self.table_name}",
            "secretsmanager": f"secret {self.secret_id} ({key})",
        }
        return [
            f"{service} on {endpoint or 'the embedded moto (in-process)'}: {what[service]}"
            for service, endpoint in self.endpoints.items()
        ]

    def start(self) -> LocalAws:
        if self.embedded:
            from moto import mock_aws

            # Concurrent merges into a new session must not lose a key (see its docstring).
            aws_local.make_moto_dynamodb_atomic()
            # Our own credentials policy (aws_defaults) applies; moto's would replace the
            # shell's keys, which an external DynamoDB Local keys its data by.
            self._mock = mock_aws(config={"core": {"mock_credentials": False}})
            self._mock.start()
        try:
            self._create()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._mock is not None:
            mock, self._mock = self._mock, None
            mock.stop()

    def _create(self) -> None:
        dynamodb = boto3.client("dynamodb", config=_SETUP_CONFIG)
        secrets = boto3.client("secretsmanager", config=_SETUP_CONFIG)
        with self._explained("dynamodb", f"table {self.table_name}"):
            aws_local.ensure_table(dynamodb, self.table_name)
        # These calls carry the key: botocore's debug logs must not (wire_logs.py).
        with self._explained("secretsmanager", f"secret {self.secret_id}"), wire_logs.hidden():
            if not self.secret_id.startswith("arn:"):
                aws_local.ensure_secret(secrets, self.secret_id, self.signing_key)
                return
            # An ARN names a secret that exists already: nothing to create, maybe a key to set.
            current = secrets.get_secret_value(SecretId=self.secret_id).get("SecretString")
            if self.signing_key is not None and current != self.signing_key:
                secrets.put_secret_value(SecretId=self.secret_id, SecretString=self.signing_key)

    @contextmanager
    def _explained(self, service: str, what: str) -> Iterator[None]:
        """Turn a failed setup call into a BackendError that names the endpoint."""
        try:
            yield
        except (ClientError, BotoCoreError) as error:
            endpoint = self.endpoints[service]
            hint = (
                f" Is it running? ({ENDPOINT_VARIABLES[service]} or AWS_ENDPOINT_URL)"
                if endpoint
                else ""
            )
            where = endpoint or "the embedded moto"
            raise BackendError(f"could not prepare the {what} on {where}: {error}.{hint}") from None
