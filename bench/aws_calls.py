"""AWS calls and DynamoDB capacity per operation, cold and warm, and what a million cost.

Each HTTP function's real handler runs in this process against a moto server, and every
AWS call its clients make is counted through botocore's event system (`before-call`),
so the counts are what the code does, not what we think it does. "Cold" is the first
invocation of a freshly imported module (new manager, new clients, empty key cache);
"warm" is the next one.

Capacity: every DynamoDB call is sent with ReturnConsumedCapacity=TOTAL, and moto's
answer is recorded, but moto answers a constant (1 or 0.5 units whatever the size), so
the units reported are computed from DynamoDB's documented rules instead: a strongly
consistent read costs 1 RRU per 4 KB of item, a write 1 WRU per 1 KB of the larger of
the item before and after (at least 1 each), sizes counted as DynamoDB does (UTF-8 names
plus values). The item is read before and after each invocation, outside the counters.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Callable
from typing import Any

from bench import report
from devtools import aws_local, events, lambda_runtime, template
from devtools.aws_local import SAMPLE_KEY
from devtools.context import LambdaContext

SIZES = {"1 KB": 1024, "100 KB": 100 * 1024}
ITEM_OPERATIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan")
FUNCTION = "get_weather"

# us-east-1 on-demand list prices (2025), per million unless said otherwise.
PRICES = {
    "http_api_per_million": 1.00,  # HTTP API, first 300 million a month
    "lambda_requests_per_million": 0.20,
    "lambda_arm64_per_gb_second": 0.0000133334,
    "dynamodb_rru_per_million": 0.125,
    "dynamodb_wru_per_million": 0.625,
    "secrets_manager_per_million_calls": 5.00,  # $0.05 per 10,000
    "logs_per_gb": 0.50,
}
# Assumptions that the benchmark cannot measure on loopback: the billed duration of a warm
# invocation against real DynamoDB (single-digit ms of AWS latency plus our own work), and
# the log lines that are not the function's own (Lambda's START/END/REPORT, the API's
# access log line). The function's own output (its EMF document, any log line) is measured.
BILLED_MS = 15
PLATFORM_LOG_BYTES = 500


def _item_bytes(item: dict[str, Any] | None) -> int:
    """An item's size by DynamoDB's rules; this table holds only S and N attributes."""
    if not item:
        return 0
    size = 0
    for name, value in item.items():
        size += len(name.encode())
        if "S" in value:
            size += len(value["S"].encode())
        else:  # N: about one byte per two significant digits, plus one
            size += math.ceil(len(value["N"].lstrip("-0").replace(".", "")) / 2) + 1
    return size


class _Counter:
    """Counts every AWS call made through boto3's default session, and asks DynamoDB for
    its consumed capacity on each."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.moto_units = 0.0

    def _handlers(self) -> list[tuple[str, Callable[..., None]]]:
        return [
            ("before-call", self._before_call),
            *(
                (f"before-parameter-build.dynamodb.{operation}", self._ask_capacity)
                for operation in ITEM_OPERATIONS
            ),
            ("after-call.dynamodb", self._after_call),
        ]

    def install(self) -> None:
        """On boto3's default session, where the functions' clients are made; every client
        made from it afterwards carries the handlers."""
        import boto3

        boto3.setup_default_session()
        session = boto3.DEFAULT_SESSION
        assert session is not None  # setup_default_session just made it
        for event, handler in self._handlers():
            session.events.register(event, handler)

    def uninstall(self) -> None:
        import boto3

        boto3.setup_default_session()  # later clients (other benchmarks) start clean

    def _before_call(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        self.calls.append(f"{service}.{operation}")

    @staticmethod
    def _ask_capacity(params: dict[str, Any], **_: Any) -> None:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _after_call(self, parsed: dict[str, Any], **_: Any) -> None:
        self.moto_units += parsed.get("ConsumedCapacity", {}).get("CapacityUnits", 0.0)

    def take(self) -> tuple[list[str], float]:
        calls, units = self.calls, self.moto_units
        self.calls, self.moto_units = [], 0.0
        return calls, units


def _units(calls: list[str], before: int, after: int) -> tuple[int, int]:
    """(RRU, WRU) of these calls by DynamoDB's documented rules."""
    rru = wru = 0
    for call in calls:
        service, operation = call.split(".")
        if service != "dynamodb":
            continue
        if operation in ("GetItem", "Query", "Scan"):
            rru += max(1, math.ceil(before / 4096))
        else:
            wru += max(1, math.ceil(max(before, after) / 1024))
    return rru, wru


def _cost(row: dict[str, Any], memory_mb: int) -> float:
    """Dollars per million warm invocations of this operation."""
    gb_seconds = memory_mb / 1024 * BILLED_MS / 1000 * 1_000_000
    secrets_calls = sum(call.startswith("secrets-manager.") for call in row["warm_calls"])
    return (
        PRICES["http_api_per_million"]
        + PRICES["lambda_requests_per_million"]
        + gb_seconds * PRICES["lambda_arm64_per_gb_second"]
        + row["rru"] * PRICES["dynamodb_rru_per_million"]
        + row["wru"] * PRICES["dynamodb_wru_per_million"]
        + secrets_calls * PRICES["secrets_manager_per_million_calls"]
        + (row["log_bytes"] + PLATFORM_LOG_BYTES) * 1_000_000 / 1024**3 * PRICES["logs_per_gb"]
    )


def run(endpoint: str, progress: Callable[[str], None] | None = None) -> list[dict[str, Any]]:
    # The functions' own output (EMF documents, log lines) is measured, not printed.
    counter = _Counter()
    counter.install()
    try:
        with contextlib.redirect_stdout(io.StringIO()) as output:
            return _run(endpoint, output, counter, progress)
    finally:
        counter.uninstall()


def _run(
    endpoint: str,
    output: io.StringIO,
    counter: _Counter,
    progress: Callable[[str], None] | None,
) -> list[dict[str, Any]]:
    import boto3

    from session_manager import SessionManager, tokens

    table_name, secret_name = template.table().logical_id, template.secret_logical_id()
    # Setup clients come from a session of their own: the counter never sees them.
    setup = boto3.Session()
    dynamodb = setup.client("dynamodb", endpoint_url=endpoint)
    aws_local.ensure_table(dynamodb, table_name)
    secrets = setup.client("secretsmanager", endpoint_url=endpoint)
    aws_local.ensure_secret(secrets, secret_name, SAMPLE_KEY)
    functions = {f.name: f for f in template.functions()}
    os.environ.update(
        template.resolve_environment(
            next(iter(functions.values())).environment,
            {table_name: table_name, secret_name: secret_name},
        )
    )
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    memory_mb = int(template.load()["Globals"]["Function"].get("MemorySize", 128))
    seeder = SessionManager(secret_key=SAMPLE_KEY, table_name=table_name, dynamodb_client=dynamodb)

    def item(session_id: str) -> dict[str, Any] | None:
        return dynamodb.get_item(
            TableName=table_name,
            Key={template.table().partition_key: {"S": session_id}},
            ConsistentRead=True,
        ).get("Item")

    far = 9_999_999_999
    cases: list[tuple[str, str, str, Callable[[str, int], Any], bool]] = [
        # (route label, function, method, body(session, size), needs a session of `size`)
        ("GET metadata", "get_metadata", "GET", lambda s, n: None, True),
        ("PUT metadata", "set_metadata", "PUT", lambda s, n: {"notes": "x" * n}, False),
        ("PATCH metadata (1 key)", "set_metadata", "PATCH", lambda s, n: {"step": 2}, True),
        ("DELETE metadata", "delete_metadata", "DELETE", lambda s, n: None, True),
        (
            "POST tokens",
            "create_token",
            "POST",
            lambda s, n: {"function_name": FUNCTION},
            False,
        ),
        (
            "POST tokens/validate",
            "validate_token",
            "POST",
            lambda s, n: {
                "token": tokens.mint(SAMPLE_KEY.encode(), s, FUNCTION, far),
                "call_id": s,
                "function_name": FUNCTION,
            },
            False,
        ),
    ]
    rows = []
    step = 0
    total = len(cases) * len(SIZES)
    for label, size_bytes in SIZES.items():
        for route, name, method, body, seeded in cases:
            step += 1
            if "token" in name and label != next(iter(SIZES)):
                continue  # tokens touch no metadata: one size says it all
            if progress:
                progress(f"AWS calls: {route}, {label} ({step}/{total})")
            function = functions[name]
            route_path = next(r.path for r in function.routes if r.method == method)
            handler = lambda_runtime.load_handler(function, namespace=f"bench_calls_{step}")
            figures: dict[str, Any] = {"route": route, "metadata": label}
            for phase in ("cold", "warm"):
                session = f"bench-calls-{step}-{phase}"
                if seeded:
                    seeder.replace_session_metadata(session, {"notes": "x" * size_bytes})
                before = _item_bytes(item(session))
                event = events.http_api_event(
                    method, route_path, {"session_id": session}, body(session, size_bytes)
                )
                counter.take()
                printed = output.tell()
                response = handler(event, LambdaContext.for_function(function))
                calls, moto_units = counter.take()
                figures["log_bytes"] = output.tell() - printed
                if response["statusCode"] >= 300:
                    raise RuntimeError(f"{route}: {response['statusCode']} {response['body']}")
                after = _item_bytes(item(session))
                figures[f"{phase}_calls"] = calls
                if phase == "warm":
                    figures["rru"], figures["wru"] = _units(calls, before, after)
                    figures["moto_units"] = moto_units
                    figures["item_bytes"] = max(before, after)
            figures["usd_per_million"] = _cost(figures, memory_mb)
            rows.append(figures)
    return rows


def _calls(calls: list[str]) -> str:
    counts: dict[str, int] = {}
    for call in calls:
        short = call.split(".")[1]
        counts[short] = counts.get(short, 0) + 1
    return ", ".join(f"{n}x {op}" if n > 1 else op for op, n in counts.items()) or "none"


def table(rows: list[dict[str, Any]]) -> str:
    titles = ["route", "metadata", "cold: AWS calls", "warm: AWS calls", "RRU", "WRU"]
    titles += ["moto's units", "log bytes", "$ per million (warm)"]
    return report.markdown_table(
        titles,
        (
            [
                row["route"],
                row["metadata"] if "token" not in row["route"] else "-",
                _calls(row["cold_calls"]),
                _calls(row["warm_calls"]),
                row["rru"],
                row["wru"],
                f"{row['moto_units']:g}",
                row["log_bytes"],
                f"{row['usd_per_million']:.2f}",
            ]
            for row in rows
        ),
        text_columns=4,
    )


def assumptions() -> str:
    return (
        f"Prices: us-east-1 on-demand, {json.dumps(PRICES)}. Assumed: {BILLED_MS} ms billed "
        f"per warm invocation at the template's memory, {PLATFORM_LOG_BYTES} bytes of "
        "Lambda and access-log lines per invocation on top of the function's own output "
        "(measured); cold starts and data transfer left out."
    )
