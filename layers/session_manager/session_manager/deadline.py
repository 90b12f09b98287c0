"""The time left for AWS calls in the current invocation.

A Lambda function must answer before its timeout, whatever AWS does: a 503 with
Retry-After is useful to a caller, API Gateway's bare timeout error is not. So each
invocation sets a deadline (its remaining time, less a margin to answer in), and the AWS
clients fit every attempt, timeout and backoff sleep inside it (see aws.py).

The deadline lives in a ContextVar: each thread of the local server, and each invocation,
sees its own. Callers of the Python API outside Lambda set none; each AWS call then gets
DEFAULT_BUDGET_SECS of its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from contextvars import ContextVar, Token
from typing import Any

# Kept back from the invocation's remaining time: building the 503, logging, flushing
# metrics, and Lambda's own bookkeeping must fit after the last AWS attempt gives up.
MARGIN_SECS = 1.0
# Whatever the function's timeout, no request waits on AWS longer than this: API
# Gateway gives up on an integration after 29 s anyway.
MAX_BUDGET_SECS = 25.0
# For an AWS call made outside any invocation (the Python API in an agent, a script).
DEFAULT_BUDGET_SECS = 10.0

_deadline: ContextVar[float | None] = ContextVar("session_manager_deadline", default=None)


def now() -> float:
    return time.monotonic()


def begin(context: Any) -> Token[float | None]:
    """Set the deadline of the invocation `context` (a Lambda context) belongs to.

    Without a usable `get_remaining_time_in_millis` (a test's None, a hand-made context)
    the budget is DEFAULT_BUDGET_SECS. Pass the token to `end` when the invocation ends.
    """
    budget = DEFAULT_BUDGET_SECS
    remaining_ms = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining_ms):
        with suppress(TypeError, ValueError):
            budget = float(remaining_ms()) / 1000 - MARGIN_SECS
    return _deadline.set(now() + min(max(budget, 0.0), MAX_BUDGET_SECS))


def end(token: Token[float | None]) -> None:
    _deadline.reset(token)


def current() -> float | None:
    """The monotonic time by which AWS work must be over; None outside an invocation."""
    return _deadline.get()


def for_call() -> float:
    """The deadline one AWS call must keep: the invocation's, or a budget of its own."""
    deadline = _deadline.get()
    return now() + DEFAULT_BUDGET_SECS if deadline is None else deadline


@contextmanager
def at_most(secs: float) -> Iterator[None]:
    """Narrow the deadline to `secs` from now for the calls inside (never extend it): for
    work that is optional, so it cannot eat the time the rest of the request needs."""
    narrowed = now() + secs
    deadline = _deadline.get()
    token = _deadline.set(narrowed if deadline is None else min(deadline, narrowed))
    try:
        yield
    finally:
        _deadline.reset(token)
