"""Cold start of each function against bare boto3, in fresh interpreters, side by side.

Every probe is a new process of a Lambda-like Python: a venv holding only boto3 and the
layer's requirements.txt (the dev venv carries extras, such as awscrt, that botocore
picks up and a Lambda runtime does not have). The AWS calls go to a moto server on
loopback, so "first request" includes real HTTP round trips.

Compared, per function:
- INIT: importing the function module vs `import boto3; boto3.client("dynamodb")`;
- INIT + first request: the module handling its sample event vs bare boto3 making the
  same AWS calls (GetItem, UpdateItem, DeleteItem, or GetSecretValue);
- peak RSS of the process after that first request, against the baseline's.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from devtools import aws_local, template
from devtools.aws_local import SAMPLE_KEY

ROOT = template.ROOT
LAMBDA_PYTHON = ROOT / ".venv-lambda" / "bin" / "python"
PROBE = Path(__file__).with_name("probe.py")
SESSION_ID = "call-6f1c2a9e-demo"  # the one the sample events use


def _baseline_call(function: str, table: str, secret: str) -> tuple[str, str, dict[str, Any]]:
    key = {template.table().partition_key: {"S": SESSION_ID}}
    calls: dict[str, tuple[str, str, dict[str, Any]]] = {
        "get_metadata": ("dynamodb", "get_item", {"TableName": table, "Key": key}),
        "set_metadata": (
            "dynamodb",
            "update_item",
            {
                "TableName": table,
                "Key": key,
                "UpdateExpression": "SET #k = :v",
                "ExpressionAttributeNames": {"#k": "m.step"},
                "ExpressionAttributeValues": {":v": {"S": '"confirm"'}},
                "ReturnValues": "ALL_NEW",
            },
        ),
        "delete_metadata": (
            "dynamodb",
            "delete_item",
            {"TableName": table, "Key": key, "ReturnValues": "ALL_OLD"},
        ),
        "create_token": ("secretsmanager", "get_secret_value", {"SecretId": secret}),
        "validate_token": ("secretsmanager", "get_secret_value", {"SecretId": secret}),
    }
    return calls[function]


def _probe(args: list[str], env: dict[str, str], python: Path = LAMBDA_PYTHON) -> dict[str, float]:
    result = subprocess.run(
        [str(python), str(PROBE), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise RuntimeError(f"probe {args} failed: {result.stderr.strip()[-500:]}")


def _median(samples: list[dict[str, float]], field: str) -> float:
    return statistics.median(sample[field] for sample in samples)


def run(
    endpoint: str, runs: int = 7, progress: Callable[[str], None] | None = None
) -> list[dict[str, object]]:
    """Measure every function of the template; `endpoint` is a moto server's URL."""
    import boto3

    table_name = template.table().logical_id
    secret_name = template.secret_logical_id()
    aws_local.ensure_table(boto3.client("dynamodb", endpoint_url=endpoint), table_name)
    aws_local.ensure_secret(
        boto3.client("secretsmanager", endpoint_url=endpoint), secret_name, SAMPLE_KEY
    )
    functions = template.functions()
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([*map(str, template.layer_dirs()), str(ROOT)]),
        "PYTHONDONTWRITEBYTECODE": "",  # like Lambda: compiled .pyc files are reused
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        **template.resolve_environment(
            functions[0].environment,
            {template.table().logical_id: table_name, template.secret_logical_id(): secret_name},
        ),
    }
    rows = []
    for function in functions:
        event = ROOT / "events" / f"{function.name}.json"
        service, operation, params = _baseline_call(function.name, table_name, secret_name)
        baseline_import = ["baseline", "0", "dynamodb", "get_item", "{}"]
        baseline_first = ["baseline", "1", service, operation, json.dumps(params)]
        ours_import = ["function", "0", str(function.code_dir), str(event)]
        ours_first = ["function", "1", str(function.code_dir), str(event)]
        samples: dict[str, list] = {"bi": [], "bf": [], "oi": [], "of": []}
        _probe(ours_first, base_env)  # warm the OS page cache and .pyc files first
        for run_ in range(runs):  # interleaved, so drift in the machine hits both sides
            if progress:
                progress(f"cold start: {function.name}, run {run_ + 1}/{runs}")
            samples["bi"].append(_probe(baseline_import, base_env))
            samples["oi"].append(_probe(ours_import, base_env))
            samples["bf"].append(_probe(baseline_first, base_env))
            samples["of"].append(_probe(ours_first, base_env))
        rows.append(
            {
                "function": function.name,
                "import_ms": _median(samples["oi"], "import_ms"),
                "baseline_import_ms": _median(samples["bi"], "import_ms"),
                "first_ms": _median(samples["of"], "total_ms"),
                "baseline_first_ms": _median(samples["bf"], "total_ms"),
                "cpu_first_ms": _median(samples["of"], "cpu_total_ms"),
                "baseline_cpu_first_ms": _median(samples["bf"], "cpu_total_ms"),
                "peak_mb": _median(samples["of"], "peak_rss_kb") / 1024,
                "baseline_peak_mb": _median(samples["bf"], "peak_rss_kb") / 1024,
            }
        )
    tracer_env = {
        **base_env,
        "POWERTOOLS_TRACE_DISABLED": "false",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",
    }
    get = next(f for f in functions if f.name == "get_metadata")
    args = ["function", "0", str(get.code_dir), str(ROOT / "events" / "get_metadata.json")]
    if progress:
        progress("cold start: get_metadata with Powertools Tracer")
    with_tracer = [_probe(args, tracer_env) for _ in range(runs)]
    bare = ["baseline", "0", "dynamodb", "get_item", "{}"]
    baseline = [_probe(bare, base_env) for _ in range(runs)]
    rows.append(
        {
            "function": "get_metadata + Tracer",
            "import_ms": _median(with_tracer, "import_ms"),
            "baseline_import_ms": _median(baseline, "import_ms"),
            "peak_mb": _median(with_tracer, "peak_rss_kb") / 1024,
            "baseline_peak_mb": _median(baseline, "peak_rss_kb") / 1024,
        }
    )
    return rows


def _against_boto3(row: dict[str, Any], figure: str, digits: int) -> list[str]:
    """Two cells: ours (boto3 alone's), and the ratio of the two; dashes where the row
    has no such figure (the Tracer row is measured without a first request)."""
    if figure not in row:
        return ["-", "-"]
    ours, boto3_alone = row[figure], row[f"baseline_{figure}"]
    return [f"{ours:.{digits}f} ({boto3_alone:.{digits}f})", f"{ours / boto3_alone:.2f}"]


def table(rows: list[dict[str, Any]]) -> str:
    titles = ["function", "INIT ms (boto3)", "x", "INIT+1st request ms (boto3)", "x"]
    titles += ["same, CPU ms (boto3)", "x", "peak RSS MB (boto3)", "x"]
    return report.markdown_table(
        titles,
        (
            [
                row["function"],
                *_against_boto3(row, "import_ms", 0),
                *_against_boto3(row, "first_ms", 0),
                *_against_boto3(row, "cpu_first_ms", 0),
                *_against_boto3(row, "peak_mb", 1),
            ]
            for row in rows
        ),
    )


if __name__ == "__main__":
    sys.exit("run `make bench`")
