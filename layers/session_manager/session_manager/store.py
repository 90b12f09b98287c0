"""Session metadata in DynamoDB: one item per session, expiry checked on every read.

Schema, and why:
- `pk` (S): the session id. `expires_at` (N): the TTL attribute, now + ttl on every write.
  `updated_at` (N): the last write, for `cleanup(max_age_secs)`. `v` (S): a random version,
  new on every write, for the rare read-modify-write path (compare-and-set without ABA).
- Each metadata key is its own top-level attribute `m.<key>`, holding the value as a JSON
  string. One attribute per key lets a merge be a single UpdateItem that creates the item
  when it is missing (a nested map can't be: `SET m.k` fails while `m` is absent, and
  `SET m = if_not_exists(m, :e), m.k = :v` overlaps paths), lets two writers merge different
  keys at once without losing either, and the JSON string keeps ints, floats, lists and
  nulls exactly as the caller sent them (DynamoDB numbers would turn them into Decimal).
- DynamoDB deletes expired items lazily, sometimes days late, so an item past `expires_at`
  counts as absent on every read, and a write never merges into one.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import ClientError

from .aws import call_aws, error_code
from .errors import InvalidInputError, TooLargeError, UnavailableError
from .validation import check_session_id

PARTITION_KEY = "pk"
TTL_ATTRIBUTE = "expires_at"
UPDATED_ATTRIBUTE = "updated_at"
VERSION_ATTRIBUTE = "v"
KEY_PREFIX = "m."

# DynamoDB's item limit is 400 KB, attribute names included. 400,000 bytes stays under both
# AWS (409,600) and moto (405,000), so what we accept is what every backend stores.
MAX_ITEM_BYTES = 400_000
MAX_KEY_CHARS = 1024
# DynamoDB refuses expressions over 4 KB; a merge with more keys than fit takes the
# read-modify-write path instead.
MAX_EXPRESSION_CHARS = 4000
_NUMBER_BYTES = 21  # the most DynamoDB spends on one number
_ITEM_OVERHEAD = (
    len(PARTITION_KEY)
    + len(TTL_ATTRIBUTE)
    + _NUMBER_BYTES
    + len(UPDATED_ATTRIBUTE)
    + _NUMBER_BYTES
    + len(VERSION_ATTRIBUTE)
    + 32
)
_REWRITE_ATTEMPTS = 8

_NAMES = {"#e": TTL_ATTRIBUTE, "#u": UPDATED_ATTRIBUTE, "#v": VERSION_ATTRIBUTE}


def encode_value(key: str, value: Any) -> str:
    try:
        encoded = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
        # A lone surrogate ("\ud800") is valid JSON but no UTF-8 text can carry it.
        encoded.encode("utf-8")
        return encoded
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidInputError(f"metadata value for {key!r} is not JSON: {error}") from None


def check_key(key: object) -> str:
    if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or not _is_utf8(key):
        raise InvalidInputError(
            f"metadata keys must be strings of at most {MAX_KEY_CHARS} characters"
        )
    return key


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def item_bytes(session_id: str, encoded: Mapping[str, str]) -> int:
    """An item's size as DynamoDB counts it (UTF-8 names plus values), numbers at their max."""
    return (
        _ITEM_OVERHEAD
        + len(session_id.encode())
        + sum(len((KEY_PREFIX + k).encode()) + len(v.encode()) for k, v in encoded.items())
    )


def _check_size(session_id: str, encoded: Mapping[str, str]) -> None:
    size = item_bytes(session_id, encoded)
    if size > MAX_ITEM_BYTES:
        raise TooLargeError(
            f"metadata needs {size} bytes; one session holds at most {MAX_ITEM_BYTES}"
        )


def _is_size_error(error: ClientError) -> bool:
    return error_code(error) == "ValidationException" and "size" in str(error).lower()


class MetadataStore:
    """Data access for session metadata; speaks only plain dicts to its callers."""

    def __init__(
        self,
        table_name: str,
        client_factory: Callable[[], Any],
        ttl_secs: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._client_factory = client_factory
        self._ttl_secs = ttl_secs
        self._clock = clock

    # -- reads --------------------------------------------------------------------------

    def get(self, session_id: str) -> dict[str, Any]:
        check_session_id(session_id)
        now = int(self._clock())
        response = self._call(
            "get_item", TableName=self._table, Key=self._key(session_id), ConsistentRead=True
        )
        return self._live_metadata(response.get("Item"), now)

    # -- writes -------------------------------------------------------------------------

    def merge(self, session_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Shallow-merge `changes` (None removes a key); returns the merged metadata."""
        check_session_id(session_id)
        to_set, to_remove = self._split_changes(changes)
        _check_size(session_id, to_set)
        for _ in range(_REWRITE_ATTEMPTS):
            now = int(self._clock())
            request = self._merge_request(session_id, to_set, to_remove, now)
            if len(request["UpdateExpression"]) > MAX_EXPRESSION_CHARS:
                return self._merge_by_rewrite(session_id, to_set, to_remove)
            try:
                response = self._call("update_item", **request)
                return self._live_metadata(response["Attributes"], now)
            except ClientError as error:
                if error_code(error) != "ConditionalCheckFailedException":
                    raise
            # The item exists but has expired: start the session afresh, so none of its
            # old keys leak in. If another writer revives it first, merge into theirs.
            if self._put(session_id, to_set, now, expect="expired"):
                return self._decode(to_set)
        raise self._contention(session_id)

    def replace(self, session_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
        check_session_id(session_id)
        to_set, _ = self._split_changes(metadata, allow_none=True)
        _check_size(session_id, to_set)
        self._put(session_id, to_set, int(self._clock()))
        return self._decode(to_set)

    def delete(self, session_id: str) -> bool:
        """Delete the session; True when a live (unexpired) one existed."""
        check_session_id(session_id)
        now = int(self._clock())
        response = self._call(
            "delete_item", TableName=self._table, Key=self._key(session_id), ReturnValues="ALL_OLD"
        )
        return self._is_live(response.get("Attributes"), now)

    def cleanup(self, max_age_secs: int | None = None) -> int:
        """Delete sessions that expired, or were not written for `max_age_secs`; how many.

        Each delete is conditional on the item still being stale, so a session written
        between the scan and the delete survives (BatchWriteItem cannot carry a condition).
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
        scan = {
            "TableName": self._table,
            "ProjectionExpression": PARTITION_KEY,
            "FilterExpression": stale["ConditionExpression"],
            "ExpressionAttributeNames": stale["ExpressionAttributeNames"],
            "ExpressionAttributeValues": stale["ExpressionAttributeValues"],
            "ConsistentRead": True,
        }
        deleted = 0
        while True:
            page = self._call("scan", **scan)
            for item in page.get("Items", []):
                request = {
                    "TableName": self._table,
                    "Key": {PARTITION_KEY: item[PARTITION_KEY]},
                    **stale,
                }
                try:
                    self._call("delete_item", **request)
                    deleted += 1
                except ClientError as error:
                    if error_code(error) != "ConditionalCheckFailedException":
                        raise
            if "LastEvaluatedKey" not in page:
                return deleted
            scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- helpers ------------------------------------------------------------------------

    def _call(self, operation: str, **params: Any) -> Any:
        method = getattr(self._client_factory(), operation)
        try:
            return call_aws(lambda: method(**params))
        except ClientError as error:
            if _is_size_error(error):
                raise TooLargeError("metadata too large for one DynamoDB item") from None
            raise

    @staticmethod
    def _key(session_id: str) -> dict[str, Any]:
        return {PARTITION_KEY: {"S": session_id}}

    @staticmethod
    def _split_changes(
        changes: Mapping[str, Any], allow_none: bool = False
    ) -> tuple[dict[str, str], list[str]]:
        if not isinstance(changes, Mapping):
            raise InvalidInputError("metadata must be a JSON object")
        to_set: dict[str, str] = {}
        to_remove: list[str] = []
        for key, value in changes.items():
            check_key(key)
            if value is None and not allow_none:
                to_remove.append(key)
            else:
                to_set[key] = encode_value(key, value)
        return to_set, to_remove

    def _merge_request(
        self, session_id: str, to_set: Mapping[str, str], to_remove: list[str], now: int
    ) -> dict[str, Any]:
        names = dict(_NAMES)
        values: dict[str, Any] = {
            ":e": {"N": str(now + self._ttl_secs)},
            ":now": {"N": str(now)},
            ":v": {"S": uuid.uuid4().hex},
        }
        assignments = ["#e = :e", "#u = :now", "#v = :v"]
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
            "ConditionExpression": "attribute_not_exists(pk) OR #e > :now",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }

    def _merge_by_rewrite(
        self, session_id: str, to_set: Mapping[str, str], to_remove: list[str]
    ) -> dict[str, Any]:
        """Read, merge, write back on an unchanged version: for merges too big for one
        expression. A concurrent write changes the version, and we start over."""
        for _ in range(_REWRITE_ATTEMPTS):
            now = int(self._clock())
            item = self._call(
                "get_item",
                TableName=self._table,
                Key=self._key(session_id),
                ConsistentRead=True,
            ).get("Item")
            merged = self._live_encoded(item, now)
            merged.update(to_set)
            for key in to_remove:
                merged.pop(key, None)
            _check_size(session_id, merged)
            version = item[VERSION_ATTRIBUTE]["S"] if item and VERSION_ATTRIBUTE in item else None
            if self._put(session_id, merged, now, expect=version or "absent"):
                return self._decode(merged)
        raise self._contention(session_id)

    def _put(
        self, session_id: str, encoded: Mapping[str, str], now: int, expect: str | None = None
    ) -> bool:
        """PutItem the whole session. `expect`: None (unconditional), "absent", "expired",
        or a version the item must still carry. False when that condition failed."""
        item = {
            PARTITION_KEY: {"S": session_id},
            TTL_ATTRIBUTE: {"N": str(now + self._ttl_secs)},
            UPDATED_ATTRIBUTE: {"N": str(now)},
            VERSION_ATTRIBUTE: {"S": uuid.uuid4().hex},
            **{KEY_PREFIX + k: {"S": v} for k, v in encoded.items()},
        }
        request: dict[str, Any] = {"TableName": self._table, "Item": item}
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
            self._call("put_item", **request)
            return True
        except ClientError as error:
            if expect is not None and error_code(error) == "ConditionalCheckFailedException":
                return False
            raise

    @staticmethod
    def _is_live(item: Mapping[str, Any] | None, now: int) -> bool:
        return bool(item) and TTL_ATTRIBUTE in item and int(item[TTL_ATTRIBUTE]["N"]) > now

    def _live_encoded(self, item: Mapping[str, Any] | None, now: int) -> dict[str, str]:
        if not self._is_live(item, now):
            return {}
        return {
            name[len(KEY_PREFIX) :]: value["S"]
            for name, value in item.items()
            if name.startswith(KEY_PREFIX)
        }

    def _live_metadata(self, item: Mapping[str, Any] | None, now: int) -> dict[str, Any]:
        return self._decode(self._live_encoded(item, now))

    @staticmethod
    def _decode(encoded: Mapping[str, str]) -> dict[str, Any]:
        return {key: json.loads(value) for key, value in encoded.items()}

    @staticmethod
    def _contention(session_id: str) -> UnavailableError:
        return UnavailableError(f"session {session_id!r} is being written too often; retry")
