"""boto3 clients and the one place AWS failures are sorted into this package's errors.

Every client made here keeps its calls inside the invocation's deadline (deadline.py):
botocore's own retries are off, and three event hooks per client take their place:
- before-call: the call's deadline (the invocation's, or a default budget of its own);
- before-send: each attempt's read timeout, cut to the time left (at most MAX_READ_SECS),
  and no attempt at all when less than MIN_READ_SECS would be left for it (on a botocore
  that cannot cut an attempt's wait, when less than its whole read timeout would be);
- needs-retry: transient failures retried with jittered exponential backoff, as long as
  the sleep and another attempt still fit before the deadline.
So a hung or unreachable endpoint costs at most the budget, then a 503 with Retry-After.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from botocore.httpsession import URLLib3Session

from . import deadline
from .errors import DeadlineExceededError, UnavailableError

if TYPE_CHECKING:  # stubs only: the Lambda runtime has no mypy_boto3, and needs none
    from botocore.client import BaseClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

T = TypeVar("T")

# A TCP (and TLS) connect to DynamoDB or Secrets Manager takes milliseconds; a second
# means the endpoint is not there.
CONNECT_TIMEOUT_SECS = 1.0
# Ceiling of one attempt's wait for an answer: both services answer in tens of
# milliseconds, so a hung connection is given up in time for another attempt.
MAX_READ_SECS = 3.0
# Floor: an attempt with less time than this to wait would fail a healthy call; refuse
# it and answer 503 at once instead.
MIN_READ_SECS = 0.5
MAX_ATTEMPTS = 3
# Full jitter: sleep random(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**(attempt - 1))) seconds.
BACKOFF_BASE_SECS = 0.25
BACKOFF_CAP_SECS = 2.0

# botocore >= 1.43.68 gives the prepared request the call's context and takes a read
# timeout per attempt from it (URLLib3Session._get_request_timeout). Older ones (the
# python3.13 Lambda runtime's may be, see pyproject.toml) always wait the client's
# read_timeout, MAX_READ_SECS, so there an attempt starts only when that whole wait fits.
# A private name, so a botocore without it gets that safe rule, never a wait we can't cut.
PER_REQUEST_READ_TIMEOUT = hasattr(URLLib3Session, "_get_request_timeout")
# There every wait is the floor instead, so that an attempt (connect and wait) fits the
# shortest budget the layer sets, a cached key's refetch (keys.CACHED_FETCH_SECS, 2 s),
# with room to spare: both services answer in tens of milliseconds.
UNCUT_READ_SECS = MIN_READ_SECS
# The clients' read timeout: every attempt's on an older botocore, the ceiling on a newer.
READ_TIMEOUT_SECS = MAX_READ_SECS if PER_REQUEST_READ_TIMEOUT else UNCUT_READ_SECS

CLIENT_CONFIG = Config(
    # Retries are ours (needs-retry below): botocore's would sleep past the deadline.
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=CONNECT_TIMEOUT_SECS,
    read_timeout=READ_TIMEOUT_SECS,
    tcp_keepalive=True,
)

# Codes that mean "try again later", not "you asked for something wrong".
TRANSIENT_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "InternalServiceError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)
_TRANSIENT_STATUSES = frozenset({500, 502, 503, 504})
# The deadline of the AWS call under way in this thread (or task): set at before-call and
# read by the hooks of its attempts and retries, which run in the same thread. Not the
# request's context: the prepared request that an older botocore hands before-send has none.
_call_deadline: ContextVar[float | None] = ContextVar("session_manager_call", default=None)


@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["secretsmanager"]) -> SecretsManagerClient: ...
def client(
    service: Literal["dynamodb", "secretsmanager"],
) -> DynamoDBClient | SecretsManagerClient:
    """A client honouring AWS_ENDPOINT_URL[_<SERVICE>] and the region from the environment,
    its calls kept inside the deadline."""
    made = boto3.client(service, config=CLIENT_CONFIG)
    keep_within_deadline(made)
    return made


def keep_within_deadline(aws_client: BaseClient) -> None:
    """Register the deadline hooks on a client (once: each client is made once)."""
    service_id = aws_client.meta.service_model.service_id.hyphenize()
    events = aws_client.meta.events
    events.register(f"before-call.{service_id}", _start_call)
    # First, and specific to the service: ahead of moto's handler (on plain before-send),
    # which answers in place of the network, so a refused attempt changes nothing there.
    events.register_first(f"before-send.{service_id}", _fit_attempt)
    # botocore-stubs types every handler as returning None; needs-retry reads the answer.
    events.register_first(f"needs-retry.{service_id}", _retry_within_deadline)  # type: ignore[arg-type]


def _start_call(**_: Any) -> None:
    _call_deadline.set(deadline.for_call())


def _fit_attempt(request: Any, **_: Any) -> None:
    due = _call_deadline.get()
    if due is None:
        return
    # An attempt may spend a whole connect timeout before it starts waiting.
    read = min(MAX_READ_SECS, due - deadline.now() - CONNECT_TIMEOUT_SECS)
    context = getattr(request, "context", None) if PER_REQUEST_READ_TIMEOUT else None
    if read < _shortest_wait(cuts=context is not None):
        raise DeadlineExceededError("no time left for another AWS attempt")
    if context is not None:
        context["read_timeout"] = read


def _shortest_wait(cuts: bool) -> float:
    """The least time an attempt may be given to wait for an answer: the floor, or on a
    botocore that cannot cut a wait, the whole read timeout of the client."""
    return MIN_READ_SECS if cuts else READ_TIMEOUT_SECS


def _retry_within_deadline(
    attempts: int,
    response: Any = None,
    caught_exception: BaseException | None = None,
    **_: Any,
) -> float | None:
    """How long to sleep before retrying; None: do not retry (botocore's own retries are
    off, so no handler after this one retries). Not False: botocore < 1.43.68 takes any
    answer but None as a sleep, and would retry forever."""
    if attempts >= MAX_ATTEMPTS or not _is_transient(response, caught_exception):
        return None
    due = _call_deadline.get()
    delay: float = random.random() * min(  # noqa: S311 - jitter, not a secret
        BACKOFF_CAP_SECS, BACKOFF_BASE_SECS * 2 ** (attempts - 1)
    )
    if due is not None:
        # The sleep must leave room for the shortest attempt allowed; a shorter sleep is
        # better than none.
        next_attempt = CONNECT_TIMEOUT_SECS + _shortest_wait(PER_REQUEST_READ_TIMEOUT)
        room = due - deadline.now() - next_attempt
        if room <= 0:
            return None
        delay = min(delay, room)
    return delay


def _is_transient(response: Any, caught_exception: BaseException | None) -> bool:
    if caught_exception is not None:
        # Refused connections, timeouts, dropped connections; not DeadlineExceededError.
        return isinstance(caught_exception, ConnectionError | HTTPClientError)
    if response is None:
        return False
    http_response, parsed = response
    code = parsed.get("Error", {}).get("Code", "")
    return code in TRANSIENT_CODES or http_response.status_code in _TRANSIENT_STATUSES


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def failed_condition(error: ClientError) -> bool:
    """True when a conditional write was refused because its condition did not hold."""
    return error_code(error) == "ConditionalCheckFailedException"


def item_at_failed_condition(error: ClientError) -> dict[str, Any] | None:
    """The item a refused conditional write found, when it asked for it with
    ReturnValuesOnConditionCheckFailure=ALL_OLD; None when there was none."""
    item = error.response.get("Item")
    return item if isinstance(item, dict) else None


@contextmanager
def unavailable_on_outage() -> Iterator[None]:
    """Around AWS calls: throttling, AWS's own 5xx and unreachable endpoints (after the
    retries the deadline allowed) become UnavailableError; so does running out of time
    (DeadlineExceededError, raised as it is). Every other error propagates unchanged for
    the caller to judge."""
    try:
        yield
    except ClientError as error:
        code = error_code(error)
        if code in TRANSIENT_CODES:
            raise UnavailableError(f"AWS is throttling ({code})") from error
        if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
            raise UnavailableError(f"AWS failed ({code or 'no code'})") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise UnavailableError("AWS could not be reached") from error


def call_aws(call: Callable[[], T], absent: Collection[str] = ()) -> T | None:
    """Run one AWS call (see unavailable_on_outage); None when it fails with a code in
    `absent`."""
    try:
        with unavailable_on_outage():
            return call()
    except ClientError as error:
        if error_code(error) in absent:
            return None
        raise
