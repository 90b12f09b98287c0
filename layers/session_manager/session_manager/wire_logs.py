"""Keep botocore's wire logging away from the signing key, at any log level.

At DEBUG (a user's `logging.basicConfig(level=logging.DEBUG)`, Lambda's application log
level) botocore logs each response body (botocore.parsers: GetSecretValue's body *is* the
key) and each request's parameters (botocore.endpoint: PutSecretValue's hold a key).
Levels cannot be relied on (whoever configures logging sets them), so a filter on each
logger of botocore and urllib3 drops every record made while `hidden()` is active in
the current thread or task. Other AWS calls keep their logs: only calls that carry a
key go quiet.

A filter belongs to the logger that makes the record (a parent's filters never see a
child's records), hence one per logger: those that exist when the first key is fetched,
and the wire loggers by name, so a botocore module imported later gets the filter too.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

# The loggers that see request or response content, named even if not created yet.
WIRE_LOGGERS = (
    "botocore.parsers",
    "botocore.endpoint",
    "botocore.hooks",
    "botocore.auth",
    "botocore.awsrequest",
    "botocore.httpsession",
    "botocore.client",
    "botocore.handlers",
    "botocore.retries.standard",
    "botocore.retryhandler",
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.response",
)
_PREFIXES = ("botocore", "urllib3")

_hiding: ContextVar[bool] = ContextVar("session_manager_hide_wire_logs", default=False)
_install_lock = threading.Lock()


class _DropWhileHidden(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _hiding.get()


_FILTER = _DropWhileHidden()


def install() -> None:
    """Put the filter on botocore's and urllib3's loggers (idempotent; cheap to repeat)."""
    with _install_lock:
        names = set(WIRE_LOGGERS)
        names.update(
            name
            for name in list(logging.root.manager.loggerDict)
            if name.split(".", 1)[0] in _PREFIXES
        )
        for name in names:
            logger = logging.getLogger(name)
            if _FILTER not in logger.filters:
                logger.addFilter(_FILTER)


@contextmanager
def hidden() -> Iterator[None]:
    """Nothing botocore or urllib3 logs inside this block reaches a handler."""
    install()
    token = _hiding.set(True)
    try:
        yield
    finally:
        _hiding.reset(token)
