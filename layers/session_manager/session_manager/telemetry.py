"""Powertools Logger and Metrics for every function; Tracer when tracing is switched on.

Measured (see `make bench`): Logger and Metrics add ~15% to a bare boto3 INIT; Powertools
Tracer adds ~75% on its own, because the X-Ray SDK builds two botocore clients at import.
So Tracer is opt-in: it needs aws-xray-sdk in the layer (see its requirements.txt) and
POWERTOOLS_TRACE_DISABLED=false (the template's DisablePowertoolsTracer parameter).
Lambda's active tracing records every invocation either way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric

logger = Logger()
metrics = Metrics()

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in ("true", "1")


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
    handler = metrics.log_metrics(handler)
    # requestContext.requestId exists in both payload formats (REST 1.0 and HTTP API 2.0).
    return logger.inject_lambda_context(
        handler, correlation_id_path="requestContext.requestId", log_event=False
    )


def count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def count_token_rejection(reason: str) -> None:
    """One TokenRejected metric per reason (a dimension), flushed on its own."""
    with single_metric(
        name="TokenRejected",
        unit=MetricUnit.Count,
        value=1,
        namespace=metrics.namespace,
    ) as metric:
        metric.add_dimension(name="reason", value=reason)
