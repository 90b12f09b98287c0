"""Typed errors: the HTTP layer maps each to one status, callers catch them by type."""


class SessionManagerError(Exception):
    """Base of every error this package raises on purpose."""


class InvalidInputError(SessionManagerError, ValueError):
    """The caller sent something malformed (HTTP 400). Nothing was written."""


class TooLargeError(SessionManagerError, ValueError):
    """The metadata cannot fit one DynamoDB item (HTTP 413). Nothing was written."""


class UnavailableError(SessionManagerError):
    """AWS is throttling or unreachable after retries (HTTP 503); safe to retry later."""

    retry_after_secs = 1


class ConfigurationError(SessionManagerError):
    """The deployment is wrong (missing variable, short signing key): not the caller's fault."""


class DeadlineExceededError(UnavailableError):
    """The invocation's time for AWS ran out before an answer (HTTP 503, like any outage)."""
