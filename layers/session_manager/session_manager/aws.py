"""boto3 clients and the one place AWS failures are sorted into this package's errors."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from .errors import UnavailableError

T = TypeVar("T")

# Standard mode retries throttling and 5xx with backoff (3 attempts in all: botocore reads
# "max_attempts" as retries, so it would make 4); short timeouts keep a hung connection
# from eating the function's whole time budget before we can answer 503.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 3},
    connect_timeout=2,
    read_timeout=5,
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


def client(service: str) -> Any:
    """A client honouring AWS_ENDPOINT_URL[_<SERVICE>] and the region from the environment."""
    return boto3.client(service, config=CLIENT_CONFIG)


def error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def call_aws(call: Callable[[], T], absent: Collection[str] = ()) -> T | None:
    """Run one AWS call; None when it fails with a code in `absent`.

    Throttling and unreachable endpoints (after botocore's retries) become UnavailableError;
    every other error propagates unchanged for the caller to judge.
    """
    try:
        return call()
    except ClientError as error:
        code = error_code(error)
        if code in absent:
            return None
        if code in TRANSIENT_CODES:
            raise UnavailableError(f"AWS is throttling ({code})") from error
        raise
    except (ConnectionError, HTTPClientError) as error:
        raise UnavailableError("AWS could not be reached") from error
