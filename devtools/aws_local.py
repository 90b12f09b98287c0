"""The table and the secret of template.yaml, made on any DynamoDB / Secrets Manager
endpoint: moto in-process, a moto server, DynamoDB Local, LocalStack."""

from __future__ import annotations

import logging
import secrets
import string
import threading
from typing import Any

from botocore.exceptions import ClientError

from . import template

_ALPHANUMERIC = string.ascii_letters + string.digits
_patched = threading.Lock()


def random_key(length: int = 64) -> str:
    """What the template's GenerateSecretString makes: letters and digits, no punctuation."""
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


# What DynamoDB-compatible emulators answer for a TTL API they lack.
_NO_TTL_API = frozenset({"UnknownOperationException", "NotImplementedException"})

logger = logging.getLogger(__name__)


def ensure_table(dynamodb: Any, table_name: str) -> None:
    """Create the template's table under `table_name` (with its TTL) unless it exists."""
    spec = template.table()
    try:
        dynamodb.create_table(**spec.create_table_kwargs(table_name))
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
    )
    ttl = spec.properties["TimeToLiveSpecification"]
    try:
        current = dynamodb.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
        if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=table_name,
                TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
            )
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code not in _NO_TTL_API:
            raise
        # Every read treats an expired item as absent, so sessions still end on time;
        # only the sweeping of old items is lost.
        logger.warning(
            "the DynamoDB endpoint has no TTL API (%s): expired sessions are refused on "
            "read but stay stored in %s",
            code,
            table_name,
        )


def ensure_secret(secretsmanager: Any, secret_name: str, key: str | None = None) -> str:
    """Create the signing secret unless it exists; with `key`, make it the current value."""
    try:
        secretsmanager.create_secret(Name=secret_name, SecretString=key or random_key())
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceExistsException":
            raise
        if key is not None:
            current = secretsmanager.get_secret_value(SecretId=secret_name)["SecretString"]
            if current != key:
                secretsmanager.put_secret_value(SecretId=secret_name, SecretString=key)
    return secret_name


def make_moto_dynamodb_atomic() -> None:
    """Serialize moto's DynamoDB operations, as DynamoDB serializes writes to one item.

    moto's UpdateItem on a missing item creates it in two steps, so two threads merging
    into a new session can each create it and one loses its key: a moto artefact, not
    DynamoDB behaviour. Tests and the local API that exercise concurrency need the real
    guarantee, so they run moto's backend under one lock.

    The lock also covers moto's whole handling of each DynamoDB request (DynamoHandler),
    not only the backend calls: its UpdateItem response copies and serializes the live item
    after the backend call returns, and a concurrent update of that item then fails it
    with "dictionary changed size during iteration" (a 500 that DynamoDB never gives).
    """
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    with _patched:
        if getattr(DynamoDBBackend, "_atomic", False):
            return
        lock = threading.RLock()
        handle = DynamoHandler.call_action

        def locked_call(self: Any, __handle: Any = handle) -> Any:
            with lock:
                return __handle(self)

        DynamoHandler.call_action = locked_call
        for name in (
            "put_item",
            "update_item",
            "delete_item",
            "get_item",
            "transact_write_items",
            "batch_write_item",
        ):
            original = getattr(DynamoDBBackend, name)

            def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
                with lock:
                    return __original(self, *args, **kwargs)

            setattr(DynamoDBBackend, name, locked)
        DynamoDBBackend._atomic = True
