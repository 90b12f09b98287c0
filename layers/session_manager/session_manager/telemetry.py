"""Structured JSON logs and EMF metrics for every function; Tracer when tracing is switched on.

Logs and metrics were Powertools' Logger and Metrics until `make bench` showed they do not
pay their cold-start cost here: importing them took ~43 ms of CPU in a fresh Lambda-like
Python that had already imported boto3, about 14% of a bare boto3 function's INIT plus
first request, for what this module does in ~100 lines. The output is theirs, field for
field where it matters:
- logs: one JSON object a line, Powertools' keys (level, location, message, timestamp,
  service, cold_start, function_*, correlation_id = the API Gateway request id, then the
  call's `extra`); level from POWERTOOLS_LOG_LEVEL, else LOG_LEVEL, else INFO;
- metrics: one EMF document per invocation (every `count` of it, dimension `service` =
  POWERTOOLS_SERVICE_NAME, namespace POWERTOOLS_METRICS_NAMESPACE), and one document per
  TokenRejected with dimensions reason and service; none while
  POWERTOOLS_METRICS_DISABLED=true (read at each flush: the local server sets it).

Powertools Tracer stays: it adds ~75% on its own, because the X-Ray SDK builds two botocore
clients at import, so it is opt-in: it needs aws-xray-sdk in the layer (see its
requirements.txt) and POWERTOOLS_TRACE_DISABLED=false (the template's DisablePowertoolsTracer
parameter). Lambda's active tracing records every invocation either way.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "service_undefined"
COUNT = "Count"

# What a LogRecord carries by itself; anything else on a record came in `extra`.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class _Invocation(threading.local):
    """The current invocation's log fields (per thread: the local server runs several)."""

    fields: dict[str, Any] = {}  # noqa: RUF012 - a class default each thread replaces


_invocation = _Invocation()
_cold_start = True


class JsonFormatter(logging.Formatter):
    """Powertools Logger's line: its keys, in its order, then the record's extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
            + f",{int(record.msecs):03d}+0000",
            "service": SERVICE,
            **_invocation.fields,
        }
        trace = os.environ.get("_X_AMZN_TRACE_ID")
        if trace:
            entry["xray_trace_id"] = trace.split(";")[0].replace("Root=", "")
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
            entry["exception_name"] = record.exc_info[0].__name__ if record.exc_info[0] else ""
        return json.dumps(entry, separators=(",", ":"), default=str)


def _level() -> int:
    name = (os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO").upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


# Not from logging.getLogger: a module the local server imports again makes a logger of its
# own, rather than adding a second handler (and every line twice) to a shared one. Nothing
# propagates to the root logger: our lines are whole JSON documents.
logger = logging.Logger(SERVICE)
logger.setLevel(_level())
log_handler = logging.StreamHandler(sys.stdout)
log_handler.setFormatter(JsonFormatter())
logger.addHandler(log_handler)


class Metrics:
    """Counts gathered during an invocation, printed as one EMF document when it ends."""

    def __init__(self) -> None:
        self.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or None
        self._values: dict[str, list[float]] = {}
        self._units: dict[str, str] = {}
        self._lock = threading.Lock()

    def add_metric(self, name: str, unit: str = COUNT, value: float = 1) -> None:
        """`unit` is CloudWatch's (Count, Milliseconds, Bytes...); EMF gives a metric one
        unit per document, so the last one given for `name` in an invocation is its unit."""
        with self._lock:
            self._values.setdefault(name, []).append(float(value))
            self._units[name] = unit

    def flush(self) -> None:
        with self._lock:
            values, self._values = self._values, {}
            units, self._units = self._units, {}
        if values:
            _emit(self.namespace, {"service": SERVICE}, values, units)

    def log_metrics(self, handler: Handler) -> Handler:
        @functools.wraps(handler)
        def flushed(event: dict[str, Any], context: Any) -> dict[str, Any]:
            try:
                return handler(event, context)
            finally:
                self.flush()

        return flushed


def _emit(
    namespace: str | None,
    dimensions: dict[str, str],
    values: dict[str, list[float]],
    units: dict[str, str] | None = None,
) -> None:
    if os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("true", "1"):
        return
    if not namespace:
        logger.warning("POWERTOOLS_METRICS_NAMESPACE is not set: metrics dropped")
        return
    document: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": namespace,
                    "Dimensions": [list(dimensions)],
                    "Metrics": [
                        {"Name": name, "Unit": (units or {}).get(name, COUNT)} for name in values
                    ],
                }
            ],
        },
        **dimensions,
        **values,
    }
    print(json.dumps(document, separators=(",", ":")), flush=True)


metrics = Metrics()


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in ("true", "1")


def _with_log_context(handler: Handler) -> Handler:
    @functools.wraps(handler)
    def logged(event: dict[str, Any], context: Any) -> dict[str, Any]:
        global _cold_start
        request_context = event.get("requestContext") if isinstance(event, dict) else None
        # requestContext.requestId exists in both payload formats (REST 1.0, HTTP API 2.0).
        correlation_id = (
            request_context.get("requestId") if isinstance(request_context, dict) else None
        )
        _invocation.fields = {
            "cold_start": _cold_start,
            "function_name": getattr(context, "function_name", None),
            "function_memory_size": getattr(context, "memory_limit_in_mb", None),
            "function_arn": getattr(context, "invoked_function_arn", None),
            "function_request_id": getattr(context, "aws_request_id", None),
            "correlation_id": correlation_id,
        }
        _cold_start = False
        return handler(event, context)

    return logged


def instrument(handler: Handler) -> Handler:
    """Wrap a Lambda handler: correlation id in every log line, metrics flushed as EMF,
    an X-Ray subsegment when tracing is on. The event itself is never logged."""
    if tracing_enabled():
        try:
            import aws_xray_sdk  # noqa: F401 - Powertools' Tracer imports it lazily
        except ImportError:
            logger.warning(
                "POWERTOOLS_TRACE_DISABLED is false, but the layer has no aws-xray-sdk; "
                "tracing with Lambda's active tracing only"
            )
        else:
            from aws_lambda_powertools import Tracer

            handler = Tracer().capture_lambda_handler(handler, capture_response=False)
    return _with_log_context(metrics.log_metrics(handler))


def count(name: str) -> None:
    metrics.add_metric(name, COUNT, 1)


def count_token_rejection(reason: str) -> None:
    """One TokenRejected metric per reason (a dimension), printed on its own."""
    _emit(metrics.namespace, {"reason": reason, "service": SERVICE}, {"TokenRejected": [1.0]})
