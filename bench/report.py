"""The benchmark's outputs besides the terminal: JSON under bench/results/, and the chart
docs/benchmark.png that the README shows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHART = ROOT / "docs" / "benchmark.png"


def markdown_table(
    titles: Sequence[str], rows: Iterable[Sequence[object]], *, text_columns: int = 1
) -> str:
    """A Markdown table of cells already formatted; the first `text_columns` columns are
    left-aligned, the figures after them right-aligned."""
    align = ["---"] * text_columns + ["---:"] * (len(titles) - text_columns)
    lines = [titles, align, *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines)


def save_json(results: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "latest.json").write_text(path.read_text())
    return path


def chart(results: dict[str, Any], path: Path = CHART) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # no display needed
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 8.5))
    (tok, cold), (http, cost) = axes

    rows = results.get("tokens", [])
    tok.barh([r["operation"] for r in rows], [r["ratio"] for r in rows], color="#3b7dd8")
    tok.axvline(1.0, color="grey", lw=1)
    tok.axvline(1.5, color="#d9534f", ls="--", lw=1, label="target 1.5x")
    tok.set_title("Tokens: ops/s / the SignalWire SDK's (x, higher is faster)")
    tok.invert_yaxis()
    tok.legend(loc="lower right")

    rows = [r for r in results.get("cold_start", []) if "first_ms" in r]
    names = [r["function"] for r in rows]
    y = range(len(rows))
    series = [
        ("INIT + 1st request, wall time", "first_ms", "baseline_first_ms", "#1f5fae"),
        ("INIT + 1st request, CPU time", "cpu_first_ms", "baseline_cpu_first_ms", "#3b7dd8"),
        ("peak memory (VmHWM)", "peak_mb", "baseline_peak_mb", "#8cb4ea"),
    ]
    for k, (label, ours, base, color) in enumerate(series):
        cold.barh(
            [i + (k - 1) * 0.27 for i in y],
            [r[ours] / r[base] if ours in r else 0 for r in rows],
            height=0.27,
            label=label,
            color=color,
        )
    cold.set_yticks(list(y), names)
    cold.axvline(1.0, color="grey", lw=1)
    cold.axvline(1.15, color="#d9534f", ls="--", lw=1, label="target 1.15x")
    cold.set_title("Cold start / bare boto3 (x, lower is better)")
    cold.invert_yaxis()
    cold.set_xlim(0, 1.6)
    cold.legend(loc="lower left", fontsize=7)

    rows = results.get("throughput", [])
    http.barh([r["route"] for r in rows], [r["rps"] for r in rows], color="#5cb85c")
    for i, r in enumerate(rows):
        http.text(
            r["rps"],
            i,
            f" p50 {r['p50_ms']:.1f} / p99 {r['p99_ms']:.1f} ms",
            va="center",
            fontsize=8,
        )
    http.set_title("make serve (embedded moto): requests/s per route")
    http.invert_yaxis()

    rows = results.get("aws_calls", [])
    labels = [r["route"] + ("" if "token" in r["route"] else f", {r['metadata']}") for r in rows]
    cost.barh(labels, [r["usd_per_million"] for r in rows], color="#f0ad4e")
    for i, r in enumerate(rows):
        cost.text(r["usd_per_million"], i, f" ${r['usd_per_million']:.2f}", va="center", fontsize=8)
    cost.set_title("$ per million warm requests (us-east-1)")
    cost.invert_yaxis()

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
