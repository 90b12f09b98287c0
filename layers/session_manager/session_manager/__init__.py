"""Session state for SignalWire agents on AWS Lambda: DynamoDB metadata, shared token keys."""

from .errors import (
    ConfigurationError,
    InvalidInputError,
    SessionManagerError,
    TooLargeError,
    UnavailableError,
)
from .manager import SessionManager

__all__ = [
    "ConfigurationError",
    "InvalidInputError",
    "SessionManager",
    "SessionManagerError",
    "TooLargeError",
    "UnavailableError",
]
