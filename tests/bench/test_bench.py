"""`make bench` still runs end to end: every part on a tiny budget (no cold start, which needs
the Lambda-like venv). Its figures mean nothing here; only that each part produced them."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def restored_environment():
    """The benchmark sets its own AWS endpoint and function variables: undo them after."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.mark.slow
def test_bench_runs_end_to_end_on_a_tiny_budget(capsys, restored_environment):
    from bench.__main__ import main

    results = main(quick=True)

    assert {row["operation"] for row in results["tokens"]} >= {"mint"}
    assert all(row["ours_ops"] > 0 and row["sdk_ops"] > 0 for row in results["tokens"])
    calls = {(row["route"], row["metadata"]): row for row in results["aws_calls"]}
    assert calls[("GET metadata", "1 KB")]["warm_calls"] == ["dynamodb.GetItem"]
    assert calls[("POST tokens", "1 KB")]["cold_calls"] == ["secrets-manager.GetSecretValue"]
    assert calls[("POST tokens", "1 KB")]["warm_calls"] == []
    assert calls[("PUT metadata", "100 KB")]["wru"] > 100  # a write bills the whole item
    assert len(results["throughput"]) == 6
    printed = capsys.readouterr().out
    assert "## Tokens" in printed and "## Throughput" in printed
