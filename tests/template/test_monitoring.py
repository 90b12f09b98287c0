"""The alarms and the dashboard watch metrics that exist.

An alarm on a metric nobody publishes never fires, and CloudWatch does not warn. So:
- AWS's metrics: only the ones each service publishes, under the dimensions it publishes
  them by (an HTTP API's `5xx` by ApiId, not REST's `5XXError`; DynamoDB's
  Read/WriteThrottleEvents by TableName; Lambda's Errors and Throttles by FunctionName).
- Our own: the names come from the code (every `count("...")` and `@endpoint("...")` in
  the layer and the functions), and the namespace and dimensions from what
  session_manager.telemetry actually prints as EMF when run with the template's
  environment. An alarm or a dashboard graph on our metrics must match one of those
  documents exactly: namespace, metric name, dimension names and values.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from devtools import template
from session_manager import tokens

ROOT = template.ROOT
CODE = [
    *sorted((ROOT / "layers" / "session_manager" / "session_manager").rglob("*.py")),
    *sorted((ROOT / "functions").glob("*/app.py")),
]
RESOURCES: dict[str, dict[str, Any]] = template.load()["Resources"]
ALARMS = template.resources("AWS::CloudWatch::Alarm")
FUNCTIONS = {function.logical_id: function for function in template.functions()}
TABLE_ID = template.table().logical_id
(API_ID,) = template.resources("AWS::Serverless::HttpApi")
# Physical ids stand-ins: a resource's Ref resolves to <LogicalId>.
PHYSICAL_IDS = {logical_id: f"<{logical_id}>" for logical_id in RESOURCES}

# What AWS publishes, and by which dimensions (the ones our alarms may use).
AWS_METRICS = {
    ("AWS/ApiGateway", "5xx"): {"ApiId"},
    ("AWS/ApiGateway", "Count"): {"ApiId"},
    ("AWS/Lambda", "Errors"): {"FunctionName"},
    ("AWS/Lambda", "Throttles"): {"FunctionName"},
    ("AWS/DynamoDB", "ReadThrottleEvents"): {"TableName"},
    ("AWS/DynamoDB", "WriteThrottleEvents"): {"TableName"},
}

Metric = tuple[str, str, frozenset[tuple[str, str]]]  # namespace, name, dimensions


# -- what the code emits --------------------------------------------------------------------


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def counted_names() -> set[str]:
    """Every metric the code counts by a literal name: `count("Unavailable")`, and each
    function's operation, `@endpoint("GetMetadata", ...)` (the endpoint counts it)."""
    names = set()
    for path in CODE:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and _call_name(node) in ("count", "endpoint")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                names.add(node.args[0].value)
    return names


COUNTED = counted_names()

_EMIT = """
import sys
from session_manager import telemetry

@telemetry.metrics.log_metrics
def handler(event, context):
    for name in sys.argv[1:]:
        telemetry.count(name)
    telemetry.count_token_rejection("bad_signature")

handler({}, None)
"""


def emitted_metrics() -> set[Metric]:
    """What telemetry prints, run in a fresh Python with the functions' environment as the
    template sets it (parameters at their defaults, the stack's name as devtools assumes)."""
    (function, *_) = FUNCTIONS.values()
    environment = template.resolve_environment(function.environment, PHYSICAL_IDS)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(map(str, template.layer_dirs())),
        **environment,
    }
    result = subprocess.run(  # noqa: S603 - this interpreter, our own script
        [sys.executable, "-c", _EMIT, *sorted(COUNTED)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found: set[Metric] = set()
    for line in result.stdout.splitlines():
        document = json.loads(line)
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_set in directive["Dimensions"]:
                dimensions = frozenset((name, document[name]) for name in dimension_set)
                for metric in directive["Metrics"]:
                    found.add((directive["Namespace"], metric["Name"], dimensions))
    return found


@pytest.fixture(scope="module")
def emitted() -> set[Metric]:
    found = emitted_metrics()
    assert {name for _, name, _ in found} >= COUNTED | {"TokenRejected"}
    return found


def test_the_code_counts_what_the_alarms_need():
    assert {"Unavailable", "InternalError"} <= COUNTED
    # The operations, one per function (GetMetadata...): the dashboard graphs them.
    assert len(COUNTED - {"Unavailable", "InternalError"}) >= len(FUNCTIONS)


def test_telemetry_emits_our_metrics_under_the_templates_namespace_and_service(emitted):
    (function, *_) = FUNCTIONS.values()
    environment = template.resolve_environment(function.environment, PHYSICAL_IDS)
    namespace = environment["POWERTOOLS_METRICS_NAMESPACE"]
    service = ("service", environment["POWERTOOLS_SERVICE_NAME"])
    assert (namespace, service[1]) == ("SignalWireSessions", "signalwire-sessions")
    for name in COUNTED:
        assert (namespace, name, frozenset({service})) in emitted, name
    rejected = frozenset({service, ("reason", tokens.Refusal.BAD_SIGNATURE)})
    assert (namespace, "TokenRejected", rejected) in emitted


# -- the alarms -----------------------------------------------------------------------------


def alarm_metrics(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads: its own, or those of its metric math."""
    if "MetricName" in properties:
        return [
            {
                "Namespace": properties["Namespace"],
                "MetricName": properties["MetricName"],
                "Dimensions": properties.get("Dimensions", []),
            }
        ]
    return [
        query["MetricStat"]["Metric"] for query in properties["Metrics"] if "MetricStat" in query
    ]


def as_metric(spec: dict[str, Any]) -> Metric:
    resolved = template.resolve(spec, PHYSICAL_IDS)
    dimensions = frozenset((d["Name"], d["Value"]) for d in resolved.get("Dimensions", []))
    return resolved["Namespace"], resolved["MetricName"], dimensions


def all_alarm_metrics() -> list[tuple[str, Metric]]:
    return [
        (alarm_id, as_metric(spec))
        for alarm_id, alarm in ALARMS.items()
        for spec in alarm_metrics(alarm["Properties"])
    ]


def test_every_alarm_metric_is_published(emitted):
    assert ALARMS
    for alarm_id, (namespace, name, dimensions) in all_alarm_metrics():
        if namespace.startswith("AWS/"):
            assert (namespace, name) in AWS_METRICS, (alarm_id, namespace, name)
            assert {d for d, _ in dimensions} == AWS_METRICS[namespace, name], alarm_id
            for _, value in dimensions:  # a Ref to one of our resources
                assert value in PHYSICAL_IDS.values(), (alarm_id, value)
        else:
            assert (namespace, name, dimensions) in emitted, (alarm_id, name, dimensions)


def alarmed() -> set[Metric]:
    return {metric for _, metric in all_alarm_metrics()}


def test_the_apis_5xx_rate_is_alarmed():
    dimensions = frozenset({("ApiId", f"<{API_ID}>")})
    assert ("AWS/ApiGateway", "5xx", dimensions) in alarmed()
    (rate,) = [
        properties
        for properties in (alarm["Properties"] for alarm in ALARMS.values())
        if ("AWS/ApiGateway", "5xx", dimensions) in map(as_metric, alarm_metrics(properties))
    ]
    queries = {query["Id"]: query for query in rate["Metrics"]}
    (returned,) = [query for query in queries.values() if query.get("ReturnData", True)]
    ids = {i for i, q in queries.items() if "MetricStat" in q}
    assert {as_metric(queries[i]["MetricStat"]["Metric"])[1] for i in ids} == {"5xx", "Count"}
    assert all(i in returned["Expression"] for i in ids)  # errors over requests
    assert "/" in returned["Expression"]


@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_each_functions_errors_and_throttles_are_alarmed(metric):
    for logical_id in FUNCTIONS:
        dimensions = frozenset({("FunctionName", f"<{logical_id}>")})
        assert ("AWS/Lambda", metric, dimensions) in alarmed(), logical_id


def test_the_tables_throttling_is_alarmed():
    dimensions = frozenset({("TableName", f"<{TABLE_ID}>")})
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        assert ("AWS/DynamoDB", metric, dimensions) in alarmed(), metric


def test_our_unavailable_internal_error_and_forged_tokens_are_alarmed(emitted):
    ours = {(name, dims) for namespace, name, dims in alarmed() if not namespace.startswith("AWS/")}
    names = {name for name, _ in ours}
    assert {"Unavailable", "InternalError", "TokenRejected"} <= names
    rejections = [dict(dimensions) for name, dimensions in ours if name == "TokenRejected"]
    assert [d["reason"] for d in rejections] == [tokens.Refusal.BAD_SIGNATURE]


@pytest.mark.parametrize("alarm_id", sorted(ALARMS))
def test_each_alarm_notifies_the_topic_with_a_threshold_parameter(alarm_id):
    properties = ALARMS[alarm_id]["Properties"]
    assert properties["AlarmActions"] == [
        {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
    ]
    threshold = properties["Threshold"]["Ref"]
    default = template.load()["Parameters"][threshold]["Default"]
    assert isinstance(default, int | float) and default >= 0
    # No data (no traffic, nothing refused) is not an incident.
    assert properties["TreatMissingData"] == "notBreaching"
    assert properties["AlarmDescription"]


def test_the_alarm_topic_is_created_or_given():
    topic = RESOURCES["AlarmTopic"]
    assert topic["Type"] == "AWS::SNS::Topic"
    assert topic["Condition"] == "CreateAlarmTopic"
    conditions = template.load()["Conditions"]
    assert conditions["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert template.parameter_defaults()["AlarmTopicArn"] == ""
    given = {"AlarmTopicArn": "arn:aws:sns:us-east-1:123456789012:ops"}
    action = ALARMS["InternalErrorAlarm"]["Properties"]["AlarmActions"]
    assert template.resolve(action, PHYSICAL_IDS) == ["<AlarmTopic>"]
    assert template.resolve(action, PHYSICAL_IDS, given) == [given["AlarmTopicArn"]]


# -- the dashboard --------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    ((_, resource),) = template.resources("AWS::CloudWatch::Dashboard").items()
    # Fn::Sub resolved as CloudFormation would; then it must be JSON.
    return json.loads(template.resolve(resource["Properties"]["DashboardBody"], PHYSICAL_IDS))


def graphed() -> tuple[list[Metric], list[str]]:
    """The dashboard's metrics, and its metric math expressions."""
    metrics, expressions = [], []
    for widget in dashboard()["widgets"]:
        for entry in widget["properties"]["metrics"]:
            fields = [field for field in entry if not isinstance(field, dict)]
            options = [field for field in entry if isinstance(field, dict)]
            if not fields:
                expressions.extend(option["expression"] for option in options)
                continue
            namespace, name, *pairs = fields
            dimensions = frozenset(zip(pairs[::2], pairs[1::2], strict=True))
            metrics.append((namespace, name, dimensions))
    return metrics, expressions


def test_the_dashboard_shows_latency_errors_rejections_and_capacity():
    titles = " | ".join(w["properties"]["title"].lower() for w in dashboard()["widgets"])
    for topic in ("latency", "errors", "rejections by reason", "dynamodb capacity"):
        assert topic in titles
    names = {name for _, name, _ in graphed()[0]}
    assert {"Latency", "5xx", "Errors", "ConsumedReadCapacityUnits"} <= names
    assert {"ConsumedWriteCapacityUnits", "InternalError", "Unavailable"} <= names


def test_the_dashboards_own_metrics_are_the_emitted_ones(emitted):
    metrics, _ = graphed()
    ours = [metric for metric in metrics if not metric[0].startswith("AWS/")]
    assert ours
    for metric in ours:
        assert metric in emitted, metric
    for namespace, name, dimensions in metrics:
        for _, value in dimensions:
            if namespace.startswith("AWS/"):
                assert value in PHYSICAL_IDS.values(), (name, value)


def test_the_rejections_graph_searches_token_rejected_by_reason(emitted):
    _, expressions = graphed()
    ((namespace, name, dimensions),) = [m for m in emitted if m[1] == "TokenRejected"]
    (search,) = [e for e in expressions if name in e]
    keys = ",".join(sorted(d for d, _ in dimensions))
    assert f"{{{namespace},{keys}}}" in search  # the schema: exactly these dimensions
    service = dict(dimensions)["service"]
    assert f'service="{service}"' in search  # this stack's only
    assert f'MetricName="{name}"' in search
