"""Typed errors, each carrying the HTTP status and error code it answers with.

Callers catch them by type; the HTTP layer (http.py) catches the base class once and
answers `{"error": {"code": error.code, "message": str(error)}}` with `error.status`.
"""

from __future__ import annotations


class SessionManagerError(Exception):
    """Base of every error this package raises on purpose.

    Statuses of 500 and over are the deployment's fault or AWS's, never the caller's."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.headers = dict(headers or {})


class InvalidInputError(SessionManagerError, ValueError):
    """The caller sent something malformed. Nothing was written."""

    status, code = 400, "invalid_request"


class NotFoundError(SessionManagerError):
    """No route of this function answers the request's path."""

    status, code = 404, "not_found"


class MethodNotAllowedError(SessionManagerError):
    """The path is a route, the method is not one of its methods (headers: Allow)."""

    status, code = 405, "method_not_allowed"


class TooLargeError(SessionManagerError, ValueError):
    """A body or the metadata cannot fit one DynamoDB item. Nothing was written."""

    status, code = 413, "payload_too_large"


class UnavailableError(SessionManagerError):
    """AWS is throttling or unreachable after retries; safe to retry later."""

    status, code = 503, "service_unavailable"
    retry_after_secs = 1

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message, {"Retry-After": str(self.retry_after_secs), **(headers or {})})


class ConfigurationError(SessionManagerError):
    """The deployment is wrong (missing variable, short signing key): not the caller's fault."""


class DeadlineExceededError(UnavailableError):
    """The invocation's time for AWS ran out before an answer (503, like any outage)."""
