"""The token ledger: which calls have ended, and which tokens have already been used.

Two kinds of marker item live in the sessions table beside the metadata. Their keys hold
a '#', which a session id never does ([A-Za-z0-9._-]), so no marker can be read, merged
into or deleted as a session:
- `revoked#<call_id>`: the call has ended, and its tokens are refused while the marker
  lives. Its TTL is the end plus the token lifetime plus CLOCK_SKEW_SECS: by then every
  token minted before the end has expired and is refused as `expired` anyway.
- `used#<call_id>#<nonce>`: the token with that nonce has been validated once. Written
  with `attribute_not_exists(pk)`, so of any number of concurrent validations of one token
  exactly one writes it; the others are refused. Its TTL is the token's own expiry plus
  CLOCK_SKEW_SECS, after which every instance refuses the token as `expired`.

Why two plain calls (GetItem, then a conditional PutItem) and not one TransactWriteItems
when both modes are on: a transaction costs 2 WRU per item (4 in all against 1 RRU + 1 WRU,
about 3x the price), and DynamoDB cancels concurrent transactions on one item with
TransactionConflict, which is exactly the replay race: the two calls always let one
validation through, a transaction could refuse them all. The order (read, then write) is
what one validation needs; a call ending between the two is ordered after it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .aws import error_code, unavailable_on_outage
from .store import PARTITION_KEY, TTL_ATTRIBUTE  # the markers live in the sessions' table

if TYPE_CHECKING:  # stubs only: nothing of mypy_boto3 is imported at run time
    from mypy_boto3_dynamodb import DynamoDBClient

# Instances' clocks agree to well under a second (NTP); five minutes costs only storage.
CLOCK_SKEW_SECS = 300


def revoked_key(call_id: str) -> str:
    return f"revoked#{call_id}"


def used_key(call_id: str, nonce: str) -> str:
    return f"used#{call_id}#{nonce}"


class TokenLedger:
    """Data access for revocation markers and used-token records; no token logic."""

    def __init__(
        self,
        table_name: str,
        client_factory: Callable[[], DynamoDBClient],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table_name
        self._client_factory = client_factory
        self._clock = clock

    def revoke(self, call_id: str, token_lifetime_secs: int) -> None:
        """Refuse the call's tokens from now on, until none minted so far can be live."""
        expires = int(self._clock()) + token_lifetime_secs + CLOCK_SKEW_SECS
        with unavailable_on_outage():
            self._client_factory().put_item(
                TableName=self._table,
                Item={
                    PARTITION_KEY: {"S": revoked_key(call_id)},
                    TTL_ATTRIBUTE: {"N": str(expires)},
                },
            )

    def is_revoked(self, call_id: str) -> bool:
        """One consistent GetItem: a marker written by any instance is seen at once."""
        with unavailable_on_outage():
            response = self._client_factory().get_item(
                TableName=self._table,
                Key={PARTITION_KEY: {"S": revoked_key(call_id)}},
                ConsistentRead=True,
                ProjectionExpression="#e",
                ExpressionAttributeNames={"#e": TTL_ATTRIBUTE},
            )
        item = response.get("Item")
        if not item:
            return False
        # DynamoDB deletes expired items late: a marker past its TTL counts as absent.
        return int(item[TTL_ATTRIBUTE]["N"]) > int(self._clock())

    def record_use(self, call_id: str, nonce: str, expiry: int) -> bool:
        """Record the token's first use; False when it was already recorded."""
        try:
            with unavailable_on_outage():
                self._client_factory().put_item(
                    TableName=self._table,
                    Item={
                        PARTITION_KEY: {"S": used_key(call_id, nonce)},
                        TTL_ATTRIBUTE: {"N": str(expiry + CLOCK_SKEW_SECS)},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                )
        except ClientError as error:
            if error_code(error) == "ConditionalCheckFailedException":
                return False
            raise
        return True
