"""Session metadata in DynamoDB: one item per session, expiry checked on every read.

Schema, and why:
- `pk` (S): the session id. `expires_at` (N): the TTL attribute, now + ttl on every write.
  `updated_at` (N): the last write, for `cleanup(max_age_secs)`. `v` (S): a random version,
  new on every write, for the rare read-modify-write path (compare-and-set without ABA).
- Each metadata key is its own top-level attribute `m.<key>`, holding the value as a JSON
  string (codec.py). One attribute per key lets a merge be a single UpdateItem that creates
  the item when it is missing (a nested map can't be: `SET m.k` fails while `m` is absent,
  and `SET m = if_not_exists(m, :e), m.k = :v` overlaps paths), lets two writers merge
  different keys at once without losing either, and the JSON string keeps ints, floats,
  lists and nulls exactly as the caller sent them (DynamoDB numbers would be Decimal).
- `s` (N): never less than the metadata's bytes (codec.metadata_bytes). A merge's
  UpdateItem adds what it sets and is conditional on `s` leaving room for it, so no
  sequence of writes passes MAX_ITEM_BYTES. An UpdateItem can't see what the keys it
  overwrites or removes weighed, so `s` only grows there; when the condition fails, the
  refusal carries the item (ReturnValuesOnConditionCheckFailure), the exact size is counted
  from it, and the merge is put back whole on an unchanged version with an exact `s`.
  Common merges stay one UpdateItem; one that finds `s` too high costs one PutItem more.
- DynamoDB deletes expired items lazily, sometimes days late, so an item past `expires_at`
  counts as absent on every read, and a write never merges into one.
- Whatever a write accepts, a read returns: values are checked (JSON, nesting, size) before
  anything is written, and the read path skips, never fails on, an attribute that another
  writer left undecodable (not a string, not JSON, nested past MAX_NESTING).
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeGuard

from botocore.exceptions import ClientError

from .aws import error_code, failed_condition, item_at_failed_condition, unavailable_on_outage
from .codec import (
    KEY_PREFIX,
    MAX_ITEM_BYTES,
    check_metadata_bytes,
    decode_values,
    metadata_bytes,
    split_changes,
)
from .errors import TooLargeError, UnavailableError
from .validation import SESSION_ID, check_session_id

if TYPE_CHECKING:  # stubs only: nothing of mypy_boto3 is imported at run time
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        PutItemInputTypeDef,
        ScanInputTypeDef,
        UpdateItemInputTypeDef,
    )

logger = logging.getLogger(__name__)

PARTITION_KEY = "pk"
TTL_ATTRIBUTE = "expires_at"
UPDATED_ATTRIBUTE = "updated_at"
VERSION_ATTRIBUTE = "v"
SIZE_ATTRIBUTE = "s"

# Keys set or removed by one UpdateItem. DynamoDB allows 4 KB of expression and 300
# operators per UpdateExpression (each `=` one; ours spend about 14 bytes and one `=` a key),
# and moto's expression parser recurses about 6 frames a key (it failed from 154 keys at the
# top of a script, fewer when called deeper). 100 keeps well inside all three. A bigger merge
# is a read-modify-write: read the item, merge, put it back on an unchanged version.
MAX_UPDATE_KEYS = 100
_NUMBER_BYTES = 21  # the most DynamoDB spends on one number
_ITEM_OVERHEAD = (
    len(PARTITION_KEY)
    + len(TTL_ATTRIBUTE)
    + _NUMBER_BYTES
    + len(UPDATED_ATTRIBUTE)
    + _NUMBER_BYTES
    + len(VERSION_ATTRIBUTE)
    + 32
    + len(SIZE_ATTRIBUTE)
    + _NUMBER_BYTES
)
# Retries of a conditional write that lost a race, with "full jitter" exponential backoff:
# a random sleep up to min(cap, base * 2**attempt): at most 3.1 s in all, 1.6 s on average.
_REWRITE_ATTEMPTS = 10
_BACKOFF_BASE_SECS = 0.02
_BACKOFF_CAP_SECS = 0.5

_NAMES = {
    "#e": TTL_ATTRIBUTE,
    "#u": UPDATED_ATTRIBUTE,
    "#v": VERSION_ATTRIBUTE,
    "#s": SIZE_ATTRIBUTE,
}


def item_bytes(session_id: str, encoded: Mapping[str, str]) -> int:
    """An item's size as DynamoDB counts it (UTF-8 names plus values), numbers at their max."""
    return _ITEM_OVERHEAD + len(session_id.encode()) + metadata_bytes(encoded)


def metadata_limit(session_id: str) -> int:
    """The most metadata bytes one session may hold: the item limit less its fixed part."""
    return MAX_ITEM_BYTES - _ITEM_OVERHEAD - len(session_id.encode())


def _is_size_error(error: ClientError) -> bool:
    return error_code(error) == "ValidationException" and "size" in str(error).lower()


class MetadataStore:
    """Data access for session metadata; speaks only plain dicts to its callers."""

    def __init__(
        self,
        table_name: str,
        client_factory: Callable[[], DynamoDBClient],
        ttl_secs: int = 3600,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table_name
        self._client_factory = client_factory
        self._ttl_secs = ttl_secs
        self._clock = clock
        self._sleep = sleep

    # -- reads --------------------------------------------------------------------------

    def get(self, session_id: str) -> dict[str, Any]:
        check_session_id(session_id)
        now = int(self._clock())
        with self._dynamodb() as db:
            response = db.get_item(
                TableName=self._table, Key=self._key(session_id), ConsistentRead=True
            )
        return self._live_metadata(response.get("Item"), now)

    # -- writes -------------------------------------------------------------------------

    def merge(self, session_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Shallow-merge `changes` (None removes a key); returns the merged metadata."""
        check_session_id(session_id)
        to_set, to_remove = split_changes(changes)
        limit = metadata_limit(session_id)
        added = metadata_bytes(to_set)
        check_metadata_bytes(added, limit)
        if len(to_set) + len(to_remove) > MAX_UPDATE_KEYS:
            return self._merge_by_rewrite(session_id, to_set, to_remove)
        for attempt in range(_REWRITE_ATTEMPTS):
            if attempt:
                self._backoff(attempt)
            now = int(self._clock())
            request = self._merge_request(session_id, to_set, to_remove, now, limit - added)
            try:
                with self._dynamodb() as db:
                    response = db.update_item(**request)
                return self._live_metadata(response["Attributes"], now)
            except ClientError as error:
                if not failed_condition(error):
                    raise
                current = item_at_failed_condition(error)
            # The item has expired (start it afresh, none of its old keys leak in), or its
            # size bound leaves no room: count exactly and put the merge back whole.
            merged = self._rewrite(session_id, current, to_set, to_remove, now)
            if merged is not None:
                return merged
        raise self._contention(session_id)

    def replace(self, session_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        check_session_id(session_id)
        to_set, _ = split_changes(metadata, allow_none=True)
        check_metadata_bytes(metadata_bytes(to_set), metadata_limit(session_id))
        self._put(session_id, to_set, int(self._clock()))
        return decode_values(to_set)

    def delete(self, session_id: str) -> bool:
        """Delete the session; True when a live (unexpired) one existed."""
        check_session_id(session_id)
        now = int(self._clock())
        with self._dynamodb() as db:
            response = db.delete_item(
                TableName=self._table, Key=self._key(session_id), ReturnValues="ALL_OLD"
            )
        return self._is_live(response.get("Attributes"), now)

    def cleanup(
        self,
        max_age_secs: int | None = None,
        *,
        max_pages: int | None = None,
        out_of_time: Callable[[], bool] | None = None,
    ) -> int:
        """Delete sessions that expired, or were not written for `max_age_secs`; how many.

        Bounded when asked: at most `max_pages` Scan pages, and no call started once
        `out_of_time()`; what is left waits for the next call (or the table's TTL).

        Each delete is conditional on the item still being stale, so a session written
        between the scan and the delete survives (BatchWriteItem cannot carry a condition).
        Items whose key is no session id (a revocation marker, `revoked#...`) belong to
        others and are left to the table's TTL.
        """
        now = int(self._clock())
        stale: dict[str, Any] = {
            "ConditionExpression": "#e <= :now",
            "ExpressionAttributeNames": {"#e": TTL_ATTRIBUTE},
            "ExpressionAttributeValues": {":now": {"N": str(now)}},
        }
        if max_age_secs is not None:
            stale["ConditionExpression"] += " OR #u < :cutoff"
            stale["ExpressionAttributeNames"]["#u"] = UPDATED_ATTRIBUTE
            stale["ExpressionAttributeValues"][":cutoff"] = {"N": str(now - int(max_age_secs))}
        scan: ScanInputTypeDef = {
            "TableName": self._table,
            "ProjectionExpression": PARTITION_KEY,
            "FilterExpression": stale["ConditionExpression"],
            "ExpressionAttributeNames": stale["ExpressionAttributeNames"],
            "ExpressionAttributeValues": stale["ExpressionAttributeValues"],
            "ConsistentRead": True,
        }
        deleted = pages = 0
        spent = out_of_time or (lambda: False)
        while True:
            with self._dynamodb() as db:
                page = db.scan(**scan)
            pages += 1
            for item in page.get("Items", []):
                if spent():
                    logger.info("cleanup: time budget spent; the rest waits for the next run")
                    return deleted
                if not SESSION_ID.fullmatch(item[PARTITION_KEY].get("S", "")):
                    continue
                key = {PARTITION_KEY: item[PARTITION_KEY]}
                try:
                    with self._dynamodb() as db:
                        db.delete_item(TableName=self._table, Key=key, **stale)
                    deleted += 1
                except ClientError as error:
                    if not failed_condition(error):
                        raise
            if "LastEvaluatedKey" not in page:
                return deleted
            if (max_pages is not None and pages >= max_pages) or spent():
                logger.info("cleanup: page or time budget spent; the rest waits for the next run")
                return deleted
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- helpers ------------------------------------------------------------------------

    @contextmanager
    def _dynamodb(self) -> Iterator[DynamoDBClient]:
        """The client, for the DynamoDB calls inside: throttling and outages become
        UnavailableError (aws.py), an item over DynamoDB's size limit TooLargeError."""
        client = self._client_factory()
        try:
            with unavailable_on_outage():
                yield client
        except ClientError as error:
            if _is_size_error(error):
                raise TooLargeError("metadata too large for one DynamoDB item") from None
            raise

    @staticmethod
    def _key(session_id: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": session_id}}

    def _merge_request(
        self,
        session_id: str,
        to_set: Mapping[str, str],
        to_remove: list[str],
        now: int,
        room: int,
    ) -> UpdateItemInputTypeDef:
        """One UpdateItem: set and remove the keys, on a live or absent item whose size
        bound leaves `room` for what is set (see the module's docstring)."""
        names = dict(_NAMES)
        values: dict[str, Any] = {
            ":e": {"N": str(now + self._ttl_secs)},
            ":now": {"N": str(now)},
            ":v": {"S": uuid.uuid4().hex},
            ":zero": {"N": "0"},
            ":added": {"N": str(metadata_bytes(to_set))},
            ":room": {"N": str(room)},
        }
        assignments = ["#e = :e", "#u = :now", "#v = :v", "#s = if_not_exists(#s, :zero) + :added"]
        removals = []
        for i, (key, encoded) in enumerate(to_set.items()):
            names[f"#k{i}"] = KEY_PREFIX + key
            values[f":k{i}"] = {"S": encoded}
            assignments.append(f"#k{i} = :k{i}")
        for j, key in enumerate(to_remove, start=len(to_set)):
            names[f"#k{j}"] = KEY_PREFIX + key
            removals.append(f"#k{j}")
        expression = "SET " + ", ".join(assignments)
        if removals:
            expression += " REMOVE " + ", ".join(removals)
        return {
            "TableName": self._table,
            "Key": self._key(session_id),
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_not_exists(pk) OR (#e > :now AND #s <= :room)",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _merge_by_rewrite(
        self, session_id: str, to_set: Mapping[str, str], to_remove: list[str]
    ) -> dict[str, Any]:
        """Read, merge, write back on an unchanged version: for merges too big for one
        UpdateItem. Atomic all the same: a concurrent write changes the version, the put is
        refused, and we start over after a jittered backoff."""
        for attempt in range(_REWRITE_ATTEMPTS):
            if attempt:
                self._backoff(attempt)
            now = int(self._clock())
            with self._dynamodb() as db:
                item = db.get_item(
                    TableName=self._table, Key=self._key(session_id), ConsistentRead=True
                ).get("Item")
            merged = self._rewrite(session_id, item, to_set, to_remove, now)
            if merged is not None:
                return merged
        raise self._contention(session_id)

    def _rewrite(
        self,
        session_id: str,
        item: Mapping[str, Any] | None,
        to_set: Mapping[str, str],
        to_remove: list[str],
        now: int,
    ) -> dict[str, Any] | None:
        """Merge into `item` as read and put the whole session back, conditional on the
        item being unchanged (its version; absent or expired for a fresh start). The
        merged metadata, or None when another writer got there first."""
        if self._is_live(item, now):
            merged = self._live_encoded(item, now)
            version = item.get(VERSION_ATTRIBUTE, {}).get("S", "")
        else:
            merged, version = {}, "expired"
        merged.update(to_set)
        for key in to_remove:
            merged.pop(key, None)
        check_metadata_bytes(metadata_bytes(merged), metadata_limit(session_id))
        if self._put(session_id, merged, now, expect=version or "absent"):
            return decode_values(merged)
        return None

    def _put(
        self, session_id: str, encoded: Mapping[str, str], now: int, expect: str | None = None
    ) -> bool:
        """PutItem the whole session. `expect`: None (unconditional), "absent", "expired"
        (or absent), or a version the item must still carry. False when that failed."""
        item = {
            PARTITION_KEY: {"S": session_id},
            TTL_ATTRIBUTE: {"N": str(now + self._ttl_secs)},
            UPDATED_ATTRIBUTE: {"N": str(now)},
            VERSION_ATTRIBUTE: {"S": uuid.uuid4().hex},
            SIZE_ATTRIBUTE: {"N": str(metadata_bytes(encoded))},
            **{KEY_PREFIX + k: {"S": v} for k, v in encoded.items()},
        }
        request: PutItemInputTypeDef = {"TableName": self._table, "Item": item}
        if expect == "absent":
            request["ConditionExpression"] = "attribute_not_exists(pk)"
        elif expect == "expired":
            request["ConditionExpression"] = "attribute_not_exists(pk) OR #e <= :now"
            request["ExpressionAttributeNames"] = {"#e": TTL_ATTRIBUTE}
            request["ExpressionAttributeValues"] = {":now": {"N": str(now)}}
        elif expect is not None:
            request["ConditionExpression"] = "#v = :v"
            request["ExpressionAttributeNames"] = {"#v": VERSION_ATTRIBUTE}
            request["ExpressionAttributeValues"] = {":v": {"S": expect}}
        try:
            with self._dynamodb() as db:
                db.put_item(**request)
            return True
        except ClientError as error:
            if expect is not None and failed_condition(error):
                return False
            raise

    @staticmethod
    def _is_live(item: Mapping[str, Any] | None, now: int) -> TypeGuard[Mapping[str, Any]]:
        return item is not None and TTL_ATTRIBUTE in item and int(item[TTL_ATTRIBUTE]["N"]) > now

    def _live_encoded(self, item: Mapping[str, Any] | None, now: int) -> dict[str, str]:
        """The item's metadata as stored: key -> JSON text. An attribute that is not a
        string (only another writer makes one) is skipped: we could not write it back."""
        if not self._is_live(item, now):
            return {}
        return {
            name[len(KEY_PREFIX) :]: value["S"]
            for name, value in item.items()
            if name.startswith(KEY_PREFIX) and isinstance(value.get("S"), str)
        }

    def _live_metadata(self, item: Mapping[str, Any] | None, now: int) -> dict[str, Any]:
        return decode_values(self._live_encoded(item, now))

    def _backoff(self, attempt: int) -> None:
        ceiling = min(_BACKOFF_CAP_SECS, _BACKOFF_BASE_SECS * 2**attempt)
        self._sleep(random.uniform(0, ceiling))  # noqa: S311 (jitter, not a secret)

    @staticmethod
    def _contention(session_id: str) -> UnavailableError:
        return UnavailableError(f"session {session_id!r} is being written too often; retry")
