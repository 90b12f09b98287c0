"""The table and the secret of template.yaml, made on any DynamoDB / Secrets Manager
endpoint: moto in-process, a moto server, DynamoDB Local, LocalStack."""

from __future__ import annotations

import inspect
import json
import logging
import secrets
import string
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from botocore.exceptions import ClientError

from . import template

# botocore's service-specific endpoint override for each service the handlers call.
ENDPOINT_VARIABLES = {
    "dynamodb": "AWS_ENDPOINT_URL_DYNAMODB",
    "secretsmanager": "AWS_ENDPOINT_URL_SECRETS_MANAGER",
}
# A known signing key (49 characters) for the tests and the benchmarks, so that a token can
# be minted or checked outside the process that holds the secret. events/validate_token*.json
# carry tokens signed with it.
SAMPLE_KEY = "k" * 16 + "test-signing-key-0123456789abcdef"

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
    """Make moto's DynamoDB serialize requests per item, as DynamoDB does, and fast.

    moto's UpdateItem on a missing item creates it in two steps, so two threads merging
    into a new session can each create it and one loses its key: a moto artefact, not
    DynamoDB behaviour. So each request on an item runs alone on that item, for moto's whole
    handling of it (DynamoHandler), not only the backend call: its UpdateItem response
    copies and serializes the live item after the backend call returns, and a concurrent
    update of that item then fails it with "dictionary changed size during iteration" (a
    500 that DynamoDB never gives).

    Requests on different items run at once, as on DynamoDB: a slow write to one session
    holds back only that session's requests (see _ItemLocks). And moto's PutItem is made
    linear in the number of attributes (see _patch_item_size_check): it was quadratic, so
    one PUT of 20,000 keys took minutes.
    """
    from moto.dynamodb.responses import DynamoHandler

    with _patched:
        if getattr(DynamoHandler, "_atomic", False):
            return
        _patch_item_size_check()
        locks = _ItemLocks()
        handle = DynamoHandler.call_action

        def locked_call(self: Any, __handle: Any = handle) -> Any:
            keys = _items_of(self)
            with locks.hold(keys):
                return __handle(self)

        # Patching moto on purpose: the lock must wrap its whole handling of a request.
        DynamoHandler.call_action = locked_call  # type: ignore[method-assign]
        DynamoHandler._atomic = True  # type: ignore[attr-defined]


class _ItemLocks:
    """A lock per item, under a table-wide gate that item requests share.

    A request on known items takes the gate shared, then each item's lock in sorted order
    (so two multi-item requests cannot deadlock). Any other request (Scan, Query, table
    operations, or an item request whose key we cannot tell) takes the gate alone, so it
    never iterates a table while another thread inserts into it. The gate prefers item
    requests: a Scan waits for a moment with no item request in flight, and never makes
    item requests queue behind it while a slow one finishes.
    """

    def __init__(self) -> None:
        self._gate = threading.Condition()
        self._sharing = 0
        self._alone = False
        self._locks: dict[tuple[str, ...], list[Any]] = {}  # key -> [lock, users]

    @contextmanager
    def hold(self, keys: list[tuple[str, ...]] | None) -> Iterator[None]:
        if keys is None:
            with self._gate:
                self._gate.wait_for(lambda: not self._alone and not self._sharing)
                self._alone = True
            try:
                yield
            finally:
                with self._gate:
                    self._alone = False
                    self._gate.notify_all()
            return
        keys = sorted(set(keys))
        with self._gate:
            self._gate.wait_for(lambda: not self._alone)
            self._sharing += 1
            entries = [self._locks.setdefault(key, [threading.Lock(), 0]) for key in keys]
            for entry in entries:
                entry[1] += 1
        try:
            with ExitStack() as stack:
                for lock, _ in entries:
                    stack.enter_context(lock)
                yield
        finally:
            with self._gate:
                for key, entry in zip(keys, entries, strict=True):
                    entry[1] -= 1
                    if not entry[1]:
                        del self._locks[key]
                self._sharing -= 1
                self._gate.notify_all()


# Where each item request names its items: (list of (table, key or item) pairs).
_SINGLE_ITEM = {"GetItem": "Key", "DeleteItem": "Key", "UpdateItem": "Key", "PutItem": "Item"}


def _items_of(handler: Any) -> list[tuple[str, ...]] | None:
    """The items a DynamoDB request touches, as (account, region, table, partition key);
    None when it is no item request or its items cannot be told (it then runs alone)."""
    try:
        action = handler._get_action()
        params = getattr(handler, "params", None) or {}
        targets: list[tuple[str, dict[str, Any]]] = []
        if action in _SINGLE_ITEM:
            targets.append((params["TableName"], params[_SINGLE_ITEM[action]]))
        elif action in ("TransactWriteItems", "TransactGetItems"):
            for entry in params["TransactItems"]:
                ((_, request),) = entry.items()
                targets.append((request["TableName"], request.get("Key") or request["Item"]))
        elif action == "BatchWriteItem":
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    ((_, body),) = request.items()
                    targets.append((table, body.get("Key") or body["Item"]))
        elif action == "BatchGetItem":
            for table, spec in params["RequestItems"].items():
                targets.extend((table, key) for key in spec["Keys"])
        else:
            return None
        tables = handler.dynamodb_backend.tables
        where = (handler.current_account, handler.region)
        return [
            (*where, name, json.dumps(attrs[tables[name].hash_key_attr], sort_keys=True))
            for name, attrs in targets
        ]
    except (KeyError, TypeError, ValueError, AttributeError):
        return None  # malformed or unknown table: moto refuses it at once, alone


def _patch_item_size_check() -> None:
    """Build moto's Item with one size check instead of one per attribute.

    moto's LimitedSizeDict re-sums the whole item on every attribute it sets, so building an
    item of n attributes costs n**2 (2,000 keys: 2 s; 4,000: 13 s; 20,000: minutes). Setting
    all but the last attribute directly and the last through the checked path checks the
    same final size once. Left alone if moto's Item no longer looks as expected.
    """
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict

    expected = ["self", "hash_key", "range_key", "attrs"]
    if list(inspect.signature(Item.__init__).parameters) != expected:
        return

    def init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        self.attrs = LimitedSizeDict()
        pairs = list(attrs.items())
        for key, value in pairs[:-1]:
            dict.__setitem__(self.attrs, key, DynamoType(value))
        for key, value in pairs[-1:]:
            self.attrs[key] = DynamoType(value)  # moto's own check, over the whole item

    Item.__init__ = init  # type: ignore[method-assign]  # on purpose: see the docstring
