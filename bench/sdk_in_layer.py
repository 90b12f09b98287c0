"""Should the layer ship its own boto3? Cold start of a function on the newest boto3 (what
the layer would ship: .venv-lambda) against the floor one (.venv-floor, standing in for
the older SDK of the python3.13 runtime), in fresh interpreters, interleaved.

Run by hand, against a moto server: `python -m bench.sdk_in_layer http://127.0.0.1:PORT`.
What it cannot show: Lambda unpacking a layer ~15 times the size (measured apart, with
`pip install --target` as the layer's Makefile does).
"""

from __future__ import annotations

import os
import sys

from bench import cold_start
from devtools import aws_local, template
from devtools.aws_local import SAMPLE_KEY

FLOOR_PYTHON = template.ROOT / ".venv-floor" / "bin" / "python"


def run(endpoint: str, runs: int = 7) -> list[dict[str, object]]:
    import boto3

    for name, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench"}.items():
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

    table_name, secret_name = template.table().logical_id, template.secret_logical_id()
    aws_local.ensure_table(boto3.client("dynamodb", endpoint_url=endpoint), table_name)
    aws_local.ensure_secret(
        boto3.client("secretsmanager", endpoint_url=endpoint), secret_name, SAMPLE_KEY
    )
    functions = {f.name: f for f in template.functions()}
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([*map(str, template.layer_dirs()), str(template.ROOT)]),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        **template.resolve_environment(
            functions["get_metadata"].environment,
            {table_name: table_name, secret_name: secret_name},
        ),
    }
    rows = []
    for name in ("get_metadata", "create_token"):
        fn = functions[name]
        args = ["function", "1", str(fn.code_dir), str(template.ROOT / "events" / f"{name}.json")]
        samples: dict[str, list[dict[str, float]]] = {"floor": [], "newest": []}
        for python in (FLOOR_PYTHON, cold_start.LAMBDA_PYTHON):  # warm page cache, .pyc
            cold_start._probe(args, env, python)
        for _ in range(runs):
            samples["floor"].append(cold_start._probe(args, env, FLOOR_PYTHON))
            samples["newest"].append(cold_start._probe(args, env, cold_start.LAMBDA_PYTHON))
        row: dict[str, object] = {"function": name}
        for field in ("import_ms", "total_ms", "cpu_total_ms", "peak_rss_kb"):
            floor = cold_start._median(samples["floor"], field)
            newest = cold_start._median(samples["newest"], field)
            row[field] = f"{newest:.0f} vs {floor:.0f} (x{newest / floor:.2f})"
        rows.append(row)
    return rows


if __name__ == "__main__":
    for result in run(sys.argv[1]):
        print(result)
