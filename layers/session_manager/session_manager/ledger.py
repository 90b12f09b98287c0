"""The token ledger: which calls have ended, and which tokens have already been used.

Two kinds of marker item live in the sessions table beside the metadata. Their keys hold
a '#', which a session id never does ([A-Za-z0-9._-]), so no marker can be read, merged
into or deleted as a session:
- `revoked#<call_id>`: the call has ended (`ended_at`), and its tokens are refused while
  the marker lives. A token carries its expiry, not when it was minted nor for how long,
  and whoever holds the key mints it (this API, an agent with its own lifetime, a
  TypeScript agent), so the marker does not use this instance's lifetime: it lives for
  the end plus MAX_TOKEN_LIFETIME_SECS plus CLOCK_SKEW_SECS. Any token minted before the
  end with a lifetime up to that bound has expired by then, and is refused as `expired`.
  An ended call stays ended while its marker lives: a token minted for it after the end
  is refused too (call ids are not reused; the SDK ends a session when its call ends).
- `used#<call_id>#<nonce>`: the token with that nonce has been validated once. Written
  with `attribute_not_exists(pk)`, so of any number of concurrent validations of one token
  exactly one writes it; the others are refused. Its TTL is the token's own expiry plus
  CLOCK_SKEW_SECS, after which every instance refuses the token as `expired`. Each write
  carries a random owner: when an answer is lost and the client retries a write that had
  landed, the refusal returns the item (ReturnValuesOnConditionCheckFailure), the owner is
  ours, and the validation succeeds, as it should: it was the first.

Why two plain calls (GetItem, then a conditional PutItem) and not one TransactWriteItems
when both modes are on: a transaction costs 2 WRU per item (4 in all against 1 RRU + 1 WRU,
about 3x the price), and DynamoDB cancels concurrent transactions on one item with
TransactionConflict, which is exactly the replay race: the two calls always let one
validation through, a transaction could refuse them all. The order (read, then write) is
what one validation needs; a call ending between the two is ordered after it.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from .aws import failed_condition, item_at_failed_condition, unavailable_on_outage
from .store import PARTITION_KEY, TTL_ATTRIBUTE  # the markers live in the sessions' table
from .tokens import MAX_LIFETIME_SECS

if TYPE_CHECKING:  # stubs only: nothing of mypy_boto3 is imported at run time
    from mypy_boto3_dynamodb import DynamoDBClient

# Instances' clocks agree to well under a second (NTP); five minutes costs only storage.
CLOCK_SKEW_SECS = 300
# The longest token lifetime revocation covers: the most any SessionManager here mints
# (tokens.MAX_LIFETIME_SECS, a year; the template allows 10 h). The SDKs mint 900 s
# (SessionManager) or 3600 s (AgentBase) by default. A marker costs ~200 bytes of storage
# for that long, and no more capacity than a shorter one.
MAX_TOKEN_LIFETIME_SECS = MAX_LIFETIME_SECS
ENDED_ATTRIBUTE = "ended_at"
OWNER_ATTRIBUTE = "owner"


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
        max_token_lifetime_secs: int = MAX_TOKEN_LIFETIME_SECS,
    ) -> None:
        self._table = table_name
        self._client_factory = client_factory
        self._clock = clock
        self._marker_secs = max_token_lifetime_secs + CLOCK_SKEW_SECS

    def revoke(self, call_id: str) -> None:
        """Refuse the call's tokens from now on, until none minted so far can be live,
        whatever lifetime minted them (up to max_token_lifetime_secs)."""
        now = int(self._clock())
        with unavailable_on_outage():
            self._client_factory().put_item(
                TableName=self._table,
                Item={
                    PARTITION_KEY: {"S": revoked_key(call_id)},
                    TTL_ATTRIBUTE: {"N": str(now + self._marker_secs)},
                    ENDED_ATTRIBUTE: {"N": str(now)},
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
        """Record the token's first use; False when it was already recorded (by another
        validation: a retry of this one's own write counts as this one's)."""
        owner = secrets.token_hex(16)
        try:
            with unavailable_on_outage():
                self._client_factory().put_item(
                    TableName=self._table,
                    Item={
                        PARTITION_KEY: {"S": used_key(call_id, nonce)},
                        TTL_ATTRIBUTE: {"N": str(expiry + CLOCK_SKEW_SECS)},
                        OWNER_ATTRIBUTE: {"S": owner},
                    },
                    ConditionExpression="attribute_not_exists(pk)",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as error:
            if failed_condition(error):
                found = item_at_failed_condition(error) or {}
                return found.get(OWNER_ATTRIBUTE) == {"S": owner}
            raise
        return True
